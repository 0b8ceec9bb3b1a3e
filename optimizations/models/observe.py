"""A target's continuous sources and burn-rate alert rules (optimizations.observe)."""

from django.db import models

from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.models.fields import CleanJSONField
from optimizations.models.targets import TargetService


class ObserveSettings(models.Model):
    """Where a target's continuous figures come from and when its error budget burns too fast.

    ``queries`` maps a key of optimizations.observe.sources.QUERIES (an SLO figure or a
    minute's events) to a PromQL expression; ``rules`` holds the target's burn-rate rules
    (AlertRule.as_dict plus the incident severity each opens with) — empty: the SRE
    workbook's defaults. ``evaluation`` is the latest judgement of every rule, what the
    pages and ``manage.py observability status`` show, with ``budgets``.
    """

    target = models.OneToOneField(TargetService, on_delete=models.CASCADE, related_name="observe")
    prometheus_url = models.URLField(
        max_length=300,
        blank=True,
        verbose_name="Prometheus server",
        help_text="Its base URL (the one whose /api/v1/query answers); the target's "
        "allow-list applies to it.",
    )
    queries = CleanJSONField(default=dict, blank=True)
    rules = CleanJSONField(default=list, blank=True)
    evaluation = CleanJSONField(default=dict, blank=True)
    # The budgets left this month as of ``evaluated_at`` (budgets.BudgetRow.as_dict each).
    budgets = CleanJSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField(null=True, blank=True)
    prometheus_read_at = models.DateTimeField(null=True, blank=True)
    prometheus_series = models.PositiveIntegerField(default=0)
    prometheus_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "observability settings"
        verbose_name_plural = "observability settings"

    def __str__(self):
        return f"Observability of {self.target}"


SEVERITY_CHOICES = [(name, name) for name in MOST_SEVERE_FIRST]
