"""Findings per target: the list with filters, one finding, and its triage."""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from departments.models import Department
from optimizations import codescans
from optimizations.models import Finding
from portal import access
from portal.audit import record


class TriageForm(forms.Form):
    status = forms.ChoiceField(choices=Finding.SETTABLE)
    reason = forms.CharField(required=False, max_length=2000)

    def clean(self):
        data = super().clean()
        if data.get("status") in Finding.NEEDS_REASON and not data.get("reason", "").strip():
            label = dict(Finding.STATUSES)[data["status"]].lower()
            raise forms.ValidationError(f"Say why the finding is “{label}”: a reason is required.")
        return data


FINDING_FILTERS = ("source", "severity", "status", "rule", "q")


def finding_filters(params) -> dict[str, str]:
    """The findings list's filters from a query string; no ``status`` means open ones."""
    filters = {key: params.get(key, "").strip() for key in FINDING_FILTERS}
    if "status" not in params:
        filters["status"] = Finding.OPEN
    return filters


def filter_findings(findings, filters: dict[str, str]):
    """Narrow a Finding queryset the way the findings list does."""
    for key in ("source", "severity", "status"):
        if filters.get(key):
            findings = findings.filter(**{key: filters[key]})
    if filters.get("rule"):
        findings = findings.filter(rule_id__istartswith=filters["rule"])
    if filters.get("q"):
        findings = findings.filter(
            Q(title__icontains=filters["q"]) | Q(location__icontains=filters["q"])
        )
    return findings


@require_GET
@vary_on_headers("HX-Request")
def finding_list(request, slug):
    target = access.get_target_for_user(request, slug)
    filters = finding_filters(request.GET)
    findings = filter_findings(Finding.objects.filter(target=target), filters)
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
    context = {
        "target": target,
        "page": page,
        "filters": filters,
        "counts": [(value, label, counts.get(value, 0)) for value, label in Finding.SEVERITIES],
        "sources": Finding.SOURCES,
        "severities": Finding.SEVERITIES,
        "statuses": Finding.STATUSES,
        "can_triage": access.can_trigger_jobs(request.user),
        "new_since": new_since,
        "since_error": since_error,
        "code_scans": code_scans,
        "since_sarif": since_sarif,
    }
    template = "optimizations/finding_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)


@require_GET
def finding_detail(request, pk):
    finding = get_object_or_404(
        Finding.objects.select_related("target", "first_job", "last_job", "status_changed_by"),
        pk=pk,
    )
    from optimizations import routing
    from optimizations.models import Initiative, PhaseTask

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
        "optimizations/finding_detail.html",
        {
            "route": routing.route(finding),
            "owner": Department.objects.filter(code=routing.route(finding).department).first(),
            "tasks": tasks,
            "initiatives": initiatives,
            "can_plan": access.can_plan_findings(request.user)
            and finding.status in (Finding.OPEN, Finding.ACCEPTED),
            "finding": finding,
            "form": TriageForm(initial={"status": finding.status, "reason": finding.status_reason}),
            "can_triage": access.can_trigger_jobs(request.user),
        },
    )


@require_POST
def finding_status(request, pk):
    """An engineer triages a finding; accepted, won't fix and false positive need a reason."""
    access.require(access.can_trigger_jobs(request.user))
    finding = get_object_or_404(Finding.objects.select_related("target"), pk=pk)
    form = TriageForm(request.POST)
    if form.is_valid():
        old = finding.status
        finding.status = form.cleaned_data["status"]
        finding.status_reason = form.cleaned_data["reason"].strip()
        finding.status_changed_by = request.user
        finding.save(update_fields=["status", "status_reason", "status_changed_by"])
        record(
            request.user,
            "finding.status",
            finding,
            f"marked {finding.rule_id} “{finding.title}” {finding.get_status_display().lower()}",
            changes={"status": [old, finding.status]},
            target=finding.target,
        )
    if request.htmx:
        return render(
            request,
            "optimizations/finding_detail.html#triage",
            {"finding": finding, "form": form, "can_triage": True, "saved": form.is_valid()},
            status=200 if form.is_valid() else 422,
        )
    return redirect(finding)
