"""A probe measures the target, not our own load: it waits while another job holds the
target's lease (without taking it, so probes and scans still run beside each other)."""

from __future__ import annotations

import pytest

from optimizations import lease
from optimizations.analyzers.base import Cancelled
from optimizations.models import Job, Run, TargetLease


class Context:
    def __init__(self, cancel_after: int | None = None):
        self.lines, self.steps, self.checks = [], [], 0
        self.cancel_after = cancel_after

    def log(self, message, level="info"):
        self.lines.append((level, message))

    def progress(self, percent, step=""):
        self.steps.append(step)

    def check_cancel(self):
        self.checks += 1
        if self.cancel_after is not None and self.checks > self.cancel_after:
            raise Cancelled()


def job_of(target, kind, status=Job.QUEUED, params=None):
    run = Run.objects.create(target=target, mode="custom")
    return Job.objects.create(run=run, kind=kind, target=target, status=status, params=params or {})


def hold(target, job):
    TargetLease.objects.update_or_create(target=target, defaults={"holder": job})


def test_a_probe_on_a_free_target_does_not_wait(target):
    probe = job_of(target, "probe")
    ctx = Context()
    lease.wait_until_unloaded(probe, ctx, sleep=pytest.fail)
    assert ctx.lines == []


def test_a_probe_waits_while_a_load_test_holds_the_target_then_goes_on(target):
    load = job_of(target, "benchmark", Job.RUNNING, {"mode": "load"})
    hold(target, load)
    probe = job_of(target, "probe")
    ctx, naps = Context(), []

    def sleep(seconds):
        naps.append(seconds)
        if len(naps) == 3:  # the load test ends while the probe waits
            Job.objects.filter(pk=load.pk).update(status=Job.SUCCEEDED)

    lease.wait_until_unloaded(probe, ctx, max_wait=60, sleep=sleep)
    assert len(naps) == 3
    assert ctx.steps == [f"waiting for {load.label()} #{load.pk} on this target"]
    assert ctx.lines[-1] == ("info", "the target is free of load again after 3 s")
    # It only watched: the lease is still the load test's row, not the probe's.
    assert TargetLease.objects.get(target=target).holder_id == load.pk


def test_a_probe_that_waited_its_limit_goes_on_and_says_what_it_measured_beside(target):
    load = job_of(target, "benchmark", Job.RUNNING, {"mode": "stress"})
    hold(target, load)
    probe = job_of(target, "probe")
    ctx = Context()
    lease.wait_until_unloaded(probe, ctx, max_wait=2, sleep=lambda s: None)
    level, message = ctx.lines[-1]
    assert level == "warning"
    assert f"#{load.pk} still loads the target after 2 s" in message


def test_a_probe_waiting_for_the_target_is_cancellable(target):
    load = job_of(target, "benchmark", Job.RUNNING, {"mode": "load"})
    hold(target, load)
    probe = job_of(target, "probe")
    with pytest.raises(Cancelled):
        lease.wait_until_unloaded(probe, Context(cancel_after=2), max_wait=60, sleep=lambda s: None)


def test_a_lease_held_by_an_ended_job_does_not_hold_a_probe_up(target):
    load = job_of(target, "benchmark", Job.FAILED, {"mode": "load"})
    hold(target, load)
    probe = job_of(target, "probe")
    ctx = Context()
    lease.wait_until_unloaded(probe, ctx, sleep=pytest.fail)
    assert ctx.lines == []
