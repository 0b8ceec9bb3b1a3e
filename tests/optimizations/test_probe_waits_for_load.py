"""A probe measures the target, not our own load: it waits while another job holds the
target's lease (without taking it, so probes and scans still run beside each other)."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from optimizations.analyzers.base import Cancelled
from optimizations.jobs import kinds, lease
from optimizations.models import Job, Run, TargetLease


class Context:
    def __init__(self, cancel_after: int | None = None):
        self.lines: list[tuple[str, str]] = []
        self.steps: list[str] = []
        self.checks = 0
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


@pytest.mark.parametrize(("ran", "naps"), [(0, 120), (200, 0), (290, 0)])
def test_a_probe_waits_no_longer_than_its_time_limit_leaves_room_for(target, settings, ran, naps):
    # The demo's tour: a probe queued behind five load tests waited for each in turn, was
    # stopped at its 300 s limit mid cool-down and measured nothing ("ran past its time
    # limit"). It now waits at most its limit less the cool-down (120 s) and 60 s to measure.
    settings.KAIZEN_PROBE_WAIT_MAX_SECONDS = 900
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 120
    load = job_of(target, "benchmark", Job.RUNNING, {"mode": "load"})
    hold(target, load)
    probe = job_of(target, "probe", Job.RUNNING)
    Job.objects.filter(pk=probe.pk).update(
        started_at=timezone.now() - datetime.timedelta(seconds=ran)
    )
    probe.refresh_from_db()
    assert kinds.get("probe").time_limit == 300
    slept = []
    ctx = Context()
    lease.wait_until_unloaded(probe, ctx, sleep=slept.append)
    assert sum(slept) == pytest.approx(naps, abs=lease.WATCH_POLL_SECONDS)
    level, message = ctx.lines[-1]
    assert level == "warning" and "still loads the target" in message
    assert lease.seconds_left(probe) == pytest.approx(300 - ran - 60, abs=2)


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


# --- after a loading job ended: the same cool-down a leased job waits for -------------


def ended_load(target, health_ms, ago_seconds):
    from django.utils import timezone

    load = job_of(target, "benchmark", Job.SUCCEEDED, {"mode": "load"})
    TargetLease.objects.update_or_create(
        target=target,
        defaults={
            "holder": None,
            "last_job": load,
            "health_ms": health_ms,
            "last_ended_at": timezone.now() - datetime.timedelta(seconds=ago_seconds),
        },
    )
    return load


def test_a_probe_right_after_a_load_test_waits_for_the_target_to_cool_down(
    target, health_server, settings
):
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 30
    # Still working through the load test's backlog for one round, then back to normal.
    server = health_server([(200, 0.3)] * 3 + [(200, 0.0)])
    load = ended_load(target, health_ms=1.0, ago_seconds=2)
    probe = job_of(target, "probe")
    ctx = Context()
    lease.settle_before_measuring(probe, server.spec, ctx)
    assert server.calls >= 6  # a slow round, then a cooled one
    assert ctx.steps[0] == f"cool-down after {load.label()} #{load.pk}"
    assert ctx.lines[-1][1].startswith("Target ready")


def test_a_probe_long_after_the_last_load_test_starts_at_once(target, health_server, settings):
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 30
    server = health_server([(200, 0.0)])
    ended_load(target, health_ms=1.0, ago_seconds=600)
    probe = job_of(target, "probe")
    ctx = Context()
    lease.settle_before_measuring(probe, server.spec, ctx)
    assert server.calls == 0 and ctx.lines == []


def test_a_target_that_stays_unhealthy_is_still_probed_and_the_log_says_why(
    target, health_server, settings
):
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 2
    server = health_server([(503, 0.0)])
    ended_load(target, health_ms=1.0, ago_seconds=1)
    probe = job_of(target, "probe")
    ctx = Context()
    lease.settle_before_measuring(probe, server.spec, ctx)  # does not raise
    level, message = ctx.lines[-1]
    assert level == "warning"
    assert message.startswith("The target stayed unhealthy") and "The probe goes on" in message


# --- a load test that starts while the probe measures: measure again ------------------


def intruding_load(target):
    """A load test of another run that ran (and ended) while the probe measured."""
    from django.utils import timezone

    return Job.objects.create(
        run=Run.objects.create(target=target, mode="custom"),
        kind="benchmark",
        target=target,
        status=Job.SUCCEEDED,
        params={"mode": "load"},
        started_at=timezone.now(),
    )


def test_an_undisturbed_probe_measures_once(target):
    probe = job_of(target, "probe")
    calls = []
    assert lease.measure_alone(probe, None, Context(), lambda: calls.append(1) or "figures") == (
        "figures"
    )
    assert calls == [1]


def test_a_probe_disturbed_by_a_load_test_measures_again_and_says_why(target):
    probe = job_of(target, "probe")
    ctx, outcomes = Context(), []

    def measure():
        outcomes.append(len(outcomes) + 1)
        if len(outcomes) == 1:
            intruder = intruding_load(target)
            ctx.intruder = intruder
            raise lease.AnalysisError("/metrics did not answer within 5 s")
        return f"figures of attempt {len(outcomes)}"

    assert lease.measure_alone(probe, None, ctx, measure) == "figures of attempt 2"
    warning = [m for level, m in ctx.lines if level == "warning"]
    assert warning == [
        f"load test #{ctx.intruder.pk} started on this target while the probe measured it: "
        "measuring again once it has ended"
    ]


def test_an_undisturbed_failure_stands(target):
    probe = job_of(target, "probe")

    def measure():
        raise lease.AnalysisError("the target is down")

    with pytest.raises(lease.AnalysisError, match="down"):
        lease.measure_alone(probe, None, Context(), measure)


def test_a_probe_disturbed_every_time_keeps_its_last_figures_and_says_so(target):
    probe = job_of(target, "probe")
    ctx, count = Context(), []

    def measure():
        count.append(1)
        intruding_load(target)
        return len(count)

    assert lease.measure_alone(probe, None, ctx, measure) == lease.WATCH_ATTEMPTS
    assert "these figures include that load" in ctx.lines[-1][1]
