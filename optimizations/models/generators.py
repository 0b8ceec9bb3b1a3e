"""The generators of a distributed load test: one share of the load each, sent from a
benchmark worker of its own (optimizations/jobs/generators.py)."""

from __future__ import annotations

from django.db import models

from optimizations.models.jobs import Job


class Generator(models.Model):
    """One generator of one round of a distributed benchmark job.

    A round is one load pattern of the job (a warm-up, the measured run, a
    stress step). The parent job creates the rows, a benchmark worker claims
    one with a conditional UPDATE (``pending`` → ``claimed``), says it is
    connected (``ready``), and waits for the parent's ``start_at``; its
    heartbeat says it is alive, and the parent names a generator whose
    heartbeat stopped (``lost``) in the job's result.
    """

    PENDING, CLAIMED, READY, RUNNING = "pending", "claimed", "ready", "running"
    DONE, FAILED, LOST, NOT_READY, CANCELLED = "done", "failed", "lost", "not_ready", "cancelled"
    ACTIVE = (PENDING, CLAIMED, READY, RUNNING)
    ENDED = (DONE, FAILED, LOST, NOT_READY, CANCELLED)
    STATUSES = [
        (PENDING, "Pending"),
        (CLAIMED, "Connecting"),
        (READY, "Ready"),
        (RUNNING, "Running"),
        (DONE, "Done"),
        (FAILED, "Failed"),
        (LOST, "Lost"),
        (NOT_READY, "Not ready in time"),
        (CANCELLED, "Cancelled"),
    ]

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="generators")
    round = models.PositiveIntegerField()
    index = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=20, choices=STATUSES, default=PENDING)
    # Its share: the engine configuration with its part of the rate and connections.
    config = models.JSONField(default=dict)
    processes = models.PositiveSmallIntegerField(default=1)
    cpu = models.CharField(max_length=20, default="auto")
    host = models.CharField(max_length=200, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The agreed start, seconds since the epoch (the hosts' clocks are NTP-synchronised).
    start_at = models.FloatField(null=True, blank=True)
    # Set by the parent: stop now (the job was cancelled, or the round gave up).
    stop = models.BooleanField(default=False)
    result = models.JSONField(null=True, blank=True)
    problem = models.TextField(blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["job", "round", "index"], name="generator_once")
        ]
        ordering = ["job", "round", "index"]

    def __str__(self):
        return f"{self.name} of job {self.job_id} round {self.round}"

    @property
    def name(self) -> str:
        return f"g{self.index + 1}"


class GeneratorSecond(models.Model):
    """One second of one generator: its engines' raw ticks (HDR bucket counts, merged by
    the parent with the other generators' and then emptied) and its own per-second row."""

    generator = models.ForeignKey(Generator, on_delete=models.CASCADE, related_name="seconds")
    t = models.IntegerField()
    ticks = models.JSONField(default=list)
    row = models.JSONField(default=dict)

    class Meta:
        # The parent reads a round's new seconds by id; the job page a generator's by t.
        indexes = [models.Index(fields=["generator", "t"])]

    def __str__(self):
        return f"second {self.t} of generator {self.generator_id}"
