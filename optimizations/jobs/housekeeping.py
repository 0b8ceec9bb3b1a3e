"""The periodic chores beat drives: lost jobs, due schedules, stale queues, old data.

No job stays in a non-final state forever: the reaper ends or re-queues
running jobs whose worker went silent, the sweeper re-sends queued jobs
whose broker message was lost and ends cancelled ones nobody will run, and
waiting jobs whose reason to wait has ended are dispatched.
"""

from __future__ import annotations

import datetime
import functools
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from optimizations.analyzers import stats
from optimizations.jobs import baselines, cron, engine, kinds, landing, sentinel
from optimizations.models import (
    GeneratorSecond,
    Job,
    JobLog,
    Measurement,
    Run,
    Schedule,
    TargetService,
    Trace,
)
from portal.models import ServiceBeat, WorkerBeat

logger = logging.getLogger(__name__)


def tick(now=None) -> dict:
    now = now or timezone.now()
    done = {
        "reaped": reap_lost_jobs(now),
        "swept": sweep(now),
        "scheduled": start_due_schedules(now),
        "expired": engine.expire_overdue(now),
    }
    ServiceBeat.objects.update_or_create(name="beat", defaults={"at": now, "detail": done})
    return done


def reap_lost_jobs(now=None) -> int:
    """Running jobs whose heartbeat stopped: re-queue them when safe, else fail them.

    A worker writes its heartbeat every half second, so a minute of silence
    means the process is gone (killed, crashed, its machine lost).
    """
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=settings.KAIZEN_LOST_AFTER)
    reaped = 0
    for job in Job.objects.filter(status=Job.RUNNING, heartbeat_at__lt=cutoff).select_related(
        "run"
    ):
        seen = timezone.localtime(job.heartbeat_at).strftime("%H:%M:%S")
        worker = job.worker or "its worker"
        if job.cancel_requested:
            # Asked to stop, and its worker died before it could: it is cancelled, not lost.
            if job.cancel_abandoned():
                _log(job, f"{worker} went silent at {seen} while stopping; the job is cancelled")
                landing.finish(job)
                reaped += 1
            continue
        if job.attempt < job.max_attempts and job.requeue_lost():
            # The lost attempt's partial numbers would mix with the next one's.
            Measurement.objects.filter(job=job).delete()
            _log(
                job,
                f"{worker} went silent at {seen}; re-queued (attempt {job.attempt + 1} of "
                f"{job.max_attempts})",
            )
            transaction.on_commit(functools.partial(landing.enqueue, job))
            reaped += 1
        elif job.fail(
            f"Worker lost: {worker} stopped answering at {seen} (killed, crashed or its machine "
            "went away) and the job was not safe to repeat by itself. Re-run it when ready."
        ):
            _log(job, f"{worker} went silent at {seen}; the job failed (worker lost)", "error")
            landing.finish(job)
            reaped += 1
    return reaped


def sweep(now=None) -> dict:
    """Jobs no worker will move on by itself: see the three functions below."""
    return {
        "cancelled": end_abandoned_cancels(),
        "resent": resend_lost_messages(now),
        "woken": wake_waiting(),
    }


def end_abandoned_cancels() -> int:
    """Queued jobs asked to stop (their worker died; the reaper put them back) end as
    cancelled: no worker claims a job that was asked to stop, so it would stay queued."""
    ended = 0
    for job in Job.objects.filter(status=Job.QUEUED, cancel_requested=True).select_related("run"):
        if job.cancel_abandoned():
            _log(job, "cancelled: it was asked to stop before a worker took it again")
            landing.finish(job)
            ended += 1
    return ended


def resend_lost_messages(now=None) -> int:
    """Queued jobs whose broker message is gone are sent again.

    A queued job is lost when no worker claimed it for KAIZEN_RESEND_AFTER
    seconds since it was sent while no job of its queue was running — an idle
    queue would have taken it (a broker restarted and forgot it, or a message
    was torn). After each re-send the wait doubles, so a queue whose workers
    are all down gets a few duplicates, not one a tick. A duplicate is harmless:
    claiming is a conditional UPDATE, so the job runs once.
    """
    now = now or timezone.now()
    base = datetime.timedelta(seconds=settings.KAIZEN_RESEND_AFTER)
    busy_queues = {
        kinds.get(kind).queue
        for kind in Job.objects.filter(status=Job.RUNNING).values_list("kind", flat=True).distinct()
        if kind in kinds.KINDS
    }
    resent = 0
    candidates = Job.objects.filter(
        status=Job.QUEUED, cancel_requested=False, created_at__lt=now - base
    )
    for job in candidates.order_by("pk"):
        kind = kinds.KINDS.get(job.kind)
        if kind is None or kind.queue in busy_queues:
            continue
        sent_at = job.enqueued_at or job.created_at
        if now - sent_at < base * 2 ** min(max(job.sends - 1, 0), 5):
            continue
        # Only one sweeper re-sends a given send (two beats, a slow tick).
        if not Job.objects.filter(pk=job.pk, status=Job.QUEUED, sends=job.sends).update(
            enqueued_at=now
        ):
            continue
        _log(
            job,
            f"no worker took it for {int((now - sent_at).total_seconds())} s while its queue "
            f"({kind.queue}) was idle: its message was lost, so it was sent again",
        )
        if landing.enqueue(job):
            resent += 1
    return resent


def wake_waiting() -> int:
    """Waiting jobs whose reason to wait has ended are dispatched.

    Normally the job they wait for dispatches them as it ends; this catches the
    case where that process died in between. A job still waiting for an active
    job is left alone (it has no message to re-send).
    """
    woken = 0
    waiting = Job.objects.filter(status=Job.WAITING).exclude(waiting_for__status__in=Job.ACTIVE)
    for job in waiting.order_by("created_at", "pk"):
        if landing.dispatch(job) == Job.QUEUED:
            woken += 1
    return woken


def _log(job: Job, message: str, level: str = "warning") -> None:
    seq = job.log_lines + 1
    JobLog.objects.create(job=job, seq=seq, at=timezone.now(), level=level, message=message)
    Job.objects.filter(pk=job.pk, log_lines__lt=seq).update(log_lines=seq)


def start_due_schedules(now=None) -> int:
    now = now or timezone.now()
    started = 0
    for schedule in Schedule.objects.filter(enabled=True, next_run_at__lte=now).select_related(
        "target", "initiative", "created_by"
    ):
        following = cron.next_after(schedule.cron, timezone.localtime(now))
        # Claim this turn first, so two beats (or a slow tick) never start it twice.
        claimed = Schedule.objects.filter(pk=schedule.pk, next_run_at=schedule.next_run_at).update(
            next_run_at=following, last_run_at=now
        )
        if not claimed:
            continue
        try:
            if schedule.sentinel_reference_id:
                # A regression sentinel re-runs its reference set's exact configuration.
                start_sentinel(schedule, expires_at=following)
                started += 1
                continue
            engine.start_run(
                schedule.created_by,
                schedule.target,
                schedule.mode,
                schedule.focus,
                initiative=schedule.initiative,
                schedule=schedule,
                trigger="schedule",
                expires_at=following,
            )
            started += 1
        except engine.CannotStart as error:
            logger.warning("schedule %s could not start: %s", schedule.pk, error)
    return started


def purge(now=None) -> dict:
    """Logs, per-second samples and workers' heartbeat rows past KAIZEN_RETENTION_DAYS go;
    summaries stay. Traces
    go after KAIZEN_TRACE_RETENTION_DAYS (the findings made from them stay).

    The samples of pinned baseline runs and of regression sentinels' reference
    runs stay too: ROI, the portfolio and the sentinel compare against them.
    """
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(days=settings.KAIZEN_RETENTION_DAYS)
    logs, _ = JobLog.objects.filter(job__finished_at__lt=cutoff).delete()
    kept = set(
        TargetService.objects.exclude(baseline_run=None).values_list("baseline_run_id", flat=True)
    ) | set(
        Schedule.objects.exclude(sentinel_reference=None).values_list(
            "sentinel_reference_id", flat=True
        )
    )
    samples, _ = (
        Measurement.objects.filter(second__isnull=False, measured_at__lt=cutoff)
        .exclude(run_id__in=kept)
        .delete()
    )
    # A distributed test's per-generator seconds are per-second samples too.
    generator_seconds, _ = (
        GeneratorSecond.objects.filter(generator__job__finished_at__lt=cutoff)
        .exclude(generator__job__run_id__in=kept)
        .delete()
    )
    samples += generator_seconds
    trace_cutoff = now - datetime.timedelta(days=settings.KAIZEN_TRACE_RETENTION_DAYS)
    trace_rows, _ = Trace.objects.filter(received_at__lt=trace_cutoff).delete()
    # A worker's heartbeat row silent that long belongs to a host that is gone (a worker
    # alive rewrites its row every tick); the status page stopped showing it after a day.
    workers, _ = WorkerBeat.objects.filter(at__lt=cutoff).delete()
    detail = {"logs": logs, "samples": samples, "traces": trace_rows, "workers": workers}
    ServiceBeat.objects.update_or_create(name="purge", defaults={"at": now, "detail": detail})
    return detail


def start_sentinel(schedule: Schedule, expires_at=None) -> Run:
    """Re-run a regression sentinel's reference configuration as a benchmark set (the
    beat calls this for a due sentinel; optimizations/jobs/sentinel.py says what it
    guards). Raises engine.CannotStart with a reason."""
    reference_id = schedule.sentinel_reference_id
    reference = sentinel.set_of_run(reference_id) if reference_id is not None else None
    if reference is None:
        raise engine.CannotStart(
            gettext(
                "the sentinel's reference run #%(run)s has no %(mode)s benchmark left; mark the "
                "initiative done again to re-arm it"
            )
            % {"run": schedule.sentinel_reference_id, "mode": sentinel.SET_MODE}
        )
    params = dict(reference.jobs[0].params)
    return engine.start_set(
        schedule.created_by,
        schedule.target,
        repetitions=min(max(reference.size, stats.MIN_RUNS), baselines.SET_MAX_RUNS),
        params=params,
        initiative=schedule.initiative,
        schedule=schedule,
        trigger="schedule",
        expires_at=expires_at,
    )
