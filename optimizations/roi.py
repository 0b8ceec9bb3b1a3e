"""ROI of an initiative: the baseline against the latest benchmark, in capacity and money.

``compute(initiative)`` reads what was measured and what strategy entered:

1. **Is it faster?** The target's baseline benchmark (the pinned baseline run's,
   else the first) against the newest benchmark after it, in the same mode when
   there is one. One run per side cannot pass the comparison rule
   (optimizations.analyzers.stats: Mann–Whitney U needs 5 values a side), so the
   rule is applied to the two jobs' per-second p95 latencies (as the portfolio's
   "most improved" and the regression sentinel do; p50 is shown beside). Seconds of one
   run are autocorrelated — a slow second is followed by slow seconds — so p and
   the intervals are indicative, not exact; an interleaved A/B comparison
   (the compare page) is the stronger evidence.
2. **Capacity.** Requests per second one instance carries: the stress knee
   (``http.capacity``) measured on each side, else the baseline's knee times the
   speed-up. Instances at the expected peak = ⌈peak ÷ (capacity × 80 %)⌉, the
   capacity advisor's headroom (optimizations.capacity.HEADROOM).
3. **Money.** Monthly saving = instances saved × cost per instance; investment =
   hours logged on the initiative's tasks × each department's hourly rate;
   ROI = (saving × horizon − investment) ÷ investment; payback = investment ÷
   monthly saving.

Two columns: *verified* counts only a significant measured gain (the
comparison's verdict), taking the end of the speed-up's interval nearest to no
change; *estimated* takes the point estimates. Whatever cannot be computed is
None, and ``missing`` says what would make it computable.

Writes: ``do_update_roi_assumptions`` adds a RoiAssumptions row (each edit is
a new row, so the rows are the history) and records an audit event.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db import transaction
from django.db.models import Sum

from departments.models import Department
from optimizations import capacity
from optimizations.analyzers import stats
from optimizations.models import Initiative, Job, Measurement, PhaseTask, RoiAssumptions
from portal.audit import record

# Benchmark modes whose per-second latencies describe one steady load. A stress
# test ramps the rate step by step, so its seconds mix loads and are left out of
# the latency comparison (its knee feeds the capacity model instead).
STEADY_MODES = ("load", "endurance", "closed")
STRESS = "stress"
# Per-second samples read (optimizations.runner._sample_rows names them sample.<field>).
SAMPLE_FIELDS = ("p50_ms", "p95_ms", "ok", "achieved")
# The rule runs on at most this many seconds a side, evenly spaced over the run:
# the exact and bootstrap computations grow with n, and thinning also weakens
# the autocorrelation of neighbouring seconds.
MAX_TEST_SECONDS = 120
RESAMPLES = 1000
# Each instance is planned at no more than this share of its knee at the peak —
# the capacity advisor's rule, so the ROI and the advisor size instances alike.
HEADROOM = capacity.HEADROOM
DEFAULT_HORIZON = 12
DEFAULT_CURRENCY = "EUR"
ASSUMPTION_FIELDS = (
    "expected_peak_rps",
    "cost_per_instance_month",
    "currency",
    "hourly_rates",
    "horizon_months",
    "note",
)
CACHE_VERSION = 1


# -- results -----------------------------------------------------------------------


@dataclass
class Assumptions:
    """What strategy entered (the newest RoiAssumptions row), with defaults where nothing was."""

    expected_peak_rps: int | None
    peak_source: str  # "assumptions", "target" (TargetService.expected_rps) or "" (none)
    cost_per_instance_month: float | None
    currency: str
    hourly_rates: dict[str, float]
    horizon_months: int
    headroom: float
    note: str
    entered: bool  # False: no row yet, defaults shown
    changed_by: str | None
    changed_at: datetime.datetime | None


@dataclass
class Benchmark:
    """One side of the comparison: a benchmark job and the seconds taken from it."""

    job_id: int
    run_id: int
    started_at: datetime.datetime
    mode: str
    offered_rate: float | None
    seconds: int  # seconds with answers in the run
    seconds_tested: int  # of which the rule used (evenly spaced, at most MAX_TEST_SECONDS)
    pinned: bool = False


@dataclass
class Knee:
    """A measured stress knee: requests per second one instance sustains."""

    value: float
    job_id: int
    run_id: int
    measured_at: datetime.datetime
    # "knee": the last step within the SLOs (http.capacity); "ceiling": the most a
    # step served in full at any latency (http.saturation), used on both sides
    # when the baseline has no knee because no rate met the p99 objective.
    kind: str = "knee"


@dataclass
class DepartmentCost:
    code: str
    name: str
    hours: float
    rate: float | None
    cost: float | None


@dataclass
class Investment:
    rows: list[DepartmentCost]
    hours: float
    total: float | None
    missing: list[str] = field(default_factory=list)


@dataclass
class RoiColumn:
    """Capacity and money under one reading of the evidence (verified or estimated)."""

    kind: str  # "verified" or "estimated"
    speedup: float | None
    speedup_basis: str
    capacity_before: float | None
    capacity_after: float | None
    capacity_basis: str
    instances_before: int | None
    instances_after: int | None
    monthly_saving: float | None
    horizon_saving: float | None
    roi: float | None  # a ratio: 0.5 is +50 %
    payback_months: float | None
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class RoiResult:
    initiative_id: int
    initiative_title: str
    target_slug: str
    target_name: str
    currency: str
    assumptions: Assumptions
    baseline: Benchmark | None
    latest: Benchmark | None
    modes_compared: str
    comparison: stats.Comparison | None  # per-second p95 latency: the verdict
    comparison_p50: stats.Comparison | None
    knee_before: Knee | None
    knee_after: Knee | None
    investment: Investment
    verified: RoiColumn
    estimated: RoiColumn
    missing: list[str]
    # Per-second latencies of each side for the distribution chart ({"p50": [...], "p95": [...]});
    # left out of to_dict(): the exports carry the figures, not the samples.
    before_samples: dict[str, list[float]] = field(default_factory=dict, repr=False)
    after_samples: dict[str, list[float]] = field(default_factory=dict, repr=False)

    @property
    def verdict(self) -> str:
        return self.comparison.verdict if self.comparison else "unknown"

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("before_samples")
        data.pop("after_samples")
        data["verdict"] = self.verdict
        return _plain(data)


def _plain(value):
    """JSON-able: datetimes as ISO 8601, tuples as lists, infinities and NaN as None."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


# -- assumptions -------------------------------------------------------------------


def current_assumptions(initiative: Initiative) -> RoiAssumptions | None:
    return initiative.roi_assumptions.select_related("changed_by").first()


def _assumptions(initiative: Initiative, row: RoiAssumptions | None) -> Assumptions:
    target_peak = initiative.target.expected_rps
    peak = row.expected_peak_rps if row and row.expected_peak_rps else None
    source = "assumptions" if peak else ("target" if target_peak else "")
    return Assumptions(
        expected_peak_rps=peak or target_peak or None,
        peak_source=source,
        cost_per_instance_month=float(row.cost_per_instance_month)
        if row and row.cost_per_instance_month is not None
        else None,
        currency=(row.currency if row else "") or DEFAULT_CURRENCY,
        hourly_rates={
            code: float(rate) for code, rate in ((row.hourly_rates if row else {}) or {}).items()
        },
        horizon_months=(row.horizon_months if row else 0) or DEFAULT_HORIZON,
        headroom=HEADROOM,
        note=row.note if row else "",
        entered=row is not None,
        changed_by=(row.changed_by.get_full_name() or row.changed_by.username)
        if row and row.changed_by
        else None,
        changed_at=row.changed_at if row else None,
    )


def assumption_values(row: RoiAssumptions | None) -> dict:
    """The editable values of a row (or the defaults), as plain Python."""
    if row is None:
        return {
            "expected_peak_rps": None,
            "cost_per_instance_month": None,
            "currency": DEFAULT_CURRENCY,
            "hourly_rates": {},
            "horizon_months": DEFAULT_HORIZON,
            "note": "",
        }
    return {name: getattr(row, name) for name in ASSUMPTION_FIELDS}


@transaction.atomic
def do_update_roi_assumptions(actor, initiative: Initiative, **values) -> RoiAssumptions:
    """Add a RoiAssumptions row: the previous values with ``values`` over them (audited).

    Rows are never edited: the newest is current and the older ones are the
    history of who assumed what, when.
    """
    unknown = set(values) - set(ASSUMPTION_FIELDS)
    if unknown:
        raise TypeError(f"not an ROI assumption: {', '.join(sorted(unknown))}")
    previous = current_assumptions(initiative)
    before = assumption_values(previous)
    after = {**before, **values}
    if after.get("hourly_rates") is None:
        after["hourly_rates"] = {}
    after["hourly_rates"] = {
        code: float(rate) for code, rate in after["hourly_rates"].items() if rate is not None
    }
    row = RoiAssumptions.objects.create(initiative=initiative, changed_by=actor, **after)
    changes = assumption_changes(before, after)
    record(
        actor,
        "roi.assumptions",
        row,
        f"changed the ROI assumptions of “{initiative.title}”"
        + (f": {', '.join(changes)}" if changes else " (no value changed)"),
        changes=changes,
        initiative=initiative,
        target=initiative.target,
    )
    return row


def assumption_changes(before: dict, after: dict) -> dict:
    """{field: [old, new]} for what differs; hourly rates compared per department."""
    changes = {}
    for name in ASSUMPTION_FIELDS:
        old, new = before.get(name), after.get(name)
        if name == "hourly_rates":
            old, new = old or {}, new or {}
            for code in sorted(set(old) | set(new)):
                if _number(old.get(code)) != _number(new.get(code)):
                    changes[f"hourly_rate.{code}"] = [
                        _number(old.get(code)),
                        _number(new.get(code)),
                    ]
            continue
        if isinstance(old, Decimal) or isinstance(new, Decimal):
            old, new = _number(old), _number(new)
        if old != new:
            changes[name] = [old, new]
    return changes


def _number(value):
    return None if value is None else float(value)


# -- the benchmarks ----------------------------------------------------------------

_JOB_FIELDS = ("pk", "run_id", "started_at", "finished_at", "params", "summary__mode",
               "summary__offered_rate", "summary__model", "summary__arrival",
               "summary__engine_version", "summary__data_size")  # fmt: skip


def _benchmarks(target):
    return Job.objects.filter(
        target=target, kind="benchmark", status=Job.SUCCEEDED, started_at__isnull=False
    )


def _baseline_job(target) -> tuple[dict | None, bool]:
    """The baseline's steady benchmark (a load test before an endurance one), and whether pinned."""
    if target.baseline_run_id:
        rows = [
            row
            for row in _benchmarks(target)
            .filter(run_id=target.baseline_run_id)
            .values(*_JOB_FIELDS)
            if row["summary__mode"] in STEADY_MODES
        ]
        if rows:
            rows.sort(key=lambda r: (STEADY_MODES.index(r["summary__mode"]), r["started_at"]))
            return rows[0], True
    first = (
        _benchmarks(target)
        .filter(summary__mode__in=STEADY_MODES)
        .order_by("started_at", "pk")
        .values(*_JOB_FIELDS)
        .first()
    )
    return first, False


def _latest_job(target, baseline: dict) -> dict | None:
    """The newest steady benchmark of a later run, in the baseline's mode when there is one."""
    later = (
        _benchmarks(target)
        .filter(started_at__gt=baseline["started_at"])
        .exclude(run_id=baseline["run_id"])
        .order_by("-started_at", "-pk")
    )
    same = later.filter(summary__mode=baseline["summary__mode"]).values(*_JOB_FIELDS).first()
    return same or later.filter(summary__mode__in=STEADY_MODES).values(*_JOB_FIELDS).first()


def _meta(row: dict) -> dict:
    """A job as the comparability guard sees it: what load it was given, by which engine."""
    params = row["params"] or {}
    config = {
        "mode": row["summary__mode"],
        "model": row["summary__model"],
        "arrival": row["summary__arrival"],
        "offered_rate": row["summary__offered_rate"],
        "exclude": sorted(params.get("exclude") or []),
    }
    if row["summary__model"] == "closed":
        config["connections"] = params.get("connections")
    return {
        "config": config,
        "engine_version": row["summary__engine_version"],
        "data_size": row["summary__data_size"],
        "target_version": "",  # one target: its versions are what is being compared
    }


def per_second_latency(job_ids) -> dict[int, dict[str, list[float]]]:
    """{job id: {"p50": [...], "p95": [...]}} over the seconds that had answers, in order,
    in one query. ROI, the portfolio and the regression sentinel all compare these.

    A second in which nothing was answered has no latency (not a latency of 0).
    Warm-up seconds are never stored: the load generator leaves them out.
    """
    job_ids = list(job_ids)
    per_job: dict[int, dict[int, dict]] = {job_id: {} for job_id in job_ids}
    rows = (
        Measurement.objects.filter(
            job_id__in=job_ids,
            second__isnull=False,
            name__in=[f"sample.{name}" for name in SAMPLE_FIELDS],
        )
        .order_by()
        .values_list("job_id", "second", "name", "value")
    )
    for job_id, second, name, value in rows:
        per_job[job_id].setdefault(second, {})[name.removeprefix("sample.")] = value
    series = {}
    for job_id, seconds in per_job.items():
        p50, p95 = [], []
        for _second, row in sorted(seconds.items()):
            # Requests served that second ("ok"; the achieved rate where no count was kept).
            if row.get("ok", row.get("achieved", 1)) <= 0:
                continue
            if row.get("p50_ms") is not None:
                p50.append(row["p50_ms"])
            if row.get("p95_ms") is not None:
                p95.append(row["p95_ms"])
        series[job_id] = {"p50": p50, "p95": p95}
    return series


def thin(values: list[float], limit: int = MAX_TEST_SECONDS) -> list[float]:
    """At most ``limit`` values, evenly spaced over the run (first and last kept)."""
    n = len(values)
    if n <= limit:
        return list(values)
    return [values[round(i * (n - 1) / (limit - 1))] for i in range(limit)]


def _compare(baseline: dict, latest: dict):
    """Samples of both jobs and the comparison rule on their p50 and p95 seconds.

    A succeeded job's samples never change, so the outcome is cached per pair of
    jobs (keyed by their ids and finish times): the rule's bootstrap is the slow
    part of the page.
    """
    key = "kaizen:roi:compare:{}:{}:{}:{}:{}".format(
        CACHE_VERSION,
        baseline["pk"],
        baseline["finished_at"].timestamp() if baseline["finished_at"] else "-",
        latest["pk"],
        latest["finished_at"].timestamp() if latest["finished_at"] else "-",
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    series = per_second_latency([baseline["pk"], latest["pk"]])
    before, after = series[baseline["pk"]], series[latest["pk"]]
    comparisons = {}
    if before["p95"] and after["p95"]:
        a_meta, b_meta = _meta(baseline), _meta(latest)
        for name in ("p95", "p50"):
            a, b = thin(before[name]), thin(after[name])
            comparisons[name] = stats.compare(
                a,
                b,
                metric=f"latency_{name}_per_second",
                lower_is_better=True,
                baseline_meta=[a_meta],
                candidate_meta=[b_meta],
                seed=0,
                resamples=RESAMPLES,
            )
    outcome = (before, after, comparisons)
    cache.set(key, outcome, 24 * 3600)
    return outcome


def _benchmark(row: dict, samples: dict, pinned=False) -> Benchmark:
    return Benchmark(
        job_id=row["pk"],
        run_id=row["run_id"],
        started_at=row["started_at"],
        mode=row["summary__mode"] or "",
        offered_rate=row["summary__offered_rate"],
        seconds=len(samples.get("p50", [])),
        seconds_tested=min(len(samples.get("p50", [])), MAX_TEST_SECONDS),
        pinned=pinned,
    )


# -- knees -------------------------------------------------------------------------


def _knee(row: dict | None, kind: str = "knee") -> Knee | None:
    if row is None or not row["value"] or row["value"] <= 0:
        return None
    return Knee(row["value"], row["job_id"], row["job__run_id"], row["measured_at"], kind)


def _capacities(
    target, baseline_run_id, baseline_time, latest_time
) -> tuple[Knee | None, Knee | None]:
    """Capacity per instance before and after: stress knees, else throughput ceilings.

    Both sides are read the same way: when the baseline has no knee (no rate
    met the p99 objective) the ceilings of both sides stand in for them.
    """
    before, after = _knees(target, baseline_run_id, baseline_time, latest_time)
    if before is not None:
        return before, after
    before, after = _knees(
        target, baseline_run_id, baseline_time, latest_time, name="http.saturation"
    )
    return before, after


def _knees(
    target, baseline_run_id, baseline_time, latest_time, name="http.capacity"
) -> tuple[Knee | None, Knee | None]:
    """The stress knee of the baseline side and the newest one measured after it.

    Before: a knee of the baseline run; else (no stress test in it) the first
    knee of the target measured before the latest benchmark. After: the newest
    knee of a later run.
    """
    knees = Measurement.objects.filter(
        target=target, name=name, second__isnull=True, job__status=Job.SUCCEEDED
    ).values("value", "job_id", "job__run_id", "measured_at")
    before = None
    if baseline_run_id:
        before = knees.filter(job__run_id=baseline_run_id).order_by("measured_at", "pk").first()
    if before is None and not _pinned(target, baseline_run_id):
        earliest = knees.order_by("measured_at", "pk")
        if latest_time:
            earliest = earliest.filter(measured_at__lt=latest_time)
        before = earliest.first()
    since = before["measured_at"] if before else baseline_time
    after = None
    if since is not None:
        later = knees.filter(measured_at__gt=since)
        if before:
            later = later.exclude(job__run_id=before["job__run_id"])
        elif baseline_run_id:
            later = later.exclude(job__run_id=baseline_run_id)
        after = later.order_by("-measured_at", "-pk").first()
    kind = "knee" if name == "http.capacity" else "ceiling"
    return _knee(before, kind), _knee(after, kind)


def _pinned(target, run_id) -> bool:
    return bool(run_id) and run_id == target.baseline_run_id


# -- investment --------------------------------------------------------------------


def _investment(initiative: Initiative, rates: dict[str, float]) -> Investment:
    hours = (
        PhaseTask.objects.filter(phase__initiative=initiative)
        .values("department__code", "department__name", "department__position")
        .annotate(hours=Sum("logged_hours"))
        .order_by("department__position", "department__code")
    )
    rows, missing, total = [], [], 0.0
    for entry in hours:
        logged = float(entry["hours"] or 0)
        if not logged:
            continue
        code = entry["department__code"]
        rate = rates.get(code)
        cost = round(logged * rate, 2) if rate is not None else None
        if cost is None:
            missing.append(
                f"hourly rate of {entry['department__name']} not entered ({logged:g} h logged)"
            )
        else:
            total += cost
        rows.append(DepartmentCost(code, entry["department__name"], logged, rate, cost))
    logged_total = sum(row.hours for row in rows)
    if not rows:
        missing.append("no hours logged on the initiative's tasks yet")
    return Investment(
        rows=rows,
        hours=logged_total,
        total=None if missing else round(total, 2),
        missing=missing,
    )


# -- the two columns ---------------------------------------------------------------


def _column(
    kind: str,
    speedup: float | None,
    speedup_basis: str,
    speedup_missing: list[str],
    knee_before: Knee | None,
    knee_after: Knee | None,
    assumptions: Assumptions,
    investment: Investment,
) -> RoiColumn:
    missing: list[str] = []
    notes: list[str] = []
    column = RoiColumn(kind, speedup, speedup_basis, None, None, "", None, None, None, None, None,
                       None, missing, notes)  # fmt: skip
    # The estimate can rest on two measured knees alone; anything else needs the speed-up.
    knees_suffice = kind == "estimated" and knee_before is not None and knee_after is not None
    if speedup is None and not knees_suffice:
        missing.extend(speedup_missing)
    if knee_before is None:
        missing.append("no stress benchmark on the baseline — capacity unknown")
    else:
        column.capacity_before = knee_before.value
        what = "knee" if knee_before.kind == "knee" else "throughput ceiling"
        if knee_after is not None and (knees_suffice or speedup is not None):
            column.capacity_after = knee_after.value
            column.capacity_basis = f"stress {what}s measured before and after"
        elif speedup is not None:
            column.capacity_after = knee_before.value * speedup
            column.capacity_basis = f"baseline {what} × speed-up ×{speedup:.2f} (derived)"
        if knee_before.kind == "ceiling":
            notes.append(
                "no step of the baseline's stress test met the p99 objective, so capacity is "
                "the throughput ceiling (the most a step served in full, at any latency)"
            )
    peak = assumptions.expected_peak_rps
    if not peak:
        missing.append("expected peak load not entered (on the assumptions or the target)")
    if peak and column.capacity_before and column.capacity_after:
        column.instances_before = instances(peak, column.capacity_before, assumptions.headroom)
        column.instances_after = instances(peak, column.capacity_after, assumptions.headroom)
    cost = assumptions.cost_per_instance_month
    if cost is None:
        missing.append("cost per instance not entered")
    if column.instances_before is not None and cost is not None:
        saved = column.instances_before - column.instances_after
        column.monthly_saving = round(saved * cost, 2)
        column.horizon_saving = round(column.monthly_saving * assumptions.horizon_months, 2)
        if saved == 0:
            notes.append(
                f"{column.instances_before} instance{'s' if column.instances_before != 1 else ''} "
                f"carry {peak:g} req/s before and after: nothing saved at this peak"
            )
    missing.extend(investment.missing)
    spent = investment.total
    if column.horizon_saving is not None and spent:
        column.roi = (column.horizon_saving - spent) / spent
    if column.monthly_saving is not None and spent is not None:
        if column.monthly_saving > 0:
            column.payback_months = spent / column.monthly_saving
        else:
            notes.append("no monthly saving, so the investment is not paid back")
    return column


def instances(peak: float, capacity_rps: float, headroom: float = HEADROOM) -> int:
    """Instances that carry ``peak`` with each at most ``headroom`` of its capacity."""
    return math.ceil(peak / (capacity_rps * headroom))


def _conservative(comparison: stats.Comparison) -> float:
    """The end of the speed-up's interval nearest to no change (1)."""
    low, high = comparison.speedup_ci
    if comparison.verdict == "improved":
        return max(1.0, low)
    return min(1.0, high)


def _speedups(comparison, baseline, latest) -> tuple[tuple, tuple]:
    """(speed-up, basis, missing) for the verified and the estimated column."""
    if baseline is None:
        missing = ["no benchmark of the target yet (a load test gives the baseline)"]
        return (None, "", missing), (None, "", missing)
    if latest is None:
        missing = ["no benchmark after the baseline"]
        return (None, "", missing), (None, "", missing)
    if comparison is None:
        missing = [
            f"no per-second latency samples of the {side} benchmark #{bench.job_id} "
            "(housekeeping deletes samples older than KAIZEN_RETENTION_DAYS)"
            for side, bench in (("baseline", baseline), ("latest", latest))
            if not bench.seconds
        ] or ["no per-second latency samples to compare"]
        return (None, "", missing), (None, "", missing)
    estimated = (
        comparison.speedup if math.isfinite(comparison.speedup) else None,
        "per-second p95 latency, point estimate",
        [] if math.isfinite(comparison.speedup) else ["latency of 0 ms on one side"],
    )
    if comparison.verdict in ("improved", "regressed"):
        verified = (
            _conservative(comparison),
            "per-second p95 latency, end of the 95 % interval nearest to no change",
            [],
        )
    else:
        reasons = "; ".join(comparison.reasons)
        verified = (
            None,
            "",
            [f"no significant gain measured: the comparison says {comparison.verdict} ({reasons})"],
        )
    return verified, estimated


# -- compute -----------------------------------------------------------------------


def compute(initiative: Initiative) -> RoiResult:
    """The ROI of ``initiative`` from its target's benchmarks, tasks and assumptions.

    A fixed number of queries whatever the amount of data: the assumptions,
    up to three for the two benchmarks, one for their samples (skipped when
    cached), up to three for the knees and one for the hours.
    """
    target = initiative.target
    assumptions = _assumptions(initiative, current_assumptions(initiative))
    baseline_row, pinned = _baseline_job(target)
    latest_row = _latest_job(target, baseline_row) if baseline_row else None
    before_samples, after_samples, comparisons = {}, {}, {}
    if baseline_row and latest_row:
        before_samples, after_samples, comparisons = _compare(baseline_row, latest_row)
    baseline = _benchmark(baseline_row, before_samples, pinned) if baseline_row else None
    latest = _benchmark(latest_row, after_samples) if latest_row else None
    comparison = comparisons.get("p95")
    baseline_run_id = baseline_row["run_id"] if baseline_row else target.baseline_run_id
    knee_before, knee_after = _capacities(
        target,
        baseline_run_id,
        baseline_row["started_at"] if baseline_row else None,
        latest_row["started_at"] if latest_row else None,
    )
    investment = _investment(initiative, assumptions.hourly_rates)
    verified_speed, estimated_speed = _speedups(comparison, baseline, latest)
    verified = _column(
        "verified", *verified_speed, knee_before, knee_after, assumptions, investment
    )
    estimated = _column(
        "estimated", *estimated_speed, knee_before, knee_after, assumptions, investment
    )
    missing = list(dict.fromkeys(estimated.missing + verified.missing))
    modes = ""
    if baseline and latest:
        modes = f"{baseline.mode} vs {latest.mode}"
        if baseline.mode != latest.mode:
            modes += f" (no {baseline.mode} test after the baseline)"
    return RoiResult(
        initiative_id=initiative.pk,
        initiative_title=initiative.title,
        target_slug=target.slug,
        target_name=target.name,
        currency=assumptions.currency,
        assumptions=assumptions,
        baseline=baseline,
        latest=latest,
        modes_compared=modes,
        comparison=comparison,
        comparison_p50=comparisons.get("p50"),
        knee_before=knee_before,
        knee_after=knee_after,
        investment=investment,
        verified=verified,
        estimated=estimated,
        missing=missing,
        before_samples=before_samples,
        after_samples=after_samples,
    )


def departments_for_rates() -> list[Department]:
    return list(Department.objects.all())
