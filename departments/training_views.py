"""HR's training pages: my training, modules, assignments, the quiz, the dashboard."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from departments import actions
from departments.forms import (
    AssignmentForm,
    CompletionForm,
    QuizForm,
    TrainingGateForm,
    TrainingModuleForm,
)
from departments.markdown import render as render_markdown
from departments.models import (
    Department,
    Membership,
    Runbook,
    TrainingModule,
    TrainingRecord,
)
from departments.quiz import parse as parse_quiz
from portal import access
from portal.i18n import shown


def _page(request) -> dict:
    """What every training page's layout needs: the nav section and the tabs."""
    return {
        "nav_section": "training",
        "can_report": access.can_view_training_report(request.user),
    }


@require_GET
def training_mine(request):
    """Everyone's own training: what is open, what is done, what expired."""
    records = list(
        TrainingRecord.objects.filter(user=request.user)
        .select_related("module")
        .order_by("-current", "due_date", "-completed_at")
    )
    now = timezone.now()
    context = {
        **_page(request),
        "open": [r for r in records if r.current and r.state in TrainingRecord.OPEN_STATES],
        "done": [r for r in records if r.current and r.state == TrainingRecord.COMPLETED],
        "history": [r for r in records if not r.current],
        "available": TrainingModule.objects.filter(status=TrainingModule.PUBLISHED).exclude(
            pk__in=[r.module_id for r in records if r.current]
        ),
        "now": now,
        "today": timezone.localdate(),
        "can_edit": access.can_edit_training(request.user),
        "can_report": access.can_view_training_report(request.user),
    }
    return render(request, "departments/training_mine.html", context)


@require_GET
def training_module_list(request):
    modules = TrainingModule.objects.select_related("owner_department").annotate(
        assigned=Count("records", filter=Q(records__current=True), distinct=True),
        completed=Count(
            "records",
            filter=Q(records__current=True, records__state=TrainingRecord.COMPLETED),
            distinct=True,
        ),
    )
    if not access.can_edit_training(request.user):
        modules = modules.filter(status=TrainingModule.PUBLISHED)
    context = {
        **_page(request),
        "modules": modules.order_by("title"),
        "can_edit": access.can_edit_training(request.user),
    }
    return render(request, "departments/training_module_list.html", context)


@require_http_methods(["GET", "POST"])
def training_module_create(request):
    access.require(access.can_edit_training(request.user))
    runbook = Runbook.objects.filter(slug=request.GET.get("runbook", "")).first()
    initial = {
        "owner_department": Department.objects.filter(code=Department.HR).first(),
        "pass_mark": 80,
    }
    if runbook is not None:
        initial.update(
            title=f"{runbook.title}: training",
            summary=f"Learn to follow the runbook “{runbook.title}”.",
            content=f"Read the runbook [{runbook.title}]({runbook.get_absolute_url()}) "
            "first, then answer the questions.\n",
            runbooks=[runbook],
        )
    form = TrainingModuleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        module = actions.do_create_module(request.user, runbooks=data.pop("runbooks"), **data)
        messages.success(
            request, gettext("Training module “%(module)s” created.") % {"module": module}
        )
        return redirect(module)
    return render(
        request,
        "departments/training_module_form.html",
        {**_page(request), "form": form, "creating": True},
    )


@require_http_methods(["GET", "POST"])
def training_module_edit(request, slug):
    module = access.get_module_for_user(request, slug, write=True)
    form = TrainingModuleForm(request.POST or None, instance=module)
    if request.method == "POST" and form.is_valid():
        fresh = TrainingModule.objects.get(pk=module.pk)
        data = dict(form.cleaned_data)
        actions.do_update_module(request.user, fresh, runbooks=data.pop("runbooks"), **data)
        messages.success(request, gettext("Training module saved."))
        return redirect(fresh)
    context = {**_page(request), "form": form, "creating": False, "module": module}
    return render(request, "departments/training_module_form.html", context)


@require_GET
def training_module(request, slug):
    module = access.get_module_for_user(request, slug)
    can_edit = access.can_edit_training(request.user)
    mine = access.get_own_training_record(request, module)
    context = {
        **_page(request),
        "module": module,
        "content": render_markdown(module.content).html,
        "question_count": len(parse_quiz(module.quiz)) if module.has_quiz() else 0,
        "mine": mine,
        "runbooks": module.runbooks.all(),
        "gates": module.gates.select_related("target"),
        "can_edit": can_edit,
        "now": timezone.now(),
        "today": timezone.localdate(),
    }
    if can_edit:
        context.update(
            assignments=module.assignments.filter(active=True)
            .select_related("user", "department", "assigned_by")
            .annotate(
                people=Count("records", filter=Q(records__current=True)),
                completed=Count(
                    "records",
                    filter=Q(records__current=True, records__state=TrainingRecord.COMPLETED),
                ),
            ),
            state_counts=dict(
                module.records.filter(current=True)
                .values_list("state")
                .annotate(n=Count("pk"))
                .values_list("state", "n")
            ),
            assign_form=AssignmentForm(),
            gate_form=TrainingGateForm(),
        )
    return render(request, "departments/training_module.html", context)


@require_POST
def training_assign(request, slug):
    module = access.get_module_for_user(request, slug, write=True)
    form = AssignmentForm(request.POST)
    if module.status != TrainingModule.PUBLISHED:
        messages.error(request, gettext("Publish the module before assigning it."))
    elif form.is_valid():
        data = form.cleaned_data
        assignment, count = actions.do_assign_training(
            request.user,
            module,
            due_date=data["due_date"],
            user=data["user"],
            department=data["department"],
            role=data["role"],
            note=data["note"],
        )
        messages.success(
            request,
            ngettext(
                "Assigned to %(audience)s: %(count)s person got it.",
                "Assigned to %(audience)s: %(count)s people got it.",
                count,
            )
            % {"audience": shown(assignment.audience()), "count": count},
        )
    else:
        errors = "; ".join(e for errors in form.errors.values() for e in errors)
        messages.error(request, gettext("Not assigned: %(errors)s") % {"errors": errors})
    return redirect(module)


@require_POST
def training_assignment_withdraw(request, pk):
    assignment = access.get_assignment_for_user(request, pk, write=True)
    removed = actions.do_withdraw_assignment(request.user, assignment)
    messages.success(
        request,
        gettext("Withdrawn from %(audience)s; %(removed)s unfinished record(s) removed.")
        % {"audience": shown(assignment.audience()), "removed": removed},
    )
    return redirect(assignment.module)


@require_POST
def training_start(request, slug):
    module = access.get_module_for_user(request, slug)
    if module.status != TrainingModule.PUBLISHED:
        raise Http404("This module is not published.")
    actions.do_start_training(request.user, module)
    return redirect("training_take", slug=module.slug)


@require_http_methods(["GET", "POST"])
def training_take(request, slug):
    """Read the module and pass its quiz — or, without one, say how you completed it."""
    module = access.get_module_for_user(request, slug)
    training = access.get_own_training_record(request, module)
    if training is None:
        messages.info(request, gettext("Press “Start” to take this module."))
        return redirect(module)
    questions = parse_quiz(module.quiz) if module.has_quiz() else []
    result = attempt = None
    done = training.state == TrainingRecord.COMPLETED
    if questions:
        form = QuizForm(questions, request.POST or None, prefix="quiz")
    else:
        form = CompletionForm(request.POST or None)
    if request.method == "POST" and not done and form.is_valid():
        if questions:
            attempt, result = actions.do_submit_quiz(request.user, training, form.answers())
        else:
            actions.do_complete_training(request.user, training, form.cleaned_data["evidence"])
            messages.success(request, gettext("“%(module)s” completed.") % {"module": module})
            return redirect("training_mine")
        training.refresh_from_db()
        done = training.state == TrainingRecord.COMPLETED
    context = {
        **_page(request),
        "module": module,
        "training": training,
        "content": render_markdown(module.content).html,
        "questions": questions,
        "form": form,
        "result": result,
        "attempt": attempt,
        "done": done,
        "attempts": training.attempts.all()[:10],
    }
    return render(request, "departments/training_take.html", context)


@require_GET
def training_dashboard(request):
    """HR's view: completion by department and by module, and who is overdue."""
    access.require(access.can_view_training_report(request.user))
    current = TrainingRecord.objects.filter(current=True)
    counts = {
        "total": Count("pk", distinct=True),
        "completed": Count("pk", filter=Q(state=TrainingRecord.COMPLETED), distinct=True),
        "in_progress": Count("pk", filter=Q(state=TrainingRecord.IN_PROGRESS), distinct=True),
        "assigned": Count("pk", filter=Q(state=TrainingRecord.ASSIGNED), distinct=True),
        "overdue": Count("pk", filter=Q(state=TrainingRecord.OVERDUE), distinct=True),
    }
    # A person in two departments counts in both.
    by_department = {
        row["user__memberships__department"]: row
        for row in current.values("user__memberships__department").annotate(**counts)
    }
    departments = list(Department.objects.all())
    for department in departments:
        department.row = _with_percent(by_department.get(department.pk, {}))
    modules = list(TrainingModule.objects.exclude(status=TrainingModule.ARCHIVED))
    by_module = {row["module"]: row for row in current.values("module").annotate(**counts)}
    for module in modules:
        module.row = _with_percent(by_module.get(module.pk, {}))
    overdue = list(
        current.filter(state=TrainingRecord.OVERDUE)
        .select_related("user", "module")
        .order_by("due_date", "user__username")[:200]
    )
    memberships = defaultdict(list)
    for membership in Membership.objects.filter(
        user__in={record.user_id for record in overdue}
    ).select_related("department"):
        memberships[membership.user_id].append(membership.department)
    for record in overdue:
        record.departments = memberships[record.user_id]
    context = {
        **_page(request),
        "departments": departments,
        "modules": modules,
        "overall": _with_percent(current.aggregate(**counts)),
        "overdue": overdue,
        "recent": TrainingRecord.objects.filter(state=TrainingRecord.COMPLETED)
        .select_related("user", "module")
        .order_by("-completed_at")[:10],
        "today": timezone.localdate(),
    }
    return render(request, "departments/training_dashboard.html", context)


def _with_percent(row: dict) -> dict:
    row = {
        key: row.get(key) or 0
        for key in ("total", "completed", "in_progress", "assigned", "overdue")
    }
    row["percent"] = row["completed"] * 100 // row["total"] if row["total"] else 0
    return row


@require_POST
def training_gate_add(request, slug):
    module = access.get_module_for_user(request, slug, write=True)
    form = TrainingGateForm(request.POST)
    if form.is_valid():
        gate = actions.do_set_training_gate(request.user, form.cleaned_data["target"], module)
        messages.success(
            request,
            gettext("%(jobs)s on %(target)s now need “%(title)s”.")
            % {"jobs": gate.get_job_kind_display(), "target": gate.target, "title": module},
        )
    else:
        messages.error(request, gettext("Choose a target for the gate."))
    return redirect(module)


@require_POST
def training_gate_remove(request, pk):
    gate = access.get_training_gate_for_user(request, pk, write=True)
    actions.do_remove_training_gate(request.user, gate)
    messages.success(request, gettext("Gate removed."))
    return redirect(gate.module)
