"""A job's status changes only through its methods, which refuse illegal moves."""

import pytest

from optimizations.models import Job, Run
from optimizations.models.jobs import IllegalTransition


@pytest.fixture
def job(target):
    run = Run.objects.create(target=target, mode="performance")
    return Job.objects.create(run=run, kind="probe", target=target, max_attempts=2)


def test_only_one_worker_claims_a_job(job):
    assert job.claim("worker-a")
    duplicate = Job.objects.get(pk=job.pk)
    assert not duplicate.claim("worker-b")
    job.refresh_from_db()
    assert (job.status, job.worker, job.attempt) == (Job.RUNNING, "worker-a", 1)


def test_a_queued_job_cannot_succeed(job):
    assert not job.succeed({}, "pass")
    assert Job.objects.get(pk=job.pk).status == Job.QUEUED


def test_cancelling_a_queued_job_ends_it_and_no_worker_takes_it(job):
    assert job.request_cancel() == Job.CANCELLED
    assert not job.claim("worker-a")


def test_cancelling_a_running_job_asks_the_worker(job):
    job.claim("worker-a")
    assert job.request_cancel() == Job.RUNNING
    assert job.cancel_requested
    assert job.confirm_cancelled()
    assert job.status == Job.CANCELLED


def test_an_ended_job_stays_ended(job):
    job.claim("w")
    job.succeed({"ok": 1}, "pass")
    assert not job.fail("late failure")
    assert not job.expire()
    assert not job.confirm_cancelled()
    assert Job.objects.get(pk=job.pk).status == Job.SUCCEEDED


def test_only_a_queued_job_expires(job):
    assert job.expire()
    assert job.status == Job.EXPIRED and "next turn" in job.error


def test_the_reaper_requeues_within_the_attempts_and_no_further(job):
    job.claim("w")
    assert job.requeue_lost()
    assert job.status == Job.QUEUED and job.attempt == 1
    job.claim("w")
    assert job.attempt == 2
    with pytest.raises(IllegalTransition):
        job.requeue_lost()


def test_a_run_settles_from_its_jobs(target):
    run = Run.objects.create(target=target, mode="performance")
    a = Job.objects.create(run=run, kind="probe", target=target)
    b = Job.objects.create(run=run, kind="probe", target=target)
    a.claim("w")
    assert not run.settle()
    assert run.status == Job.RUNNING
    a.succeed({}, "pass")
    b.claim("w")
    b.succeed({}, "fail")
    assert run.settle()  # this call finished it
    assert not run.settle()  # and only once
    assert (run.status, run.verdict) == (Job.SUCCEEDED, "fail")
