"""Department pages, the people list, HR's runbooks and training."""

from __future__ import annotations

import datetime
from collections import defaultdict
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from departments import actions, runbook_templates
from departments.diffs import diff as diff_texts
from departments.forms import (
    MembershipForm,
    PersonForm,
    ReviewNoteForm,
    RunbookContentForm,
    RunbookForm,
)
from departments.markdown import render as render_markdown
from departments.models import (
    Department,
    Membership,
    Runbook,
    RunbookRevision,
    Topic,
    TrainingModule,
)
from departments.search import search_runbooks, snippet
from optimizations.jobs import engine, preflight, refusals
from optimizations.models import Initiative, PhaseTask, TargetService
from optimizations.observe import incidents as observe_incidents
from portal import access
from portal.http import HtmxHttpRequest
from portal.models import AuditEvent


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
    department = access.get_department_for_user(request, code)
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
        messages.success(request, gettext("%(username)s added.") % {"username": user.username})
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
        messages.success(
            request,
            gettext("%(user)s — %(role)s of %(department)s.")
            % {
                "user": membership.user,
                "role": membership.get_role_display(),
                "department": membership.department,
            },
        )
    else:
        messages.error(
            request,
            gettext("Membership not changed: %(errors)s") % {"errors": form.errors.as_text()},
        )
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}):
        next_url = "people"
    return redirect(next_url)


@require_POST
def membership_remove(request, pk):
    membership = access.get_membership_for_user(request, pk, write=True)
    actions.do_remove_membership(request.user, membership)
    messages.success(
        request,
        gettext("%(username)s left %(name)s.")
        % {"username": membership.user.username, "name": membership.department.name},
    )
    return redirect("people")


# --- runbooks -------------------------------------------------------------------

RUNBOOKS = {"nav_section": "runbooks"}


def _runbook_rows(runbooks):
    """Runbooks for a table, with their topics and targets in two queries for all."""
    return runbooks.select_related("owner", "owner_department").prefetch_related(
        "topics", "targets"
    )


@require_GET
@vary_on_headers("HX-Request")
def runbook_list(request: HtmxHttpRequest) -> HttpResponse:
    today = timezone.localdate()
    filters = {
        key: request.GET.get(key, "").strip()
        for key in ("q", "topic", "target", "phase", "status", "review")
    }
    runbooks = Runbook.objects.all()
    if filters["status"]:
        runbooks = runbooks.filter(status=filters["status"])
    else:
        runbooks = runbooks.exclude(status=Runbook.ARCHIVED)
    if filters["topic"]:
        runbooks = runbooks.filter(topics__slug=filters["topic"])
    if filters["target"]:
        runbooks = runbooks.filter(targets__slug=filters["target"])
    if filters["phase"] in {"1", "2", "3", "4"}:
        # ``phases`` holds only the numbers 1–4, so the digit's text match is exact.
        runbooks = runbooks.filter(phases__icontains=filters["phase"])
    if filters["review"] == "due":
        runbooks = runbooks.filter(Q(next_review_date__lt=today) | Q(review_needed=True))
    if filters["q"]:
        runbooks = search_runbooks(runbooks, filters["q"])
    else:
        runbooks = runbooks.order_by("title")
    page = Paginator(_runbook_rows(runbooks), 30).get_page(request.GET.get("page"))
    if filters["q"]:
        bodies = dict(
            RunbookRevision.objects.filter(
                pk__in=[r.current_revision_id for r in page.object_list]
            ).values_list("pk", "body")
        )
        for runbook in page.object_list:
            runbook.snippet = snippet(
                runbook, filters["q"], bodies.get(runbook.current_revision_id, "")
            )
    context = {
        **RUNBOOKS,
        "page": page,
        "filters": filters,
        "query_string": urlencode({k: v for k, v in filters.items() if v}),
        "topics": Topic.objects.all(),
        "targets": TargetService.objects.order_by("name"),
        "phases": Runbook.PHASES,
        "statuses": Runbook.STATUSES,
        "today": today,
        "counts": _review_counts(today),
        "can_edit": access.can_edit_runbooks(request.user),
    }
    template = "departments/runbook_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


def _review_counts(today) -> dict:
    live = Runbook.objects.exclude(status=Runbook.ARCHIVED)
    counts = live.aggregate(
        published=Count("pk", filter=Q(status=Runbook.PUBLISHED)),
        overdue=Count("pk", filter=Q(next_review_date__lt=today)),
        needed=Count("pk", filter=Q(review_needed=True)),
    )
    counts["proposals"] = RunbookRevision.objects.filter(state=RunbookRevision.PROPOSED).count()
    return counts


@require_GET
def runbook_new(request):
    """HR picks one of the standard templates, or a blank page."""
    access.require(access.can_edit_runbooks(request.user))
    context = {
        **RUNBOOKS,
        "templates": runbook_templates.TEMPLATES.values(),
        "targets": TargetService.objects.order_by("name"),
        "target": request.GET.get("target", ""),
    }
    return render(request, "departments/runbook_new.html", context)


@require_http_methods(["GET", "POST"])
def runbook_create(request):
    access.require(access.can_edit_runbooks(request.user))
    template = runbook_templates.TEMPLATES.get(request.GET.get("template", ""))
    form = RunbookForm(request.POST or None, initial=_runbook_initial(request, template))
    if request.method == "POST" and form.is_valid():
        runbook = actions.do_create_runbook(
            request.user,
            title=form.cleaned_data["title"],
            body=form.cleaned_data["body"],
            note=form.cleaned_data["note"],
            template_key=template.key if template else "",
            **form.settings(),
        )
        messages.success(request, gettext("Runbook “%(runbook)s” created.") % {"runbook": runbook})
        return redirect(runbook)
    context = {**RUNBOOKS, "form": form, "creating": True, "template": template}
    return render(request, "departments/runbook_form.html", context)


def _runbook_initial(request, template) -> dict:
    target = TargetService.objects.filter(slug=request.GET.get("target", "")).first()
    hr = Department.objects.filter(code=Department.HR).first()
    initial = {
        "owner_department": hr,
        "owner": request.user,
        "status": Runbook.DRAFT,
        "targets": [target] if target else [],
        "topics": list(Topic.objects.filter(slug=request.GET.get("topic", ""))),
    }
    if template is not None:
        title, body = template.fill(target.name if target else "the service")
        initial.update(
            title=title,
            body=body,
            note=f"Started from the {template.name.lower()} template",
            topics=list(Topic.objects.filter(slug__in=template.topics)),
        )
    return initial


def _step_views(request, runbook, steps):
    """What each executable step needs to show: its target, and why it cannot run, if so."""
    slugs = {step.target for step in steps if step.target}
    targets = {t.slug: t for t in TargetService.objects.filter(slug__in=slugs)}
    default = None
    if any(not step.target for step in steps):
        linked = list(runbook.targets.all()[:2])
        default = linked[0] if len(linked) == 1 else None
    may_run = access.can_run_runbook_steps(request.user)
    views = {}
    for step in steps:
        target = targets.get(step.target) if step.target else default
        training = []
        problem = _step_problem(step, target)
        if not problem:
            # The engine's own preflight, without the start limits: the same words the
            # portal, the API and the command line use. What stops anybody is said
            # first, then the role, then this person's missing training.
            answer = preflight.check(
                request.user,
                target,
                specs=[(step.kind, dict(step.params))],
                trigger="runbook",
                with_limits=False,
            )
            for_anybody = [r.message for r in answer.reasons if r.code != refusals.TRAINING]
            problem = "; ".join(for_anybody)
            if not problem and not may_run:
                problem = (
                    access.start_refusal(request.user) or "Engineers and managers run this step."
                )
            elif not problem and not answer.ok:
                problem = answer.message
                training = access.missing_training(request.user, target, step.kind)
        views[step.index] = {
            "step": step,
            "target": target,
            "problem": problem,
            "training": training,
        }
    return views


def _step_problem(step, target) -> str:
    """Why the step cannot be asked of the preflight at all (it does not parse, or names
    no target), or ""."""
    if step.error:
        return f"This step cannot run: {step.error}."
    if target is None:
        if step.target:
            return f"No target “{step.target}”."
        return "Name the target (target=…): this runbook has no single target."
    return ""


@require_GET
def runbook_detail(request, slug):
    runbook = access.get_runbook_for_user(request, slug)
    revision = runbook.current_revision
    rendered = render_markdown(revision.body if revision else "")
    steps = _step_views(request, runbook, rendered.steps)
    incident = _incident_of(request, request.GET)
    parts = [
        {"html": part.html, "step": steps[part.step.index] if part.step else None}
        for part in rendered.parts
    ]
    context = {
        **RUNBOOKS,
        "runbook": runbook,
        "revision": revision,
        "parts": parts,
        "topics": runbook.topics.all(),
        "targets": runbook.targets.all(),
        "proposals": runbook.revisions.filter(state=RunbookRevision.PROPOSED).select_related(
            "author"
        ),
        "recent": runbook.revisions.filter(state=RunbookRevision.ACCEPTED).select_related("author")[
            :5
        ],
        "modules": runbook.training_modules.exclude(status=TrainingModule.ARCHIVED),
        "events": AuditEvent.objects.filter(
            object_type="runbook", object_id=str(runbook.pk)
        ).select_related("actor")[:10],
        "step_runs": _step_runs(runbook),
        "incident": incident,
        "can_edit": access.can_edit_runbooks(request.user),
        "can_propose": access.can_propose_runbook_edits(request.user),
        "today": timezone.localdate(),
    }
    return render(request, "departments/runbook_detail.html", context)


@require_http_methods(["GET", "POST"])
def runbook_edit(request, slug):
    """HR saves a new revision (and the settings); engineers and managers propose one."""
    runbook = access.get_runbook_for_user(request, slug, propose=True)
    current = runbook.current_revision
    hr = access.can_edit_runbooks(request.user)
    initial = {"title": runbook.title, "body": current.body if current else ""}
    if hr:
        form = RunbookForm(request.POST or None, instance=runbook, initial=initial)
    else:
        form = RunbookContentForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        if hr:
            fresh = Runbook.objects.select_related("current_revision").get(pk=runbook.pk)
            revision = actions.do_save_runbook(request.user, fresh, **form.content())
            changes = actions.do_update_runbook_settings(request.user, fresh, **form.settings())
            if revision:
                messages.success(
                    request, gettext("Saved as revision %(number)s.") % {"number": revision.number}
                )
            elif changes:
                messages.success(request, gettext("Settings saved; the text did not change."))
            else:
                messages.info(request, gettext("Nothing changed."))
            return redirect(fresh)
        content = form.cleaned_data
        if current and content["title"] == current.title and content["body"] == current.body:
            form.add_error("body", "This is the current text: change something to propose it.")
        else:
            proposal = actions.do_propose_runbook_edit(request.user, runbook, **content)
            messages.success(
                request,
                f"Your change is proposed as revision {proposal.number}; "
                "HR will review it before it shows.",
            )
            return redirect(proposal)
    context = {**RUNBOOKS, "form": form, "runbook": runbook, "creating": False, "proposing": not hr}
    return render(request, "departments/runbook_form.html", context)


@require_POST
def runbook_preview(request):
    """The editor's preview: the sanitised HTML of the posted text."""
    access.require(access.can_propose_runbook_edits(request.user))
    html = render_markdown(request.POST.get("body", "")[:200_000]).html
    return render(request, "departments/runbook_form.html#preview", {"preview": html})


@require_GET
def runbook_history(request, slug):
    runbook = access.get_runbook_for_user(request, slug)
    revisions = runbook.revisions.select_related("author", "reviewed_by", "copy_of")
    context = {
        **RUNBOOKS,
        "runbook": runbook,
        "revisions": revisions,
        "can_edit": access.can_edit_runbooks(request.user),
    }
    return render(request, "departments/runbook_history.html", context)


def _number(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@require_GET
def runbook_diff(request, slug):
    """The difference between any two revisions (default: the last change)."""
    runbook = access.get_runbook_for_user(request, slug)
    states = dict(runbook.revisions.order_by("number").values_list("number", "state"))
    numbers = list(states)
    if not numbers:
        raise Http404("This runbook has no revisions.")
    current = runbook.current_revision.number if runbook.current_revision else numbers[-1]
    newer = _number(request.GET.get("to"), current)
    # By default the change before ``newer``: the saved revision it replaced.
    saved_before = [n for n in numbers if n < newer and states[n] == RunbookRevision.ACCEPTED]
    older = _number(request.GET.get("from"), saved_before[-1] if saved_before else newer)
    old = access.get_revision_for_user(request, runbook, older)
    new = access.get_revision_for_user(request, runbook, newer)
    context = {
        **RUNBOOKS,
        "runbook": runbook,
        "old": old,
        "new": new,
        "diff": diff_texts(old.body, new.body),
        "numbers": numbers,
        "can_edit": access.can_edit_runbooks(request.user),
    }
    return render(request, "departments/runbook_diff.html", context)


@require_GET
def runbook_revision(request, slug, number):
    runbook = access.get_runbook_for_user(request, slug)
    revision = access.get_revision_for_user(request, runbook, number)
    current = runbook.current_revision
    # A proposal is judged against the text it would replace: the current one.
    against = current if revision.state == RunbookRevision.PROPOSED else None
    context = {
        **RUNBOOKS,
        "runbook": runbook,
        "revision": revision,
        "rendered": render_markdown(revision.body).html,
        "is_current": current is not None and current.pk == revision.pk,
        "against": against,
        "diff": diff_texts(against.body, revision.body) if against else None,
        "stale": bool(against and revision.based_on_id and revision.based_on_id != against.pk),
        "can_edit": access.can_edit_runbooks(request.user),
    }
    return render(request, "departments/runbook_revision.html", context)


@require_POST
def runbook_restore(request, slug, number):
    runbook = access.get_runbook_for_user(request, slug, write=True)
    revision = access.get_revision_for_user(request, runbook, number, write=True)
    if revision.state != RunbookRevision.ACCEPTED:
        return HttpResponseBadRequest("Only saved revisions can be restored.")
    restored = actions.do_restore_revision(request.user, revision)
    messages.success(
        request,
        gettext("Revision %(number)s restored as revision %(number2)s; nothing was lost.")
        % {"number": number, "number2": restored.number},
    )
    return redirect(runbook)


@require_POST
def runbook_approve(request, slug, number):
    runbook = access.get_runbook_for_user(request, slug, write=True)
    proposal = access.get_revision_for_user(request, runbook, number, write=True)
    if proposal.state != RunbookRevision.PROPOSED:
        return HttpResponseBadRequest("This revision is not waiting for review.")
    form = ReviewNoteForm(request.POST)
    note = form.cleaned_data["note"] if form.is_valid() else ""
    accepted = actions.do_approve_revision(request.user, proposal, note)
    messages.success(
        request,
        gettext("Proposal approved: it is revision %(number)s now.") % {"number": accepted.number},
    )
    return redirect(runbook)


@require_POST
def runbook_reject(request, slug, number):
    runbook = access.get_runbook_for_user(request, slug, write=True)
    proposal = access.get_revision_for_user(request, runbook, number, write=True)
    if proposal.state != RunbookRevision.PROPOSED:
        return HttpResponseBadRequest("This revision is not waiting for review.")
    form = ReviewNoteForm(request.POST)
    actions.do_reject_revision(
        request.user, proposal, form.cleaned_data["note"] if form.is_valid() else ""
    )
    messages.success(
        request,
        gettext("Proposal r%(number)s rejected; it stays in the history.") % {"number": number},
    )
    return redirect(runbook)


@require_POST
def runbook_reviewed(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    runbook = access.get_runbook_for_user(request, slug, write=True)
    actions.do_mark_runbook_reviewed(request.user, runbook)
    if request.htmx:
        context = {"runbook": runbook, "can_edit": True, "today": timezone.localdate()}
        return render(request, "departments/runbook_detail.html#review", context)
    messages.success(
        request,
        gettext("Reviewed; next review %(next_review_date)s.")
        % {"next_review_date": runbook.next_review_date},
    )
    return redirect(runbook)


@require_POST
def runbook_run_step(request: HtmxHttpRequest, slug: str, index: int) -> HttpResponse:
    """Start the job a ``kaizen-run`` step describes, on its target."""
    runbook = access.get_runbook_for_user(request, slug, run=True)
    revision = runbook.current_revision
    steps = render_markdown(revision.body if revision else "").steps
    if not 1 <= index <= len(steps):
        raise Http404("No such step in the current revision.")
    view = _step_views(request, runbook, steps)[index]
    incident = _incident_of(request, request.POST, write=True)
    started = None
    if not view["problem"]:
        try:
            step_run = actions.do_run_runbook_step(
                request.user, runbook, view["step"], view["target"]
            )
            started = step_run.run
            if incident is not None:
                observe_incidents.do_record_step_run(request.user, incident, step_run)
        except engine.CannotStart as error:
            view["problem"] = str(error)
    if not request.htmx:
        if started:
            messages.success(
                request,
                gettext("Started run #%(pk)s from “%(runbook)s”.")
                % {"pk": started.pk, "runbook": runbook},
            )
            return redirect(started)
        messages.error(request, view["problem"])
        return redirect(runbook)
    context = {
        "view": view,
        "runbook": runbook,
        "incident": incident,
        "started": started,
        "message": f"Started run #{started.pk}." if started else view["problem"],
    }
    html = render_to_string("departments/runbook_detail.html#run_step", context, request)
    if started:
        # The page's run history gains the new run, out of band.
        html += render_to_string(
            "departments/runbook_detail.html#step_runs",
            {"runbook": runbook, "step_runs": _step_runs(runbook), "oob": True},
            request,
        )
    return HttpResponse(html, status=200 if started else 422)


def _incident_of(request, data, *, write=False):
    """The incident the runbook is being followed for (``?incident=`` on the page, a hidden
    field on each step's form): each step run then goes on its timeline."""
    value = data.get("incident", "")
    if not value.isdigit() or len(value) > 18:
        return None
    return access.get_incident_for_user(request, int(value), write=write)


def _step_runs(runbook):
    return runbook.step_runs.select_related("run", "triggered_by")[:10]


@require_GET
def runbook_reviews(request):
    """HR's review desk: overdue reviews, runbooks flagged by changes, proposals waiting."""
    today = timezone.localdate()
    live = _runbook_rows(Runbook.objects.exclude(status=Runbook.ARCHIVED))
    context = {
        **RUNBOOKS,
        "today": today,
        "overdue": live.filter(next_review_date__lt=today).order_by("next_review_date"),
        "needed": live.filter(review_needed=True).order_by("title"),
        "upcoming": live.filter(
            next_review_date__gte=today, next_review_date__lte=today + datetime.timedelta(days=30)
        ).order_by("next_review_date"),
        "proposals": RunbookRevision.objects.filter(state=RunbookRevision.PROPOSED)
        .select_related("runbook", "author")
        .order_by("created_at"),
        "can_edit": access.can_edit_runbooks(request.user),
    }
    return render(request, "departments/runbook_reviews.html", context)


@require_GET
def runbook_coverage(request):
    """For each target, which of the standard runbooks exist."""
    topics = list(Topic.objects.filter(standard=True))
    targets = list(TargetService.objects.order_by("name"))
    found: dict[tuple[int, int], list] = defaultdict(list)
    runbooks = (
        Runbook.objects.exclude(status=Runbook.ARCHIVED)
        .filter(topics__standard=True)
        .distinct()
        .prefetch_related("topics", "targets")
        .order_by("-status", "title")  # published before draft
    )
    for runbook in runbooks:
        for topic in runbook.topics.all():
            for target in runbook.targets.all():
                found[(target.pk, topic.pk)].append(runbook)
    rows = []
    for target in targets:
        cells = []
        for topic in topics:
            entries = found[(target.pk, topic.pk)]
            published = [r for r in entries if r.status == Runbook.PUBLISHED]
            cells.append({"topic": topic, "published": published, "drafts": entries})
        covered = sum(1 for cell in cells if cell["published"])
        rows.append({"target": target, "cells": cells, "covered": covered})
    context = {
        **RUNBOOKS,
        "topics": topics,
        "rows": rows,
        "templates_by_topic": {
            topic: template.key
            for template in runbook_templates.TEMPLATES.values()
            for topic in template.topics
        },
        "can_edit": access.can_edit_runbooks(request.user),
    }
    return render(request, "departments/runbook_coverage.html", context)
