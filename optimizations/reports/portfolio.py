"""Roll-ups across the organisation: per department, per target, and what changed.

Everything here is a bounded number of aggregate queries whatever the number
of targets, initiatives, findings or samples; the views and the charts
(optimizations.reports.charts, "Portfolio and plan") read the plain rows these
functions return.

"Most improved" and "regressed" apply the comparison rule
(optimizations.analyzers.stats.compare, one value per run) to each target's
baseline set against its latest comparable set, both as
optimizations.jobs.baselines defines them; only the rule's improved and regressed
are listed, with the evidence level they reached.
"""

from __future__ import annotations

import datetime
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from django.db.models import Case, Count, DateField, F, Max, Q, Sum, When, Window
from django.db.models.functions import RowNumber, TruncWeek
from django.utils import timezone
from django.utils.translation import gettext_noop

from departments.models import Department
from optimizations.analyzers import stats
from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.jobs import baselines
from optimizations.models import Finding, Initiative, Job, PhaseTask, TargetService
from optimizations.work import routing
from portal.i18n import Phrase
from portal.models import AuditEvent

logger = logging.getLogger(__name__)

SEVERITIES = list(MOST_SEVERE_FIRST)

# The benchmark mode compared (its runs each carry one steady load), and how
# many targets (the most recently benchmarked) are compared.
MODE = baselines.DEFAULT_MODE
MAX_COMPARED_TARGETS = 25
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
        task_row: Mapping[str, Any] = tasks.get(department.pk, {})
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
    """The comparison rule on a target's baseline set against its latest comparable set."""

    target: TargetService
    before: baselines.BenchmarkSet
    after: baselines.BenchmarkSet
    comparison: stats.Comparison  # the headline: p95 latency, one value per run

    @property
    def verdict(self) -> str:
        return self.comparison.verdict

    @property
    def shift(self) -> float:
        return self.comparison.shift

    @property
    def evidence(self) -> str:
        return self.comparison.evidence


@dataclass
class Changes:
    improved: list[BenchmarkChange] = field(default_factory=list)
    regressed: list[BenchmarkChange] = field(default_factory=list)
    # Pairs compared whose verdict was neither (no change, or inconclusive and why).
    unclaimed: list[BenchmarkChange] = field(default_factory=list)
    compared_targets: int = 0
    benchmarked_targets: int = 0
    # Targets with one set only, or no comparable pair: why, per target.
    not_compared: list[tuple[TargetService, str]] = field(default_factory=list)


def benchmark_changes(limit: int = MAX_COMPARED_TARGETS, mode: str = MODE) -> Changes:
    """Most improved and regressed targets: each target's baseline set of ``mode``
    against its latest comparable set (optimizations.jobs.baselines), ranked by the shift.

    Three queries whatever the number of targets: the most recently benchmarked
    targets, their benchmark runs, and the compared figures of the chosen sets.
    """
    newest = (
        Job.objects.filter(
            kind="benchmark",
            status=Job.SUCCEEDED,
            started_at__isnull=False,
            run__compared_with__isnull=True,
        )
        .filter(Q(params__mode=mode) | Q(params__mode__isnull=True, summary__mode=mode))
        .values("target_id")
        .annotate(last=Max("started_at"))
        .order_by("-last", "-target_id")
    )
    order = [row["target_id"] for row in newest]
    result = Changes(benchmarked_targets=len(order))
    by_pk = TargetService.objects.in_bulk(order[:limit])
    chosen = [by_pk[pk] for pk in order[:limit] if pk in by_pk]
    pairs = []
    found = baselines.for_targets(chosen, mode)
    for target in chosen:
        base, latest, sets = found[target.pk]
        if base is None:
            result.not_compared.append(
                (
                    target,
                    Phrase(
                        gettext_noop("no %(mode)s set outside interleaved comparisons"), mode=mode
                    ),
                )
            )
        elif latest is None:
            why = (
                Phrase(
                    gettext_noop("one %(mode)s set so far (%(label)s)"), mode=mode, label=base.label
                )
                if len(sets) == 1
                else baselines.why_no_latest_in(base, sets)
            )
            result.not_compared.append((target, why))
        else:
            pairs.append((target, base, latest))
    baselines.load_values(*[s for _, base, latest in pairs for s in (base, latest)])
    for target, base, latest in pairs:
        headline = baselines.compare_sets(base, latest).headline
        if headline is None:
            result.not_compared.append(
                (target, Phrase(gettext_noop("the runs' summaries have no p95 latency")))
            )
            continue
        result.compared_targets += 1
        change = BenchmarkChange(target, base, latest, headline)
        if headline.verdict == stats.IMPROVED:
            result.improved.append(change)
        elif headline.verdict == stats.REGRESSED:
            result.regressed.append(change)
        else:
            result.unclaimed.append(change)
    result.improved.sort(key=lambda c: c.shift)
    result.regressed.sort(key=lambda c: c.shift, reverse=True)
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
    changes: dict[str, defaultdict[datetime.date, int]] = {
        severity: defaultdict(int) for severity in SEVERITIES
    }
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
