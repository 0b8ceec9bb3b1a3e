"""A distributed load test end to end: real benchmark workers on loopback, each a generator.

The parent job holds the target's lease and runs the first generator itself; the
others are tasks on the benchmark queue. Two workers on this machine need
KAIZEN_GENERATORS_SHARE_HOST (production keeps one generator per host).
"""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from optimizations.models import Generator, GeneratorSecond, Job, Measurement, Run
from optimizations.tasks import run_job
from tests.optimizations.workers import Worker, broker_settings, purge, use_broker
from tests.optimizations.workers import wait_for as wait

pytestmark = pytest.mark.django_db(transaction=True)

SHARE = {"KAIZEN_GENERATORS_SHARE_HOST": "true"}


class CountingTarget:
    """Counts the load it serves on GET /load, with each request's arrival time."""

    def __init__(self):
        outer = self
        self.lock = threading.Lock()
        self.arrivals: list[float] = []
        self.health = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                at = time.time()
                if self.path == "/load":
                    with outer.lock:
                        outer.arrivals.append(at)
                else:
                    with outer.lock:
                        outer.health += 1
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def benchmark_workers(tmp_path):
    """Starts real benchmark workers on a file-system broker; stopped at the end."""
    url, options = broker_settings("filesystem", tmp_path)
    started = []
    with use_broker(url, options):
        purge("benchmark")

        def start(count, env=SHARE):
            for _ in range(count):
                started.append(Worker(url, tmp_path, queue="benchmark", env=env))
            for process in started[-count:]:
                process.wait_ready()
            return started[-count:]

        try:
            yield start
        finally:
            for process in started:
                process.stop()
            purge("benchmark")


@pytest.fixture
def counting_target(target):
    server = CountingTarget()
    target.base_url = server.url
    target.save()
    yield server
    server.close()


def start_load(target, **params):
    run = Run.objects.create(target=target, mode="custom")
    params = {"mode": "load", "paths": ["/load"], "cpu": "none", **params}
    job = Job.objects.create(run=run, kind="benchmark", target=target, params=params)
    run_job.apply_async(args=[job.pk], queue="benchmark")
    return job


def ended(job):
    wait(lambda: Job.objects.get(pk=job.pk).status in Job.ENDED, 120, "the job to end")
    job.refresh_from_db()
    return job


def test_two_generators_start_together_and_merge_to_the_targets_own_count(
    benchmark_workers, counting_target, target
):
    benchmark_workers(2)
    job = ended(start_load(target, rate=40.0, duration=3.0, generators=2))
    assert job.status == Job.SUCCEEDED, job.error
    # Fan-out: two generators, each on its own worker, each its share of the rate.
    gens = list(Generator.objects.filter(job=job).order_by("index"))
    assert [g.status for g in gens] == [Generator.DONE, Generator.DONE]
    assert len({g.worker for g in gens}) == 2
    assert [g.config["rate"] for g in gens] == [20.0, 20.0]
    # The synchronized start: one instant, published after both were connected, and
    # the target saw no load before it.
    (start_at,) = {g.start_at for g in gens}
    assert all(g.ready_at.timestamp() <= start_at for g in gens)
    assert min(counting_target.arrivals) >= start_at
    # The merge: what the merged result counts is what the target itself served.
    summary = job.summary
    assert summary["requests"]["ok"] == len(counting_target.arrivals) == 120
    assert sum(g.result["totals"]["ok"] for g in gens) == 120
    # Percentiles from one histogram (both generators' buckets), not averaged.
    assert summary["workers"] == 2
    assert summary["hdr"]["latency"]["total"] == 120
    # Each generator stored its own seconds; the job's rows are the merged ones.
    for gen in gens:
        assert GeneratorSecond.objects.filter(generator=gen).count() >= 3
        assert not GeneratorSecond.objects.filter(generator=gen).exclude(ticks=[]).exists()
    rows = Measurement.objects.filter(job=job, second__isnull=False).order_by("second")
    # Every whole second merges both (a last partial second may come from one only).
    assert [m.value for m in rows.filter(name="sample.generators")][:3] == [2, 2, 2]
    assert sum(m.value for m in rows.filter(name="sample.ok")) == 120
    health = summary["generators"]
    assert [h["name"] for h in health] == ["g1", "g2"]
    assert all(h["status"] == "done" and h["sent"] == 60 for h in health)
    # Healthy unless the guard saw it held up (a busy machine is named, never hidden).
    assert all(h["healthy"] is not h["generator_limited"] for h in health)
    named = [h["name"] for h in health if not h["healthy"]]
    assert (job.verdict == "incomplete") if named else "generator" not in summary["verdict_reason"]


def test_a_generator_no_worker_takes_is_named_and_the_test_is_incomplete(
    benchmark_workers, counting_target, target
):
    # One worker for two generators: the second is never taken.
    benchmark_workers(1, env={**SHARE, "KAIZEN_GENERATOR_READY_SECONDS": "3"})
    job = ended(start_load(target, rate=20.0, duration=2.0, generators=2))
    assert job.status == Job.SUCCEEDED, job.error
    assert job.verdict == "incomplete"
    assert "g2" in job.summary["verdict_reason"]
    assert "no benchmark worker took it" in job.summary["verdict_reason"]
    g2 = Generator.objects.get(job=job, index=1)
    assert g2.status == Generator.NOT_READY
    # The one that ran sent its share only, and the result says so rather than pass.
    assert job.summary["requests"]["ok"] == len(counting_target.arrivals) == 20


def test_a_generator_killed_mid_run_is_named_and_the_test_is_incomplete(
    benchmark_workers, counting_target, target
):
    workers = benchmark_workers(2)
    job = start_load(target, rate=20.0, duration=12.0, generators=2)
    g2 = wait(
        lambda: Generator.objects.filter(job=job, index=1, status=Generator.RUNNING).first(),
        120,
        "the second generator to run",
    )
    # Some of its seconds are in, then its worker dies as the OOM killer would kill it.
    wait(lambda: GeneratorSecond.objects.filter(generator=g2).count() >= 2, 30, "its seconds")
    (victim,) = [w for w in workers if g2.worker.startswith(w.name)]
    victim.kill()
    job = ended(job)
    assert job.status == Job.SUCCEEDED, job.error
    g2.refresh_from_db()
    assert g2.status == Generator.LOST
    assert job.verdict == "incomplete"
    assert "g2" in job.summary["verdict_reason"]
    assert "went silent" in job.summary["verdict_reason"]
    health = {h["name"]: h for h in job.summary["generators"]}
    assert health["g1"]["status"] == "done" and not health["g2"]["healthy"]
    assert health["g2"]["status"] == "lost"


def test_a_cancel_stops_every_generator(benchmark_workers, counting_target, target):
    benchmark_workers(2)
    job = start_load(target, rate=20.0, duration=30.0, generators=2)
    wait(
        lambda: Generator.objects.filter(job=job, status=Generator.RUNNING).count() == 2,
        120,
        "both generators to run",
    )
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    job = ended(job)
    assert job.status == Job.CANCELLED
    gens = Generator.objects.filter(job=job)
    assert {g.status for g in gens} == {Generator.CANCELLED}
    sent = len(counting_target.arrivals)
    time.sleep(2)
    assert len(counting_target.arrivals) == sent < 600  # nothing more after the cancel


def test_generators_stop_when_the_parent_job_dies(benchmark_workers, counting_target, target):
    workers = benchmark_workers(2)
    job = start_load(target, rate=20.0, duration=40.0, generators=2)
    g2 = wait(
        lambda: Generator.objects.filter(job=job, index=1, status=Generator.RUNNING).first(),
        120,
        "the second generator to run",
    )
    job.refresh_from_db()
    (parent,) = [w for w in workers if job.worker.startswith(w.name)]
    parent.kill()  # the parent (and its own generator) die; the target's lease is no longer held
    wait(
        lambda: Generator.objects.get(pk=g2.pk).status == Generator.CANCELLED,
        60,
        "the orphaned generator to stop",
    )
    sent = len(counting_target.arrivals)
    time.sleep(2)
    assert len(counting_target.arrivals) == sent < 800


def test_a_stress_test_runs_each_step_as_a_round_of_every_generator(
    benchmark_workers, counting_target, target
):
    benchmark_workers(2)
    job = ended(
        start_load(
            target,
            mode="stress",
            start_rate=20.0,
            step_factor=2.0,
            step_duration=2.0,
            max_steps=2,
            generators=2,
        )
    )
    assert job.status == Job.SUCCEEDED, job.error
    steps = job.summary["steps"]
    assert [s["offered_rate"] for s in steps] == [20.0, 40.0]
    rounds = Generator.objects.filter(job=job).values_list("round", "index", "status")
    assert sorted(rounds) == [(1, 0, "done"), (1, 1, "done"), (2, 0, "done"), (2, 1, "done")]
    # Both steps' requests, counted by the merge and by the target alike.
    assert sum(s["requests"]["ok"] for s in steps) == len(counting_target.arrivals) == 120
