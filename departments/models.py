"""Departments, who belongs to them and in which role; HR's runbooks and training."""

import datetime

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, pgettext_lazy

from portal.i18n import Phrase, shown_phrase


class Department(models.Model):
    """One of the four departments: development, QA, strategy, HR/operations."""

    DEV = "dev"
    QA = "qa"
    STRATEGY = "strategy"
    HR = "hr"
    CODES = [
        (DEV, pgettext_lazy("department", "Development")),
        (QA, pgettext_lazy("department", "Quality assurance")),
        (STRATEGY, pgettext_lazy("department", "Strategy")),
        (HR, pgettext_lazy("department", "HR / operations")),
    ]
    # Departments whose engineers register targets and trigger analyses.
    ENGINEERING = (DEV, QA, STRATEGY)

    code = models.SlugField(max_length=20, unique=True, choices=CODES)
    name = models.CharField(max_length=80)
    mission = models.TextField(blank=True)
    # One responsibility per line, as DESIGN.md lists them.
    responsibilities = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name

    def responsibility_list(self):
        return [line.strip() for line in self.responsibilities.splitlines() if line.strip()]


class Membership(models.Model):
    """A user's role in one department; a user may belong to several."""

    MANAGER = "manager"
    ENGINEER = "engineer"
    EDITOR = "editor"
    VIEWER = "viewer"
    ROLES = [
        (MANAGER, _("Manager")),
        (ENGINEER, _("Engineer")),
        (EDITOR, _("Editor")),
        (VIEWER, _("Viewer")),
    ]

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="members")
    role = models.CharField(max_length=20, choices=ROLES)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="one_role_per_department")
        ]
        ordering = ["department__position", "user__username"]

    def __str__(self):
        return f"{self.user} — {self.get_role_display()} of {self.department}"


class Profile(models.Model):
    """Per-user preferences kept beside Django's User."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    time_zone = models.CharField(max_length=64, default="UTC")

    def __str__(self):
        return f"Profile of {self.user}"


# --- runbooks -------------------------------------------------------------------


class Topic(models.Model):
    """A subject runbooks are tagged with; the standard ones make up a target's coverage."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=80)
    # A standard runbook: every target should have one published (the coverage page).
    standard = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "name"]

    def __str__(self):
        return self.name


class Runbook(models.Model):
    """An operating procedure in Markdown, owned by a department; its text lives in revisions."""

    DRAFT, PUBLISHED, ARCHIVED = "draft", "published", "archived"
    STATUSES = [(DRAFT, _("Draft")), (PUBLISHED, _("Published")), (ARCHIVED, _("Archived"))]
    PHASES = [(1, "1 Analysis"), (2, "2 Implementation"), (3, "3 Infrastructure"), (4, "4 QA")]

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    owner_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="runbooks"
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_runbooks",
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=DRAFT)
    topics = models.ManyToManyField(Topic, blank=True, related_name="runbooks")
    targets = models.ManyToManyField(
        "optimizations.TargetService", blank=True, related_name="runbooks"
    )
    # The initiative phases (1–4) the runbook serves, as a list of numbers.
    phases = models.JSONField(default=list, blank=True)
    # The accepted revision shown on the page; proposals never become it unapproved.
    current_revision = models.ForeignKey(
        "RunbookRevision", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Which of HR's templates it started from ("" for a blank page).
    template_key = models.CharField(max_length=40, blank=True)
    review_interval_days = models.PositiveSmallIntegerField(
        default=180, help_text=_("A review sets the next review date this many days ahead.")
    )
    next_review_date = models.DateField(null=True, blank=True)
    last_reviewed_at = models.DateTimeField(null=True, blank=True)
    # Set when the service it operates changed (an initiative finished phase 2 or 3).
    review_needed = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]
        indexes = [
            # The overdue-review list and badge.
            models.Index(fields=["status", "next_review_date"]),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("runbook_detail", args=[self.slug])

    def review_overdue(self, today=None) -> bool:
        today = today or timezone.localdate()
        return bool(
            self.status != self.ARCHIVED and self.next_review_date and self.next_review_date < today
        )

    def phase_labels(self) -> list[str]:
        names = dict(self.PHASES)
        return [names[number] for number in sorted(self.phases) if number in names]


class RunbookRevision(models.Model):
    """One saved version of a runbook's title and text. Revisions are never changed or deleted.

    Accepted revisions form the runbook's history, numbered in order; the
    newest is the current one. A restore adds a new accepted revision that
    copies an old one. Engineers' proposals wait as ``proposed``; approving one
    adds an accepted copy (so history stays in order) and marks it ``approved``;
    rejecting marks it ``rejected``.
    """

    ACCEPTED, PROPOSED, APPROVED, REJECTED = "accepted", "proposed", "approved", "rejected"
    STATES = [
        (ACCEPTED, _("Saved")),
        (PROPOSED, _("Proposed")),
        (APPROVED, _("Approved proposal")),
        (REJECTED, _("Rejected proposal")),
    ]

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True, help_text=_("What changed and why."))
    state = models.CharField(max_length=20, choices=STATES, default=ACCEPTED)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # The current revision when a proposal was written: its diff is against this.
    based_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The revision this one copies: a restored one, or the approved proposal.
    copy_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["runbook", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["runbook", "number"], name="one_revision_per_number")
        ]
        indexes = [
            # HR's queue of proposals waiting for review.
            models.Index(fields=["state", "created_at"]),
        ]

    def __str__(self):
        return f"{self.runbook} r{self.number}"

    def get_absolute_url(self):
        return reverse("runbook_revision", args=[self.runbook.slug, self.number])

    def is_proposal(self) -> bool:
        return self.state in (self.PROPOSED, self.APPROVED, self.REJECTED)


# --- training -------------------------------------------------------------------


class TrainingModule(models.Model):
    """A piece of training: Markdown content and an optional multiple-choice quiz."""

    DRAFT, PUBLISHED, ARCHIVED = "draft", "published", "archived"
    STATUSES = [(DRAFT, _("Draft")), (PUBLISHED, _("Published")), (ARCHIVED, _("Archived"))]

    title = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    summary = models.CharField(max_length=300, blank=True)
    content = models.TextField(blank=True)
    # The quiz in its plain-text form (see departments/quiz.py); empty for none.
    quiz = models.TextField(blank=True)
    pass_mark = models.PositiveSmallIntegerField(
        default=80,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text=_("Per cent of questions answered right to pass the quiz."),
    )
    recertify_after_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Days until a completion expires and the module is assigned again; empty: never."
        ),
    )
    status = models.CharField(max_length=20, choices=STATUSES, default=DRAFT)
    owner_department = models.ForeignKey(
        Department, on_delete=models.PROTECT, related_name="training_modules"
    )
    runbooks = models.ManyToManyField(Runbook, blank=True, related_name="training_modules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("training_module", args=[self.slug])

    def has_quiz(self) -> bool:
        return bool(self.quiz.strip())


# A training assignment's audience in words (TrainingAssignment.audience).
_AUDIENCE_OF = {
    Membership.MANAGER: gettext_noop("managers of %(department)s"),
    Membership.ENGINEER: gettext_noop("engineers of %(department)s"),
    Membership.EDITOR: gettext_noop("editors of %(department)s"),
    Membership.VIEWER: gettext_noop("viewers of %(department)s"),
}
_AUDIENCE_ALL = {
    Membership.MANAGER: gettext_noop("all managers"),
    Membership.ENGINEER: gettext_noop("all engineers"),
    Membership.EDITOR: gettext_noop("all editors"),
    Membership.VIEWER: gettext_noop("all viewers"),
}


class TrainingAssignment(models.Model):
    """HR's decision that a person, a department, a role (or a role in a department) takes
    a module by a date. Each person concerned gets a ``TrainingRecord``; people who join
    the audience later get theirs from the periodic refresh."""

    module = models.ForeignKey(TrainingModule, on_delete=models.CASCADE, related_name="assignments")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    department = models.ForeignKey(
        Department, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    role = models.CharField(max_length=20, choices=Membership.ROLES, blank=True)
    due_date = models.DateField()
    note = models.CharField(max_length=300, blank=True)
    active = models.BooleanField(default=True)
    assigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False) | Q(department__isnull=False) | ~Q(role=""),
                name="assignment_has_an_audience",
            )
        ]

    def __str__(self):
        return f"{self.module} for {self.audience()}"

    def audience(self) -> str:
        """Who the assignment is for, in words: English as a str, a Phrase that pages show
        in their reader's language (|translated) and audit entries keep as such."""
        if self.user is not None:
            return self.user.get_full_name() or self.user.username
        if self.department is not None and not self.role:
            return self.department.name
        if self.department is not None:
            return Phrase(_AUDIENCE_OF[self.role], department=self.department.name)
        return Phrase(_AUDIENCE_ALL.get(self.role, gettext_noop("everyone")))

    def audience_users(self):
        """The active users this assignment concerns, as a queryset."""
        from django.contrib.auth import get_user_model

        users = get_user_model().objects.filter(is_active=True)
        if self.user_id:
            return users.filter(pk=self.user_id)
        memberships = Membership.objects.all()
        if self.department_id:
            memberships = memberships.filter(department_id=self.department_id)
        if self.role:
            memberships = memberships.filter(role=self.role)
        return users.filter(pk__in=memberships.values("user_id"))


class TrainingRecord(models.Model):
    """One person's progress through one module: assigned → in progress → completed,
    or overdue when the due date passed first.

    A person has at most one *current* record per module. Recertification keeps
    the completed record as history (``current=False``) and opens a new one.
    State changes go through the methods below, which refuse illegal moves.
    """

    ASSIGNED, IN_PROGRESS, COMPLETED, OVERDUE = "assigned", "in_progress", "completed", "overdue"
    STATES = [
        (ASSIGNED, _("Assigned")),
        (IN_PROGRESS, _("In progress")),
        (COMPLETED, _("Completed")),
        (OVERDUE, _("Overdue")),
    ]
    OPEN_STATES = (ASSIGNED, IN_PROGRESS, OVERDUE)

    module = models.ForeignKey(TrainingModule, on_delete=models.CASCADE, related_name="records")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="training_records"
    )
    assignment = models.ForeignKey(
        TrainingAssignment,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="records",
    )
    state = models.CharField(max_length=20, choices=STATES, default=ASSIGNED)
    current = models.BooleanField(default=True)
    due_date = models.DateField()
    assigned_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    overdue_at = models.DateTimeField(null=True, blank=True)
    # When a completion stops counting (completed_at + the module's recertification period).
    expires_at = models.DateTimeField(null=True, blank=True)
    # What proves the completion: the quiz result, or the person's own words.
    evidence = models.TextField(blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    recertification_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["due_date", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "module"],
                condition=Q(current=True),
                name="one_current_record_per_person_and_module",
            )
        ]
        indexes = [
            # "My training" and the dashboard's counts per state.
            models.Index(fields=["user", "current", "state"]),
            models.Index(fields=["current", "state", "due_date"]),
        ]

    def __str__(self):
        return f"{self.user} — {self.module} ({self.state})"

    class IllegalTransition(Exception):
        pass

    def start(self, now) -> bool:
        """The person started the module; True when that changed anything.

        An overdue record stays overdue (it is still late) but gets its start stamped.
        """
        if self.state == self.COMPLETED:
            return False
        changed = False
        if self.started_at is None:
            self.started_at, changed = now, True
        if self.state == self.ASSIGNED:
            self.state, changed = self.IN_PROGRESS, True
        return changed

    def complete(self, now, *, evidence: str, score: int | None = None) -> None:
        if self.state == self.COMPLETED or not self.current:
            raise self.IllegalTransition(f"{self} is already completed")
        self.started_at = self.started_at or now
        self.state = self.COMPLETED
        self.completed_at = now
        self.evidence = evidence
        self.score = score
        days = self.module.recertify_after_days
        self.expires_at = now + datetime.timedelta(days=days) if days else None

    def mark_overdue(self, now) -> None:
        if self.state not in (self.ASSIGNED, self.IN_PROGRESS):
            raise self.IllegalTransition(f"{self} cannot become overdue")
        self.state = self.OVERDUE
        self.overdue_at = now

    def is_valid_completion(self, now=None) -> bool:
        """A completion that still counts (for training gates)."""
        now = now or timezone.now()
        return self.state == self.COMPLETED and (self.expires_at is None or self.expires_at > now)


class QuizAttempt(models.Model):
    """One submission of a module's quiz, kept whether it passed or not."""

    record = models.ForeignKey(TrainingRecord, on_delete=models.CASCADE, related_name="attempts")
    # {question number: [chosen choice numbers]} as submitted.
    answers = models.JSONField(default=dict)
    correct = models.PositiveSmallIntegerField()
    total = models.PositiveSmallIntegerField()
    score = models.PositiveSmallIntegerField()
    passed = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.record.user} {self.score} % on {self.record.module}"


class TrainingGate(models.Model):
    """On a target, starting a job of this kind needs a current completion of the module."""

    BENCHMARK = "benchmark"
    JOB_KINDS = [(BENCHMARK, _("Load tests (benchmarks: load, stress, endurance)"))]

    target = models.ForeignKey(
        "optimizations.TargetService", on_delete=models.CASCADE, related_name="training_gates"
    )
    module = models.ForeignKey(TrainingModule, on_delete=models.CASCADE, related_name="gates")
    job_kind = models.CharField(max_length=20, choices=JOB_KINDS, default=BENCHMARK)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["target", "module", "job_kind"], name="one_gate_per_module_and_kind"
            )
        ]

    def __str__(self):
        return f"{self.get_job_kind_display()} on {self.target} need {self.module}"


class RunbookStepRun(models.Model):
    """A run started from a runbook's "run this" step: the runbook's run history."""

    runbook = models.ForeignKey(Runbook, on_delete=models.CASCADE, related_name="step_runs")
    revision = models.ForeignKey(
        RunbookRevision, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    step_index = models.PositiveSmallIntegerField()
    label = models.CharField(max_length=200)
    run = models.ForeignKey("optimizations.Run", on_delete=models.CASCADE, related_name="+")
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The runbook page's "runs from this page".
            models.Index(fields=["runbook", "-created_at"]),
        ]

    def __str__(self):
        return f"{self.runbook} step {self.step_index}: run #{self.run_id}"


# --- compliance -------------------------------------------------------------------


class Control(models.Model):
    """One line of HR's compliance register: a statement a department answers for, checked
    from Kaizen's own records (``source``) or attested by a person (manual, no source)."""

    MONTHLY, QUARTERLY, YEARLY = "monthly", "quarterly", "yearly"
    RECURRENCES = [(MONTHLY, _("Monthly")), (QUARTERLY, _("Quarterly")), (YEARLY, _("Yearly"))]

    slug = models.SlugField(max_length=80, unique=True)
    statement = models.CharField(max_length=300)
    description = models.TextField(blank=True, help_text=_("What proves it, for an auditor."))
    department = models.ForeignKey(Department, on_delete=models.PROTECT, related_name="controls")
    # Who hears the reminders; empty: the department's editors and managers.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_controls",
    )
    recurrence = models.CharField(max_length=10, choices=RECURRENCES, default=QUARTERLY)
    # Labels only, e.g. ["ISO 27001 A.8.8", "SOC 2 CC7.1"]: no framework text.
    framework_tags = models.JSONField(default=list, blank=True)
    # A key of departments.compliance.SOURCES; "" for a control people attest.
    source = models.CharField(max_length=40, blank=True)
    # The source's settings, e.g. {"days": 30} or {"ipv4_prefix": 16}.
    parameters = models.JSONField(default=dict, blank=True)
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "statement"]

    def __str__(self):
        return self.statement

    def get_absolute_url(self):
        return reverse("compliance_control", args=[self.slug])

    @property
    def is_manual(self) -> bool:
        return not self.source


def shown_evidence(evidence: list[dict]) -> list[dict]:
    """Evidence records with each label in the reader's language (an Evaluation's)."""
    return [
        {**entry, "label": shown_phrase(entry.get("phrase"), entry.get("label", ""))}
        for entry in evidence
    ]


class Evaluation(models.Model):
    """A control's status as judged at one moment for one period; never changed, all kept."""

    PASS, FAIL, INCOMPLETE, ERROR = "pass", "fail", "incomplete", "error"
    STATUSES = [
        (PASS, _("pass")),
        (FAIL, _("fail")),
        (INCOMPLETE, _("incomplete")),
        (ERROR, _("error")),
    ]

    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="evaluations")
    # The recurrence period judged: "2026-12", "2026-Q4" or "2026".
    period = models.CharField(max_length=10)
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=12, choices=STATUSES)
    # In English, as judged (the API, exports and the CLI read it) …
    reason = models.TextField(blank=True)
    # … and as its msgid and values (portal.i18n.Phrase.as_data), so each reader gets it
    # in their own language; empty for a judgement stored before (shown as stored).
    reason_phrase = models.JSONField(default=dict, blank=True)
    # [{"label": ..., "url": ..., "ok": true|false|null, "phrase": {...}}]: the records
    # that prove it; "label" in English, "phrase" (when there is one) for the pages.
    evidence = models.JSONField(default=list, blank=True)
    evaluated_at = models.DateTimeField()
    # The schedule's latest check that reached this same judgement (the same period,
    # status, reason and evidence): it is confirmed, not stored again every hour.
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # Who pressed "evaluate now"; empty for the schedule.
    evaluated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-evaluated_at", "-pk"]
        indexes = [
            # The register's latest status per control, and a period's report.
            models.Index(fields=["control", "-evaluated_at"]),
        ]

    def __str__(self):
        return f"{self.control} {self.period}: {self.status}"

    @property
    def checked_at(self):
        """When this judgement was last reached."""
        return self.confirmed_at or self.evaluated_at

    @property
    def shown_reason(self) -> str:
        """Why, in the reader's language."""
        return shown_phrase(self.reason_phrase, self.reason)

    @property
    def shown_evidence(self) -> list[dict]:
        return shown_evidence(self.evidence)


class Attestation(models.Model):
    """A person of the owning department vouching for a manual control; it counts until
    ``expires_at`` (one recurrence later). Never changed or deleted."""

    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="attestations")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    comment = models.TextField()
    link = models.URLField(max_length=500, blank=True)
    # A small file kept in the database (Kaizen has no media storage).
    attachment = models.BinaryField(null=True, blank=True)
    attachment_name = models.CharField(max_length=200, blank=True)
    attachment_type = models.CharField(max_length=100, blank=True)
    attested_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-attested_at", "-pk"]
        indexes = [models.Index(fields=["control", "-attested_at"])]

    def __str__(self):
        return f"{self.control} attested by {self.person} on {self.attested_at:%Y-%m-%d}"


class ComplianceReminder(models.Model):
    """That a reminder for a control's due date was sent, so the schedule sends it once."""

    BEFORE, OVERDUE = "before", "overdue"
    KINDS = [(BEFORE, _("Before the due date")), (OVERDUE, _("Overdue"))]

    control = models.ForeignKey(Control, on_delete=models.CASCADE, related_name="reminders")
    kind = models.CharField(max_length=10, choices=KINDS)
    due_at = models.DateTimeField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["control", "kind", "due_at"], name="one_reminder_per_due_date"
            )
        ]

    def __str__(self):
        return f"{self.get_kind_display()} reminder of {self.control} for {self.due_at:%Y-%m-%d}"
