"""Findings per target: the list with filters, one finding, and its triage."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from departments.models import Department
from optimizations.jobs import codescans
from optimizations.models import Finding, Initiative, PhaseTask
from optimizations.observe import evidence
from optimizations.work import findings as service
from optimizations.work import routing
from portal import access
from portal.http import HtmxHttpRequest


class TriageForm(forms.Form):
    # Never "fixed": only a re-scan that runs the finding's check again sets it.
    status = forms.ChoiceField(choices=service.HAND_CHOICES)
    reason = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("status"):
            try:
                service.check_settable(data["status"], data.get("reason", ""))
            except service.NotSettable as error:
                raise forms.ValidationError(str(error)) from None
        return data


@require_GET
@vary_on_headers("HX-Request")
def finding_list(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    target = access.get_target_for_user(request, slug)
    filters = service.filters_from(request.GET)
    filter_error = ""
    try:
        findings = service.query(filters, target=target)
    except service.BadFilter as error:
        filter_error, findings = str(error), Finding.objects.none()
    # "New since scan #N": code findings that scan did not report (not called "baseline",
    # which names the pinned benchmark).
    new_since, since_error = request.GET.get("new_since", "").strip(), ""
    if new_since:
        try:
            earlier = codescans.earlier_scan(new_since, target.pk)
        except codescans.NoEarlierScan as error:
            since_error, findings = str(error), findings.none()
        else:
            findings = findings.filter(source="code").exclude(
                fingerprint__in=list(earlier.findings)
            )
    code_scans = codescans.code_scans_of(target.pk)
    since_sarif = None
    if new_since and not since_error and code_scans:
        latest = code_scans[0].pk
        since_sarif = {
            "scan": latest,
            "url": reverse("job_artifact", args=[latest, f"kaizen-code_scan-{latest}.sarif"])
            + f"?new_since={new_since}",
        }
    counts = dict(
        Finding.objects.filter(target=target, status=Finding.OPEN)
        .values_list("severity")
        .annotate(n=Count("pk"))
    )
    page = Paginator(findings.by_severity(), 50).get_page(request.GET.get("page"))
    # Every filter, for the page links (the text filter was lost on page 2).
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "target": target,
        "page": page,
        "filters": filters,
        "filter_error": filter_error,
        "query": query.urlencode(),
        "categories": service.CATEGORY_CHOICES,
        "counts": [(value, label, counts.get(value, 0)) for value, label in Finding.SEVERITIES],
        "sources": Finding.SOURCES,
        "severities": Finding.SEVERITIES,
        "statuses": Finding.STATUSES,
        "can_triage": access.can_triage_findings(request.user),
        "new_since": new_since,
        "since_error": since_error,
        "code_scans": code_scans,
        "since_sarif": since_sarif,
    }
    template = "optimizations/work/finding_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@require_GET
def finding_detail(request, pk):
    finding = access.get_finding_for_user(
        request,
        pk,
        queryset=Finding.objects.select_related(
            "target", "first_job", "last_job", "status_changed_by"
        ),
    )

    tasks = list(
        PhaseTask.objects.filter(finding=finding).select_related("phase__initiative", "department")
    )
    planned = {task.phase.initiative_id for task in tasks}
    initiatives = [
        initiative
        for initiative in Initiative.objects.filter(
            target=finding.target, status__in=(Initiative.ACTIVE, Initiative.DRAFT)
        ).order_by("-created_at")[:10]
        if initiative.pk not in planned
    ]
    return render(
        request,
        "optimizations/work/finding_detail.html",
        {
            "route": routing.route(finding),
            "owner": Department.objects.filter(code=routing.route(finding).department).first(),
            "tasks": tasks,
            "initiatives": initiatives,
            "can_plan": access.can_plan_findings(request.user)
            and finding.status in (Finding.OPEN, Finding.ACCEPTED),
            "finding": finding,
            "form": TriageForm(initial={"status": finding.status, "reason": finding.status_reason}),
            "can_triage": access.can_triage_findings(request.user),
            "beside": evidence.beside(finding),
        },
    )


@require_POST
def finding_status(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """An engineer triages a finding; accepted, won't fix and false positive need a reason."""
    finding = access.get_finding_for_user(request, pk, write=True)
    form = TriageForm(request.POST)
    if form.is_valid():
        if finding.status in (Finding.FIXED, Finding.SUPPRESSED):
            form.add_error(
                None,
                f"A {finding.get_status_display().lower()} finding is the scans' to change: "
                "it opens again when its check reports it again.",
            )
        else:
            service.set_status(
                request.user, [finding], form.cleaned_data["status"], form.cleaned_data["reason"]
            )
    if request.htmx:
        return render(
            request,
            "optimizations/work/finding_detail.html#triage",
            {"finding": finding, "form": form, "can_triage": True, "saved": form.is_valid()},
            status=200 if form.is_valid() else 422,
        )
    return redirect(finding)
