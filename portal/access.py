"""Who may see or change what — decided here and nowhere else.

Everyone signed in reads. Managers (of any department) create and edit
initiatives, move phases, edit schedules and memberships. Engineers of dev,
qa and strategy register and edit targets, trigger jobs and update their
department's tasks. HR editors own runbooks and training (and HR's tasks).
Views call the ``get_*_for_user`` helpers and the ``can_*`` predicates; the
same predicates gate the buttons in templates, so what is hidden is also
refused.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from departments.models import Department, Membership


def roles_of(user) -> dict[str, str]:
    """{department code: role} for ``user``, read once per request."""
    if not getattr(user, "is_authenticated", False):
        return {}
    cached = getattr(user, "_kaizen_roles", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=user).values_list("department__code", "role"))
        user._kaizen_roles = cached
    return cached


def forget_roles(user) -> None:
    """Drop the per-request cache after memberships changed."""
    if hasattr(user, "_kaizen_roles"):
        del user._kaizen_roles


def is_manager(user) -> bool:
    return (
        bool(getattr(user, "is_superuser", False)) or Membership.MANAGER in roles_of(user).values()
    )


def is_engineer(user) -> bool:
    """An engineer of dev, qa or strategy."""
    return any(
        role == Membership.ENGINEER and code in Department.ENGINEERING
        for code, role in roles_of(user).items()
    )


def can_manage_initiatives(user) -> bool:
    return is_manager(user)


def can_manage_people(user) -> bool:
    return is_manager(user)


def can_view_audit(user) -> bool:
    return is_manager(user)


def can_edit_targets(user) -> bool:
    return is_manager(user) or is_engineer(user)


def can_trigger_jobs(user) -> bool:
    return is_manager(user) or is_engineer(user)


def can_edit_runbooks(user) -> bool:
    role = roles_of(user).get(Department.HR)
    return bool(getattr(user, "is_superuser", False)) or role in (
        Membership.EDITOR,
        Membership.MANAGER,
    )


def can_update_task(user, task) -> bool:
    """Managers update any task; engineers their department's; HR editors HR's."""
    if is_manager(user):
        return True
    code = task.department.code
    role = roles_of(user).get(code)
    if code in Department.ENGINEERING:
        return role == Membership.ENGINEER
    return code == Department.HR and role == Membership.EDITOR


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def get_initiative_for_user(request, pk, *, write=False):
    from optimizations.models import Initiative

    initiative = get_object_or_404(Initiative.objects.select_related("target", "owner"), pk=pk)
    if write:
        require(can_manage_initiatives(request.user))
    return initiative


def get_phase_for_user(request, pk, *, write=False):
    from optimizations.models import Phase

    phase = get_object_or_404(Phase.objects.select_related("initiative", "lead_department"), pk=pk)
    if write:
        require(can_manage_initiatives(request.user))
    return phase


def get_task_for_user(request, pk, *, write=False):
    from optimizations.models import PhaseTask

    task = get_object_or_404(
        PhaseTask.objects.select_related(
            "department", "assignee", "phase__initiative", "phase__lead_department"
        ),
        pk=pk,
    )
    if write:
        require(can_update_task(request.user, task))
    return task


def get_target_for_user(request, slug, *, write=False):
    from optimizations.models import TargetService

    target = get_object_or_404(TargetService.objects.select_related("owner_department"), slug=slug)
    if write:
        require(can_edit_targets(request.user))
    return target


# --- runbooks and training (HR) -------------------------------------------------


def can_propose_runbook_edits(user) -> bool:
    """Engineers and managers propose changes that HR approves; HR edits directly."""
    return can_edit_runbooks(user) or is_engineer(user) or is_manager(user)


def can_edit_training(user) -> bool:
    """HR editors own training as they own runbooks."""
    return can_edit_runbooks(user)


def can_view_training_report(user) -> bool:
    """The HR dashboard names overdue people: HR and managers see it."""
    return can_edit_training(user) or is_manager(user)


def can_run_runbook_steps(user) -> bool:
    return can_trigger_jobs(user)


def get_runbook_for_user(request, slug, *, write=False, propose=False):
    from departments.models import Runbook

    runbook = get_object_or_404(
        Runbook.objects.select_related("owner_department", "owner", "current_revision"), slug=slug
    )
    if write:
        require(can_edit_runbooks(request.user))
    elif propose:
        require(can_propose_runbook_edits(request.user))
    return runbook


def get_revision_for_user(request, runbook, number, *, write=False):
    """A revision of ``runbook``; ``write`` (restore, approve, reject) is HR's."""
    from departments.models import RunbookRevision

    revision = get_object_or_404(
        RunbookRevision.objects.select_related("author", "based_on", "reviewed_by"),
        runbook=runbook,
        number=number,
    )
    revision.runbook = runbook
    if write:
        require(can_edit_runbooks(request.user))
    return revision


def get_module_for_user(request, slug, *, write=False):
    from departments.models import TrainingModule

    module = get_object_or_404(TrainingModule.objects.select_related("owner_department"), slug=slug)
    if write:
        require(can_edit_training(request.user))
    return module


def get_assignment_for_user(request, pk, *, write=False):
    from departments.models import TrainingAssignment

    assignment = get_object_or_404(
        TrainingAssignment.objects.select_related("module", "user", "department"), pk=pk
    )
    if write:
        require(can_edit_training(request.user))
    return assignment


def get_own_training_record(request, module):
    """The signed-in person's current record of ``module``, or None: only they take it."""
    from departments.models import TrainingRecord

    return (
        TrainingRecord.objects.filter(user=request.user, module=module, current=True)
        .select_related("module")
        .first()
    )


def missing_training(user, target, kind: str, now=None) -> list:
    """The modules a training gate on ``target`` asks of ``user`` for jobs of ``kind``,
    and that ``user`` has no current completion of. Empty: nothing stands in the way."""
    from django.utils import timezone

    from departments.models import TrainingGate, TrainingRecord

    modules = [
        gate.module
        for gate in TrainingGate.objects.filter(target=target, job_kind=kind).select_related(
            "module"
        )
    ]
    if not modules:
        return []
    now = now or timezone.now()
    passed = {
        record.module_id
        for record in TrainingRecord.objects.filter(
            user=user, module__in=modules, current=True, state=TrainingRecord.COMPLETED
        ).select_related("module")
        if record.is_valid_completion(now)
    }
    return [module for module in modules if module.pk not in passed]


def training_gate_refusal(user, target, kind: str, now=None) -> str | None:
    """Why ``user`` may not start a job of ``kind`` on ``target`` for want of training
    (with where to take it), or None. Runs nobody started by hand (schedules) pass."""
    if not getattr(user, "is_authenticated", False):
        return None
    missing = missing_training(user, target, kind, now)
    if not missing:
        return None
    names = " and ".join(f"“{m.title}” ({m.get_absolute_url()})" for m in missing)
    return (
        f"{target.name} asks for training before this job: complete {names} first; "
        "a completion counts until its recertification date."
    )


def can_plan_findings(user) -> bool:
    """Turn findings into tasks and assign them: managers and engineers (who triage them)."""
    return can_trigger_jobs(user)


def can_sign_gates(user) -> bool:
    """DESIGN.md: managers sign phase gates."""
    return is_manager(user)


def can_edit_roi(user) -> bool:
    """ROI assumptions (peak load, cost per instance, hourly rates): managers of any
    department and engineers of strategy, which owns the ROI figures (DESIGN.md)."""
    if is_manager(user):
        return True
    return roles_of(user).get(Department.STRATEGY) == Membership.ENGINEER
