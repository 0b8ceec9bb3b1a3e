"""A benchmark job end to end: a real benchmark worker, the engine subprocess, both brokers."""

import pytest

from optimizations.analyzers import cooldown
from optimizations.models import Job, Measurement, Run
from optimizations.tasks import run_job
from tests.conftest import need, reachable
from tests.optimizations.workers import StubTarget, Worker, broker_settings, purge, use_broker
from tests.optimizations.workers import wait_for as wait

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(params=["filesystem", "redis"])
def benchmark_worker(request, tmp_path):
    if request.param == "redis":
        need(reachable("redis://127.0.0.1:6379"), "Redis is not reachable on 127.0.0.1:6379")
    url, options = broker_settings(request.param, tmp_path)
    with use_broker(url, options):
        purge("benchmark")
        process = Worker(url, tmp_path, queue="benchmark")
        try:
            process.wait_ready()
            yield process
        finally:
            process.stop()
            purge("benchmark")


def test_a_load_test_runs_on_the_benchmark_worker_and_stores_its_rows(benchmark_worker, target):
    server = StubTarget()
    try:
        target.base_url = server.url
        target.save()
        run = Run.objects.create(target=target, mode="custom")
        params = {
            "mode": "load",
            "rate": 20.0,
            "duration": 2.0,
            "paths": ["/health"],
            "cpu": "none",
        }
        job = Job.objects.create(run=run, kind="benchmark", target=target, params=params)
        run_job.apply_async(args=[job.pk], queue="benchmark")
        wait(lambda: Job.objects.get(pk=job.pk).status in Job.ENDED, 60, "the benchmark to end")
        job.refresh_from_db()
        assert job.status == Job.SUCCEEDED, job.error
        assert job.worker.startswith("test-")
        # Counted by both sides: what the engine says it got is what the server served
        # (plus the worker's health checks before a load, and the one that tells the
        # test the target is ready).
        checks = cooldown.SAMPLES + 1
        assert job.summary["requests"]["ok"] == server.requests - checks == 40
        rows = Measurement.objects.filter(job=job, name="sample.achieved", second__isnull=False)
        assert rows.count() >= 2  # the per-second rows the live chart draws
        assert Measurement.objects.filter(job=job, name="http.latency.p95").exists()
    finally:
        server.close()
