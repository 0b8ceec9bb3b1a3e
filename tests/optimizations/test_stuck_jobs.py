"""No job stays queued forever — with real worker processes and the embedded broker.

The two holes found on a bad day: a job cancelled after its worker died (the
reaper put it back in the queue, where no worker would claim a job asked to
stop), and a job whose broker message was lost when the broker restarted.
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from optimizations.jobs import engine, housekeeping, landing
from optimizations.models import Job, JobLog, Run
from tests.optimizations.workers import StubTarget, purge
from tests.optimizations.workers import wait_for as wait

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def server(target):
    stub = StubTarget(slow_seconds=30)
    target.base_url = stub.url
    target.save()
    yield stub
    stub.close()


def probe_job(target, *, max_attempts=1) -> Job:
    run = Run.objects.create(target=target, mode="custom")
    params = {"requests_per_operation": 1, "timeout": 5.0, "max_operations": 30}
    return Job.objects.create(
        run=run, kind="probe", target=target, params=params, max_attempts=max_attempts
    )


def current(job: Job) -> Job:
    job.refresh_from_db()
    return job


def test_a_job_cancelled_after_its_worker_died_ends_cancelled(
    worker, server, target, qa_engineer, settings
):
    first = worker()
    job = probe_job(target, max_attempts=2)  # safe to repeat: the reaper would re-queue it
    assert landing.enqueue(job)
    wait(
        lambda: JobLog.objects.filter(job=job, message__contains="OpenAPI").exists(),
        30,
        "the probe to be mid-job",
    )
    first.kill()
    assert engine.cancel(qa_engineer, current(job)) == Job.RUNNING  # nobody is left to stop
    settings.KAIZEN_LOST_AFTER = 2
    wait(lambda: housekeeping.reap_lost_jobs(), 20, "the reaper")
    job = current(job)
    assert (job.status, job.attempt) == (Job.CANCELLED, 1)
    assert Run.objects.get(pk=job.run_id).is_finished()
    # A new worker finds nothing of it to run (the dead worker's message may come back).
    server.release.set()
    second = worker()
    assert housekeeping.sweep() == {"cancelled": 0, "resent": 0, "woken": 0}
    assert current(job).status == Job.CANCELLED
    assert second.alive()


def test_a_job_whose_message_the_broker_lost_is_sent_again_and_runs_once(
    worker, server, target, settings
):
    server.release.set()  # a fast target
    settings.KAIZEN_RESEND_AFTER = 30
    job = probe_job(target)
    assert landing.enqueue(job)
    purge()  # the broker restarts and forgets its queue
    process = worker()
    assert housekeeping.resend_lost_messages() == 0  # too early to call it lost
    assert current(job).status == Job.QUEUED

    later = timezone.now() + datetime.timedelta(seconds=31)
    assert housekeeping.resend_lost_messages(later) == 1
    landing.enqueue(current(job))  # and a duplicate on top: claims are conditional
    wait(lambda: current(job).status in Job.ENDED, 60, "the re-sent job to run")
    wait(lambda: process.output().count("succeeded in") >= 2, 30, "both deliveries")
    job = current(job)
    assert (job.status, job.attempt) == (Job.SUCCEEDED, 1)
    assert JobLog.objects.filter(job=job, message__contains="sent again").exists()
    assert JobLog.objects.filter(job=job, message__contains="(attempt 1)").count() == 1
