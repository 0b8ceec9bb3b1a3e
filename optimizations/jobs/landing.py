"""What happens when a job ends: the one place that owns it.

``finish`` gives back the target's lease, dispatches the jobs that waited for
this one (the next of its run first), settles the run, and — once per run, by
the job that ended it — runs the landing steps (tasks check their criteria,
sentinels compare) and tells people. Whoever ends a job calls it: the runner
when the analyzer is done, the engine on a cancel or an expiry, the
housekeeping when it reaps a lost job, and ``enqueue`` below when the broker
refuses a job.

Dispatching lives here too, because ending a job dispatches its followers and
a job that cannot be sent ends at once: the two call each other. The Celery
task that runs a job is sent by its registered name (``RUN_JOB_TASK``), not
imported: ``optimizations/tasks.py`` sits above this module (its task runs the
runner, which lands here), and the broker message carries the name anyway.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from optimizations.jobs import kinds, lease, sentinel
from optimizations.models import Job
from optimizations.work import criteria
from portal.celery import app as celery_app
from portal.notify import run_finished

logger = logging.getLogger(__name__)

# The name optimizations/tasks.py registers ``run_job`` under (and CELERY_TASK_ROUTES uses).
RUN_JOB_TASK = "optimizations.tasks.run_job"


def enqueue(job: Job) -> bool:
    """Send a job to its queue; a job that cannot be sent fails, saying why."""
    kind = kinds.get(job.kind)
    try:
        celery_app.signature(RUN_JOB_TASK).apply_async(
            args=(job.pk,),
            queue=kind.queue,
            time_limit=kind.time_limit,
            soft_time_limit=max(30, kind.time_limit - 30),
        )
    except Exception as error:  # the broker went away between the check and now
        logger.warning("could not enqueue job %s: %s", job.pk, error)
        job.fail(
            "It could not be sent to the job queue (the Celery broker did not answer), so it "
            "never ran. Start it again once the broker is back."
        )
        finish(job)
        return False
    Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now(), sends=F("sends") + 1)
    return True


def dispatch(job: Job) -> str:
    """Send a waiting job to its queue if it may start now. Returns its status after.

    It may start when the job before it in its run has ended and, for a kind
    that loads the target, when it holds the target's lease; otherwise it goes
    on waiting, for whichever of the two it is. Safe to call twice for one job
    (a worker ending a job and the sweeper at once): the lease and the move to
    "queued" are conditional updates, so it is sent once.
    """
    job.refresh_from_db()
    if job.status != Job.WAITING:
        return job.status
    if job.after_id is not None:
        before = Job.objects.filter(pk=job.after_id).first()
        if before is not None and before.status in Job.ACTIVE:
            job.hold(before)
            return job.status
    if lease.needs_lease(job.kind):
        holder = lease.acquire(job)
        if holder is not None:
            job.hold(holder)
            return job.status
    if job.release():
        if lease.needs_lease(job.kind):
            # The others waiting for the target now wait for this one (their pages say so).
            Job.objects.filter(
                pk__in=list(lease.waiting_on(job.target_id).values_list("pk", flat=True)),
                status=Job.WAITING,
            ).update(waiting_for=job)
        transaction.on_commit(lambda: enqueue(job))
        return Job.QUEUED
    job.refresh_from_db()
    if job.status in Job.ENDED and lease.give_back(job):
        # Cancelled or expired while we looked: it must not keep the target.
        wake(job.target_id)
    # Else another process dispatched it a moment ago: it is queued (or running) already.
    return job.status


def wake(target_id: int) -> int:
    """The target's lease is free: the oldest job waiting for it gets it and is sent."""
    for job in lease.waiting_on(target_id):
        state = dispatch(job)
        if state in (Job.QUEUED, Job.WAITING):
            # It holds the lease now, or somebody else does again.
            return int(state == Job.QUEUED)
    return 0


def release_followers(job: Job) -> int:
    """``job`` has ended: its lease goes to the next job, and the job after it in its
    run is dispatched (first, so a run that has begun keeps its target)."""
    freed = lease.give_back(job)
    sent = 0
    for follower in Job.objects.filter(after=job, status=Job.WAITING):
        if dispatch(follower) == Job.QUEUED:
            sent += 1
    if freed:
        sent += wake(job.target_id)
    return sent


def finish(job: Job) -> None:
    """Give back the target's lease, dispatch the jobs that waited for this one,
    settle the run, tell people."""
    release_followers(job)
    run = job.run
    if run.settle():
        run_landed(run)
        run_finished(run)


def run_landed(run) -> None:
    """A run has settled: its tasks check their criteria, its sentinel compares. Each
    step on its own, so a failing one never keeps the others (or the run's own
    notification) from happening."""
    for step in (criteria.check_after_run, sentinel.check_after_run):
        try:
            step(run)
        except Exception:
            logger.exception("after run %s: %s failed", run.pk, step.__module__)
