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
from django.utils import timezone
from django.utils.translation import gettext

from departments.models import (
    Attestation,
    Control,
    Department,
    Membership,
    Runbook,
    RunbookRevision,
    TrainingAssignment,
    TrainingGate,
    TrainingModule,
    TrainingRecord,
)
from optimizations.models import (
    Finding,
    Incident,
    Initiative,
    Job,
    JobArtifact,
    Phase,
    PhaseTask,
    Run,
    Schedule,
    TargetService,
    Trace,
    WebhookEndpoint,
)
from portal.models import ApiToken


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


def start_refusal(user) -> str | None:
    """Why ``user`` may not start analyses, or None: the one sentence the JSON API, the
    command line and runbook steps say (the jobs' own preflight says the rest)."""
    if can_trigger_jobs(user):
        return None
    roles = ", ".join(f"{role} of {code}" for code, role in roles_of(user).items())
    return (
        f"{user.username} may not start analyses ({roles or 'no department'}): only managers "
        "and engineers of dev, QA or strategy may."
    )


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


def can_plan_findings(user) -> bool:
    """Turn findings into tasks and assign them: managers and engineers (who triage them)."""
    return can_trigger_jobs(user)


def can_triage_findings(user) -> bool:
    """Set a finding's status by hand (accepted, won't fix, …): whoever runs the scans."""
    return can_trigger_jobs(user)


def can_sign_gates(user) -> bool:
    """DESIGN.md: managers sign phase gates."""
    return is_manager(user)


def can_edit_schedules(user) -> bool:
    """Schedules start jobs nobody watches: managers add and change them."""
    return is_manager(user)


def can_edit_roi(user) -> bool:
    """ROI assumptions (peak load, cost per instance, hourly rates): managers of any
    department and engineers of strategy, which owns the ROI figures (DESIGN.md)."""
    if is_manager(user):
        return True
    return roles_of(user).get(Department.STRATEGY) == Membership.ENGINEER


def require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


# --- reading one object ---------------------------------------------------------
#
# With no keyword a helper only reads, which everyone signed in may: it answers
# the object or 404. A keyword asks for a right (``write`` and the named ones
# below): a user without it gets 403 before the object is looked up, so a
# refused user learns nothing about which ids exist (a task's right depends on
# its department, so a task is looked up first). ``queryset`` lets a page choose
# the columns and joins it needs (a poll reads less than a page); the decision
# stays here.


def get_initiative_for_user(request, pk, *, write=False, plan=False, roi=False):
    """``write``: edit it (managers); ``plan``: make tasks from, assign and triage its
    findings; ``roi``: change its ROI assumptions."""
    require(not write or can_manage_initiatives(request.user))
    require(not plan or can_plan_findings(request.user))
    require(not roi or can_edit_roi(request.user))
    return get_object_or_404(Initiative.objects.select_related("target", "owner"), pk=pk)


def get_phase_for_user(request, pk, *, write=False, sign=False):
    """``write``: move its status and add tasks; ``sign``: sign its gate off."""
    require(not write or can_manage_initiatives(request.user))
    require(not sign or can_sign_gates(request.user))
    return get_object_or_404(Phase.objects.select_related("initiative", "lead_department"), pk=pk)


def get_task_for_user(request, pk, *, write=False):
    """``write``: change its status, assignee and hours (can_update_task)."""
    task = get_object_or_404(
        PhaseTask.objects.select_related(
            "department", "assignee", "phase__initiative", "phase__lead_department"
        ),
        pk=pk,
    )
    require(not write or can_update_task(request.user, task))
    return task


def get_target_for_user(request, slug, *, write=False, run=False, schedule=False):
    """``write``: edit its settings; ``run``: start jobs on it; ``schedule``: add schedules."""
    require(not write or can_edit_targets(request.user))
    require(not run or can_trigger_jobs(request.user))
    require(not schedule or can_edit_schedules(request.user))
    return get_object_or_404(TargetService.objects.select_related("owner_department"), slug=slug)


def get_trace_for_user(request, slug, trace_id):
    """One trace a target sent (its waterfall): read only, like the target's findings."""
    return get_object_or_404(
        Trace.objects.select_related("target"), target__slug=slug, trace_id=trace_id
    )


def get_schedule_for_user(request, pk, *, write=False):
    """``write``: change or remove it."""
    require(not write or can_edit_schedules(request.user))
    return get_object_or_404(Schedule.objects.select_related("target"), pk=pk)


def get_run_for_user(request, pk, *, write=False, queryset=None):
    """``write``: cancel it, run it again, pin it as the target's baseline."""
    require(not write or can_trigger_jobs(request.user))
    return get_object_or_404(queryset if queryset is not None else Run.objects.all(), pk=pk)


def get_job_for_user(request, pk, *, write=False, queryset=None):
    """``write``: cancel it or run it again."""
    require(not write or can_trigger_jobs(request.user))
    return get_object_or_404(queryset if queryset is not None else Job.objects.all(), pk=pk)


def get_artifact_for_user(request, job_pk, name):
    """A file a job stored (a report, a SARIF log): read only."""
    return get_object_or_404(JobArtifact.objects.select_related("job"), job_id=job_pk, name=name)


def get_finding_for_user(request, pk, *, write=False, queryset=None):
    """``write``: triage it (set its status by hand)."""
    require(not write or can_triage_findings(request.user))
    return get_object_or_404(
        queryset if queryset is not None else Finding.objects.select_related("target"), pk=pk
    )


# --- departments and people -----------------------------------------------------


def get_department_for_user(request, code):
    return get_object_or_404(Department, code=code)


def get_membership_for_user(request, pk, *, write=False):
    """``write``: change or end it (managers)."""
    require(not write or can_manage_people(request.user))
    return get_object_or_404(Membership.objects.select_related("user", "department"), pk=pk)


def get_own_token_for_user(request, pk):
    """One of the signed-in person's own API tokens: anybody else's is as missing (404),
    managers included; a token is its owner's alone to revoke."""
    return get_object_or_404(ApiToken, pk=pk, user=request.user)


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


def get_runbook_for_user(request, slug, *, write=False, propose=False, run=False):
    """``write``: edit it and review proposals (HR); ``propose``: propose a change;
    ``run``: start the jobs its steps describe."""
    require(not write or can_edit_runbooks(request.user))
    require(not propose or can_propose_runbook_edits(request.user))
    require(not run or can_run_runbook_steps(request.user))
    return get_object_or_404(
        Runbook.objects.select_related("owner_department", "owner", "current_revision"), slug=slug
    )


def get_revision_for_user(request, runbook, number, *, write=False):
    """A revision of ``runbook``; ``write`` (restore, approve, reject) is HR's."""
    require(not write or can_edit_runbooks(request.user))
    revision = get_object_or_404(
        RunbookRevision.objects.select_related("author", "based_on", "reviewed_by"),
        runbook=runbook,
        number=number,
    )
    revision.runbook = runbook
    return revision


def get_module_for_user(request, slug, *, write=False):
    """``write``: edit it, assign it, gate targets on it (HR)."""
    require(not write or can_edit_training(request.user))
    return get_object_or_404(TrainingModule.objects.select_related("owner_department"), slug=slug)


def get_assignment_for_user(request, pk, *, write=False):
    """``write``: withdraw it (HR)."""
    require(not write or can_edit_training(request.user))
    return get_object_or_404(
        TrainingAssignment.objects.select_related("module", "user", "department"), pk=pk
    )


def get_training_gate_for_user(request, pk, *, write=False):
    """``write``: remove it (HR, who own training)."""
    require(not write or can_edit_training(request.user))
    return get_object_or_404(TrainingGate.objects.select_related("target", "module"), pk=pk)


def get_own_training_record(request, module):
    """The signed-in person's current record of ``module``, or None: only they take it."""
    return (
        TrainingRecord.objects.filter(user=request.user, module=module, current=True)
        .select_related("module")
        .first()
    )


def missing_training(user, target, kind: str, now=None) -> list:
    """The modules a training gate on ``target`` asks of ``user`` for jobs of ``kind``,
    and that ``user`` has no current completion of. Empty: nothing stands in the way."""
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
    names = ", ".join(
        gettext("“%(title)s” (%(url)s)") % {"title": m.title, "url": m.get_absolute_url()}
        for m in missing
    )
    return gettext(
        "%(target)s asks for training first: complete %(modules)s before this job; "
        "a completion counts until its recertification date."
    ) % {"target": target.name, "modules": names}


# --- the compliance register (HR) -----------------------------------------------


def can_edit_compliance(user) -> bool:
    """HR's editors and managers keep the register (add and change controls, judge now)."""
    return can_edit_runbooks(user)


def can_attest(user, control) -> bool:
    """Editors and managers of the control's own department attest it; viewers never."""
    if getattr(user, "is_superuser", False):
        return True
    return roles_of(user).get(control.department.code) in (Membership.EDITOR, Membership.MANAGER)


def get_control_for_user(request, slug, *, write=False, attest=False):
    """``write``: edit it (HR); ``attest``: vouch for it (its department's editors and
    managers — looked up first, since the right depends on the department)."""
    require(not write or can_edit_compliance(request.user))
    control = get_object_or_404(Control.objects.select_related("department", "owner"), slug=slug)
    require(not attest or can_attest(request.user, control))
    return control


def get_attestation_for_user(request, pk):
    """An attestation (with its attachment): everyone signed in reads the register."""
    return get_object_or_404(Attestation.objects.select_related("control", "person"), pk=pk)


# --- incidents (HR runs incident response; the engineers and managers respond) ---------


def can_respond_to_incidents(user) -> bool:
    """Acknowledge, assign, escalate, note, resolve and write postmortems: managers,
    engineers of dev, QA and strategy, and HR's editors (incident response is HR's)."""
    return can_trigger_jobs(user) or can_edit_runbooks(user)


def can_edit_webhooks(user) -> bool:
    """Outgoing webhooks send incidents out of Kaizen: managers and HR's editors add them."""
    return is_manager(user) or can_edit_runbooks(user)


def get_incident_for_user(request, pk, *, write=False):
    """Everyone signed in reads an incident; ``write`` (every change) is for responders."""
    require(not write or can_respond_to_incidents(request.user))
    return get_object_or_404(
        Incident.objects.select_related(
            "target__owner_department", "acknowledged_by", "assignee", "runbook"
        ),
        pk=pk,
    )


def get_webhook_for_user(request, pk, *, write=False):
    """``write``: switch it on or off (managers and HR's editors)."""
    require(not write or can_edit_webhooks(request.user))
    return get_object_or_404(WebhookEndpoint.objects.select_related("department"), pk=pk)
