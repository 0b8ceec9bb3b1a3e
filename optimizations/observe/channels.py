"""Who hears of an incident, and through which channel: the inbox, email, webhooks.

Routing: an incident's owning department (its managers and engineers) and HR operations
(HR's editors and managers: incident response is HR's) hear of it. The severity decides
the channels — critical and high: inbox, email and webhooks; medium: inbox and webhooks;
low and info: the inbox only — and the schedule narrows them: in the quiet hours
(KAIZEN_ALERT_QUIET_HOURS) only critical alerts leave the inbox. Escalations reach the
department's managers on every channel.

Webhooks POST JSON (generic, or Slack-compatible ``{"text": …}``) to endpoints on
KAIZEN_ALLOWED_NOTIFY_HOSTS through safehttp (no redirect followed), signed with
HMAC-SHA256 over ``"<timestamp>.<body>"``: the header ``X-Kaizen-Signature: t=<unix
seconds>,v1=<hex>``. A failed attempt is retried with backoff (``BACKOFF``) by the
maintenance sweep; every message on every channel is a Delivery row (the log).
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from departments.models import Department, Membership
from optimizations.analyzers.base import SEVERITY_RANK
from optimizations.analyzers.netguard import NOTIFY_SETTING, HostNotAllowed
from optimizations.analyzers.safehttp import fetch
from optimizations.models import Delivery, Incident, WebhookEndpoint
from portal.language import language_for
from portal.models import Notification
from portal.notify import in_language

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Kaizen-Signature"
# Seconds after the first failed attempt, the second, …; then the delivery has failed.
BACKOFF = (30, 120, 600, 1800, 3600)
MAX_ATTEMPTS = len(BACKOFF) + 1
SWEEP_LIMIT = 20  # webhook attempts per sweep (each may wait up to its timeout)
TIMEOUT = 5.0


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        expected = sign(secret, int(parts.get("t", "")), body)
    except ValueError:
        return False
    return hmac.compare_digest(expected, header)


def in_quiet_hours(now: datetime.datetime) -> bool:
    spec = settings.KAIZEN_ALERT_QUIET_HOURS.strip()
    if not spec:
        return False
    start, _, end = spec.partition("-")
    hour = timezone.localtime(now).hour
    first, last = int(start), int(end)
    return first <= hour < last if first <= last else hour >= first or hour < last


def channels_for(severity: str, now: datetime.datetime) -> tuple[str, ...]:
    """The channels an alert of ``severity`` goes out on at ``now``."""
    if severity == "critical":
        return (Delivery.INBOX, Delivery.EMAIL, Delivery.WEBHOOK)
    if in_quiet_hours(now):
        return (Delivery.INBOX,)
    rank = SEVERITY_RANK.get(severity, SEVERITY_RANK["high"])
    if rank >= SEVERITY_RANK["high"]:
        return (Delivery.INBOX, Delivery.EMAIL, Delivery.WEBHOOK)
    if rank >= SEVERITY_RANK["medium"]:
        return (Delivery.INBOX, Delivery.WEBHOOK)
    return (Delivery.INBOX,)


def _members(department_filter, roles) -> list:
    return [
        membership.user
        for membership in Membership.objects.filter(role__in=roles, **department_filter)
        .select_related("user")
        .order_by("user__username")
    ]


def responders(incident: Incident) -> list:
    """The owning department's managers and engineers, then HR's editors and managers."""
    people = _members(
        {"department_id": incident.target.owner_department_id},
        (Membership.MANAGER, Membership.ENGINEER),
    ) + _members({"department__code": Department.HR}, (Membership.EDITOR, Membership.MANAGER))
    return [person for person in dict.fromkeys(people) if person.is_active]


def department_managers(incident: Incident) -> list:
    return [
        person
        for person in _members(
            {"department_id": incident.target.owner_department_id}, (Membership.MANAGER,)
        )
        if person.is_active
    ]


def payload(incident: Incident, event: str, subject: str) -> dict:
    """The generic JSON a webhook receives."""
    return {
        "event": event,
        "subject": subject,
        "incident": {
            "id": incident.pk,
            "url": _absolute(incident.get_absolute_url()),
            "target": incident.target.slug,
            "department": incident.target.owner_department.code,
            "severity": incident.severity,
            "source": incident.source,
            "key": incident.key,
            "summary": incident.detail,
            "started_at": incident.started_at.isoformat(),
            "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
            "acknowledged_at": (
                incident.acknowledged_at.isoformat() if incident.acknowledged_at else None
            ),
            "assignee": incident.assignee.username if incident.assignee else None,
        },
    }


def _absolute(path: str) -> str:
    base = getattr(settings, "KAIZEN_BASE_URL", "") or ""
    return f"{base.rstrip('/')}{path}" if base else path


def send(
    incident: Incident,
    event: str,
    subject,
    body,
    *,
    people=None,
    channels: tuple[str, ...] | None = None,
    now=None,
) -> list[Delivery]:
    """Tell ``people`` (default: the responders) of ``event`` on ``channels`` (default: by
    severity and schedule); webhooks are queued for the maintenance sweep after commit."""
    now = now or timezone.now()
    people = responders(incident) if people is None else people
    channels = channels_for(incident.severity, now) if channels is None else channels
    url = incident.get_absolute_url()
    deliveries = []
    for person in dict.fromkeys(p for p in people if p is not None and p.is_active):
        language = language_for(person)
        subject_text, body_text = in_language(subject, language), in_language(body, language)
        if Delivery.INBOX in channels:
            Notification.objects.create(
                user=person, subject=subject_text[:200], body=body_text, url=url
            )
            deliveries.append(
                Delivery.objects.create(
                    channel=Delivery.INBOX,
                    event=event,
                    incident=incident,
                    recipient=person.username,
                    subject=subject_text[:200],
                    status=Delivery.DELIVERED,
                    attempts=1,
                    created_at=now,
                    delivered_at=now,
                )
            )
        if Delivery.EMAIL in channels and person.email:
            deliveries.append(
                _email(incident, event, person.email, subject_text, body_text, url, now)
            )
    if Delivery.WEBHOOK in channels:
        subject_text = in_language(subject, settings.LANGUAGE_CODE)
        deliveries.extend(_queue_webhooks(incident, event, subject_text, now))
    return deliveries


def _email(incident, event, address, subject, body, url, now) -> Delivery:
    delivery = Delivery(
        channel=Delivery.EMAIL,
        event=event,
        incident=incident,
        recipient=address,
        subject=subject[:200],
        attempts=1,
        created_at=now,
    )
    try:
        send_mail(
            subject, f"{body}\n\n{_absolute(url)}".strip(), settings.DEFAULT_FROM_EMAIL, [address]
        )
        delivery.status, delivery.delivered_at = Delivery.DELIVERED, now
    except OSError as error:  # a relay that is down or refused must not stop the alert
        delivery.status, delivery.error = Delivery.FAILED, str(error)[:1000]
        logger.warning("could not email %s: %s", address, error)
    delivery.save()
    return delivery


def endpoints_for(incident: Incident):
    rank = SEVERITY_RANK.get(incident.severity, SEVERITY_RANK["high"])
    return [
        endpoint
        for endpoint in WebhookEndpoint.objects.filter(active=True).order_by("pk")
        if endpoint.department_id in (None, incident.target.owner_department_id)
        and rank >= SEVERITY_RANK[endpoint.min_severity]
    ]


def _queue_webhooks(incident, event, subject, now) -> list[Delivery]:
    return [
        Delivery.objects.create(
            channel=Delivery.WEBHOOK,
            event=event,
            incident=incident,
            endpoint=endpoint,
            recipient=endpoint.url,
            subject=subject[:200],
            payload=payload(incident, event, subject),
            status=Delivery.PENDING,
            next_attempt_at=now,
            created_at=now,
        )
        for endpoint in endpoints_for(incident)
    ]


def body_for(delivery: Delivery) -> bytes:
    """What is POSTed: the generic JSON, or Slack's ``text`` (with the same fields kept)."""
    data = delivery.payload
    if delivery.endpoint is not None and delivery.endpoint.flavour == WebhookEndpoint.SLACK:
        incident = data.get("incident", {})
        link = incident.get("url", "")
        data = {
            "text": f"{delivery.subject} — {incident.get('summary', '')} <{link}>",
            "kaizen": data,
        }
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def attempt(delivery: Delivery, now=None) -> bool:
    """One attempt at a pending webhook delivery; on failure the next is scheduled with
    backoff, and after MAX_ATTEMPTS the delivery has failed. True when delivered."""
    now = now or timezone.now()
    endpoint = delivery.endpoint
    delivery.attempts += 1
    if endpoint is None or not endpoint.active:
        delivery.status, delivery.error = Delivery.FAILED, "The webhook endpoint was removed."
        delivery.next_attempt_at = None
        delivery.save()
        return False
    body = body_for(delivery)
    timestamp = int(now.timestamp())
    headers = {"Content-Type": "application/json", "User-Agent": "Kaizen-webhooks"}
    try:
        headers[SIGNATURE_HEADER] = sign(endpoint.secret(), timestamp, body)
        answer = fetch(
            endpoint.url,
            allowed=settings.KAIZEN_ALLOWED_NOTIFY_HOSTS,
            setting=NOTIFY_SETTING,
            method="POST",
            headers=headers,
            body=body,
            secret_headers=(SIGNATURE_HEADER,),
            timeout=TIMEOUT,
            max_body=64 * 1024,
            max_redirects=0,
        )
        delivery.response_status = answer.status
        ok = 200 <= answer.status < 300
        error = "" if ok else f"The receiver answered {answer.status} {answer.reason}."
    except HostNotAllowed as refused:
        # Not a passing fault: retrying cannot help until the allow-list changes.
        delivery.status, delivery.error, delivery.next_attempt_at = (
            Delivery.FAILED,
            str(refused)[:1000],
            None,
        )
        delivery.save()
        return False
    except Exception as failure:  # connection refused, timeout, TLS, unreadable secret
        ok, error = False, f"{type(failure).__name__}: {failure}"
    if ok:
        delivery.status, delivery.delivered_at, delivery.error = Delivery.DELIVERED, now, ""
        delivery.next_attempt_at = None
    elif delivery.attempts >= MAX_ATTEMPTS:
        delivery.status, delivery.error, delivery.next_attempt_at = Delivery.FAILED, error, None
    else:
        delivery.error = error[:1000]
        delivery.next_attempt_at = now + datetime.timedelta(seconds=BACKOFF[delivery.attempts - 1])
    delivery.save()
    return ok


def deliver_due(now=None, limit: int = SWEEP_LIMIT) -> int:
    """Attempt the pending webhook deliveries that are due (the maintenance sweep). Each is
    claimed by moving its next attempt on, so two sweeps never send one twice at once."""
    now = now or timezone.now()
    sent = 0
    due = Delivery.objects.filter(
        status=Delivery.PENDING, channel=Delivery.WEBHOOK, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "pk")
    for pk in list(due.values_list("pk", flat=True)[:limit]):
        with transaction.atomic():
            claimed = Delivery.objects.filter(
                pk=pk, status=Delivery.PENDING, next_attempt_at__lte=now
            ).update(next_attempt_at=now + datetime.timedelta(seconds=TIMEOUT * 4))
        if not claimed:
            continue
        delivery = Delivery.objects.select_related("endpoint").get(pk=pk)
        sent += attempt(delivery, now)
    return sent
