"""Roll-ups across the organisation: per department, per target, and what changed.

Everything here is a bounded number of aggregate queries whatever the number
of targets, initiatives, findings or samples; the views and the charts
(optimizations.charts, "Portfolio and plan") read the plain rows these
functions return.

"Most improved" and "regressed" apply the comparison rule
(optimizations.analyzers.stats.compare) to the per-second p95 samples of two
benchmark jobs of a target: its latest against the one before (a regression
since the last measurement) and against its baseline (the pinned baseline
run's benchmark, else its first). Only verdicts the rule calls significant and
beyond noise are listed. The regression sentinel (optimizations.sentinel)
uses the same comparison.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace

from django.core.cache import cache
from django.db.models import Case, Count, DateField, F, Max, Q, Sum, When, Window
from django.db.models.functions import RowNumber, TruncWeek
from django.utils import timezone

from departments.models import Department
from optimizations.analyzers import stats
from optimizations.models import Finding, Initiative, Job, PhaseTask, TargetService

logger = logging.getLogger(__name__)

SEVERITIES = [name for name, _ in Finding.SEVERITIES]

# The per-second figure the comparison reads, and the seconds that count:
# a second in which nothing was answered has no latency.
SAMPLE_METRIC = "sample.p95_ms"
METRIC_LABEL = "p95 latency (per-second samples)"
# Bootstrap resamples for the intervals: fewer than the compare page's 2000,
# because a page compares many targets; the seed keeps them repeatable.
RESAMPLES = 1000
# How many of a target's latest benchmarks are looked at to find a comparable
# predecessor, and how many targets (the most recently benchmarked) are compared.
HISTORY = 10
MAX_COMPARED_TARGETS = 25
# Finished jobs never change, so a comparison of two of them is cached.
CACHE_SECONDS = 6 * 3600
# Parameters that may differ between two benchmarks without making them
# incomparable (as on the compare page).
FREE_PARAMS = ("seed", "cpu")
FINDING_WEEKS = 26
# The page's roll-ups are kept this long at most (see change_stamp).
OVERVIEW_SECONDS = 60


# --- departments ------------------------------------------------------------------


def department_rollups(today: datetime.date | None = None) -> list[dict]:
    """Per department: open and overdue tasks, hours logged against estimated,
    and the open findings (by severity) of the categories it owns.

    Tasks of archived initiatives do not count; open tasks of finished ones
    neither (as on the dashboard). Three queries.
    """
    today = today or timezone.localdate()
    live = PhaseTask.objects.exclude(phase__initiative__status=Initiative.ARCHIVED)
    open_q = Q(status__in=PhaseTask.OPEN_STATUSES) & ~Q(phase__initiative__status=Initiative.DONE)
    tasks = {
        row["department"]: row
        for row in live.values("department").annotate(
            open=Count("pk", filter=open_q),
            overdue=Count("pk", filter=open_q & Q(due_date__lt=today)),
            blocked=Count("pk", filter=open_q & Q(status=PhaseTask.BLOCKED)),
            open_hours=Sum("estimate_hours", filter=open_q),
            estimated=Sum("estimate_hours"),
            logged=Sum("logged_hours"),
        )
    }
    findings = open_findings_by_department()
    rows = []
    for department in Department.objects.all():
        task_row = tasks.get(department.pk, {})
        by_severity = {name: findings[department.code].get(name, 0) for name in SEVERITIES}
        estimated = task_row.get("estimated") or Decimal(0)
        logged = task_row.get("logged") or Decimal(0)
        rows.append(
            {
                "department": department,
                "code": department.code,
                "name": department.name,
                "open_tasks": task_row.get("open", 0),
                "overdue_tasks": task_row.get("overdue", 0),
                "blocked_tasks": task_row.get("blocked", 0),
                "open_hours": task_row.get("open_hours") or Decimal(0),
                "estimated_hours": estimated,
                "logged_hours": logged,
                # Logged against estimated; unknown without an estimate.
                "hours_ratio": float(logged / estimated) if estimated else None,
                "findings": by_severity,
                "open_findings": sum(by_severity.values()),
            }
        )
    return rows


def open_findings_by_department() -> dict[str, dict[str, int]]:
    """{department code: {severity: open findings}} for the department that owns each.

    One query: the open findings counted per what decides their owner (source,
    category, rule), a few hundred rows whatever the number of findings, each
    routed in Python by routing.route. Cheaper than evaluating the routing CASE
    (routing.department_case) on every open finding.
    """
    from optimizations import routing

    findings: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for row in (
        Finding.objects.filter(status=Finding.OPEN)
        .values("source", "category", "rule_id", "severity")
        .annotate(n=Count("pk"))
        .order_by()
    ):
        owner = routing.route(SimpleNamespace(**row)).department
        findings[owner][row["severity"]] += row["n"]
    return findings


# --- how fresh ----------------------------------------------------------------------


def change_stamp() -> str:
    """A short text that changes whenever the page's roll-ups may have changed.

    The newest audit event (every change a person makes to a task, finding,
    initiative or target records one, and so does a task a met criterion
    closes), the newest finding, and the queued and running jobs (a job that
    ends has stored its findings, fixes and verdict, and leaves that set).
    Three look-ups on primary keys and a small set, however many findings there
    are; a change none of them shows (say, in the admin) is seen within
    OVERVIEW_SECONDS.
    """
    from portal.models import AuditEvent

    audit = AuditEvent.objects.aggregate(newest=Max("pk"))["newest"]
    finding = Finding.objects.aggregate(newest=Max("pk"))["newest"]
    jobs = Job.objects.filter(status__in=Job.ACTIVE).aggregate(n=Count("pk"), ids=Sum("pk"))
    return f"a{audit}:f{finding}:j{jobs['n']}-{jobs['ids']}"


# --- targets ----------------------------------------------------------------------


def target_rollups() -> list[dict]:
    """Per target: open findings by severity, the last benchmark's verdict and its
    initiatives. Four queries. (The SLO board's counts cost a few queries per
    target, so the page loads them per row as it scrolls into view.)"""
    targets = list(TargetService.objects.select_related("owner_department").order_by("name"))
    findings: dict[int, dict[str, int]] = defaultdict(dict)
    # COUNT(*), not of the key: the (target, status, severity) index answers it alone.
    for row in (
        Finding.objects.filter(status=Finding.OPEN)
        .values("target", "severity")
        .annotate(n=Count("*"))
        .order_by()
    ):
        findings[row["target"]][row["severity"]] = row["n"]
    last_benchmark = {
        job.target_id: job
        for job in Job.objects.filter(kind="benchmark", status=Job.SUCCEEDED)
        .annotate(
            newest=Window(
                RowNumber(),
                partition_by=[F("target_id")],
                order_by=[F("finished_at").desc(nulls_last=True), F("pk").desc()],
            )
        )
        .filter(newest=1)
        .only("pk", "target_id", "run_id", "verdict", "finished_at", "params")
    }
    initiatives = defaultdict(list)
    for initiative in (
        Initiative.objects.exclude(status=Initiative.ARCHIVED)
        .only("pk", "title", "status", "target_id", "target_date")
        .order_by("-created_at")
    ):
        initiatives[initiative.target_id].append(initiative)
    rows = []
    for target in targets:
        by_severity = {name: findings[target.pk].get(name, 0) for name in SEVERITIES}
        rows.append(
            {
                "target": target,
                "findings": by_severity,
                "open_findings": sum(by_severity.values()),
                "last_benchmark": last_benchmark.get(target.pk),
                "initiatives": initiatives[target.pk],
            }
        )
    return rows


# --- most improved and regressed ----------------------------------------------------


@dataclass
class BenchmarkChange:
    """The comparison rule on two benchmark jobs of one target."""

    target: TargetService
    before: Job
    after: Job
    against: str  # "previous" or "baseline"
    comparison: stats.Comparison
    samples: tuple[int, int] = (0, 0)

    @property
    def verdict(self) -> str:
        return self.comparison.verdict

    @property
    def change(self) -> float:
        return self.comparison.change


@dataclass
class Changes:
    improved: list[BenchmarkChange] = field(default_factory=list)
    regressed: list[BenchmarkChange] = field(default_factory=list)
    compared_targets: int = 0
    benchmarked_targets: int = 0
    # Targets with one benchmark only, or no comparable pair: why, per target.
    not_compared: list[tuple[TargetService, str]] = field(default_factory=list)


def comparability_meta(job: Job) -> dict:
    """What makes two benchmarks comparable: the parameters they were given
    (not the ones measured), the operations they drove, the engine's version."""
    summary = job.summary or {}
    config = {key: value for key, value in (job.params or {}).items() if key not in FREE_PARAMS}
    config["operations"] = sorted(op.get("name", "") for op in summary.get("operations") or [])
    return {"config": config, "engine_version": summary.get("engine_version")}


def benchmark_samples(job_ids) -> dict[int, list[float]]:
    """The per-second p95 of each job (seconds with an answer only), in one query."""
    from optimizations.roi import per_second_latency

    return {job_id: series["p95"] for job_id, series in per_second_latency(job_ids).items()}


def compare_jobs(
    before: Job, after: Job, samples: dict[int, list[float]]
) -> stats.Comparison | None:
    """The comparison rule on the two jobs' per-second p95; None without enough seconds."""
    a, b = samples.get(before.pk) or [], samples.get(after.pk) or []
    if min(len(a), len(b)) < stats.MIN_RUNS:
        return None
    key = (
        f"kaizen:portfolio:cmp:{before.pk}:{after.pk}:"
        f"{before.finished_at and before.finished_at.timestamp()}:"
        f"{after.finished_at and after.finished_at.timestamp()}:{len(a)}:{len(b)}"
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    comparison = stats.compare(
        a,
        b,
        metric=METRIC_LABEL,
        lower_is_better=True,
        baseline_meta=[comparability_meta(before)],
        candidate_meta=[comparability_meta(after)],
        seed=0,
        resamples=RESAMPLES,
    )
    cache.set(key, comparison, CACHE_SECONDS)
    return comparison


def benchmark_changes(limit: int = MAX_COMPARED_TARGETS) -> Changes:
    """Most improved and regressed targets, ranked by the median change.

    Five queries whatever the number of targets: their latest benchmarks, their
    first ones, the pinned baselines' ones, and all the samples at once.
    """
    benchmarks = Job.objects.filter(kind="benchmark", status=Job.SUCCEEDED)
    recent: dict[int, list[Job]] = defaultdict(list)
    for job in (
        benchmarks.annotate(
            newest=Window(
                RowNumber(),
                partition_by=[F("target_id")],
                order_by=[F("finished_at").desc(nulls_last=True), F("pk").desc()],
            )
        )
        .filter(newest__lte=HISTORY)
        .select_related("target", "run")
        .order_by("target_id", "newest")
    ):
        recent[job.target_id].append(job)
    result = Changes(benchmarked_targets=len(recent))
    # The most recently benchmarked targets first; the rest wait for a later look.
    chosen = sorted(
        recent, key=lambda pk: recent[pk][0].finished_at or timezone.now(), reverse=True
    )[:limit]
    first = {
        job.target_id: job
        for job in benchmarks.filter(target_id__in=chosen)
        .annotate(
            oldest=Window(
                RowNumber(),
                partition_by=[F("target_id")],
                order_by=[F("finished_at").asc(nulls_last=True), F("pk").asc()],
            )
        )
        .filter(oldest=1)
        .select_related("run")
    }
    pinned_runs = [recent[pk][0].target.baseline_run_id for pk in chosen]
    pinned: dict[int, list[Job]] = defaultdict(list)
    for job in benchmarks.filter(run_id__in=[pk for pk in pinned_runs if pk]).select_related("run"):
        pinned[job.target_id].append(job)
    pairs = []
    for pk in chosen:
        jobs = recent[pk]
        latest = jobs[0]
        meta = comparability_meta(latest)
        previous = next((j for j in jobs[1:] if comparability_meta(j) == meta), None)
        baseline = next(
            (j for j in pinned.get(pk, []) if comparability_meta(j) == meta),
            pinned[pk][0] if pinned.get(pk) else first.get(pk),
        )
        if baseline is not None and baseline.pk == latest.pk:
            baseline = None
        if previous is None:
            why = "one benchmark so far" if len(jobs) == 1 else "no earlier benchmark alike"
            result.not_compared.append((latest.target, why))
        if previous is not None and baseline is not None and previous.pk == baseline.pk:
            pairs.append(("baseline", previous, latest))  # the one before is the baseline
            continue
        if previous is not None:
            pairs.append(("previous", previous, latest))
        if baseline is not None:
            pairs.append(("baseline", baseline, latest))
    samples = benchmark_samples({job.pk for _, before, after in pairs for job in (before, after)})
    compared = set()
    improved: dict[int, BenchmarkChange] = {}
    regressed: dict[int, BenchmarkChange] = {}
    for against, before, after in pairs:
        comparison = compare_jobs(before, after, samples)
        if comparison is None:
            continue
        compared.add(after.target_id)
        change = BenchmarkChange(
            target=after.target,
            before=before,
            after=after,
            against=against,
            comparison=comparison,
            samples=(len(samples.get(before.pk, [])), len(samples.get(after.pk, []))),
        )
        if comparison.verdict == "improved" and against == "baseline":
            improved[after.target_id] = change
        elif comparison.verdict == "improved" and after.target_id not in improved:
            # Without a distinct baseline, the step since the one before.
            improved.setdefault(after.target_id, change)
        if comparison.verdict == "regressed":
            known = regressed.get(after.target_id)
            if known is None or comparison.change > known.change:
                regressed[after.target_id] = change
    result.compared_targets = len(compared)
    result.improved = sorted(improved.values(), key=lambda c: c.change)
    result.regressed = sorted(regressed.values(), key=lambda c: c.change, reverse=True)
    return result


# --- findings over time and the burn-down -------------------------------------------


def findings_over_time(weeks: int = FINDING_WEEKS, now=None) -> list[dict]:
    """Open findings by severity at the end of each of the last ``weeks`` weeks.

    Open at a week's end: seen first by then and not fixed by then. Findings a
    person triaged (accepted, won't fix, false positive) are left out: when
    they left the open state is not recorded.

    One aggregate query that computes a week only for what happened in the
    weeks shown: a finding seen first before them counts from the first one,
    and one fixed before them was open at none of their ends, so it is not read.
    """
    now = now or timezone.now()
    this_week = timezone.localtime(now).date()
    this_week -= datetime.timedelta(days=this_week.weekday())
    starts = [this_week - datetime.timedelta(weeks=n) for n in range(weeks - 1, -1, -1)]
    window = timezone.make_aware(datetime.datetime.combine(starts[0], datetime.time()))

    def week_of(field_name: str):
        # The Monday (a date, in the current time zone) of the week it happened in;
        # NULL before the window (or never).
        return TruncWeek(
            Case(When(**{f"{field_name}__gte": window}, then=F(field_name))),
            output_field=DateField(),
        )

    rows = (
        Finding.objects.exclude(status__in=Finding.TRIAGED)
        .exclude(fixed_at__lt=window)
        .values("severity", opened=week_of("first_seen_at"), fixed=week_of("fixed_at"))
        .annotate(n=Count("*"))
        .order_by()
    )
    # How the open count of each severity changes in each week: up by those seen
    # first (from the first week for those seen before it), down by those fixed.
    changes = {severity: defaultdict(int) for severity in SEVERITIES}
    for row in rows:
        change = changes.get(row["severity"])
        if change is None:
            continue
        change[row["opened"] or starts[0]] += row["n"]
        if row["fixed"] is not None:
            change[row["fixed"]] -= row["n"]
    level = dict.fromkeys(SEVERITIES, 0)
    result = []
    for start in starts:
        for severity in SEVERITIES:
            level[severity] += changes[severity].get(start, 0)
        result.append({"week": start, **level})
    return result


def burndown_tasks(initiative: Initiative) -> list[dict]:
    """Each task of ``initiative`` with its estimate and when it was created, done and
    reopened — from the tasks and the audit trail of their status changes.

    A task that is done without a recorded change (created done, or changed
    before the audit trail) counts as done at its last update. Two queries.
    """
    from portal.models import AuditEvent

    tasks = list(
        PhaseTask.objects.filter(phase__initiative=initiative)
        .select_related("phase")
        .only(
            "pk",
            "title",
            "status",
            "estimate_hours",
            "created_at",
            "updated_at",
            "phase__number",
            "phase__name",
        )
        .order_by("phase__number", "position", "pk")
    )
    changes = defaultdict(list)
    for event in (
        AuditEvent.objects.filter(
            initiative=initiative,
            object_type="phasetask",
            action__startswith="task.",
            action__contains="status",
        )
        .order_by("created_at", "pk")
        .only("object_id", "created_at", "changes")
    ):
        status = (event.changes or {}).get("status")
        if isinstance(status, list) and len(status) == 2:
            changes[event.object_id].append((event.created_at, status[0], status[1]))
    rows = []
    for task in tasks:
        events = changes.get(str(task.pk), [])
        initially = events[0][1] if events else task.status
        moves = [(when, new == PhaseTask.DONE) for when, _old, new in events]
        if not events and task.status == PhaseTask.DONE:
            initially, moves = PhaseTask.TODO, [(task.updated_at, True)]
        rows.append(
            {
                "pk": task.pk,
                "title": task.title,
                "phase": task.phase.number,
                "phase_name": task.phase.name,
                "hours": float(task.estimate_hours) if task.estimate_hours is not None else None,
                "created": task.created_at,
                "done_at_start": initially == PhaseTask.DONE,
                "moves": moves,
            }
        )
    return rows
