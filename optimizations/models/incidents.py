"""An incident's timeline and postmortem, outgoing webhooks and the log of every delivery.

The rows are written by optimizations.observe (incidents.py, channels.py) only — in
plain ``do_*`` functions, never by signals.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.models.fields import CleanCharField, CleanJSONField, CleanTextField
from optimizations.models.plan import PhaseTask
from optimizations.models.results import Incident
from optimizations.targets.crypto import decrypt


class IncidentEvent(models.Model):
    """One entry of an incident's timeline: what happened, who did it, when."""

    OPENED, ACKNOWLEDGED, ASSIGNED, ESCALATED = "opened", "acknowledged", "assigned", "escalated"
    NOTE, RUNBOOK, STEP_RUN, NOTIFIED = "note", "runbook", "step_run", "notified"
    RESOLVED, POSTMORTEM = "resolved", "postmortem"
    KINDS = [
        (OPENED, _("Opened")),
        (ACKNOWLEDGED, _("Acknowledged")),
        (ASSIGNED, _("Assigned")),
        (ESCALATED, _("Escalated")),
        (NOTE, _("Note")),
        (RUNBOOK, _("Runbook linked")),
        (STEP_RUN, _("Runbook step run")),
        (NOTIFIED, _("Notified")),
        (RESOLVED, _("Resolved")),
        (POSTMORTEM, _("Postmortem")),
    ]

    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=KINDS)
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    text = CleanTextField(blank=True)
    # Links the entry needs (a run, a user, the alert's labels), small and flat.
    data = CleanJSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.at:%Y-%m-%d %H:%M}"


class Postmortem(models.Model):
    """What happened and what to change, written from HR's postmortem runbook template."""

    incident = models.OneToOneField(Incident, on_delete=models.CASCADE, related_name="postmortem")
    body = CleanTextField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    written_at = models.DateTimeField()

    def __str__(self):
        return f"Postmortem of incident #{self.incident_id}"


class PostmortemAction(models.Model):
    """One action item: a task of the target's open initiative, or a follow-up kept on the
    incident when no initiative is open (``task`` empty)."""

    postmortem = models.ForeignKey(Postmortem, on_delete=models.CASCADE, related_name="actions")
    text = CleanCharField(max_length=200)
    task = models.ForeignKey(
        PhaseTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    done = models.BooleanField(default=False)

    class Meta:
        ordering = ["pk"]

    def __str__(self):
        return self.text


class WebhookEndpoint(models.Model):
    """Where alerts are POSTed: a generic JSON receiver or a Slack-compatible one, signed
    with HMAC-SHA256 (the secret encrypted at rest); its host must be on
    KAIZEN_ALLOWED_NOTIFY_HOSTS."""

    JSON, SLACK = "json", "slack"
    FLAVOURS = [(JSON, _("Generic JSON")), (SLACK, _("Slack-compatible"))]

    name = CleanCharField(max_length=100)
    url = models.URLField(max_length=500)
    flavour = models.CharField(max_length=10, choices=FLAVOURS, default=JSON)
    secret_encrypted = models.TextField(blank=True)
    # Only incidents of this department's targets (empty: every target's).
    department = models.ForeignKey(
        "departments.Department", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    min_severity = models.CharField(
        max_length=10, choices=[(name, name) for name in MOST_SEVERE_FIRST], default="high"
    )
    active = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def secret(self) -> str:
        return decrypt(self.secret_encrypted) if self.secret_encrypted else ""


class Delivery(models.Model):
    """One message sent (or being retried) on one channel: the delivery log."""

    INBOX, EMAIL, WEBHOOK = "inbox", "email", "webhook"
    CHANNELS = [(INBOX, _("Inbox")), (EMAIL, _("Email")), (WEBHOOK, _("Webhook"))]
    PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
    STATUSES = [(PENDING, _("Pending")), (DELIVERED, _("Delivered")), (FAILED, _("Failed"))]

    channel = models.CharField(max_length=10, choices=CHANNELS)
    event = models.CharField(max_length=40)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    recipient = CleanCharField(max_length=300)
    subject = CleanCharField(max_length=200, blank=True)
    payload = CleanJSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error = CleanTextField(blank=True)
    created_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The retry sweep: pending webhooks whose next attempt is due.
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self):
        return f"{self.channel} to {self.recipient}: {self.status}"
