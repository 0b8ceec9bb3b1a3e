"""The per-target lease: one job at a time puts load on a target.

A load test measures the target; a second load on it at the same time (a
security scan probing its endpoints, another run's stress test) would be
measured too. So jobs of the kinds in LOAD_KINDS take the target's lease
before they are sent to a queue, and a job that cannot get it waits — status
"waiting", ``waiting_for`` the holder, no broker message — until the holder
ends and wakes the next one. Probes, code scans and DB scans run freely.

The lease is one TargetLease row per target, taken and given back with
conditional UPDATEs (STYLE.md: the Job row is the truth, no signals), so it
holds with many workers and portal processes on PostgreSQL and on SQLite.
Before a leased job starts its work, the worker waits for the target's health
check and a cool-down (``cool_down``).
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from optimizations.analyzers import cooldown
from optimizations.analyzers.base import AnalysisError
from optimizations.jobs import kinds
from optimizations.models import Job, TargetLease

logger = logging.getLogger(__name__)

# Kinds that put load on the target; the integrity and fuzz checks to come join them.
LOAD_KINDS = frozenset({"security_scan", "benchmark", "integrity", "fuzz"})


def needs_lease(kind: str) -> bool:
    return kind in LOAD_KINDS


def _row(target_id: int) -> None:
    """Make sure the target's lease row exists (two processes may create it at once)."""
    if TargetLease.objects.filter(target_id=target_id).exists():
        return
    try:
        with transaction.atomic():
            TargetLease.objects.create(target_id=target_id)
    except IntegrityError:
        pass  # the other process made it


def acquire(job: Job) -> Job | None:
    """Take the target's lease for ``job``: None when it holds it now, else the holder.

    A holder that has ended but did not give the lease back (its process died
    between the two writes) is dropped with a conditional UPDATE naming it, so
    only one of several racing processes can take its place.
    """
    _row(job.target_id)
    leases = TargetLease.objects.filter(target_id=job.target_id)
    for _ in range(5):
        if leases.filter(holder__isnull=True).update(holder=job, since=timezone.now()):
            return None
        holder_id = leases.values_list("holder_id", flat=True).first()
        if holder_id == job.pk:
            return None  # a second dispatch of the same job
        if holder_id is None:
            continue  # given back between our two statements: try again
        holder = Job.objects.filter(pk=holder_id).first()
        if holder is not None and holder.status in Job.ACTIVE:
            return holder
        leases.filter(holder_id=holder_id).update(holder=None)
    raise RuntimeError(f"could not settle the lease of target {job.target_id}")


def give_back(job: Job) -> bool:
    """``job`` ended: the lease is free again (a no-op when it did not hold it)."""
    return bool(
        TargetLease.objects.filter(target_id=job.target_id, holder_id=job.pk).update(
            holder=None, last_job=job, last_ended_at=timezone.now()
        )
    )


def waiting_on(target_id: int):
    """Jobs that wait only for this target's lease (their run's earlier job has ended),
    oldest first: the order they get it in."""
    return (
        Job.objects.filter(target_id=target_id, status=Job.WAITING, kind__in=LOAD_KINDS)
        .filter(Q(after__isnull=True) | Q(after__status__in=Job.ENDED))
        .order_by("created_at", "pk")
    )


# --- the health check and cool-down before a leased job -----------------------------


def cool_down(job: Job, spec, ctx) -> None:
    """Wait until the target answers its health check and has cooled down from the
    previous leased job, then note the latency as the next job's reference.

    Raises AnalysisError (the job fails, naming the target's health) when the
    target does not answer its health check within KAIZEN_COOLDOWN_MAX_SECONDS.
    """
    lease = TargetLease.objects.filter(target_id=job.target_id).select_related("last_job").first()
    previous = lease.last_job if lease is not None else None
    reference = lease.health_ms if lease is not None else None
    after = f"{previous.label()} #{previous.pk}" if previous is not None else ""
    ctx.progress(0, f"health check{f' and cool-down after {after}' if after else ''}")
    max_wait = float(settings.KAIZEN_COOLDOWN_MAX_SECONDS)
    # The job before found the target unhealthy a moment ago (a target that is down):
    # one round of health checks, not another long wait for each job of the run.
    down = (
        lease is not None
        and previous is not None
        and previous.status == Job.FAILED
        and previous.error.startswith(cooldown.UNHEALTHY)
        and lease.last_ended_at is not None
        and (timezone.now() - lease.last_ended_at).total_seconds() < max_wait
    )
    try:
        outcome = cooldown.wait(
            spec,
            ctx,
            reference_ms=reference,
            factor=settings.KAIZEN_COOLDOWN_FACTOR,
            max_wait=0.0 if down else max_wait,
            previous=after,
        )
    except cooldown.Unhealthy as error:
        again = (
            f" {after} found it unhealthy a moment ago, so it was not waited for again."
            if down
            else ""
        )
        raise AnalysisError(f"{error}{again}") from None
    TargetLease.objects.filter(target_id=job.target_id, holder_id=job.pk).update(
        health_ms=outcome.latency_ms
    )
    ctx.log(outcome.describe())


# --- jobs that measure the target wait while another job loads it ------------------

# A probe reads the target's health, metrics and latency: taken while one of our own
# load tests runs, it measures our load, not the target (and a slow target's /metrics
# times out under it). It does not take the lease — probes and scans still run freely
# beside each other — it only waits for a loading job to end.
WATCH_KINDS = frozenset({"probe"})
WATCH_POLL_SECONDS = 1.0


def loading_job(job: Job) -> Job | None:
    """The active job other than ``job`` that holds the target's lease now, if any."""
    holder_id = (
        TargetLease.objects.filter(target_id=job.target_id)
        .values_list("holder_id", flat=True)
        .first()
    )
    if holder_id is None or holder_id == job.pk:
        return None
    return Job.objects.filter(pk=holder_id, status__in=Job.ACTIVE).first()


def settle_before_measuring(job: Job, spec, ctx) -> None:
    """Before a probe: wait while another job loads the target, then, when a loading job
    ended within the cool-down's limit, for the same cool-down a leased job waits for
    (a slow target may still be working through that job's backlog). Unlike a leased
    job, a probe is not failed by a target that stays unhealthy: it goes on and
    measures it, which is its purpose."""
    wait_until_unloaded(job, ctx)
    row = TargetLease.objects.filter(target_id=job.target_id).select_related("last_job").first()
    if row is None or row.last_job is None or row.last_ended_at is None:
        return
    max_wait = float(settings.KAIZEN_COOLDOWN_MAX_SECONDS)
    if (timezone.now() - row.last_ended_at).total_seconds() >= max_wait:
        return
    # Never wait past the job's own time limit: it would be stopped before it measured.
    max_wait = min(max_wait, seconds_left(job))
    if max_wait <= 0:
        ctx.log(
            "no cool-down: the job's time limit leaves no room to wait for it "
            "(the figures may include the last load's after-effects)",
            "warning",
        )
        return
    after = f"{row.last_job.label()} #{row.last_job.pk}"
    ctx.progress(0, f"cool-down after {after}")
    try:
        outcome = cooldown.wait(
            spec,
            ctx,
            reference_ms=row.health_ms,
            factor=settings.KAIZEN_COOLDOWN_FACTOR,
            max_wait=max_wait,
            previous=after,
        )
    except cooldown.Unhealthy as error:
        ctx.log(f"{error} The probe goes on and measures it as it is.", "warning")
        return
    ctx.log(outcome.describe())


# What a probe keeps of its time limit for measuring, once it has waited.
MEASURE_RESERVE_SECONDS = 60


def seconds_left(job: Job) -> float:
    """How long ``job`` may still wait before measuring: its kind's time limit, less what
    it has run, less MEASURE_RESERVE_SECONDS to measure in."""
    try:
        limit = float(kinds.get(job.kind).time_limit)
    except ValueError:  # a kind this build does not know: only the setting bounds it
        return float("inf")
    ran = (timezone.now() - job.started_at).total_seconds() if job.started_at else 0.0
    return limit - ran - MEASURE_RESERVE_SECONDS


def wait_until_unloaded(job: Job, ctx, *, max_wait: float | None = None, sleep=time.sleep) -> None:
    """Wait (cancellably) while another job loads the target, at most ``max_wait`` seconds
    (by default KAIZEN_PROBE_WAIT_MAX_SECONDS, and never so long that the job's time limit
    leaves no room for the cool-down and the measuring: stopped at its limit, it would
    measure nothing); past that the job goes on and its log says what it measured beside."""
    if max_wait is None:
        room = seconds_left(job) - float(settings.KAIZEN_COOLDOWN_MAX_SECONDS)
        max_wait = max(0.0, min(float(settings.KAIZEN_PROBE_WAIT_MAX_SECONDS), room))
    limit = float(max_wait)
    waited, said = 0.0, None
    while (holder := loading_job(job)) is not None:
        name = f"{holder.label()} #{holder.pk}"
        if waited >= limit:
            ctx.log(
                f"{name} still loads the target after {waited:.0f} s of waiting: "
                "measured beside it, so its figures include that load",
                "warning",
            )
            return
        if said != holder.pk:
            ctx.progress(0, f"waiting for {name} on this target")
            ctx.log(
                f"waiting for {name} to end: it loads this target, "
                "and a probe measures the target alone"
            )
            said = holder.pk
        ctx.check_cancel()
        sleep(WATCH_POLL_SECONDS)
        waited += WATCH_POLL_SECONDS
    if said is not None:
        ctx.log(f"the target is free of load again after {waited:.0f} s")


# Measuring again when a load test started in the middle: a probe holds no lease, so a
# loading job of another run may take the target while it measures. Its figures (and
# its timeouts) would then be ours, not the target's: it waits and measures again.
WATCH_ATTEMPTS = 3


def disturbed_since(job: Job, since) -> Job | None:
    """A loading job that ran on ``job``'s target at some point after ``since``."""
    return (
        Job.objects.filter(target_id=job.target_id, kind__in=LOAD_KINDS, started_at__gte=since)
        .exclude(pk=job.pk)
        .order_by("started_at")
        .first()
    ) or loading_job(job)


def measure_alone(job: Job, spec, ctx, measure):
    """Run ``measure()`` on a target free of our own load: settle first, and when a
    loading job started while it measured, settle and measure again (at most
    WATCH_ATTEMPTS times; the last outcome stands, and the log says what disturbed it)."""
    for attempt in range(1, WATCH_ATTEMPTS + 1):
        settle_before_measuring(job, spec, ctx)
        since = timezone.now()
        try:
            outcome = measure()
        except AnalysisError:
            intruder = disturbed_since(job, since)
            if intruder is None or attempt == WATCH_ATTEMPTS:
                raise
        else:
            intruder = disturbed_since(job, since)
            if intruder is None:
                return outcome
            if attempt == WATCH_ATTEMPTS:
                ctx.log(
                    f"{intruder.label()} #{intruder.pk} loaded the target while it was "
                    f"measured, {WATCH_ATTEMPTS} times: these figures include that load",
                    "warning",
                )
                return outcome
        ctx.log(
            f"{intruder.label()} #{intruder.pk} started on this target while the probe "
            "measured it: measuring again once it has ended",
            "warning",
        )
    raise AssertionError("unreachable")
