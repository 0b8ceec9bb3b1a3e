"""Runs and the jobs they are made of; the Job row is the truth about a job.

A job's status changes only through the methods below. Each is a conditional
UPDATE that names the statuses it may leave, so two processes racing on the
same job (a duplicate delivery, the reaper and a late worker, a cancel and a
finish) cannot both win: the loser's UPDATE matches no row and it backs off.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from optimizations.jobs import verdicts
from optimizations.models.fields import CleanCharField, CleanJSONField, CleanTextField
from optimizations.models.plan import Initiative, Phase, PhaseTask
from optimizations.models.targets import TargetService
from portal.i18n import Phrase


class IllegalTransition(Exception):
    """A status change the job's current status does not allow."""


# How pages and messages name a job's kind (a benchmark by its mode: Job.label).
# A job's kind in words, inside a sentence (English msgids: Job.label() gives a Phrase).
JOB_LABELS = {
    "probe": gettext_noop("probe"),
    "code_scan": gettext_noop("code scan"),
    "db_scan": gettext_noop("DB scan"),
    "security_scan": gettext_noop("security scan"),
}
BENCHMARK_LABELS = {
    "load": gettext_noop("load test"),
    "closed": gettext_noop("closed-loop load test"),
    "stress": gettext_noop("stress test"),
    "endurance": gettext_noop("endurance test"),
}


class Run(models.Model):
    """One invocation of a run mode (comprehensive, performance, …) on a target."""

    TRIGGERS = [
        ("ui", _("Portal")),
        ("cli", _("Command line")),
        ("api", _("API")),
        ("schedule", _("Schedule")),
        ("runbook", _("Runbook")),
    ]

    MODES = [*Initiative.RUN_MODES, ("custom", _("Single job"))]

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="runs")
    mode = models.CharField(max_length=20, choices=MODES)
    focus = models.JSONField(default=list, blank=True)
    initiative = models.ForeignKey(
        Initiative, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    phase = models.ForeignKey(
        Phase, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    task = models.ForeignKey(
        PhaseTask, null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    schedule = models.ForeignKey(
        "Schedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs"
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    trigger = models.CharField(max_length=20, choices=TRIGGERS, default="ui")
    # An interleaved comparison: its jobs alternate between ``target`` and this one.
    compared_with = models.ForeignKey(
        TargetService, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kinds the mode asks for that cannot run yet, with why — shown on the run page.
    skipped = CleanJSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    # Not a field: the run's jobs, set by what answers a run with them (api.load_run).
    job_list: list[Job]
    # Derived from the jobs when the last one ends (Run.settle).
    status = models.CharField(max_length=20, default="queued")
    verdict = models.CharField(max_length=10, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["target", "-created_at"])]

    def __str__(self):
        focus = f" --focus {','.join(self.focus)}" if self.focus else ""
        return f"{self.mode}{focus} on {self.target} (#{self.pk})"

    def get_absolute_url(self):
        return reverse("run_detail", args=[self.pk])

    def kind_of_run(self) -> str:
        """What the run is, in words: its mode, or for a custom run what it holds
        (an interleaved comparison, a benchmark set of repeated load tests, one job)."""
        if self.compared_with_id:
            return gettext("Interleaved comparison")
        if self.mode != "custom":
            return str(self.get_mode_display())
        count = self.jobs.count()
        if count > 1 and not self.jobs.exclude(kind="benchmark").exists():
            return gettext("Benchmark set (%(count)s runs)") % {"count": count}
        return gettext("Single job") if count == 1 else gettext("Custom run")

    def command_line(self) -> str:
        if self.mode == "custom":
            kinds = ", ".join(sorted({job.kind for job in self.jobs.all()}))
            return f"{kinds or 'single job'} on {self.target.slug}"
        focus = f" --focus {','.join(self.focus)}" if self.focus else ""
        return f"{self.mode}{focus} --target {self.target.slug}"

    def settle(self) -> bool:
        """Derive status and verdict from the jobs; True for the call that ends the run.

        Several jobs may end at once and each settles the run; the conditional
        update lets exactly one of them be the one that finished it (and tells
        people about it).
        """
        jobs = list(self.jobs.values_list("status", "verdict"))
        statuses = {status for status, _ in jobs}
        if statuses & set(Job.ACTIVE):
            status = verdicts.run_status_while_active(statuses)
            Run.objects.filter(pk=self.pk).update(status=status)
            self.status = status
            return False
        if statuses == {Job.SUCCEEDED}:
            status = Job.SUCCEEDED
        elif Job.CANCELLED in statuses and statuses <= {Job.CANCELLED, Job.SUCCEEDED}:
            status = Job.CANCELLED
        elif statuses == {Job.EXPIRED}:
            status = Job.EXPIRED
        else:
            status = Job.FAILED
        # One vocabulary (optimizations.jobs.verdicts): a failed job counts as error, a
        # cancelled one as cancelled, incomplete never as pass.
        # A kind the mode asked for that could not run leaves the run incomplete.
        parts = [verdicts.of_job(status, verdict) for status, verdict in jobs]
        verdict = verdicts.roll_up(parts + ([verdicts.INCOMPLETE] if self.skipped else []))
        won = Run.objects.filter(pk=self.pk, finished_at__isnull=True).update(
            status=status, verdict=verdict, finished_at=timezone.now()
        )
        self.refresh_from_db()
        return bool(won)

    def is_finished(self) -> bool:
        return self.status not in Job.ACTIVE


class Job(models.Model):
    """One analysis of one kind on one target, run by a Celery worker."""

    WAITING, QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, EXPIRED = (
        "waiting",
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
        "expired",
    )
    # Waiting: not sent to the job queue yet — for an earlier job of its run, or
    # for the target's lease (``waiting_for`` names which job). It has no broker
    # message, so nothing re-sends it; it is sent when that job ends.
    STATUSES = [
        (WAITING, _("Waiting")),
        (QUEUED, _("Queued")),
        (RUNNING, _("Running")),
        (SUCCEEDED, _("Succeeded")),
        (FAILED, _("Failed")),
        (CANCELLED, _("Cancelled")),
        (EXPIRED, _("Expired")),
    ]
    ACTIVE = (WAITING, QUEUED, RUNNING)
    ENDED = (SUCCEEDED, FAILED, CANCELLED, EXPIRED)

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="jobs")
    kind = models.CharField(max_length=40)
    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="jobs")
    initiative = models.ForeignKey(
        Initiative, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    phase = models.ForeignKey(
        Phase, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    params = CleanJSONField(default=dict, blank=True)
    status = models.CharField(max_length=20, choices=STATUSES, default=QUEUED)
    progress = models.FloatField(default=0)
    step = CleanCharField(max_length=200, blank=True)
    summary = CleanJSONField(default=dict, blank=True)
    verdict = models.CharField(max_length=10, blank=True)
    error = CleanTextField(blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # A scheduled job that has not started by then expires instead of piling up.
    expires_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    attempt = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=1)
    cancel_requested = models.BooleanField(default=False)
    log_lines = models.PositiveIntegerField(default=0)
    # The probe runs first; the run's other jobs wait for it and are sent to
    # their queues when it ends (so they do not load a target that is down).
    after = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="followers"
    )
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # How often it was sent to its queue: the sweeper re-sends a queued job whose
    # message was lost, waiting longer after each send.
    sends = models.PositiveSmallIntegerField(default=0)
    # What a waiting job waits for: the earlier job of its run, or the job that
    # holds the target's lease (see optimizations/jobs/lease.py).
    waiting_for = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # Job history per target and the reaper's scan of running jobs.
            models.Index(fields=["target", "-created_at"]),
            models.Index(fields=["status", "heartbeat_at"]),
            models.Index(fields=["kind", "-created_at"]),
            # The job history, newest first across all targets (its default ordering).
            models.Index(fields=["-created_at", "-id"]),
            # A target's succeeded jobs of a kind (the SLO board, capacity, ROI): without
            # it PostgreSQL ANDs the target's rows with every job of the kind, which grows
            # with the whole history (52 000 benchmarks at bench scale 10).
            models.Index(fields=["target", "kind", "status"], name="job_target_kind_status"),
        ]

    def __str__(self):
        return f"{self.kind} #{self.pk} on {self.target_id}"

    def get_absolute_url(self):
        return reverse("job_detail", args=[self.pk])

    def is_active(self) -> bool:
        return self.status in self.ACTIVE

    def waiting_text(self) -> str:
        """What a waiting job waits for, in words ("Waiting for load test #12 on this target")."""
        if self.status != self.WAITING:
            return ""
        other = self.waiting_for
        if other is None:
            return gettext("Waiting to be sent to its queue")
        values = {"job": other.label().shown(), "number": other.pk}
        if other.pk == self.after_id:
            return gettext("Waiting for %(job)s #%(number)s, the run's previous job") % values
        if other.target_id == self.target_id:
            return gettext("Waiting for %(job)s #%(number)s on this target") % values
        return gettext("Waiting for %(job)s #%(number)s") % values

    def label(self) -> Phrase:
        """The job's kind in words: "load test", "stress test", "security scan"… (English
        as a str; ``.shown()`` in the reader's language)."""
        if self.kind == "benchmark":
            mode = (self.params or {}).get("mode") or "load"
            if mode in BENCHMARK_LABELS:
                return Phrase(BENCHMARK_LABELS[mode])
            return Phrase(gettext_noop("%(mode)s test"), mode=mode)
        if self.kind in JOB_LABELS:
            return Phrase(JOB_LABELS[self.kind])
        return Phrase(self.kind.replace("_", " "))

    def duration(self):
        if not self.started_at:
            return None
        return (self.finished_at or timezone.now()) - self.started_at

    # --- transitions -----------------------------------------------------

    def _move(self, sources: tuple[str, ...], target: str, **fields) -> bool:
        """Move from one of ``sources`` to ``target`` if the row is still there."""
        updated = Job.objects.filter(pk=self.pk, status__in=sources).update(status=target, **fields)
        if updated:
            self.refresh_from_db()
        return bool(updated)

    def claim(self, worker: str) -> bool:
        """A worker takes a queued job. False when it was taken, cancelled or expired."""
        now = timezone.now()
        claimed = Job.objects.filter(pk=self.pk, status=self.QUEUED, cancel_requested=False).update(
            status=self.RUNNING,
            started_at=now,
            heartbeat_at=now,
            worker=worker[:200],
            attempt=F("attempt") + 1,
            error="",
        )
        if claimed:
            self.refresh_from_db()
            # Its run is under way from now on: every badge that reads Run.status says
            # "running", not "queued", while the job runs (Run.settle derives the rest).
            Run.objects.filter(pk=self.run_id, status=self.QUEUED).update(status=self.RUNNING)
        return bool(claimed)

    def succeed(self, summary: dict, verdict: str | None) -> bool:
        return self._move(
            (self.RUNNING,),
            self.SUCCEEDED,
            summary=summary,
            # An analysis that judged nothing has not passed.
            verdict=verdict or verdicts.INCOMPLETE,
            progress=100,
            finished_at=timezone.now(),
        )

    def hold(self, waiting_for: Job | None) -> bool:
        """A waiting job stays waiting, now for ``waiting_for`` (shown on its page)."""
        return self._move((self.WAITING,), self.WAITING, waiting_for=waiting_for, step="")

    def release(self) -> bool:
        """A waiting job may start: it is about to be sent to its queue."""
        return self._move((self.WAITING,), self.QUEUED, waiting_for=None)

    def fail(self, message: str) -> bool:
        """End a job that could not do its work, with a message a person understands."""
        return self._move(
            (self.WAITING, self.QUEUED, self.RUNNING),
            self.FAILED,
            verdict=verdicts.ERROR,
            error=message[:4000],
            finished_at=timezone.now(),
        )

    def request_cancel(self) -> str:
        """Cancel now if waiting or queued; ask the worker to stop if running.

        Returns the new state."""
        if self._move(
            (self.WAITING, self.QUEUED),
            self.CANCELLED,
            finished_at=timezone.now(),
            waiting_for=None,
            verdict=verdicts.CANCELLED,
        ):
            return self.CANCELLED
        Job.objects.filter(pk=self.pk, status=self.RUNNING).update(cancel_requested=True)
        self.refresh_from_db()
        return self.status

    def confirm_cancelled(self) -> bool:
        """The worker stopped because it was asked to."""
        return self._move(
            (self.RUNNING,),
            self.CANCELLED,
            finished_at=timezone.now(),
            step="cancelled",
            verdict=verdicts.CANCELLED,
        )

    def cancel_abandoned(self) -> bool:
        """A job asked to stop whose worker is gone (or never claimed it) ends as cancelled."""
        updated = Job.objects.filter(
            pk=self.pk, status__in=(self.QUEUED, self.RUNNING), cancel_requested=True
        ).update(
            status=self.CANCELLED,
            finished_at=timezone.now(),
            step="cancelled",
            verdict=verdicts.CANCELLED,
        )
        if updated:
            self.refresh_from_db()
        return bool(updated)

    def expire(self) -> bool:
        return self._move(
            (self.WAITING, self.QUEUED),
            self.EXPIRED,
            verdict=verdicts.ERROR,
            finished_at=timezone.now(),
            waiting_for=None,
            error="It could not start before its schedule's next turn, so it was skipped.",
        )

    def requeue_lost(self) -> bool:
        """The reaper puts a job whose worker vanished back in the queue (counted)."""
        if self.attempt >= self.max_attempts:
            raise IllegalTransition(f"job {self.pk} has used its {self.max_attempts} attempt(s)")
        if self.cancel_requested:
            raise IllegalTransition(f"job {self.pk} was asked to stop; it is not run again")
        return self._move(
            (self.RUNNING,),
            self.QUEUED,
            started_at=None,
            heartbeat_at=None,
            worker="",
            progress=0,
            step="re-queued after its worker was lost",
        )


class JobLog(models.Model):
    """One line of a job's log; in its own table so long logs append and page cheaply."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="logs")
    seq = models.PositiveIntegerField()
    at = models.DateTimeField()
    level = models.CharField(max_length=10, default="info")
    message = CleanTextField()

    class Meta:
        ordering = ["job", "seq"]
        constraints = [
            # The live log reads "lines after seq N" and the tail by this index.
            models.UniqueConstraint(fields=["job", "seq"], name="one_log_line_per_seq")
        ]

    def __str__(self):
        return f"{self.seq}: {self.message[:80]}"


class JobArtifact(models.Model):
    """A file a job produced for download (a code scan's SARIF and JSON reports)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=100)  # the file name offered for download
    content_type = models.CharField(max_length=100)
    content = CleanTextField()

    class Meta:
        ordering = ["job", "name"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name"], name="one_artifact_per_name")
        ]

    def __str__(self):
        return self.name


class Schedule(models.Model):
    """A recurring run of a mode on a target (monthly analysis, quarterly review…)."""

    target = models.ForeignKey(TargetService, on_delete=models.CASCADE, related_name="schedules")
    name = models.CharField(max_length=120)
    mode = models.CharField(max_length=20, choices=Initiative.RUN_MODES)
    focus = models.JSONField(default=list, blank=True)
    # Five cron fields: minute hour day-of-month month day-of-week.
    cron = models.CharField(max_length=100)
    initiative = models.ForeignKey(
        Initiative, null=True, blank=True, on_delete=models.SET_NULL, related_name="schedules"
    )
    enabled = models.BooleanField(default=True)
    # A regression sentinel: re-runs a finished initiative's benchmark and
    # compares it with this run (its last benchmark when it was closed).
    sentinel_reference = models.ForeignKey(
        Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    last_run_at = models.DateTimeField(null=True, blank=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["target", "name"]

    def __str__(self):
        return f"{self.name} ({self.cron}) on {self.target}"
