"""The audit trail: who changed what, and when."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from portal.i18n import shown_phrase


class AuditEvent(models.Model):
    """One recorded change, shown where it happened and in the managers' audit list."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # A dotted verb such as "task.status", "membership.role", "target.credentials".
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    # Where the change is shown besides the global list.
    initiative = models.ForeignKey(
        "optimizations.Initiative",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    target = models.ForeignKey(
        "optimizations.TargetService",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # {"field": [old, new], ...} — never holds a secret.
    changes = models.JSONField(default=dict, blank=True)
    # In English, as written (the API, exports and the admin read it) …
    summary = models.CharField(max_length=300)
    # … and as its msgid and values (portal.i18n.Phrase.as_data), so each reader gets
    # it in their own language; empty for an entry written before (shown as stored).
    summary_phrase = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["initiative", "-created_at"]),
            models.Index(fields=["target", "-created_at"]),
        ]

    def __str__(self):
        return self.summary

    @property
    def shown_summary(self) -> str:
        """The summary in the reader's language."""
        return shown_phrase(self.summary_phrase, self.summary)


class Notification(models.Model):
    """A message in a user's in-portal inbox (also sent by email)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    url = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self):
        return self.subject


class ApiToken(models.Model):
    """A personal token for the JSON API; only its hash is stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=12, help_text=_("The first characters, to recognise it"))
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class ServiceBeat(models.Model):
    """When a background service last showed it was alive (beat's tick, the reaper…)."""

    name = models.CharField(max_length=60, primary_key=True)
    at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)

    def __str__(self):
        return f"{self.name} at {self.at:%H:%M:%S}"


class WorkerBeat(models.Model):
    """A Celery worker's own word that it is alive: written when it starts, on every
    tick while it runs and when it stops (``portal/workerbeat.py``). The status page
    reads these rows instead of asking the workers through the broker, which waits
    the whole reply timeout because it cannot know how many workers should answer."""

    name = models.CharField(max_length=200, primary_key=True)  # Celery's "analysis@host"
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField(null=True, blank=True)
    concurrency = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField()
    at = models.DateTimeField()
    stopped_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} at {self.at:%H:%M:%S}"


class UserPreference(models.Model):
    """A user's portal language; blank follows the browser's Accept-Language."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference"
    )
    language = models.CharField(max_length=10, blank=True, choices=settings.LANGUAGES)

    def __str__(self):
        return f"Preferences of {self.user}"
