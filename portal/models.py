"""The audit trail: who changed what, and when."""

from django.conf import settings
from django.db import models


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
    summary = models.CharField(max_length=300)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["initiative", "-created_at"]),
            models.Index(fields=["target", "-created_at"]),
        ]

    def __str__(self):
        return self.summary
