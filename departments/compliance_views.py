"""HR's compliance register: the register, a control and its history, attesting, the
auditor's per-period report (HTML, CSV, JSON)."""

from __future__ import annotations

import csv
import io
import json

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from departments import compliance
from departments.forms import AttestationForm, ControlForm
from departments.models import Control
from portal import access
from portal.http import HtmxHttpRequest


def _page(request) -> dict:
    return {"nav_section": "compliance", "can_edit": access.can_edit_compliance(request.user)}


@require_GET
def compliance_register(request):
    """Everyone reads the register: each control's newest status and its evidence."""
    rows = compliance.register(include_inactive=access.can_edit_compliance(request.user))
    now = timezone.now()
    context = {
        **_page(request),
        "rows": rows,
        "overall": compliance.overall([row for row in rows if row.control.active]),
        "period": compliance.period_of(Control.QUARTERLY, now).label,
    }
    return render(request, "departments/compliance/register.html", context)


def _control_context(request, control, form=None) -> dict:
    now = timezone.now()
    return {
        **_page(request),
        "control": control,
        "evaluations": control.evaluations.select_related("evaluated_by")[:50],
        "attestations": control.attestations.select_related("person").defer("attachment")[:50],
        "current": compliance.current_attestation(control, now) if control.is_manual else None,
        "due": compliance.due_at(control, now) if control.is_manual else None,
        "can_attest": control.is_manual and access.can_attest(request.user, control),
        "form": form or AttestationForm(),
        "source_label": dict(compliance.SOURCE_CHOICES).get(control.source, control.source),
    }


@require_GET
def compliance_control(request, slug):
    control = access.get_control_for_user(request, slug)
    return render(
        request, "departments/compliance/control.html", _control_context(request, control)
    )


@require_http_methods(["GET", "POST"])
def compliance_control_new(request):
    access.require(access.can_edit_compliance(request.user))
    form = ControlForm(request.POST or None, initial={"recurrence": Control.QUARTERLY})
    if request.method == "POST" and form.is_valid():
        control = compliance.do_create_control(request.user, **form.cleaned_data)
        messages.success(request, _("Control added to the register."))
        return redirect(control)
    return render(
        request,
        "departments/compliance/control_form.html",
        {**_page(request), "form": form, "creating": True},
    )


@require_http_methods(["GET", "POST"])
def compliance_control_edit(request, slug):
    control = access.get_control_for_user(request, slug, write=True)
    form = ControlForm(request.POST or None, instance=control)
    if request.method == "POST" and form.is_valid():
        fresh = Control.objects.get(pk=control.pk)
        compliance.do_update_control(request.user, fresh, **form.cleaned_data)
        messages.success(request, _("Control saved."))
        return redirect(fresh)
    return render(
        request,
        "departments/compliance/control_form.html",
        {**_page(request), "form": form, "creating": False, "control": control},
    )


@require_POST
def compliance_attest(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """An editor or manager of the owning department attests a manual control."""
    control = access.get_control_for_user(request, slug, attest=True)
    form = AttestationForm(request.POST, request.FILES)
    if not control.is_manual:
        form.add_error(None, _("Kaizen gathers this control's evidence itself: nobody attests it."))
    status = 422
    if form.is_valid():
        status = 200
        compliance.do_attest(
            request.user,
            control,
            comment=form.cleaned_data["comment"],
            link=form.cleaned_data["link"],
            upload=form.cleaned_data["attachment"],
        )
        if not request.htmx:
            messages.success(request, _("Attested."))
            return redirect(control)
        form = AttestationForm()
    elif not request.htmx:
        return render(
            request,
            "departments/compliance/control.html",
            _control_context(request, control, form),
            status=422,
        )
    return render(
        request,
        "departments/compliance/control.html#manual",
        _control_context(request, control, form),
        status=status,
    )


@require_POST
def compliance_evaluate(request):
    """HR judges every control now instead of waiting for the schedule."""
    access.require(access.can_edit_compliance(request.user))
    counts = compliance.evaluate_all(actor=request.user)
    messages.success(
        request,
        _("Evaluated %(count)d controls.") % {"count": sum(counts.values())},
    )
    return redirect("compliance_register")


@require_GET
def compliance_attachment(request, pk):
    attestation = access.get_attestation_for_user(request, pk)
    if not attestation.attachment_name:
        return HttpResponse(status=404)
    response = HttpResponse(bytes(attestation.attachment), content_type=attestation.attachment_type)
    # Quoted and encoded by Django: a file name is the uploader's text.
    response["Content-Disposition"] = content_disposition_header(
        as_attachment=True, filename=attestation.attachment_name
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _evidence_cell(entry: dict, base: str) -> str:
    """One evidence record as text, its link absolute so the CSV stands alone."""
    url = entry["url"]
    if not url:
        return entry["label"]
    return f"{entry['label']} <{base + url if url.startswith('/') else url}>"


@require_GET
def compliance_report(request):
    """The auditor's report of one period: each control's status at the period's end,
    with its evidence links, and the attestations made in it. ?format=csv or json."""
    now = timezone.now()
    label = request.GET.get("period") or compliance.period_of(Control.QUARTERLY, now).label
    try:
        period = compliance.parse_period(label)
    except ValueError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    rows = compliance.report(period)
    attestations = list(compliance.attestations_in(period).defer("attachment"))
    fmt = request.GET.get("format", "html")
    filename = f"kaizen-compliance-{period.label}"
    if fmt == "json":
        body = compliance.summary_json(
            rows,
            period=period.label,
            period_start=period.start.isoformat(),
            period_end=period.end.isoformat(),
            generated_at=now.isoformat(),
            attestations=[
                {
                    "control": a.control.slug,
                    "person": a.person.username,
                    "comment": a.comment,
                    "link": a.link,
                    "attachment": a.attachment_name,
                    "attested_at": a.attested_at.isoformat(),
                    "expires_at": a.expires_at.isoformat(),
                }
                for a in attestations
            ],
        )
        response = HttpResponse(
            json.dumps(body, indent=2, ensure_ascii=False),
            content_type="application/json",
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}.json"'
        return response
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "control",
                "statement",
                "department",
                "recurrence",
                "framework_tags",
                "kind",
                "status",
                "reason",
                "evaluated_at",
                "evidence",
            ]
        )
        base = request.build_absolute_uri("/")[:-1]
        for row in rows:
            data = row.as_json()
            writer.writerow(
                [
                    data["control"],
                    data["statement"],
                    data["department"],
                    data["recurrence"],
                    "; ".join(data["framework_tags"]),
                    data["kind"],
                    data["status"],
                    data["reason"],
                    data["evaluated_at"] or "",
                    " | ".join(_evidence_cell(entry, base) for entry in data["evidence"]),
                ]
            )
        response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    context = {
        **_page(request),
        "period": period,
        "rows": rows,
        "overall": compliance.overall(rows),
        "attestations": attestations,
        "changes": compliance.changes(period),
        "previous": period.previous(),
        "generated_at": now,
    }
    return render(request, "departments/compliance/report.html", context)
