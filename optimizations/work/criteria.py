"""Acceptance criteria of tasks made from findings, checked when a run lands.

A task closes itself when its criterion is met on a run: the finding it was
made from is gone on re-scan (the findings service marks it fixed only when its
check ran and passed, naming that job), or a benchmark at no lower a rate
measures the operation within the limit, or — for a task that stands for a run
of a mode — a run started from it ends with the verdict pass (met → pass, not
met → fail, unknown → incomplete). A run that did not check a criterion
changes nothing.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from optimizations.jobs import verdicts
from optimizations.jobs.kinds import KINDS
from optimizations.models import Finding, Job, Measurement, PhaseTask
from optimizations.work.routing import kind_of_source
from portal.audit import record
from portal.i18n import Phrase

# A criterion's state inside a sentence ("criterion of “…” not met: …").
_STATE_WORDS = {
    "pending": gettext_noop("not checked yet"),
    "met": gettext_noop("met"),
    "not_met": gettext_noop("not met"),
    "unknown": gettext_noop("could not be checked"),
}

MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"
# A benchmark "at 1 000 req/s" holds when it offered at least this share of it:
# an open-model generator offers the rate it was asked for, give or take.
RATE_TOLERANCE = 0.95


def check_after_run(run) -> list[PhaseTask]:
    """Check the criteria of the open tasks on the run's target; return the tasks it closed."""
    closed = _run_task(run)
    tasks = list(
        PhaseTask.objects.filter(
            phase__initiative__target_id=run.target_id, status__in=PhaseTask.OPEN_STATUSES
        )
        .exclude(criterion={})
        .select_related("finding", "phase__initiative__target")
    )
    if not tasks:
        return closed
    jobs = list(run.jobs.filter(status=Job.SUCCEEDED))
    for task in tasks:
        outcome = evaluate(task, jobs)
        if outcome is None:
            continue
        state, detail = outcome
        if _settle(task, run, state, detail):
            closed.append(task)
    return closed


def _run_task(run) -> list[PhaseTask]:
    """A task that stands for a run of a mode ("Analyze performance": performance
    --focus …) is met when a run started from it ends with the verdict pass; fail
    is not met; incomplete, error or cancelled leave it open, saying why."""
    if not run.task_id or not run.verdict:
        return []
    task = (
        PhaseTask.objects.filter(pk=run.task_id, status__in=PhaseTask.OPEN_STATUSES, criterion={})
        .exclude(run_mode="")
        .select_related("phase__initiative__target")
        .first()
    )
    if task is None:
        return []
    reasons = "; ".join(verdicts.reasons_of_run(run.jobs.order_by("pk"), run.skipped))
    state = {verdicts.PASS: MET, verdicts.FAIL: NOT_MET}.get(run.verdict, UNKNOWN)
    detail = f"run #{run.pk}: {run.verdict}" + (f" — {reasons}" if reasons else "")
    return [task] if _settle(task, run, state, detail) else []


def evaluate(task, jobs) -> tuple[str, str] | None:
    """(state, detail) of ``task``'s criterion on these succeeded jobs; None if none checks it."""
    criterion = task.criterion or {}
    if criterion.get("kind") == "finding_gone":
        return _finding_gone(task, criterion, jobs)
    if criterion.get("kind") == "metric":
        return _metric(criterion, jobs)
    return None


def _finding_gone(task, criterion, jobs):
    kind = kind_of_source(criterion.get("source", ""))
    checking = [job for job in jobs if job.kind == kind]
    if not checking:
        return None
    job = checking[-1]
    finding = Finding.objects.filter(pk=criterion.get("finding")).first()
    if finding is None:
        return UNKNOWN, "the finding was deleted"
    if finding.status == Finding.FIXED:
        # Re-scan evidence only: the findings service names the job whose check ran
        # again and no longer reported it (a person cannot mark a finding fixed).
        fixed_by = finding.fixed_in_job_id
        if fixed_by is None:
            return UNKNOWN, "marked fixed without a re-scan: run its check again"
        if fixed_by == job.pk:
            return MET, f"gone on {_label(job)} #{job.pk}"
        return MET, f"gone on re-scan (job #{fixed_by})"
    if finding.status in Finding.TRIAGED:
        return UNKNOWN, (
            f"the finding was marked {finding.get_status_display().lower()}; close the task by hand"
        )
    if finding.last_job_id in {j.pk for j in checking}:
        return NOT_MET, f"still reported by {_label(job)} #{job.pk}"
    return UNKNOWN, f"{_label(job)} #{job.pk} could not run the check"


def _label(job) -> str:
    kind = KINDS.get(job.kind)
    return (kind.label if kind else job.kind).lower()


def _metric(criterion, jobs):
    benchmarks = [job for job in jobs if job.kind == "benchmark"]
    if not benchmarks:
        return None
    job = benchmarks[-1]
    summary = job.summary or {}
    rate = summary.get("offered_rate") or summary.get("rps") or 0
    wanted = criterion.get("at_rps")
    if wanted and float(rate) < RATE_TOLERANCE * float(wanted):
        return UNKNOWN, (
            f"benchmark #{job.pk} ran at {float(rate):g} req/s; the criterion needs "
            f"{float(wanted):g} req/s"
        )
    rows = Measurement.objects.filter(
        job=job,
        name=criterion["name"],
        second__isnull=True,
        labels__operation=criterion["operation"],
    ).values_list("value", flat=True)
    values = list(rows[:1])
    if not values:
        return UNKNOWN, f"benchmark #{job.pk} did not measure {criterion['operation']}"
    value = values[0]
    stat = criterion["name"].rsplit(".", 1)[-1]
    detail = f"{stat} {value:g} ms on benchmark #{job.pk} (limit {float(criterion['max']):g} ms)"
    return (MET if value <= float(criterion["max"]) else NOT_MET), detail


@transaction.atomic
def _settle(task, run, state: str, detail: str) -> bool:
    """Store the outcome; a met criterion closes the task. True when it closed it."""
    now = timezone.now()
    fields = {
        "criterion_state": state,
        "criterion_detail": detail[:500],
        "criterion_checked_at": now,
        "criterion_run": run,
    }
    closes = state == MET
    if closes:
        fields["status"] = PhaseTask.DONE
    # Only an open task closes: a person may have changed it since it was read.
    updated = PhaseTask.objects.filter(pk=task.pk, status__in=PhaseTask.OPEN_STATUSES).update(
        **fields, updated_at=now
    )
    if not updated:
        return False
    old_state, old_status = task.criterion_state, task.status
    for name, value in fields.items():
        setattr(task, name, value)
    initiative = task.phase.initiative
    if closes:
        record(
            None,
            "task.criterion_met",
            task,
            Phrase(
                gettext_noop(
                    "task “%(title)s” closed itself: %(criterion)s — %(detail)s (run #%(run)s)"
                ),
                title=task.title,
                criterion=task.criterion.get("text", ""),
                detail=detail,
                run=run.pk,
            ),
            changes={"status": [old_status, PhaseTask.DONE]},
            initiative=initiative,
            target=initiative.target,
        )
    elif old_state != state:
        record(
            None,
            "task.criterion_checked",
            task,
            Phrase(
                gettext_noop("criterion of “%(title)s” %(state)s: %(detail)s"),
                title=task.title,
                state=Phrase(_STATE_WORDS.get(state, state)),
                detail=detail,
            ),
            initiative=initiative,
            target=initiative.target,
        )
    return closes
