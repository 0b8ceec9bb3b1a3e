"""The per-target lease: which job may put load on a target now."""

from __future__ import annotations

from django.db import models

from optimizations.models.jobs import Job
from optimizations.models.targets import TargetService


class TargetLease(models.Model):
    """One row per target; ``holder`` is the one job that may load it now.

    Jobs take it with a conditional UPDATE (``holder IS NULL`` → this job) and
    give it back with another (``holder = this job`` → NULL), so two workers or
    two portal processes racing for it cannot both win — on PostgreSQL and on
    SQLite alike. See optimizations/jobs/lease.py.
    """

    target = models.OneToOneField(
        TargetService, primary_key=True, on_delete=models.CASCADE, related_name="lease"
    )
    holder = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    since = models.DateTimeField(null=True, blank=True)
    # The cool-down's reference: the latency of the target's health check just
    # before ``last_job`` started, and when that job gave the lease back.
    health_ms = models.FloatField(null=True, blank=True)
    last_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_ended_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"lease of target {self.target_id}: {self.holder_id or 'free'}"
