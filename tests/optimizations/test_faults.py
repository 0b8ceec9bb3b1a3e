"""Faults a deployment meets, survived with real worker processes on both brokers.

A worker SIGKILLed mid-job, the broker down, a target that is unreachable,
answers garbage or hangs, and a task delivered twice. Each runs against the
embedded file-system broker and against Redis.
"""

from __future__ import annotations

import pytest
from django.urls import reverse

from optimizations.jobs import engine, housekeeping
from optimizations.models import Job, JobLog, Run
from optimizations.tasks import run_job
from tests.conftest import need, reachable
from tests.optimizations.workers import StubTarget, broker_settings, running_broker, use_broker
from tests.optimizations.workers import wait_for as wait

pytestmark = pytest.mark.django_db(transaction=True)

BROKERS = ["filesystem", "redis"]


@pytest.fixture(params=BROKERS)
def broker(request, tmp_path):
    if request.param == "redis":
        need(reachable("redis://127.0.0.1:6379"), "Redis is not reachable on 127.0.0.1:6379")
    with running_broker(request.param, tmp_path) as url:
        yield url


def probe_job(target, *, max_attempts=1, **params) -> Job:
    run = Run.objects.create(target=target, mode="custom")
    full = {"requests_per_operation": 1, "timeout": 5.0, "max_operations": 30, **params}
    return Job.objects.create(
        run=run, kind="probe", target=target, params=full, max_attempts=max_attempts
    )


def point(target, server: StubTarget, **fields):
    target.base_url = server.url
    for name, value in fields.items():
        setattr(target, name, value)
    target.save()


def finished(job: Job):
    job.refresh_from_db()
    return job.status in Job.ENDED


def test_a_worker_killed_mid_job_ends_the_job_as_worker_lost(worker, target, settings):
    server = StubTarget(slow_seconds=30)
    try:
        point(target, server)
        process = worker()
        job = probe_job(target, max_attempts=1)
        run_job.apply_async(args=[job.pk], queue="analysis")
        wait(
            lambda: JobLog.objects.filter(job=job, message__contains="OpenAPI").exists(),
            30,
            "the probe to be mid-job",
        )
        process.kill()
        settings.KAIZEN_LOST_AFTER = 2
        wait(lambda: housekeeping.reap_lost_jobs() or finished(job), 20, "the reaper")
        job.refresh_from_db()
        assert job.status == Job.FAILED
        assert job.error.startswith("Worker lost")
        assert not Job.objects.filter(status=Job.RUNNING).exists()
        assert job.run.status == Job.FAILED
    finally:
        server.close()


def test_a_job_safe_to_repeat_is_requeued_and_finished_by_another_worker(worker, target, settings):
    server = StubTarget(slow_seconds=30)
    try:
        point(target, server)
        first = worker()
        job = probe_job(target, max_attempts=2)
        run_job.apply_async(args=[job.pk], queue="analysis")
        wait(
            lambda: JobLog.objects.filter(job=job, message__contains="OpenAPI").exists(),
            30,
            "the probe to be mid-job",
        )
        first.kill()
        server.release.set()  # the second attempt finds a fast target
        settings.KAIZEN_LOST_AFTER = 2
        wait(lambda: housekeeping.reap_lost_jobs(), 20, "the reaper to re-queue the job")
        worker()
        wait(lambda: finished(job), 30, "the second attempt to finish")
        assert (job.status, job.attempt) == (Job.SUCCEEDED, 2)
        assert JobLog.objects.filter(job=job, message__contains="re-queued").exists()
    finally:
        server.close()


@pytest.mark.parametrize(
    ("make_server", "openapi_path", "expected"),
    [
        (None, "/openapi.json", "connection was refused"),
        (lambda: StubTarget(openapi=b"<html>Welcome</html>"), "/openapi.json", "is not JSON"),
        (lambda: StubTarget(openapi=b'{"title": "x"}'), "/openapi.json", "not an OpenAPI"),
        (lambda: StubTarget(), "/missing.json", "no OpenAPI document"),
        (lambda: StubTarget(hang=True), "/openapi.json", "did not answer within 1 s"),
    ],
    ids=["refused", "garbage", "not-openapi", "missing", "hangs"],
)
def test_a_bad_target_fails_the_job_readably_and_the_worker_stays_healthy(
    worker, target, make_server, openapi_path, expected
):
    from tests.optimizations.workers import free_port

    server = make_server() if make_server else None
    try:
        if server:
            point(target, server, openapi_path=openapi_path)
        else:
            target.base_url = f"http://127.0.0.1:{free_port()}"
            target.save()
        process = worker()
        job = probe_job(target, timeout=1.0)
        run_job.apply_async(args=[job.pk], queue="analysis")
        wait(lambda: finished(job), 30, "the job to end")
        assert job.status == Job.FAILED
        assert expected in job.error
        # The same worker then runs a healthy job to the end.
        healthy = StubTarget()
        try:
            point(target, healthy, openapi_path="/openapi.json")
            second = probe_job(target)
            run_job.apply_async(args=[second.pk], queue="analysis")
            wait(lambda: finished(second), 30, "the next job to end")
            assert second.status == Job.SUCCEEDED, second.error
            assert process.alive()
        finally:
            healthy.close()
    finally:
        if server:
            server.close()


def test_the_same_task_delivered_twice_runs_the_job_once(worker, target):
    server = StubTarget()
    try:
        point(target, server)
        process = worker()
        job = probe_job(target)
        run_job.apply_async(args=[job.pk], queue="analysis")
        run_job.apply_async(args=[job.pk], queue="analysis")
        wait(lambda: finished(job), 30, "the job to end")
        wait(lambda: process.output().count("succeeded in") >= 2, 30, "both deliveries")
        assert (job.status, job.attempt) == (Job.SUCCEEDED, 1)
        assert JobLog.objects.filter(job=job, message__contains="(attempt 1)").count() == 1
        assert "not claimed (succeeded)" in process.output() or "not claimed (running)" in (
            process.output()
        )
    finally:
        server.close()


@pytest.mark.parametrize("kind", BROKERS)
def test_with_the_broker_down_pages_serve_and_run_starts_nothing(
    kind, client, qa_engineer, target, tmp_path
):
    if kind == "redis":
        url, options = "redis://127.0.0.1:9/0", {"socket_connect_timeout": 1}
    else:
        url, options = broker_settings("filesystem", tmp_path)
        options = {
            **options,
            "data_folder_in": str(tmp_path / "gone"),
            "data_folder_out": str(tmp_path / "gone"),
        }
    client.force_login(qa_engineer)
    with use_broker(url, options):
        with pytest.raises(engine.CannotStart, match="Celery broker"):
            engine.start_run(qa_engineer, target, "performance", [])
        response = client.post(
            reverse("run_start", args=[target.slug]), {"mode": "performance"}, follow=True
        )
        assert "cannot be reached, so nothing was started" in response.content.decode()
        assert not Run.objects.exists() and not Job.objects.exists()
        for page in ("dashboard", "target_list", "job_list"):
            assert client.get(reverse(page)).status_code == 200
        assert client.get(target.get_absolute_url()).status_code == 200
