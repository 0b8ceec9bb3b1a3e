"""ROI of an initiative: the baseline against the latest benchmark, in capacity and money.

``compute(initiative)`` reads what was measured and what strategy entered:

1. **Is it faster?** The comparison rule (optimizations.analyzers.stats), one
   value per run, on the p95 latency, at the evidence level it reaches
   (ANALYSIS.md §3): **verified** from the newest interleaved Compare of the
   target (before, A) against its improved version (B); **measured** from the
   baseline set against the latest comparable set (optimizations.jobs.baselines:
   the one definition of both); **estimated** from the point estimate.
2. **Capacity.** Requests per second one instance carries: the stress knee
   (``http.capacity``) measured on each side, else the baseline's knee times the
   speed-up. Instances at the expected peak = ⌈peak ÷ (capacity × 80 %)⌉, the
   capacity advisor's headroom (optimizations.reports.capacity.HEADROOM).
3. **Money.** Monthly saving = instances saved × cost per instance; investment =
   hours logged on the initiative's tasks × each department's hourly rate;
   ROI = (saving × horizon − investment) ÷ investment; payback = investment ÷
   monthly saving.

Three columns, one per evidence level: *verified* and *measured* count only a
gain the rule claims at that level, taking the end of the speed-up's interval
nearest to no change; *estimated* takes the point estimate. Whatever cannot be
computed is None, and ``missing`` says what would make it computable.

Writes: ``do_update_roi_assumptions`` adds a RoiAssumptions row (each edit is
a new row, so the rows are the history) and records an audit event.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext_noop

from departments.models import Department
from optimizations.analyzers import stats
from optimizations.jobs import baselines
from optimizations.models import Initiative, Job, Measurement, PhaseTask, RoiAssumptions
from optimizations.reports import capacity, texts
from portal.audit import record
from portal.i18n import Phrase

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
class Interleaved:
    """The interleaved Compare ROI's verified column reads: this target (A) against B."""

    run_id: int
    candidate_slug: str
    candidate_name: str
    runs: tuple[int, int]
    started_at: datetime.datetime


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
    # True when the stress test's generator (or its machine, or the target's own
    # limits) stopped it before the target broke: the knee is at least ``value``.
    lower_bound: bool = False


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

    kind: str  # the evidence level: "verified", "measured" or "estimated"
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
    baseline: baselines.BenchmarkSet | None
    latest: baselines.BenchmarkSet | None
    measured: baselines.SetComparison | None  # baseline set against the latest set
    interleaved: Interleaved | None
    interleaved_comparison: baselines.SetComparison | None
    knee_before: Knee | None
    knee_after: Knee | None
    investment: Investment
    verified: RoiColumn
    measured_column: RoiColumn
    estimated: RoiColumn
    missing: list[str]

    @property
    def comparison(self) -> stats.Comparison | None:
        """The headline (p95) of the strongest comparison at hand: verified, else measured."""
        verified = self.interleaved_comparison.headline if self.interleaved_comparison else None
        if verified is not None and verified.evidence == stats.VERIFIED:
            return verified
        measured = self.measured.headline if self.measured else None
        return measured or verified

    @property
    def level(self) -> str:
        """The highest evidence level with a figure: verified, measured, estimated or ""."""
        for column in (self.verified, self.measured_column, self.estimated):
            if column.speedup is not None:
                return column.kind
        return ""

    @property
    def verdict(self) -> str:
        return self.comparison.verdict if self.comparison else "unknown"

    @property
    def columns(self) -> list[RoiColumn]:
        return [self.verified, self.measured_column, self.estimated]

    def to_dict(self) -> dict:
        data = {
            name: getattr(self, name)
            for name in (
                "initiative_id",
                "initiative_title",
                "target_slug",
                "target_name",
                "currency",
                "missing",
            )
        }
        for name in (
            "assumptions",
            "interleaved",
            "knee_before",
            "knee_after",
            "investment",
            "verified",
            "estimated",
        ):
            value = getattr(self, name)
            data[name] = asdict(value) if value is not None else None
        data["measured_column"] = asdict(self.measured_column)
        for name in ("baseline", "latest"):
            value = getattr(self, name)
            data[name] = value.to_dict() if value is not None else None
        for name in ("measured", "interleaved_comparison"):
            value = getattr(self, name)
            data[name] = (
                {m.key: {**m.c.to_dict(), "a": m.a, "b": m.b} for m in value.metrics}
                if value is not None
                else None
            )
        data["verdict"] = self.verdict
        data["level"] = self.level
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


def _interleaved(target) -> tuple[Interleaved | None, baselines.SetComparison | None]:
    """The newest interleaved Compare with the target as its before side, judged."""
    found = baselines.latest_interleaved(target)
    if found is None:
        return None, None
    run, a_jobs, b_jobs = found
    metrics = baselines.compare_jobs(a_jobs, b_jobs)
    comparison = baselines.SetComparison(None, None, metrics)
    summary = Interleaved(
        run_id=run.pk,
        candidate_slug=run.compared_with.slug if run.compared_with else "",
        candidate_name=run.compared_with.name if run.compared_with else "",
        runs=(len(a_jobs), len(b_jobs)),
        started_at=min(j.started_at for j in a_jobs + b_jobs if j.started_at is not None),
    )
    return summary, comparison


def _columns_evidence(
    interleaved: baselines.SetComparison | None,
    measured: baselines.SetComparison | None,
    baseline: baselines.BenchmarkSet | None,
    latest: baselines.BenchmarkSet | None,
    why_no_latest: str,
) -> dict[str, Evidence]:
    """(speed-up, basis, missing) for the verified, measured and estimated columns."""
    out: dict[str, Evidence] = {}
    headline = interleaved.headline if interleaved else None
    if headline is None:
        out[stats.VERIFIED] = (
            None,
            "",
            [
                Phrase(
                    gettext_noop(
                        "no interleaved comparison of this target against its improved version "
                        "(the compare page runs one: 5 runs a side, alternating)"
                    )
                )
            ],
        )
    else:
        out[stats.VERIFIED] = _from(headline, stats.VERIFIED, INTERLEAVED)
    if baseline is None:
        missing: list[str] = [
            Phrase(
                gettext_noop(
                    "no benchmark set of the target yet (a baseline set of 5 short load tests)"
                )
            )
        ]
        out[stats.MEASURED] = (None, "", missing)
    elif latest is None or measured is None:
        out[stats.MEASURED] = (None, "", [why_no_latest])
    elif measured.headline is None:
        # (was a crash: the sets share no metric the rule could compare)
        out[stats.MEASURED] = (
            None,
            "",
            [Phrase(gettext_noop("the baseline and latest sets share no p95 latency"))],
        )
    else:
        out[stats.MEASURED] = _from(measured.headline, stats.MEASURED, SETS)
    # Estimated: the point estimate of the best evidence at hand, whatever its level.
    source = next(
        (
            c
            for c in (measured.headline if measured else None, headline)
            if c is not None and c.speedup
        ),
        None,
    )
    if source is None:
        out[stats.ESTIMATED] = (
            None,
            "",
            out[stats.MEASURED][2] or [Phrase(gettext_noop("no comparison yet"))],
        )
    else:
        what = SETS if measured and source is measured.headline else INTERLEAVED
        out[stats.ESTIMATED] = (
            source.speedup,
            Phrase(gettext_noop("p95 latency, %(what)s, point estimate"), what=what),
            [],
        )
    return out


# A column's (speed-up, what it is based on, what is missing for it).
type Evidence = tuple[float | None, str, list[str]]

# What a column's speed-up comes from, in its sentences.
INTERLEAVED = Phrase(gettext_noop("interleaved comparison"))
SETS = Phrase(gettext_noop("baseline set vs latest"))


def _from(c: stats.Comparison, level: str, what: str) -> Evidence:
    """A column's speed-up from a comparison that reached ``level``: the end of the
    interval nearest to no change, only for a claim the rule makes."""
    if c.evidence != level:
        return (
            None,
            "",
            [
                Phrase(
                    gettext_noop(
                        "the %(what)s is %(evidence)s evidence only "
                        "(%(n)s and %(m)s runs; %(reasons)s)"
                    ),
                    what=what,
                    evidence=texts.evidence(c.evidence),
                    n=c.n_baseline,
                    m=c.n_candidate,
                    reasons=texts.reasons(c),
                )
            ],
        )
    if c.verdict not in (stats.IMPROVED, stats.REGRESSED):
        return (
            None,
            "",
            [
                Phrase(
                    gettext_noop("the %(what)s says %(verdict)s on p95 latency (%(reasons)s)"),
                    what=what,
                    verdict=Phrase(c.verdict),
                    reasons=texts.reasons(c),
                )
            ],
        )
    return (
        _conservative(c),
        Phrase(
            gettext_noop(
                "p95 latency, %(what)s, end of the %(confidence)s interval nearest to no change"
            ),
            what=what,
            confidence=f"{c.confidence:.1%}",
        ),
        [],
    )


# -- knees -------------------------------------------------------------------------


def _knee(row: Mapping[str, Any] | None, kind: str = "knee") -> Knee | None:
    if row is None or not row["value"] or row["value"] <= 0:
        return None
    lower = (row.get("labels") or {}).get("bound") == "lower"
    return Knee(row["value"], row["job_id"], row["job__run_id"], row["measured_at"], kind, lower)


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

    Before: a knee of the baseline run; else (a baseline set holds load tests
    only) the first knee of the target measured before the latest set. After:
    the newest knee of a later run.
    """
    knees = Measurement.objects.filter(
        target=target, name=name, second__isnull=True, job__status=Job.SUCCEEDED
    ).values("value", "job_id", "job__run_id", "measured_at", "labels")
    before = None
    if baseline_run_id:
        before = knees.filter(job__run_id=baseline_run_id).order_by("measured_at", "pk").first()
    if before is None:
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


# -- investment --------------------------------------------------------------------


def _investment(initiative: Initiative, rates: dict[str, float]) -> Investment:
    hours = (
        PhaseTask.objects.filter(phase__initiative=initiative)
        .values("department__code", "department__name", "department__position")
        .annotate(hours=Sum("logged_hours"))
        .order_by("department__position", "department__code")
    )
    rows: list[DepartmentCost] = []
    missing: list[str] = []
    total = 0.0
    for entry in hours:
        logged = float(entry["hours"] or 0)
        if not logged:
            continue
        code = entry["department__code"]
        rate = rates.get(code)
        cost = round(logged * rate, 2) if rate is not None else None
        if cost is None:
            missing.append(
                Phrase(
                    gettext_noop("hourly rate of %(department)s not entered (%(hours)s h logged)"),
                    department=entry["department__name"],
                    hours=f"{logged:g}",
                )
            )
        else:
            total += cost
        rows.append(DepartmentCost(code, entry["department__name"], logged, rate, cost))
    logged_total = sum(row.hours for row in rows)
    if not rows:
        missing.append(Phrase(gettext_noop("no hours logged on the initiative's tasks yet")))
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
    column = RoiColumn(
        kind,
        speedup,
        speedup_basis,
        None,
        None,
        "",
        None,
        None,
        None,
        None,
        None,
        None,
        missing,
        notes,
    )
    # The estimate can rest on two measured knees alone; anything else needs the speed-up.
    knees_suffice = kind == "estimated" and knee_before is not None and knee_after is not None
    if speedup is None and not knees_suffice:
        missing.extend(speedup_missing)
    if knee_before is None:
        missing.append(
            Phrase(gettext_noop("no stress benchmark on the baseline — capacity unknown"))
        )
    else:
        column.capacity_before = knee_before.value
        knee = knee_before.kind == "knee"
        if knee_after is not None and (knees_suffice or speedup is not None):
            column.capacity_after = knee_after.value
            column.capacity_basis = Phrase(
                gettext_noop("stress knees measured before and after")
                if knee
                else gettext_noop("stress throughput ceilings measured before and after")
            )
        elif speedup is not None:
            column.capacity_after = knee_before.value * speedup
            column.capacity_basis = Phrase(
                gettext_noop("baseline knee × speed-up ×%(speedup)s (derived)")
                if knee
                else gettext_noop("baseline throughput ceiling × speed-up ×%(speedup)s (derived)"),
                speedup=f"{speedup:.2f}",
            )
        if knee_before.lower_bound:
            notes.append(
                Phrase(
                    gettext_noop(
                        "the baseline's knee is a lower bound (≥ %(knee)s req/s: the load "
                        "generator or its machine stopped the stress test before the target "
                        "broke), so the instances before may be too many and the saving overstated"
                    ),
                    knee=f"{knee_before.value:g}",
                )
            )
        if knee_after is not None and knee_after.lower_bound and column.capacity_after:
            notes.append(
                Phrase(
                    gettext_noop(
                        "the latest knee is a lower bound (≥ %(knee)s req/s), so the "
                        "instances after may be too many and the saving understated"
                    ),
                    knee=f"{knee_after.value:g}",
                )
            )
        if knee_before.kind == "ceiling":
            notes.append(
                Phrase(
                    gettext_noop(
                        "no step of the baseline's stress test met the p99 objective, so capacity "
                        "is the throughput ceiling (the most a step served in full, at any latency)"
                    )
                )
            )
    peak = assumptions.expected_peak_rps
    if not peak:
        missing.append(
            Phrase(
                gettext_noop("expected peak load not entered (on the assumptions or the target)")
            )
        )
    if peak and column.capacity_before and column.capacity_after:
        column.instances_before = instances(peak, column.capacity_before, assumptions.headroom)
        column.instances_after = instances(peak, column.capacity_after, assumptions.headroom)
    cost = assumptions.cost_per_instance_month
    if cost is None:
        missing.append(Phrase(gettext_noop("cost per instance not entered")))
    if (
        column.instances_before is not None
        and column.instances_after is not None
        and cost is not None
    ):
        saved = column.instances_before - column.instances_after
        column.monthly_saving = round(saved * cost, 2)
        column.horizon_saving = round(column.monthly_saving * assumptions.horizon_months, 2)
        if saved == 0:
            notes.append(
                Phrase(
                    gettext_noop(
                        "%(instances)s instance carry %(peak)s req/s before and after: "
                        "nothing saved at this peak"
                    )
                    if column.instances_before == 1
                    else gettext_noop(
                        "%(instances)s instances carry %(peak)s req/s before and after: "
                        "nothing saved at this peak"
                    ),
                    instances=column.instances_before,
                    peak=f"{peak:g}",
                )
            )
    missing.extend(investment.missing)
    spent = investment.total
    if column.horizon_saving is not None and spent:
        column.roi = (column.horizon_saving - spent) / spent
    if column.monthly_saving is not None and spent is not None:
        if column.monthly_saving > 0:
            column.payback_months = spent / column.monthly_saving
        else:
            notes.append(
                Phrase(gettext_noop("no monthly saving, so the investment is not paid back"))
            )
    return column


def instances(peak: float, capacity_rps: float, headroom: float = HEADROOM) -> int:
    """Instances that carry ``peak`` with each at most ``headroom`` of its capacity."""
    return math.ceil(peak / (capacity_rps * headroom))


def _conservative(comparison: stats.Comparison) -> float:
    """The end of the speed-up's interval nearest to no change (1)."""
    low, high = comparison.speedup_ci
    if low is None or high is None:
        raise ValueError("only a significant change has a speed-up interval")
    if comparison.verdict == "improved":
        return max(1.0, low)
    return min(1.0, high)


# -- compute -----------------------------------------------------------------------


def compute(initiative: Initiative) -> RoiResult:
    """The ROI of ``initiative`` from its target's benchmarks, tasks and assumptions.

    A fixed number of queries whatever the amount of data: the assumptions, the
    benchmark sets, their figures, the newest interleaved comparison, up to
    three for the knees and one for the hours.
    """
    target = initiative.target
    assumptions = _assumptions(initiative, current_assumptions(initiative))
    baseline, latest, sets = baselines.baseline_and_latest(
        target, baselines.DEFAULT_MODE, initiative
    )
    measured = baselines.compare_sets(baseline, latest) if baseline and latest else None
    why_no_latest = baselines.why_no_latest_in(baseline, sets) if baseline and not latest else ""
    interleaved, verified_comparison = _interleaved(target)
    knee_before, knee_after = _capacities(
        target,
        baseline.run_id if baseline else target.baseline_run_id,
        baseline.started_at if baseline else None,
        latest.started_at if latest else None,
    )
    investment = _investment(initiative, assumptions.hourly_rates)
    speedups = _columns_evidence(verified_comparison, measured, baseline, latest, why_no_latest)
    columns = {
        level: _column(level, *speedups[level], knee_before, knee_after, assumptions, investment)
        for level in (stats.VERIFIED, stats.MEASURED, stats.ESTIMATED)
    }
    missing = list(
        dict.fromkeys(columns[stats.ESTIMATED].missing + columns[stats.MEASURED].missing)
    )
    return RoiResult(
        initiative_id=initiative.pk,
        initiative_title=initiative.title,
        target_slug=target.slug,
        target_name=target.name,
        currency=assumptions.currency,
        assumptions=assumptions,
        baseline=baseline,
        latest=latest,
        measured=measured,
        interleaved=interleaved,
        interleaved_comparison=verified_comparison,
        knee_before=knee_before,
        knee_after=knee_after,
        investment=investment,
        verified=columns[stats.VERIFIED],
        measured_column=columns[stats.MEASURED],
        estimated=columns[stats.ESTIMATED],
        missing=missing,
    )


def departments_for_rates() -> list[Department]:
    return list(Department.objects.all())
