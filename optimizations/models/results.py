"""What analyses produce: findings, measurements, and availability incidents."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from optimizations.analyzers.base import MOST_SEVERE_FIRST, SEVERITY_RANK
from optimizations.models.fields import CleanCharField, CleanJSONField, CleanTextField
from optimizations.models.jobs import Job, Run
from optimizations.models.targets import TargetService

# The analyzers' severities (analyzers/base.py) as a person reads them.
SEVERITY_LABELS = {
    "critical": _("Critical"),
    "high": _("High"),
    "medium": _("Medium"),
    "low": _("Low"),
    "info": _("Info"),
}


class FindingQuerySet(models.QuerySet):
    def by_severity(self):
        """Most severe first (critical, high, medium, low, info), then by rule and place;
        the primary key last, so pages of a paginated list neither repeat nor skip rows."""
        rank = models.Case(
            *(
                models.When(severity=name, then=models.Value(rank))
                for name, rank in SEVERITY_RANK.items()
            ),
            default=models.Value(-1),
            output_field=models.IntegerField(),
        )
        return self.annotate(severity_rank=rank).order_by(
            "-severity_rank", "rule_id", "location", "pk"
        )


class Finding(models.Model):
    """A problem any analysis reported, identified across runs by its fingerprint."""

    SOURCES = [
        ("code", _("Code scan")),
        ("db", _("DB scan")),
        ("security", _("Security scan")),
        ("benchmark", _("Benchmark")),
        ("availability", _("Availability")),
        ("probe", _("Probe")),
        ("runbook", _("Runbooks")),
        ("integrity", _("Integrity probes")),
        ("trace", _("Traces")),
    ]
    # The analyzers' one order (optimizations.analyzers.base), most severe first.
    SEVERITIES = [(name, SEVERITY_LABELS[name]) for name in MOST_SEVERE_FIRST]
    OPEN, ACCEPTED, FIXED, WONT_FIX, FALSE_POSITIVE = (
        "open",
        "accepted",
        "fixed",
        "wont_fix",
        "false_positive",
    )
    # Reported, but silenced by a `# kaizen: ignore[...] -- reason` in the target's code:
    # set by the scan that saw the comment (its reason in status_reason), never by a person.
    SUPPRESSED = "suppressed"
    STATUSES = [
        (OPEN, _("Open")),
        (ACCEPTED, _("Accepted")),
        (FIXED, _("Fixed")),
        (WONT_FIX, _("Won't fix")),
        (FALSE_POSITIVE, _("False positive")),
        (SUPPRESSED, _("Suppressed in code")),
    ]
    # What a person may set by hand (optimizations.work.findings.set_status): never "fixed"
    # (only a re-scan that ran the finding's check is evidence of it) and never
    # "suppressed" (only the code's comment).
    SETTABLE = [STATUSES[0], STATUSES[1], STATUSES[3], STATUSES[4]]  # open, accepted, won't
    # fix, false positive (a class body's comprehension cannot read FIXED, hence by index)
    # A person decided these; a re-run does not reopen them.
    TRIAGED = (ACCEPTED, WONT_FIX, FALSE_POSITIVE)
    NEEDS_REASON = TRIAGED

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="findings")
    source = models.CharField(max_length=20, choices=SOURCES)
    rule_id = CleanCharField(max_length=60)
    severity = models.CharField(max_length=10, choices=SEVERITIES)
    category = CleanCharField(max_length=30)
    title = CleanCharField(max_length=300)
    location = CleanCharField(max_length=500, blank=True)
    evidence = CleanJSONField(default=dict, blank=True)
    fix_hint = CleanTextField(blank=True)
    doc_url = models.URLField(max_length=500, blank=True)
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(max_length=20, choices=STATUSES, default=OPEN)
    status_reason = CleanTextField(blank=True)
    status_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    fixed_at = models.DateTimeField(null=True, blank=True)
    # The job whose check ran again and no longer reported it: the evidence a task
    # made from the finding may close on (set only by optimizations.work.findings).
    fixed_in_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    first_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="findings"
    )
    times_seen = models.PositiveIntegerField(default=1)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_findings",
    )

    objects = FindingQuerySet.as_manager()

    class Meta:
        ordering = ["status", "severity", "-last_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["target", "fingerprint"], name="one_finding_per_print")
        ]
        indexes = [
            # The findings list filters by these, per target.
            models.Index(fields=["target", "status", "severity"]),
            models.Index(fields=["target", "source", "rule_id"]),
        ]

    def __str__(self):
        return f"{self.rule_id}: {self.title}"

    def get_absolute_url(self):
        return reverse("finding_detail", args=[self.pk])


class Measurement(models.Model):
    """One number a job (or the availability check) measured, with its unit.

    Summaries have ``second`` empty; a benchmark's per-second samples carry the
    second of the run they belong to. SLO verdicts, trends and ROI are computed
    from these rows, never typed in.
    """

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="measurements")
    run = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements"
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.CASCADE, related_name="measurements"
    )
    name = CleanCharField(max_length=100)
    value = models.FloatField()
    unit = CleanCharField(max_length=20)
    labels = CleanJSONField(default=dict, blank=True)
    second = models.PositiveIntegerField(null=True, blank=True)
    measured_at = models.DateTimeField()

    class Meta:
        ordering = ["measured_at", "pk"]
        indexes = [
            # Trends and SLO boards: the latest values of a name per target. The value
            # rides along as a last key column (not INCLUDE, which SQLite ignores with
            # a warning), so uptime and the board's daily availability read 30 days of
            # minute checks from the index alone, on PostgreSQL and SQLite alike.
            models.Index(
                fields=["target", "name", "-measured_at", "value"],
                name="measurement_latest_value",
            ),
            # The live chart: a job's samples after second N.
            models.Index(fields=["job", "second"]),
        ]

    def __str__(self):
        return f"{self.name} = {self.value:g} {self.unit}"


class Incident(models.Model):
    """Something wrong with a target that people run until it is resolved: opened by an
    alert (the minute check, a burn-rate rule, Prometheus' Alertmanager), acknowledged,
    assigned, escalated, resolved, and written up in a postmortem. Its timeline is
    ``events`` (IncidentEvent); every change goes through optimizations.observe.incidents."""

    DOWN, SLO, ALERT = "down", "slo", "alert"
    KINDS = [(DOWN, _("Down")), (SLO, _("SLO breached")), (ALERT, _("Alert"))]

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="incidents")
    kind = models.CharField(max_length=10, choices=KINDS)
    # For SLO incidents, which one (a key of optimizations.targets.slo.THRESHOLDS).
    slo_key = models.CharField(max_length=40, blank=True)
    # Who opened it ("minute-check", "burn-rate", "alertmanager", …) and the alert's own key
    # within that source: at most one open incident per (target, source, key).
    source = models.CharField(max_length=40, default="minute-check")
    key = models.CharField(max_length=200, blank=True)
    severity = models.CharField(
        max_length=10, choices=[(name, name) for name in MOST_SEVERE_FIRST], default="high"
    )
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    detail = CleanTextField(blank=True)
    notified = models.BooleanField(default=False)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_incidents",
    )
    # Set when nobody acknowledged it in time and the department's managers were told.
    escalated_at = models.DateTimeField(null=True, blank=True)
    runbook = models.ForeignKey(
        "departments.Runbook",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="incidents",
    )

    class Meta:
        ordering = ["-started_at"]
        indexes = [
            models.Index(fields=["target", "ended_at"]),
            # The escalation sweep: open and unacknowledged.
            models.Index(fields=["ended_at", "acknowledged_at"]),
            # MTTA / MTTR per month and quarter.
            models.Index(fields=["started_at"]),
        ]
        constraints = [
            # open_from_alert is idempotent: one open incident per alert.
            models.UniqueConstraint(
                fields=["target", "source", "key"],
                condition=models.Q(ended_at__isnull=True),
                name="one_open_incident_per_alert",
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} on {self.target} since {self.started_at:%Y-%m-%d %H:%M}"

    def get_absolute_url(self):
        return reverse("incident_detail", args=[self.pk])

    @property
    def is_open(self) -> bool:
        return self.ended_at is None
