"""Incident pages (the list, one incident with its timeline and actions, its postmortem),
the delivery log with the webhook endpoints, and the Alertmanager receiver."""

from __future__ import annotations

import datetime
import hashlib
import json

from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from optimizations.models import Delivery, Incident, TargetService, WebhookEndpoint
from optimizations.observe import incidents, metrics
from optimizations.observe.incident_forms import (
    AssignForm,
    NoteForm,
    PostmortemForm,
    RunbookForm,
    WebhookForm,
)
from portal import access, tokens
from portal.audit import record
from portal.http import HtmxHttpRequest

LIST_LIMIT = 200


def _page(request) -> dict:
    return {
        "nav_section": "incidents",
        "can_respond": access.can_respond_to_incidents(request.user),
        "can_edit_webhooks": access.can_edit_webhooks(request.user),
    }


@require_GET
def incident_list(request):
    """Open incidents first, then the most recent; filter by state and target."""
    state = request.GET.get("state", "open")
    rows = Incident.objects.select_related(
        "target__owner_department", "assignee", "acknowledged_by"
    ).order_by("-started_at", "-pk")
    if state == "open":
        rows = rows.filter(ended_at__isnull=True)
    elif state == "resolved":
        rows = rows.filter(ended_at__isnull=False)
    slug = request.GET.get("target", "")
    if slug:
        rows = rows.filter(target__slug=slug)
    now = timezone.now()
    context = {
        **_page(request),
        "incidents": list(rows[:LIST_LIMIT]),
        "state": state,
        "target_slug": slug,
        "targets": TargetService.objects.order_by("name").values_list("slug", "name"),
        "summary": metrics.summary(metrics.month_of(now)),
    }
    return render(request, "optimizations/observe/incident_list.html", context)


def _detail_context(request, incident, **forms) -> dict:
    return {
        **_page(request),
        "incident": incident,
        "events": incident.events.select_related("actor"),
        "assign_form": forms.get("assign_form") or AssignForm(incident=incident),
        "note_form": forms.get("note_form") or NoteForm(),
        "runbook_form": forms.get("runbook_form")
        or RunbookForm(initial={"runbook": incident.runbook_id}),
        "postmortem": getattr(incident, "postmortem", None),
        "actions": (
            incident.postmortem.actions.select_related("task__phase__initiative")
            if hasattr(incident, "postmortem")
            else []
        ),
    }


@require_GET
def incident_detail(request, pk):
    incident = access.get_incident_for_user(request, pk)
    return render(
        request, "optimizations/observe/incident_detail.html", _detail_context(request, incident)
    )


def _answer(request: HtmxHttpRequest, incident, **forms) -> HttpResponse:
    """The incident's panel for htmx, the page otherwise (after a redirect)."""
    if request.htmx:
        incident = access.get_incident_for_user(request, incident.pk)
        return render(
            request,
            "optimizations/observe/incident_detail.html#panel",
            _detail_context(request, incident, **forms),
        )
    return redirect(incident)


@require_POST
def incident_acknowledge(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    incidents.do_acknowledge(request.user, incident)
    return _answer(request, incident)


@require_POST
def incident_assign(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    form = AssignForm(request.POST, incident=incident)
    if form.is_valid():
        incidents.do_assign(request.user, incident, form.cleaned_data["assignee"])
        return _answer(request, incident)
    return _answer(request, incident, assign_form=form)


@require_POST
def incident_escalate(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    incidents.do_escalate(
        request.user, incident, reason=_("Escalated by %(name)s.") % {"name": request.user}
    )
    return _answer(request, incident)


@require_POST
def incident_note(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    form = NoteForm(request.POST)
    if form.is_valid():
        incidents.do_add_note(request.user, incident, form.cleaned_data["text"])
        return _answer(request, incident)
    return _answer(request, incident, note_form=form)


@require_POST
def incident_runbook(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    form = RunbookForm(request.POST)
    if form.is_valid():
        incidents.do_link_runbook(request.user, incident, form.cleaned_data["runbook"])
        return _answer(request, incident)
    return _answer(request, incident, runbook_form=form)


@require_POST
def incident_resolve(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    incidents.do_resolve(request.user, incident)
    return _answer(request, incident)


@require_http_methods(["GET", "POST"])
def incident_postmortem(request, pk):
    """Write the postmortem from HR's template; action items become tasks or follow-ups."""
    incident = access.get_incident_for_user(request, pk, write=True)
    existing = getattr(incident, "postmortem", None)
    if request.method == "POST":
        form = PostmortemForm(request.POST)
        if form.is_valid():
            incidents.do_write_postmortem(
                request.user, incident, form.cleaned_data["body"], form.items()
            )
            messages.success(request, _("Postmortem saved."))
            return redirect(incident)
    else:
        body = existing.body if existing else incidents.postmortem_template(request.user, incident)
        form = PostmortemForm(initial={"body": body})
    context = {
        **_page(request),
        "incident": incident,
        "form": form,
        "postmortem": existing,
        "initiative": incidents.open_initiative(incident.target),
    }
    return render(request, "optimizations/observe/postmortem_form.html", context)


@require_POST
def incident_follow_up(request: HtmxHttpRequest, pk: int, action_pk: int) -> HttpResponse:
    incident = access.get_incident_for_user(request, pk, write=True)
    postmortem = getattr(incident, "postmortem", None)
    action = postmortem.actions.filter(pk=action_pk).first() if postmortem else None
    if action is None:
        return HttpResponse(status=404)
    incidents.do_set_follow_up(request.user, action, request.POST.get("done") == "1")
    return _answer(request, incident)


# --- the delivery log and the webhook endpoints -------------------------------------


@require_GET
def delivery_log(request):
    """Every message on every channel (newest first), and where webhooks go."""
    channel = request.GET.get("channel", "")
    rows = Delivery.objects.select_related("incident", "endpoint")
    if channel in dict(Delivery.CHANNELS):
        rows = rows.filter(channel=channel)
    context = {
        **_page(request),
        "deliveries": list(rows[:LIST_LIMIT]),
        "channel": channel,
        "channels": Delivery.CHANNELS,
        "endpoints": WebhookEndpoint.objects.select_related("department"),
    }
    return render(request, "optimizations/observe/delivery_log.html", context)


@require_http_methods(["GET", "POST"])
def webhook_new(request):
    access.require(access.can_edit_webhooks(request.user))
    form = WebhookForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        endpoint = WebhookEndpoint.objects.create(created_by=request.user, **form.endpoint_fields())
        record(request.user, "webhook.create", endpoint, f"added webhook {endpoint.name}")
        messages.success(request, _("Webhook added."))
        return redirect("delivery_log")
    return render(
        request, "optimizations/observe/webhook_form.html", {**_page(request), "form": form}
    )


@require_POST
def webhook_toggle(request, pk):
    endpoint = access.get_webhook_for_user(request, pk, write=True)
    endpoint.active = not endpoint.active
    endpoint.save(update_fields=["active"])
    record(
        request.user,
        "webhook.toggle",
        endpoint,
        f"{'switched on' if endpoint.active else 'switched off'} webhook {endpoint.name}",
    )
    return redirect("delivery_log")


# --- Alertmanager ------------------------------------------------------------------

ALERTMANAGER_SOURCE = "alertmanager"
TARGET_LABEL = "kaizen_target"
SEVERITY_MAP = {
    "critical": "critical",
    "page": "critical",
    "high": "high",
    "error": "high",
    "warning": "medium",
    "medium": "medium",
    "low": "low",
    "info": "info",
    "none": "info",
}


def _alert_key(alert: dict) -> str:
    """Alertmanager's fingerprint names one alert across firing and resolved; without
    one, a hash of its sorted labels does."""
    labels = alert.get("labels") or {}
    fingerprint = (
        alert.get("fingerprint")
        or hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]
    )
    return f"{labels.get('alertname', 'alert')}/{fingerprint}"[:200]


def _moment(value) -> datetime.datetime | None:
    moment = parse_datetime(value) if isinstance(value, str) else None
    # Alertmanager sends the zero time ("0001-01-01T00:00:00Z") for "not ended".
    if moment is None or moment.year < 2000:
        return None
    return moment


@csrf_exempt
@login_not_required
@require_POST
def alertmanager_receiver(request):
    """Alertmanager's webhook (payload version 4): each firing alert opens (or keeps) an
    incident on the target its ``kaizen_target`` label names (a target's slug), each
    resolved one resolves it. Authenticated by a Kaizen API token (``Authorization:
    Bearer kz_…``, Alertmanager's ``http_config.authorization.credentials``) of someone
    who responds to incidents."""
    scheme, _sep, key = request.headers.get("Authorization", "").partition(" ")
    try:
        token = tokens.authenticate(key.strip() if scheme.lower() == "bearer" else "")
    except tokens.TokenRefused as error:
        return JsonResponse({"detail": str(error)}, status=401)
    if not access.can_respond_to_incidents(token.user):
        return JsonResponse(
            {"detail": f"{token.user.username} does not respond to incidents."}, status=403
        )
    try:
        payload = json.loads(request.body)
        alerts = payload["alerts"]
        if not isinstance(alerts, list):
            raise TypeError("alerts is not a list")
    except (ValueError, KeyError, TypeError) as error:
        return JsonResponse({"detail": f"Not an Alertmanager webhook payload: {error}"}, status=400)
    targets = {
        target.slug: target
        for target in TargetService.objects.filter(
            slug__in=[
                str((alert.get("labels") or {}).get(TARGET_LABEL, ""))
                for alert in alerts
                if isinstance(alert, dict)
            ]
        ).select_related("owner_department")
    }
    answer: dict[str, list] = {"opened": [], "resolved": [], "ignored": []}
    now = timezone.now()
    for alert in alerts:
        if not isinstance(alert, dict):
            answer["ignored"].append({"reason": "not an object"})
            continue
        labels = {str(k): str(v) for k, v in (alert.get("labels") or {}).items()}
        annotations = alert.get("annotations") or {}
        name = labels.get("alertname", "alert")
        target = targets.get(labels.get(TARGET_LABEL, ""))
        if target is None:
            answer["ignored"].append(
                {
                    "alertname": name,
                    "reason": f"no target with the slug in its {TARGET_LABEL!r} label",
                }
            )
            continue
        key = _alert_key(alert)
        if alert.get("status", payload.get("status")) == "resolved":
            resolved = incidents.resolve_from_alert(
                target, ALERTMANAGER_SOURCE, key, now=_moment(alert.get("endsAt")) or now
            )
            if resolved is not None:
                answer["resolved"].append(resolved.pk)
            continue
        summary = str(annotations.get("summary") or annotations.get("description") or name)[:500]
        incident = incidents.open_from_alert(
            target,
            ALERTMANAGER_SOURCE,
            key,
            f"{target.name}: {summary}",
            SEVERITY_MAP.get(labels.get("severity", "").lower(), "high"),
            started_at=_moment(alert.get("startsAt")),
            labels=labels,
            now=now,
        )
        answer["opened"].append(incident.pk)
    return JsonResponse(answer)
