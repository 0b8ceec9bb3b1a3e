"""Findings as work: an initiative's findings with owners, assignment, tasks and bulk actions."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRefresh

from departments.models import Department
from optimizations.jobs import verdicts
from optimizations.models import Finding, PhaseTask
from optimizations.work import findings as service
from optimizations.work import gates, routing, triage
from portal import access
from portal.http import HtmxHttpRequest


def read_filters(data) -> dict:
    return service.filters_from(data, service.BOARD_FILTERS)


def _people():
    return list(
        get_user_model()
        .objects.filter(is_active=True, memberships__isnull=False)
        .distinct()
        .order_by("username")
    )


@require_GET
@vary_on_headers("HX-Request")
def initiative_findings(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    initiative = access.get_initiative_for_user(request, pk)
    filters = read_filters(request.GET)
    filter_error = ""
    try:
        findings = service.query(filters, initiative=initiative)
    except service.BadFilter as error:
        filter_error, findings = str(error), Finding.objects.none()
    findings = findings.select_related("assignee")
    page = Paginator(findings.by_severity(), 50).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    tasks = {
        task.finding_id: task
        for task in PhaseTask.objects.filter(
            phase__initiative=initiative, finding__in=[f.pk for f in rows]
        ).select_related("phase", "department")
    }
    names = dict(Department.objects.values_list("code", "name"))
    for finding in rows:
        finding.task = tasks.get(finding.pk)
        finding.owner_name = names.get(finding.owner, finding.owner)
    open_by_owner = dict(
        Finding.objects.filter(target=initiative.target, status=Finding.OPEN)
        .annotate(owner=routing.department_case())
        .values_list("owner")
        .annotate(n=Count("pk"))
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "initiative": initiative,
        "page": page,
        "rows": rows,
        "filters": filters,
        "filter_error": filter_error,
        "categories": service.CATEGORY_CHOICES,
        "query": query.urlencode(),
        "owners": [
            (code, name, open_by_owner.get(code, 0)) for code, name in sorted(names.items())
        ],
        "sources": Finding.SOURCES,
        "severities": Finding.SEVERITIES,
        "statuses": Finding.STATUSES,
        "people": _people(),
        "can_plan": access.can_plan_findings(request.user),
        "bulk_limit": routing.BULK_LIMIT,
    }
    template = "optimizations/work/initiative_findings.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


class BulkForm(forms.Form):
    ACTIONS = [("tasks", "Make tasks"), ("assign", "Assign"), ("status", "Set status")]

    action = forms.ChoiceField(choices=ACTIONS)
    findings = forms.CharField(required=False)
    everything = forms.BooleanField(required=False)
    assignee = forms.CharField(required=False)
    status = forms.ChoiceField(choices=Finding.SETTABLE, required=False)
    reason = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("action") == "status":
            status = data.get("status")
            if not status:
                raise forms.ValidationError("Choose the status to set.")
            if status in Finding.NEEDS_REASON and not data.get("reason", "").strip():
                label = dict(Finding.STATUSES)[status].lower()
                raise forms.ValidationError(
                    f"Say why the findings are “{label}”: a reason is required."
                )
        if data.get("action") == "assign":
            value = data.get("assignee", "")
            if value and value != "none" and not value.isdigit():
                raise forms.ValidationError("Choose whom to assign the findings to.")
        return data

    def ids(self) -> list[int]:
        raw = self.data.getlist("findings") if hasattr(self.data, "getlist") else []
        return [int(v) for value in raw for v in str(value).split(",") if v.strip().isdigit()]


@require_POST
def initiative_findings_bulk(request, pk):
    """Make tasks from, assign or triage the chosen findings (or all that match the filters)."""
    initiative = access.get_initiative_for_user(request, pk, plan=True)
    form = BulkForm(request.POST)
    back = reverse("initiative_findings", args=[initiative.pk])
    query = request.POST.get("query", "")
    if query:
        back += "?" + query
    following = request.POST.get("next", "")
    if following and url_has_allowed_host_and_scheme(following, allowed_hosts={request.get_host()}):
        back = following
    if not form.is_valid():
        messages.error(request, " ".join(e for errors in form.errors.values() for e in errors))
        return redirect(back)
    if form.cleaned_data["everything"]:
        try:
            chosen = service.query(read_filters(QueryDict(query)), initiative=initiative)
        except service.BadFilter as error:
            messages.error(request, str(error))
            return redirect(back)
    else:
        chosen = Finding.objects.filter(target=initiative.target, pk__in=form.ids())
    chosen = list(
        chosen.select_related("assignee", "last_job", "target").order_by("pk")[
            : routing.BULK_LIMIT + 1
        ]
    )
    if not chosen:
        messages.error(request, gettext("Choose at least one finding."))
        return redirect(back)
    if len(chosen) > routing.BULK_LIMIT:
        messages.error(
            request,
            gettext("That is more than %(BULK_LIMIT)s findings at once; narrow the filters.")
            % {"BULK_LIMIT": routing.BULK_LIMIT},
        )
        return redirect(back)
    action = form.cleaned_data["action"]
    if action == "tasks":
        outcome = triage.do_make_tasks(request.user, initiative, chosen)
        (messages.success if outcome.created else messages.warning)(request, outcome.message())
    elif action == "assign":
        value = form.cleaned_data["assignee"]
        assignee = None
        if value and value != "none":
            assignee = get_user_model().objects.filter(pk=int(value), is_active=True).first()
            if assignee is None:
                messages.error(request, gettext("That person does not exist."))
                return redirect(back)
        count = triage.do_assign_findings(request.user, chosen, assignee)
        who = assignee.get_username() if assignee else "nobody"
        messages.success(
            request,
            ngettext(
                "Assigned %(count)s finding to %(who)s.",
                "Assigned %(count)s findings to %(who)s.",
                count,
            )
            % {"count": count, "who": who},
        )
    else:
        status = form.cleaned_data["status"]
        count = triage.do_triage_findings(
            request.user, chosen, status, form.cleaned_data["reason"].strip()
        )
        label = dict(Finding.STATUSES)[status].lower()
        messages.success(
            request,
            ngettext(
                "Marked %(count)s finding %(label)s.", "Marked %(count)s findings %(label)s.", count
            )
            % {"count": count, "label": label},
        )
    return redirect(back)


# --- phase gates ---------------------------------------------------------------


def _gate_context(request, phase, **extra) -> dict:
    checks = gates.evaluate(phase)
    for check in checks:  # one vocabulary: met → pass, not met → fail, unknown → incomplete
        check.verdict = verdicts.from_check(check.ok)
    return {
        "phase": phase,
        "checks": checks,
        "complete": gates.passes(checks),
        "verdict": verdicts.roll_up(check.verdict for check in checks),
        "signoffs": list(phase.signoffs.select_related("signed_by")[:5]),
        "can_sign": access.can_sign_gates(request.user) and phase.status != phase.DONE,
        **extra,
    }


@require_GET
@vary_on_headers("HX-Request")
def phase_gate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The gate of a phase: its evidence now, its sign-offs, and the sign-off form (a fragment)."""
    phase = access.get_phase_for_user(request, pk)
    if not request.htmx:  # opened directly: the board, at this phase's gate
        return redirect(f"{phase.initiative.get_absolute_url()}#phase-{phase.pk}-gate")
    return render(request, "optimizations/work/phase_gate.html", _gate_context(request, phase))


@require_POST
def phase_gate_sign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    phase = access.get_phase_for_user(request, pk, sign=True)
    error = ""
    if phase.status == phase.DONE:
        error = gettext("This phase is already done.")
    else:
        try:
            gates.do_sign_gate(
                request.user,
                phase,
                comment=request.POST.get("comment", "")[:2000],
                override_reason=request.POST.get("override_reason", "")[:2000]
                if request.POST.get("override")
                else "",
            )
        except gates.GateRefused as refused:
            error = str(refused)
    if not request.htmx:
        if error:
            messages.error(request, error)
        else:
            messages.success(
                request, gettext("Gate of phase %(number)s signed off.") % {"number": phase.number}
            )
        return redirect(phase.initiative)
    if not error:
        # The phase heads show the new statuses: reload the board.
        return HttpResponseClientRefresh()
    phase.refresh_from_db()
    return render(
        request,
        "optimizations/work/phase_gate.html",
        _gate_context(request, phase, error=error, posted=request.POST),
        status=422,
    )
