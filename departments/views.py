"""Department pages and the people list where managers change memberships."""

from __future__ import annotations

from collections import defaultdict

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from departments import actions
from departments.forms import MembershipForm, PersonForm
from departments.models import Department, Membership
from optimizations.models import Initiative, PhaseTask
from portal import access


@require_GET
def department_list(request):
    departments = Department.objects.annotate(
        member_count=Count("members", distinct=True),
        open_tasks=Count(
            "tasks",
            filter=Q(tasks__status__in=PhaseTask.OPEN_STATUSES)
            & ~Q(tasks__phase__initiative__status__in=(Initiative.DONE, Initiative.ARCHIVED)),
            distinct=True,
        ),
    )
    return render(request, "departments/department_list.html", {"departments": departments})


@require_GET
def department_detail(request, code):
    department = get_object_or_404(Department, code=code)
    members = department.members.select_related("user").order_by("role", "user__username")
    open_tasks = (
        PhaseTask.objects.filter(department=department, status__in=PhaseTask.OPEN_STATUSES)
        .exclude(phase__initiative__status__in=(Initiative.DONE, Initiative.ARCHIVED))
        .select_related("phase__initiative", "assignee")
        .order_by("due_date", "pk")[:100]
    )
    context = {
        "department": department,
        "members": members,
        "open_tasks": open_tasks,
        "can_manage_people": access.can_manage_people(request.user),
    }
    return render(request, "departments/department_detail.html", context)


@require_GET
def people(request):
    users = get_user_model().objects.filter(is_active=True).order_by("username")
    memberships = defaultdict(list)
    for membership in Membership.objects.select_related("department"):
        memberships[membership.user_id].append(membership)
    rows = [(user, memberships[user.pk]) for user in users]
    can_manage = access.can_manage_people(request.user)
    context = {
        "rows": rows,
        "can_manage": can_manage,
        "person_form": PersonForm() if can_manage else None,
        "membership_form": MembershipForm() if can_manage else None,
        "roles": Membership.ROLES,
        "departments": Department.objects.all(),
    }
    return render(request, "departments/people.html", context)


@require_http_methods(["GET", "POST"])
def person_add(request):
    access.require(access.can_manage_people(request.user))
    form = PersonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = actions.do_add_person(request.user, **form.cleaned_data)
        messages.success(request, f"{user.username} added.")
        return redirect("people")
    return render(request, "departments/person_form.html", {"form": form})


@require_POST
def membership_set(request):
    access.require(access.can_manage_people(request.user))
    form = MembershipForm(request.POST)
    if form.is_valid():
        membership = actions.do_set_membership(
            request.user,
            form.cleaned_data["user"],
            form.cleaned_data["department"],
            form.cleaned_data["role"],
        )
        messages.success(request, f"{membership}.")
    else:
        messages.error(request, "Membership not changed: " + form.errors.as_text())
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "people"
    return redirect(next_url)


@require_POST
def membership_remove(request, pk):
    access.require(access.can_manage_people(request.user))
    membership = get_object_or_404(Membership.objects.select_related("user", "department"), pk=pk)
    actions.do_remove_membership(request.user, membership)
    messages.success(request, f"{membership.user.username} left {membership.department.name}.")
    return redirect("people")
