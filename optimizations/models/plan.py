"""Initiatives, their four phases and the tasks in them."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from departments.models import Department
from optimizations.models.targets import TargetService


class Initiative(models.Model):
    """A performance-optimization initiative on one target, run through four phases."""

    DRAFT, ACTIVE, DONE, ARCHIVED = "draft", "active", "done", "archived"
    STATUSES = [
        (DRAFT, _("Draft")),
        (ACTIVE, _("Active")),
        (DONE, _("Done")),
        (ARCHIVED, _("Archived")),
    ]

    COMPREHENSIVE, PERFORMANCE, QUALITY, STRATEGY = (
        "comprehensive",
        "performance",
        "quality",
        "strategy",
    )
    RUN_MODES = [
        (COMPREHENSIVE, _("Comprehensive")),
        (PERFORMANCE, _("Performance")),
        (QUALITY, _("Quality")),
        (STRATEGY, _("Strategy")),
    ]
    # The focus tags each run mode accepts (DESIGN.md, "Run modes").
    FOCUS_BY_MODE = {
        COMPREHENSIVE: (),
        PERFORMANCE: ("fastapi", "sqlalchemy", "async"),
        QUALITY: ("testing", "security", "validation", "integrity"),
        STRATEGY: ("architecture", "monitoring", "scaling"),
    }
    # Every focus tag of any mode, sorted: the choices of the forms that take a focus.
    ALL_FOCUS = sorted({tag for tags in FOCUS_BY_MODE.values() for tag in tags})

    title = models.CharField(max_length=200)
    target = models.ForeignKey(TargetService, on_delete=models.PROTECT, related_name="initiatives")
    run_mode = models.CharField(max_length=20, choices=RUN_MODES, default=COMPREHENSIVE)
    focus = models.JSONField(default=list, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_initiatives"
    )
    description = models.TextField(blank=True)
    start_date = models.DateField(default=timezone.localdate)
    target_date = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=20, choices=STATUSES, default=ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("initiative_detail", args=[self.pk])

    def focus_display(self):
        return ", ".join(self.focus) if self.focus else "—"


class Phase(models.Model):
    """One of an initiative's four standard phases."""

    NOT_STARTED, ACTIVE, DONE = "not_started", "active", "done"
    STATUSES = [(NOT_STARTED, _("Not started")), (ACTIVE, _("Active")), (DONE, _("Done"))]

    initiative = models.ForeignKey(Initiative, on_delete=models.CASCADE, related_name="phases")
    number = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=80)
    lead_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="led_phases"
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=NOT_STARTED)
    planned_start = models.DateField(null=True, blank=True)
    planned_end = models.DateField(null=True, blank=True)
    actual_start = models.DateField(null=True, blank=True)
    actual_end = models.DateField(null=True, blank=True)
    exit_criterion = models.TextField(blank=True)

    class Meta:
        ordering = ["initiative", "number"]
        constraints = [
            models.UniqueConstraint(fields=["initiative", "number"], name="one_phase_per_number")
        ]

    def __str__(self):
        return f"{self.number}. {self.name}"

    def is_overdue(self, today=None):
        today = today or timezone.localdate()
        return bool(self.planned_end and self.status != self.DONE and self.planned_end < today)


CRITERION_STATES = [
    ("pending", _("Not checked yet")),
    ("met", _("Met")),
    ("not_met", _("Not met")),
    ("unknown", _("Could not be checked")),
]


class PhaseTask(models.Model):
    """A piece of work in a phase, owned by a department."""

    TODO, DOING, BLOCKED, DONE = "todo", "doing", "blocked", "done"
    STATUSES = [(TODO, _("To do")), (DOING, _("Doing")), (BLOCKED, _("Blocked")), (DONE, _("Done"))]
    OPEN_STATUSES = (TODO, DOING, BLOCKED)

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="tasks")
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="tasks")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assigned_tasks",
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=TODO)
    estimate_hours = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    logged_hours = models.DecimalField(max_digits=7, decimal_places=1, default=Decimal("0"))
    due_date = models.DateField(null=True, blank=True)
    position = models.PositiveSmallIntegerField(default=0)
    # Tasks that stand for a command of the organisation's old optimizer carry
    # that command (run mode + focus), so the task can start the run itself.
    run_mode = models.CharField(max_length=20, choices=Initiative.RUN_MODES, blank=True)
    run_focus = models.JSONField(default=list, blank=True)
    # A task made from a finding, and the acceptance criterion Kaizen checks
    # itself whenever a run of the initiative's target lands
    # (optimizations.work.criteria): {"kind": "finding_gone", ...} or {"kind": "metric", ...}.
    finding = models.ForeignKey(
        "optimizations.Finding",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="tasks",
    )
    criterion = models.JSONField(default=dict, blank=True)
    criterion_state = models.CharField(max_length=10, choices=CRITERION_STATES, blank=True)
    criterion_detail = models.CharField(max_length=500, blank=True)
    criterion_checked_at = models.DateTimeField(null=True, blank=True)
    criterion_run = models.ForeignKey(
        "optimizations.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["phase", "position", "pk"]
        indexes = [
            # The dashboard's "my open tasks" and "open work per department".
            models.Index(fields=["assignee", "status"]),
            models.Index(fields=["department", "status"]),
            # The dashboard's "overdue" and "my tasks" lists: open tasks in due-date order,
            # read a page at a time (at bench scale 10 both scanned all 37 000 tasks).
            models.Index(
                fields=["due_date", "id"],
                condition=models.Q(status__in=("todo", "doing", "blocked")),
                name="task_open_due",
            ),
            models.Index(
                fields=["assignee", "due_date", "id"],
                condition=models.Q(status__in=("todo", "doing", "blocked")),
                name="task_open_assignee_due",
            ),
        ]

    def __str__(self):
        return self.title

    @property
    def weight(self) -> Decimal:
        """A task's weight in its phase's progress: its estimate, or 1 without one."""
        return self.estimate_hours if self.estimate_hours else Decimal(1)

    def is_open(self):
        return self.status in self.OPEN_STATUSES

    def is_overdue(self, today=None):
        today = today or timezone.localdate()
        return bool(self.due_date and self.is_open() and self.due_date < today)


class GateSignoff(models.Model):
    """A manager's sign-off of a phase gate, with the evidence as it stood then.

    Signing a gate whose evidence is incomplete is an override and needs a
    reason; both stay on record (the newest row is the gate's state).
    """

    phase = models.ForeignKey(Phase, on_delete=models.CASCADE, related_name="signoffs")
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(auto_now_add=True)
    comment = models.TextField(blank=True)
    override = models.BooleanField(default=False)
    override_reason = models.TextField(blank=True)
    # gates.evaluate() at signing time: [{"key", "label", "ok", "detail", "url"}].
    evidence = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-signed_at", "-pk"]

    def __str__(self):
        kind = "overridden" if self.override else "signed off"
        return f"Gate of {self.phase} {kind} by {self.signed_by}"


class RoiAssumptions(models.Model):
    """Strategy's assumptions behind an initiative's ROI; each edit adds a row (history)."""

    initiative = models.ForeignKey(
        Initiative, on_delete=models.CASCADE, related_name="roi_assumptions"
    )
    # Requests per second the target must carry at its busiest.
    expected_peak_rps = models.PositiveIntegerField(null=True, blank=True)
    cost_per_instance_month = models.DecimalField(
        max_digits=10, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(max_length=3, default="EUR")
    # {"dev": 95, "qa": 80, "strategy": 110, "hr": 60}: cost of an hour per department.
    hourly_rates = models.JSONField(default=dict, blank=True)
    # Months the savings are counted over for ROI %.
    horizon_months = models.PositiveSmallIntegerField(default=12)
    note = models.TextField(blank=True)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    changed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["initiative", "-changed_at"])]

    def __str__(self):
        return f"ROI assumptions of {self.initiative} ({self.changed_at:%Y-%m-%d %H:%M})"
