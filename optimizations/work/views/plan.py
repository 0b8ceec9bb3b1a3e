"""Pages for initiatives, their phases and tasks."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from departments.models import Department, Membership
from optimizations.models import Initiative, Phase, PhaseTask, Run, TargetService
from optimizations.work import actions
from optimizations.work.forms import InitiativeForm, PhaseStatusForm, TaskCreateForm, TaskUpdateForm
from optimizations.work.plan import attach_phases, progress_percent, with_progress
from portal import access
from portal.http import HtmxHttpRequest
from portal.models import AuditEvent

# --- initiatives --------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
def initiative_list(request: HtmxHttpRequest) -> HttpResponse:
    initiatives = Initiative.objects.select_related("target", "owner")
    status = request.GET.get("status", "")
    department = request.GET.get("department", "")
    target = request.GET.get("target", "")
    if status:
        initiatives = initiatives.filter(status=status)
    if department:
        initiatives = initiatives.filter(phases__tasks__department__code=department).distinct()
    if target:
        initiatives = initiatives.filter(target__slug=target)
    page = Paginator(initiatives.order_by("-created_at"), 25).get_page(request.GET.get("page"))
    # Open tasks are counted with the page's phases (attach_phases), not annotated
    # here: an annotation counts the tasks of every initiative before the page is cut.
    page.object_list = list(page.object_list)
    attach_phases(page.object_list)
    context = {
        "page": page,
        "filters": {"status": status, "department": department, "target": target},
        "statuses": Initiative.STATUSES,
        "departments": Department.objects.all(),
        "targets": TargetService.objects.order_by("name"),
        "can_create": access.can_manage_initiatives(request.user),
    }
    template = "optimizations/work/initiative_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@require_GET
def initiative_detail(request, pk):
    initiative = access.get_initiative_for_user(request, pk)
    phases = list(
        with_progress(initiative.phases.select_related("lead_department")).order_by("number")
    )
    tasks = (
        PhaseTask.objects.filter(phase__initiative=initiative)
        .select_related("department", "assignee")
        .order_by("phase__number", "position", "pk")
    )
    assignees = _assignees_by_department()
    latest_runs = {}
    recent = Run.objects.filter(initiative=initiative).order_by("-created_at", "-pk")[:200]
    for run in reversed(recent):
        latest_runs[("task", run.task_id)] = run
        latest_runs[("phase", run.phase_id)] = run
        latest_runs[("initiative", None)] = run
    by_phase = defaultdict(list)
    for task in tasks:
        task.last_run = latest_runs.get(("task", task.pk))
        task.can_edit = access.can_update_task(request.user, task)
        # Tasks made from findings come by the dozen: their form loads when opened.
        if task.can_edit and not task.finding_id:
            task.form = TaskUpdateForm(
                instance=task, assignees=assignees.get(task.department_id, []), prefix=f"t{task.pk}"
            )
        by_phase[task.phase_id].append(task)
    for phase in phases:
        phase.progress = progress_percent(phase.total_weight, phase.done_weight, phase.status)
        # Done tasks made from findings fold away under the phase's open work.
        phase.task_list = [
            t for t in by_phase[phase.pk] if not (t.finding_id and t.status == "done")
        ]
        phase.closed_from_findings = [
            t for t in by_phase[phase.pk] if t.finding_id and t.status == "done"
        ]
        phase.last_run = latest_runs.get(("phase", phase.pk))
    context = {
        "initiative": initiative,
        "phases": phases,
        "last_run": latest_runs.get(("initiative", None)),
        "can_trigger": access.can_trigger_jobs(request.user),
        "events": AuditEvent.objects.filter(initiative=initiative).select_related("actor")[:20],
        "can_manage": access.can_manage_initiatives(request.user),
        "phase_statuses": Phase.STATUSES,
        "departments": list(Department.objects.all()),
    }
    return render(request, "optimizations/work/initiative_detail.html", context)


def _assignees_by_department() -> dict[int, list]:
    """Users a task may be assigned to: the members of its department."""
    grouped = defaultdict(list)
    for membership in Membership.objects.select_related("user").filter(user__is_active=True):
        grouped[membership.department_id].append(membership.user)
    return grouped


@require_http_methods(["GET", "POST"])
def initiative_create(request):
    access.require(access.can_manage_initiatives(request.user))
    form = InitiativeForm(request.POST or None, initial=_initiative_defaults(request))
    if request.method == "POST" and form.is_valid():
        initiative = actions.do_create_initiative(request.user, **form.cleaned_data)
        messages.success(
            request,
            gettext("Initiative “%(title)s” created with its four phases.")
            % {"title": initiative.title},
        )
        return redirect(initiative)
    return render(
        request, "optimizations/work/initiative_form.html", {"form": form, "creating": True}
    )


def _initiative_defaults(request) -> dict:
    """Development leads initiatives: a development manager owns a new one by default."""
    dev_manager = (
        get_user_model()
        .objects.filter(
            memberships__department__code=Department.DEV, memberships__role=Membership.MANAGER
        )
        .order_by("pk")
        .first()
    )
    initial = {"owner": dev_manager or request.user, "status": Initiative.ACTIVE}
    if request.GET.get("target"):
        initial["target"] = TargetService.objects.filter(slug=request.GET["target"]).first()
    return initial


@require_http_methods(["GET", "POST"])
def initiative_edit(request, pk):
    initiative = access.get_initiative_for_user(request, pk, write=True)
    form = InitiativeForm(request.POST or None, instance=initiative)
    if request.method == "POST" and form.is_valid():
        # The form only validated; the write and its audit go through the action.
        fresh = Initiative.objects.get(pk=initiative.pk)
        actions.do_update_initiative(request.user, fresh, **form.cleaned_data)
        messages.success(request, gettext("Initiative saved."))
        return redirect(fresh)
    return render(
        request,
        "optimizations/work/initiative_form.html",
        {"form": form, "creating": False, "initiative": initiative},
    )


@require_POST
def phase_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    phase = access.get_phase_for_user(request, pk, write=True)
    form = PhaseStatusForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Unknown phase status.")
    if form.cleaned_data["status"] == Phase.DONE and phase.status != Phase.DONE:
        # A phase finishes through its gate (optimizations.work.gates): evidence or an override.
        return HttpResponseBadRequest("A phase is finished by signing its gate off.")
    actions.do_set_phase_status(request.user, phase, form.cleaned_data["status"])
    if request.htmx:
        phase = with_progress(Phase.objects.filter(pk=phase.pk)).get()
        phase.progress = progress_percent(phase.total_weight, phase.done_weight, phase.status)
        return render(
            request,
            "optimizations/work/initiative_detail.html#phase_head",
            {"phase": phase, "can_manage": True, "phase_statuses": Phase.STATUSES},
        )
    return redirect(phase.initiative)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def task_update(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The inline change of a task's status, assignee or hours.

    Answers an HTMX request with the task card and, out of band, its phase's
    new progress bar, so the page updates without a reload. A GET gives the
    card with its form (tasks made from findings load theirs when opened).
    """
    task = access.get_task_for_user(request, pk, write=True)
    assignees = _assignees_by_department().get(task.department_id, [])
    if request.method == "GET" and not request.htmx:  # opened directly: the board, at the task
        return redirect(f"{task.phase.initiative.get_absolute_url()}#task-{task.pk}")
    if request.method == "GET":
        task = PhaseTask.objects.select_related("department", "assignee", "phase").get(pk=task.pk)
        _as_open_card(
            task, TaskUpdateForm(instance=task, assignees=assignees, prefix=f"t{task.pk}")
        )
        return render(
            request,
            "optimizations/work/initiative_detail.html#task_card",
            {"task": task, "open_card": True, "can_trigger": access.can_trigger_jobs(request.user)},
        )
    form = TaskUpdateForm(request.POST, instance=task, assignees=assignees, prefix=f"t{task.pk}")
    saved = form.is_valid()
    if saved:
        fresh = PhaseTask.objects.select_related("phase__initiative__target").get(pk=task.pk)
        actions.do_update_task(request.user, fresh, **form.cleaned_data)
        task = PhaseTask.objects.select_related("department", "assignee", "phase").get(pk=task.pk)
        form = TaskUpdateForm(instance=task, assignees=assignees, prefix=f"t{task.pk}")
    elif not request.htmx:
        messages.error(
            request, "; ".join(str(e) for errors in form.errors.values() for e in errors)
        )
    if not request.htmx:
        return redirect(task.phase.initiative)
    _as_open_card(task, form)
    phase = with_progress(Phase.objects.filter(pk=task.phase_id)).get()
    phase.progress = progress_percent(phase.total_weight, phase.done_weight, phase.status)
    return render(
        request,
        "optimizations/work/task_update.html",
        {
            "task": task,
            "phase": phase,
            "oob": True,
            "can_trigger": access.can_trigger_jobs(request.user),
        },
        status=200 if saved else 422,
    )


def _as_open_card(task, form) -> None:
    """What the task's card shows when its editor opens: the form and the task's last run."""
    task.can_edit = True
    task.form = form
    task.last_run = task.runs.order_by("-created_at", "-pk").first()


@require_POST
def task_create(request, pk):
    phase = access.get_phase_for_user(request, pk, write=True)
    form = TaskCreateForm(request.POST)
    if form.is_valid():
        actions.do_create_task(request.user, phase, **form.cleaned_data)
        messages.success(request, gettext("Task added."))
    else:
        messages.error(
            request,
            gettext("The task was not added: %(errors)s") % {"errors": form.errors.as_text()},
        )
    return redirect(phase.initiative)
