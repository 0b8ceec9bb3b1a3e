"""Traces a target sent Kaizen over OTLP/HTTP: kept for KAIZEN_TRACE_RETENTION_DAYS."""

from django.db import models

from optimizations.models.targets import TargetService


class Trace(models.Model):
    """One sampled trace of a target, its spans as received (several exports may add to it).

    ``spans`` holds the span records of ``optimizations.analyzers.observe.otlp`` as dicts;
    the root's figures are copied to columns so lists and the retention purge need no JSON.
    """

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="traces")
    trace_id = models.CharField(max_length=32)
    received_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    # The first request of the trace ("GET /items"); empty until its server span arrives.
    endpoint = models.CharField(max_length=300, blank=True)
    duration_ms = models.FloatField(null=True, blank=True)
    error = models.BooleanField(default=False)
    statements = models.PositiveIntegerField(default=0)
    span_count = models.PositiveIntegerField(default=0)
    spans = models.JSONField(default=list)

    class Meta:
        ordering = ["-received_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["target", "trace_id"], name="one_trace_per_id")
        ]
        indexes = [
            # The retention purge and a target's newest traces.
            models.Index(fields=["target", "received_at"]),
            models.Index(fields=["received_at"]),
        ]

    def __str__(self):
        return f"{self.endpoint or 'trace'} {self.trace_id}"
