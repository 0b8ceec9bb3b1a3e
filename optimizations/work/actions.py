"""Writes to initiatives, phases, tasks and targets — each one audited."""

from __future__ import annotations

import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from departments.models import Department
from optimizations.models import Initiative, Phase, PhaseTask, TargetService
from optimizations.targets.crypto import encrypt
from optimizations.work.plan import STANDARD_PHASES, default_text
from portal import hooks
from portal.audit import describe_changes, record
from portal.i18n import Parts, Phrase

INITIATIVE_FIELDS = (
    "title",
    "target",
    "run_mode",
    "focus",
    "owner",
    "description",
    "start_date",
    "target_date",
    "status",
)


def _snapshot(obj, fields):
    return {name: getattr(obj, name) for name in fields}


@transaction.atomic
def do_create_initiative(actor, **fields) -> Initiative:
    """Create an initiative with the four standard phases and their default tasks."""
    initiative = Initiative.objects.create(**fields)
    departments = {d.code: d for d in Department.objects.all()}
    phase_length = _phase_length(initiative.start_date, initiative.target_date)
    start = initiative.start_date
    for template in STANDARD_PHASES:
        end = start + phase_length if phase_length else None
        phase = Phase.objects.create(
            initiative=initiative,
            number=template.number,
            name=template.name,
            lead_department=departments[template.lead],
            status=Phase.ACTIVE
            if template.number == 1 and initiative.status == Initiative.ACTIVE
            else Phase.NOT_STARTED,
            planned_start=start if phase_length else None,
            planned_end=end,
            actual_start=timezone.localdate()
            if template.number == 1 and initiative.status == Initiative.ACTIVE
            else None,
            exit_criterion=template.exit_criterion,
        )
        PhaseTask.objects.bulk_create(
            PhaseTask(
                phase=phase,
                title=task.title,
                description=task.description,
                department=departments[task.department],
                estimate_hours=task.estimate_hours,
                due_date=end,
                position=position,
                run_mode=task.run_mode,
                run_focus=list(task.run_focus),
            )
            for position, task in enumerate(template.tasks)
        )
        if end:
            start = end
    record(
        actor,
        "initiative.create",
        initiative,
        Phrase(
            gettext_noop("created initiative “%(title)s” on %(target)s"),
            title=initiative.title,
            target=str(initiative.target),
        ),
        initiative=initiative,
        target=initiative.target,
    )
    return initiative


def _phase_length(start, end) -> datetime.timedelta | None:
    """Split the initiative's span evenly over the four phases, when it has an end."""
    if not end or end <= start:
        return None
    return datetime.timedelta(days=max(1, (end - start).days // len(STANDARD_PHASES)))


@transaction.atomic
def do_update_initiative(actor, initiative: Initiative, **fields) -> dict:
    before = _snapshot(initiative, INITIATIVE_FIELDS)
    for name, value in fields.items():
        setattr(initiative, name, value)
    initiative.save()
    changes = describe_changes(before, _snapshot(initiative, INITIATIVE_FIELDS))
    if "status" in changes and initiative.status == Initiative.ACTIVE:
        # Starting an initiative starts its first phase, unless work already moved on.
        phases = list(initiative.phases.all())
        if phases and all(phase.status == Phase.NOT_STARTED for phase in phases):
            do_set_phase_status(actor, phases[0], Phase.ACTIVE)
    if changes:
        record(
            actor,
            "initiative.edit",
            initiative,
            Phrase(
                gettext_noop("edited %(fields)s of “%(title)s”"),
                fields=", ".join(changes),
                title=initiative.title,
            ),
            changes=changes,
            initiative=initiative,
            target=initiative.target,
        )
    if "status" in changes and initiative.status == Initiative.DONE:
        # A finished initiative is guarded: weekly benchmarks against its last one
        # (the regression sentinel, optimizations/apps.py).
        hooks.call("initiative_done", actor, initiative)
    return changes


@transaction.atomic
def do_set_phase_status(actor, phase: Phase, status: str) -> bool:
    """Move a phase; starting or finishing it stamps its actual dates."""
    if status == phase.status:
        return False
    old = phase.status
    phase.status = status
    today = timezone.localdate()
    if status == Phase.ACTIVE and not phase.actual_start:
        phase.actual_start = today
    if status == Phase.DONE:
        phase.actual_end = today
        phase.actual_start = phase.actual_start or today
    elif old == Phase.DONE:
        phase.actual_end = None
    phase.save(update_fields=["status", "actual_start", "actual_end"])
    if status == Phase.DONE:
        # The departments' runbooks of the target may need a review (departments/apps.py).
        hooks.call("phase_done", phase.initiative, phase, actor)
    record(
        actor,
        "phase.status",
        phase,
        Phrase(
            gettext_noop("moved phase %(number)s (%(phase)s) from %(old)s to %(new)s"),
            number=phase.number,
            phase=default_text(phase.name),
            old=_PHASE_STATUSES.get(old, old),
            new=_PHASE_STATUSES.get(status, status),
        ),
        changes={"status": [old, status]},
        initiative=phase.initiative,
        target=phase.initiative.target,
    )
    return True


TASK_FIELDS = ("status", "assignee", "logged_hours", "estimate_hours", "due_date", "title")
# A task's fields as its audit entry names them (a Phrase's value: each reader's language).
TASK_FIELD_WORDS = {
    "status": gettext_noop("status"),
    "assignee": gettext_noop("assignee"),
    "logged_hours": gettext_noop("logged hours"),
    "estimate_hours": gettext_noop("estimated hours"),
    "due_date": gettext_noop("due date"),
    "title": gettext_noop("title"),
}
_TASK_STATUSES = dict(PhaseTask.STATUSES)


def _task_change(name: str, old, new) -> Phrase:
    """One changed field in words: ``status To do → Doing`` (a status by its label, a
    default title translated where shown; the audit's ``changes`` keep the values)."""

    def value(raw):
        if raw is None or raw == "":
            return "—"
        if name == "status":
            return _TASK_STATUSES.get(raw, raw)
        return default_text(raw) if name == "title" else raw

    return Phrase(
        gettext_noop("%(field)s %(old)s → %(new)s"),
        field=Phrase(TASK_FIELD_WORDS[name]) if name in TASK_FIELD_WORDS else name,
        old=value(old),
        new=value(new),
    )


@transaction.atomic
def do_update_task(actor, task: PhaseTask, **fields) -> dict:
    """Change a task's status, assignee, hours…; audit what changed."""
    before = _snapshot(task, TASK_FIELDS)
    for name, value in fields.items():
        setattr(task, name, value)
    task.save()
    changes = describe_changes(before, _snapshot(task, TASK_FIELDS))
    if changes:
        what = Parts(
            [_task_change(name, old, new) for name, (old, new) in changes.items()], separator=", "
        )
        record(
            actor,
            "task." + "+".join(sorted(changes)),
            task,
            Phrase(
                gettext_noop("task “%(title)s”: %(changes)s"),
                title=default_text(task.title),
                changes=what,
            ),
            changes=changes,
            initiative=task.phase.initiative,
            target=task.phase.initiative.target,
        )
    return changes


@transaction.atomic
def do_create_task(actor, phase: Phase, **fields) -> PhaseTask:
    position = phase.tasks.count()
    task = PhaseTask.objects.create(phase=phase, position=position, **fields)
    record(
        actor,
        "task.create",
        task,
        Phrase(
            gettext_noop("added task “%(title)s” to phase %(number)s"),
            title=task.title,
            number=phase.number,
        ),
        initiative=phase.initiative,
        target=phase.initiative.target,
    )
    return task


TARGET_FIELDS = (
    "name",
    "slug",
    "base_url",
    "owner_department",
    "environment",
    "description",
    "health_path",
    "openapi_path",
    "metrics_path",
    "source_location",
    "auth_header_name",
    "allows_writes",
    "max_rate",
    "max_duration",
    "expected_rps",
    "slo",
    "baseline_run",
)


@transaction.atomic
def do_create_target(actor, *, credentials=None, **fields) -> TargetService:
    """Register a target with the organisation's recurring reviews scheduled."""
    target = TargetService(**fields)
    _apply_credentials(target, credentials or {})
    target.save()
    record(
        actor,
        "target.create",
        target,
        Phrase(gettext_noop("registered target %(target)s"), target=target.name),
        target=target,
    )
    if credentials:
        _record_credentials(actor, target, credentials)
    # Its recurring reviews are scheduled (optimizations/apps.py).
    hooks.call("target_created", target, actor)
    return target


@transaction.atomic
def do_update_target(actor, target: TargetService, *, credentials=None, **fields) -> dict:
    before = _snapshot(target, TARGET_FIELDS)
    for name, value in fields.items():
        setattr(target, name, value)
    _apply_credentials(target, credentials or {})
    target.save()
    changes = describe_changes(before, _snapshot(target, TARGET_FIELDS))
    if changes:
        record(
            actor,
            "target.edit",
            target,
            Phrase(
                gettext_noop("edited %(fields)s of target %(target)s"),
                fields=", ".join(changes),
                target=target.name,
            ),
            changes=changes,
            target=target,
        )
    if credentials:
        _record_credentials(actor, target, credentials)
    return changes


def _apply_credentials(target: TargetService, credentials: dict) -> None:
    if "database_url" in credentials:
        target.database_url_encrypted = encrypt(credentials["database_url"])
    if "auth_header_value" in credentials:
        target.auth_header_value_encrypted = encrypt(credentials["auth_header_value"])


_PHASE_STATUSES = dict(Phase.STATUSES)
_CREDENTIALS = {
    "database_url": gettext_noop("database URL"),
    "auth_header_value": gettext_noop("auth header value"),
}


def _credential_names(names: list[str]):
    """ "database URL and auth header value", each name translated where shown."""
    first = _CREDENTIALS.get(names[0], names[0].replace("_", " "))
    first = Phrase(first) if names[0] in _CREDENTIALS else first
    if len(names) == 1:
        return first
    rest = _credential_names(names[1:])
    return Phrase(gettext_noop("%(first)s and %(rest)s"), first=first, rest=rest)


def _record_credentials(actor, target, credentials: dict) -> None:
    # Which credential changed, never its value.
    what = {name: ["•••", "removed" if not value else "•••"] for name, value in credentials.items()}
    record(
        actor,
        "target.credentials",
        target,
        Phrase(
            gettext_noop("changed the %(credentials)s of %(target)s"),
            credentials=_credential_names(list(credentials)),
            target=target.name,
        ),
        changes=what,
        target=target,
    )
