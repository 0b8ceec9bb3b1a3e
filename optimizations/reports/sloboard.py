"""The SLO board of a target: every SLO of DESIGN.md with its current value,
its trend, pass / fail / unknown, and the run it came from.

Everything is read from Measurements (never typed in), in a handful of
queries whatever the history's size:

1. the target's latest benchmark jobs (their mode lives in ``params``),
2. their headline rows (no ``operation``/``step`` label, no ``second``),
3. the latest rows of each DB-scan, probe and minute-check name (the newest
   ``TREND_POINTS`` per name, one LIMIT per name joined by UNION ALL),
4. the availability checks of the last 30 days, per day (closed days cached),
5. the baseline's memory (one or two small lookups).

Which row judges which SLO:

- API average and error rate: the latest load-type benchmark (load, closed,
  endurance); a stress test's knee step when there is none.
- Throughput: the stress knee (``http.capacity``); without a stress test, the
  rate a load test achieved — at its offered rate, which is not a capacity.
- p99: Kaizen's own SLO for stress tests; falls back to a load test, saying so.
- Memory: the latest endurance test's mean PSS against the baseline's (the
  pinned baseline run's endurance test, else the first one).
- DB average and slow-query rate: the latest DB scan (exact rate when the scan
  had samples, else its estimate).
- Pool use: the latest DB scan or probe that read the pool gauges; the minute
  check of /metrics only when neither ever did.
- Availability: the share of minute checks that found the target up, 30 days.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Avg, Count, F
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_noop

from optimizations.analyzers import stats
from optimizations.jobs import baselines
from optimizations.models import Job, Measurement, TargetService
from optimizations.targets import slo
from portal.i18n import Phrase

# Enough benchmark jobs for a trend of each kind (load-type, stress, endurance).
BENCHMARK_JOBS = 48
TREND_POINTS = 12
# Mann-Kendall on a handful of runs: a monotonic trend at 90 % confidence
# (four runs in a row that all move the same way reach p = 0.09).
TREND_P = 0.10
AVAILABILITY_DAYS = 30
# A day's minute checks are final this long after its midnight (a check that began
# at 23:59 is stored within its timeouts); its roll-up is then cached for a day.
CLOSED_DAY_GRACE = datetime.timedelta(minutes=10)
CLOSED_DAYS_SECONDS = 24 * 3600
STEADY_MODES = ("load", "closed", "endurance")
# The SLOs one benchmark run judges (the others come from DB scans and minute checks).
BENCHMARK_SLOS = (
    "api_avg_ms",
    "throughput_rps",
    "memory_reduction_pct",
    "error_rate_pct",
    "p99_ms",
)

BENCHMARK_NAMES = (
    "http.latency.avg",
    "http.latency.med",
    "http.latency.p95",
    "http.latency.p99",
    "http.throughput",
    "http.capacity",
    "http.error_rate",
    "http.offered_rate",
    "memory.pss.mean",
)
OTHER_NAMES = (
    "db.query.avg",
    "db.slow_query_rate.exact",
    "db.slow_query_rate.estimate",
    "db.pool.use",
    "probe.pool_use",
    "metrics.pool_use",
    "metrics.error_rate",
)

# What to run when an SLO has no value, in the words of the run form. Marked with
# gettext_noop: they stay English here (gates, reports) and the SLO board shows them
# through |translated.
RUN_LOAD = gettext_noop(
    "run a load benchmark (performance --focus fastapi, or quality --focus testing)"
)
RUN_STRESS = gettext_noop(
    "run a stress benchmark (quality --focus testing, or strategy --focus scaling)"
)
RUN_ENDURANCE = gettext_noop(
    "run an endurance benchmark with memory sampling (quality --focus testing)"
)
RUN_DB_SCAN = gettext_noop(
    "run a DB scan while the target serves traffic (performance --focus sqlalchemy)"
)
RUN_DB_SCAN_STATEMENTS = gettext_noop(
    "run a DB scan with pg_stat_statements while the target serves traffic "
    "(performance --focus sqlalchemy)"
)
SET_DATABASE_URL = {
    RUN_DB_SCAN: gettext_noop(
        "set the target's database URL, then run a DB scan while the target serves traffic "
        "(performance --focus sqlalchemy)"
    ),
    RUN_DB_SCAN_STATEMENTS: gettext_noop(
        "set the target's database URL, then run a DB scan with pg_stat_statements while "
        "the target serves traffic (performance --focus sqlalchemy)"
    ),
}
NO_AVAILABILITY = gettext_noop(
    "no availability check in the last 30 days: Celery beat checks every target's health "
    "each minute (./kaizen up starts it)"
)


@dataclass
class SloRow:
    """One SLO of a target as the measurements judge it."""

    key: str
    label: str
    unit: str
    threshold: float
    direction: str  # "max": value must stay at or below the threshold; "min": at or above
    value: float | None = None
    state: str = "unknown"  # "pass" | "fail" | "unknown"
    source: str = ""
    run_id: int | None = None
    job_id: int | None = None
    measured_at: datetime.datetime | None = None
    trend: list[tuple[datetime.datetime, float]] = field(default_factory=list)
    trend_direction: str | None = None  # "better" | "worse" | "flat"
    missing: str = ""

    @property
    def value_shown(self) -> str:
        return "" if self.value is None else shown(self.value)

    @property
    def threshold_shown(self) -> str:
        return shown(self.threshold)

    @property
    def comparison(self) -> str:
        return "≤" if self.direction == "max" else "≥"

    def last_values(self, count: int = 3) -> list[str]:
        return [shown(value) for _, value in self.trend[-count:]]

    def describe(self) -> str:
        """ "p99 latency under stress: 812 ms (objective ≤ 500 ms)"."""
        value = (
            Phrase(gettext_noop("unknown"))
            if self.value is None
            else f"{self.value_shown} {self.unit}"
        )
        objective = f"{self.comparison} {self.threshold_shown} {self.unit}"
        return Phrase(
            gettext_noop("%(label)s: %(value)s (objective %(objective)s)"),
            label=Phrase(self.label),
            value=value,
            objective=objective,
        )


def shown(value: float) -> str:
    """A figure as people read it: 1,500 · 130 · 98.96 · 0.4 (no float noise)."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = 1 if abs(value) >= 100 else 2
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@dataclass
class _Point:
    """One headline value of one job (or of the minute checks)."""

    value: float
    at: datetime.datetime
    run_id: int | None = None
    job_id: int | None = None
    mode: str = ""
    offered: float | None = None


@dataclass
class BoardData:
    """What the board reads, loaded once (``load``) and shared with the charts."""

    target: TargetService
    # Benchmark jobs newest first: {"job_id", "run_id", "mode", "at", "values": {name: value}}.
    benchmarks: list[dict] = field(default_factory=list)
    # Newest first per name.
    others: dict[str, list[_Point]] = field(default_factory=dict)
    availability: list[tuple[datetime.date, float, int]] = field(default_factory=list)
    baseline_memory: _Point | None = None


def load(target, *, run=None) -> BoardData:
    """Read everything the board needs; with ``run``, only that run's benchmarks
    (and nothing else: the verdict of one benchmark run)."""
    data = BoardData(target=target)
    jobs = Job.objects.filter(target=target, kind="benchmark", status=Job.SUCCEEDED)
    if run is not None:
        jobs = jobs.filter(run=run)
    job_rows = list(
        jobs.order_by(F("finished_at").desc(nulls_last=True), "-pk").values(
            "pk", "run_id", "params", "finished_at"
        )[:BENCHMARK_JOBS]
    )
    by_job: dict[int, dict[str, Any]] = {
        job["pk"]: {
            "job_id": job["pk"],
            "run_id": job["run_id"],
            "mode": str((job["params"] or {}).get("mode") or "load"),
            "at": job["finished_at"],
            "values": {},
        }
        for job in job_rows
    }
    if by_job:
        rows = (
            Measurement.objects.filter(
                job_id__in=list(by_job), second__isnull=True, name__in=BENCHMARK_NAMES
            )
            .exclude(labels__has_key="operation")
            .exclude(labels__has_key="step")
            .values_list("job_id", "name", "value", "measured_at", "labels")
        )
        for job_id, name, value, measured_at, labels in rows:
            entry = by_job[job_id]
            entry["values"][name] = value
            entry["at"] = entry["at"] or measured_at
            if (labels or {}).get("bound") == "lower":
                # A stress knee our side (or the target's limits) stopped: at least this.
                entry.setdefault("lower_bounds", []).append(name)
    data.benchmarks = [by_job[job["pk"]] for job in job_rows if by_job[job["pk"]]["values"]]
    if run is not None:
        data.baseline_memory = _baseline_memory(target)
        return data
    # The newest TREND_POINTS of each name, each a LIMIT on the (target, name,
    # -measured_at) index, glued with UNION ALL: a few dozen index rows, however
    # many minute checks there are. (SQLite allows no LIMIT in a compound's
    # parts, so each part is "pk IN (… LIMIT n)".)
    latest_first = (
        Measurement.objects.filter(target=target, second__isnull=True)
        .order_by("-measured_at", "-pk")
        .values("pk")
    )
    fields = Measurement.objects.order_by().values_list(
        "name", "value", "measured_at", "run_id", "job_id"
    )
    newest = [
        fields.filter(pk__in=latest_first.filter(name=name)[:TREND_POINTS]) for name in OTHER_NAMES
    ]
    trend_rows = newest[0].union(*newest[1:], all=True).order_by()
    others: dict[str, list[_Point]] = defaultdict(list)
    for name, value, measured_at, run_id, job_id in trend_rows:
        others[name].append(_Point(value, measured_at, run_id, job_id))
    for points in others.values():
        points.sort(key=lambda p: p.at, reverse=True)
    data.others = dict(others)
    data.availability = availability_days(target, timezone.now())
    data.baseline_memory = _baseline_memory(target)
    return data


def availability_days(target, now) -> list[tuple[datetime.date, float, int]]:
    """(day, share up, checks) of the minute checks of the last AVAILABILITY_DAYS days,
    oldest first, in the current time zone's days.

    A closed day's checks never change (each is stored when it ran, and minute
    checks are not purged), so the closed days in the middle of the window are
    cached per target and time zone for the rest of the day, and only the two
    ends are read again: the window's partial first day and today. The 30 days
    would otherwise be 43 200 rows on every visit. A day counts as closed some
    minutes after midnight, when the last check that began before it is stored.
    """
    since = now - datetime.timedelta(days=AVAILABILITY_DAYS)
    first_full = _next_midnight(since)
    closed_end = _midnight(now - CLOSED_DAY_GRACE)
    checks = Measurement.objects.filter(target=target, name="availability.up")
    if first_full >= closed_end:
        return _per_day(checks.filter(measured_at__gte=since))
    key = "kaizen:sloboard:closed-days:{}:{}:{}:{}:{}".format(
        target.pk,
        target.created_at.timestamp() if target.created_at else "-",
        timezone.get_current_timezone_name(),
        first_full.date().isoformat(),  # both local midnights: their dates are the days
        closed_end.date().isoformat(),
    )
    closed = cache.get(key)
    if closed is None:
        days = _per_day(checks.filter(measured_at__gte=since))
        first, last = first_full.date(), closed_end.date()
        cache.set(key, [day for day in days if first <= day[0] < last], CLOSED_DAYS_SECONDS)
        return days
    # Two ranges of the index, each aggregated per day (an OR of the two would
    # scan everything between them).
    ends = _per_day_query(checks.filter(measured_at__gte=since, measured_at__lt=first_full))
    ends = ends.union(_per_day_query(checks.filter(measured_at__gte=closed_end)), all=True)
    ends = ends.order_by()
    return sorted(closed + _as_days(ends))


def _midnight(when: datetime.datetime) -> datetime.datetime:
    """The start of ``when``'s day in the current time zone."""
    local = timezone.localtime(when)
    return timezone.make_aware(datetime.datetime.combine(local.date(), datetime.time()))


def _next_midnight(when: datetime.datetime) -> datetime.datetime:
    start = _midnight(when)
    if start == when:
        return start
    following = timezone.localtime(start).date() + datetime.timedelta(days=1)
    return timezone.make_aware(datetime.datetime.combine(following, datetime.time()))


def _per_day_query(checks):
    # COUNT(value), not COUNT(pk): the (target, name, -measured_at, value) index
    # then answers without reading the table.
    return (
        checks.annotate(day=TruncDate("measured_at"))
        .values("day")
        .annotate(up=Avg("value"), checks=Count("value"))
        .order_by()
        .values_list("day", "up", "checks")
    )


def _per_day(checks) -> list[tuple[datetime.date, float, int]]:
    return sorted(_as_days(_per_day_query(checks)))


def _as_days(rows) -> list[tuple[datetime.date, float, int]]:
    # A UNION's rows skip the backend's converters on SQLite: the day may be a string.
    return [
        (datetime.date.fromisoformat(day) if isinstance(day, str) else day, up, checks)
        for day, up, checks in rows
    ]


def _baseline_memory(target) -> _Point | None:
    """The endurance memory of the target's endurance baseline (optimizations.jobs.baselines:
    the pinned baseline run's endurance test, else the first), in one query."""
    row = baselines.baseline_measurement(target, "endurance", "memory.pss.mean")
    if row is None:
        return None
    return _Point(row["value"], row["measured_at"], row["run_id"], row["job_id"], "endurance")


# -- the board --------------------------------------------------------------------------


def board(target, *, data: BoardData | None = None) -> list[SloRow]:
    """Every SLO of the target, in THRESHOLDS order."""
    data = data or load(target)
    return [_ROW_BUILDERS[t.key](_blank(target, t), data) for t in slo.THRESHOLDS if t.is_slo]


def panel(target) -> dict:
    """The target page's compact view: counts and the failing SLOs."""
    rows = board(target)
    return {"rows": rows, "tally": counts(rows), "failing": [r for r in rows if r.state == "fail"]}


def counts(rows: list[SloRow]) -> dict[str, int]:
    tally = {"pass": 0, "fail": 0, "unknown": 0}
    for row in rows:
        tally[row.state] += 1
    return tally


def latest_benchmark_verdict(target) -> dict:
    """The phase-4 gate's evidence: the SLOs a benchmark judges, on the latest run
    that holds a finished benchmark.

    ``ok`` is None without any benchmark, False when an SLO failed or could
    not be judged by that run (``missing`` names those), True otherwise.
    """
    latest = (
        # An interleaved comparison's runs are two deployments side by side, not this
        # target's latest state (optimizations.jobs.baselines leaves them out alike).
        Job.objects.filter(
            target=target,
            kind="benchmark",
            status=Job.SUCCEEDED,
            run__compared_with__isnull=True,
        )
        .select_related("run")
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .first()
    )
    if latest is None:
        return {"run": None, "rows": [], "ok": None, "failing": [], "missing": []}
    run = latest.run
    data = load(target, run=run)
    rows = [_ROW_BUILDERS[key](_blank(target, slo.BY_KEY[key]), data) for key in BENCHMARK_SLOS]
    failing = [row.describe() for row in rows if row.state == "fail"]
    missing = [
        Phrase(
            gettext_noop("%(label)s: %(missing)s"),
            label=Phrase(row.label),
            missing=row.missing if isinstance(row.missing, Phrase) else Phrase(row.missing),
        )
        for row in rows
        if row.state == "unknown"
    ]
    return {
        "run": run,
        "rows": rows,
        "ok": not failing and not missing,
        "failing": failing,
        "missing": missing,
    }


def _blank(target, threshold: slo.Threshold) -> SloRow:
    return SloRow(
        key=threshold.key,
        label=threshold.label,
        unit=threshold.unit,
        threshold=target.thresholds()[threshold.key],
        direction=threshold.direction,
    )


def _judge(row: SloRow, latest: _Point | None, history: list[_Point], source: str) -> SloRow:
    """Fill the row from its latest point and its history (newest first)."""
    if latest is None:
        return row
    row.value = latest.value
    row.run_id, row.job_id, row.measured_at = latest.run_id, latest.job_id, latest.at
    row.source = source
    row.state = "pass" if slo.meets(row.key, latest.value, row.threshold) else "fail"
    row.missing = ""
    if latest.mode:
        # A load test's latency and an endurance test's are different series.
        history = [p for p in history if p.mode == latest.mode]
    row.trend = [(p.at, p.value) for p in reversed(history[:TREND_POINTS])]
    row.trend_direction = trend_direction([v for _, v in row.trend], row.direction)
    return row


def trend_direction(values: list[float], direction: str) -> str | None:
    """better / worse / flat from a Mann-Kendall test; None under four points."""
    if len(values) < 4:
        return None
    s, p = stats.mann_kendall(values)
    if s == 0 or p >= TREND_P:
        return "flat"
    rising = s > 0
    return "better" if rising == (direction == "min") else "worse"


def _benchmark_points(data: BoardData, name: str, modes=None, scale: float = 1.0):
    return [
        _Point(
            job["values"][name] * scale,
            job["at"],
            job["run_id"],
            job["job_id"],
            job["mode"],
            job["values"].get("http.offered_rate"),
        )
        for job in data.benchmarks
        if name in job["values"] and (modes is None or job["mode"] in modes)
    ]


def _is_lower_bound(data: BoardData, point: _Point, name: str) -> bool:
    job = next((job for job in data.benchmarks if job["job_id"] == point.job_id), None)
    return job is not None and name in job.get("lower_bounds", ())


def _run_ref(point: _Point) -> Phrase:
    if point.run_id:
        return Phrase(gettext_noop("run #%(run_id)s"), run_id=point.run_id)
    return Phrase(gettext_noop("job #%(job_id)s"), job_id=point.job_id)


def _steady_then_stress(row: SloRow, data: BoardData, name: str, scale: float = 1.0) -> SloRow:
    steady = _benchmark_points(data, name, STEADY_MODES, scale)
    if steady:
        latest = steady[0]
        source = Phrase(
            gettext_noop("benchmark (%(mode)s) · %(run)s"), mode=latest.mode, run=_run_ref(latest)
        )
        return _judge(row, latest, steady, source)
    stress = _benchmark_points(data, name, ("stress",), scale)
    if stress:
        latest = stress[0]
        source = Phrase(
            gettext_noop("benchmark (stress, at its knee; no load test yet) · %(run)s"),
            run=_run_ref(latest),
        )
        return _judge(row, latest, stress, source)
    return row


def _api_avg(row: SloRow, data: BoardData) -> SloRow:
    row.missing = RUN_LOAD
    return _steady_then_stress(row, data, "http.latency.avg")


def _error_rate(row: SloRow, data: BoardData) -> SloRow:
    row.missing = RUN_LOAD
    _steady_then_stress(row, data, "http.error_rate", scale=100.0)
    if row.value is None:
        minute = data.others.get("metrics.error_rate") or []
        if minute:
            _judge(
                row,
                minute[0],
                minute,
                Phrase(gettext_noop("minute check of /metrics (no benchmark yet)")),
            )
    return row


def _throughput(row: SloRow, data: BoardData) -> SloRow:
    row.missing = RUN_STRESS
    knees = _benchmark_points(data, "http.capacity", ("stress",))
    if knees:
        knee = knees[0]
        if not _is_lower_bound(data, knee, "http.capacity"):
            source = Phrase(gettext_noop("stress knee · %(run)s"), run=_run_ref(knee))
            return _judge(row, knee, knees, source)
        _judge(
            row,
            knee,
            knees,
            Phrase(
                gettext_noop(
                    "stress knee ≥ %(knee)s req/s, a lower bound (the load generator or its "
                    "machine stopped the test before the target broke) · %(run)s"
                ),
                knee=f"{knee.value:g}",
                run=_run_ref(knee),
            ),
        )
        if row.state == "fail":
            # The real knee may meet the objective: not known, rather than failed.
            row.state = "unknown"
        return row
    achieved = _benchmark_points(data, "http.throughput", STEADY_MODES)
    if achieved:
        latest = achieved[0]
        if latest.offered:
            source = Phrase(
                gettext_noop(
                    "achieved by a %(mode)s test at an offered %(offered)s req/s, not a capacity "
                    "(a stress benchmark (quality --focus testing, or strategy --focus scaling) "
                    "for the knee) · %(run)s"
                ),
                mode=latest.mode,
                offered=f"{latest.offered:g}",
                run=_run_ref(latest),
            )
        else:
            source = Phrase(
                gettext_noop(
                    "achieved by a %(mode)s test at a closed loop, not a capacity "
                    "(a stress benchmark (quality --focus testing, or strategy --focus scaling) "
                    "for the knee) · %(run)s"
                ),
                mode=latest.mode,
                run=_run_ref(latest),
            )
        return _judge(row, latest, achieved, source)
    return row


def _p99(row: SloRow, data: BoardData) -> SloRow:
    row.missing = RUN_STRESS
    stress = _benchmark_points(data, "http.latency.p99", ("stress",))
    if stress:
        source = Phrase(gettext_noop("stress test at its knee · %(run)s"), run=_run_ref(stress[0]))
        return _judge(row, stress[0], stress, source)
    steady = _benchmark_points(data, "http.latency.p99", STEADY_MODES)
    if steady:
        latest = steady[0]
        source = Phrase(
            gettext_noop("%(mode)s test (no stress test yet) · %(run)s"),
            mode=latest.mode,
            run=_run_ref(latest),
        )
        return _judge(row, latest, steady, source)
    return row


def _memory(row: SloRow, data: BoardData) -> SloRow:
    means = _benchmark_points(data, "memory.pss.mean")
    baseline = data.baseline_memory
    if not means and baseline is None:
        row.missing = RUN_ENDURANCE
        return row
    if baseline is None or not baseline.value:
        row.missing = gettext_noop(
            "the baseline's memory is unknown: pin a run with an endurance test as the baseline"
        )
        return row
    if not means or means[0].job_id == baseline.job_id:
        row.missing = Phrase(
            gettext_noop(
                "the latest measured memory is the baseline's own (%(run)s): an endurance "
                "benchmark with memory sampling (quality --focus testing) after the changes"
            ),
            run=_run_ref(baseline),
        )
        return row
    reductions = [
        _Point(100.0 * (1 - p.value / baseline.value), p.at, p.run_id, p.job_id, p.mode)
        for p in means
    ]
    latest = reductions[0]
    source = Phrase(
        gettext_noop(
            "endurance mean PSS %(mean)s MiB against the baseline's %(baseline)s MiB "
            "(%(baseline_run)s) · %(run)s"
        ),
        mean=f"{means[0].value / 2**20:.0f}",
        baseline=f"{baseline.value / 2**20:.0f}",
        baseline_run=_run_ref(baseline),
        run=_run_ref(latest),
    )
    return _judge(row, latest, reductions, source)


def _db_avg(row: SloRow, data: BoardData) -> SloRow:
    row.missing = _db_scan_hint(data.target)
    points = data.others.get("db.query.avg") or []
    if points:
        source = Phrase(gettext_noop("DB scan · %(run)s"), run=_run_ref(points[0]))
        _judge(row, points[0], points, source)
    return row


def _slow_rate(row: SloRow, data: BoardData) -> SloRow:
    row.missing = _db_scan_hint(data.target, RUN_DB_SCAN_STATEMENTS)
    # A scan with samples stores the exact rate beside its estimate: the exact one judges.
    exact = {p.job_id: p for p in data.others.get("db.slow_query_rate.exact") or []}
    points = [exact.get(p.job_id, p) for p in data.others.get("db.slow_query_rate.estimate") or []]
    points += [p for p in exact.values() if all(p is not q for q in points)]
    points.sort(key=lambda p: p.at, reverse=True)
    if points:
        exactly = any(points[0] is p for p in exact.values())
        source = Phrase(
            gettext_noop("DB scan (exact) · %(run)s")
            if exactly
            else gettext_noop("DB scan (estimate) · %(run)s"),
            run=_run_ref(points[0]),
        )
        _judge(row, points[0], points, source)
    return row


def _pool(row: SloRow, data: BoardData) -> SloRow:
    target = data.target
    if not target.metrics_path:
        row.missing = Phrase(
            gettext_noop(
                "set the target's metrics path and expose the SQLAlchemy pool gauges there"
            )
        )
    else:
        row.missing = Phrase(
            gettext_noop(
                "expose the pool gauges (db_pool_size, db_pool_checked_out, "
                "db_pool_max_overflow) on %(path)s, then run a DB scan or a probe "
                "(strategy --focus architecture)"
            ),
            path=target.metrics_path,
        )
    linked = sorted(
        (data.others.get("db.pool.use") or []) + (data.others.get("probe.pool_use") or []),
        key=lambda p: p.at,
        reverse=True,
    )
    if linked:
        latest = linked[0]
        source = Phrase(
            gettext_noop("DB scan (peak in its window) · %(run)s")
            if _is_in(data, "db.pool.use", latest)
            else gettext_noop("probe · %(run)s"),
            run=_run_ref(latest),
        )
        return _judge(row, latest, linked, source)
    minute = data.others.get("metrics.pool_use") or []
    if minute:
        _judge(
            row,
            minute[0],
            minute,
            Phrase(gettext_noop("minute check of /metrics (no DB scan or probe read it)")),
        )
    return row


def _is_in(data: BoardData, name: str, point: _Point) -> bool:
    return any(p is point for p in data.others.get(name) or [])


def _availability(row: SloRow, data: BoardData) -> SloRow:
    row.missing = NO_AVAILABILITY
    days = data.availability
    checks = sum(n for _, _, n in days)
    if not checks:
        return row
    value = 100.0 * sum(up * n for _, up, n in days) / checks
    points = [_Point(100.0 * up, _day_start(day)) for day, up, _ in reversed(days[-TREND_POINTS:])]
    latest = _Point(round(value, 3), points[0].at)
    source = Phrase(
        gettext_noop("availability, last %(days)s days (%(checks)s checks)"),
        days=AVAILABILITY_DAYS,
        checks=checks,
    )
    _judge(row, latest, points, source)
    return row


def _day_start(day) -> datetime.datetime:
    if isinstance(day, datetime.datetime):
        return day
    if isinstance(day, str):
        day = datetime.date.fromisoformat(day)
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time()))


def _db_scan_hint(target, run: str = RUN_DB_SCAN) -> str:
    if not target.database_url_encrypted:
        return SET_DATABASE_URL[run]
    return run


_ROW_BUILDERS = {
    "api_avg_ms": _api_avg,
    "db_avg_ms": _db_avg,
    "throughput_rps": _throughput,
    "memory_reduction_pct": _memory,
    "pool_use_pct": _pool,
    "slow_query_rate_pct": _slow_rate,
    "error_rate_pct": _error_rate,
    "availability_pct": _availability,
    "p99_ms": _p99,
}


# -- the runs chart -----------------------------------------------------------------------


def run_points(data: BoardData) -> list[dict]:
    """One point per benchmark job, oldest first: latency percentiles and throughput."""
    points = []
    for job in reversed(data.benchmarks):
        values = job["values"]
        if "http.latency.p99" not in values and "http.throughput" not in values:
            continue
        points.append(
            {
                "at": job["at"],
                "run_id": job["run_id"],
                "job_id": job["job_id"],
                "mode": job["mode"],
                "p50": values.get("http.latency.med"),
                "p95": values.get("http.latency.p95"),
                "p99": values.get("http.latency.p99"),
                "rps": values.get("http.throughput"),
            }
        )
    return points
