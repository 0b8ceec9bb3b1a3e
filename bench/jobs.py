#!/usr/bin/env python
"""Figures of the job engine (issue 4), printed, not asserted.

1. Enqueue → running latency (p50, p95) with a real Celery worker, on the
   embedded file-system broker and on Redis.
2. The job page's polling endpoint with 1 000 jobs and a 100 000-line log:
   queries beyond authentication and server time (p50, p95).

Run from the repository root:  .venv/bin/python bench/jobs.py [--postgres] [--jobs 40]
It works in a throwaway database and var/ directory; nothing of yours is touched.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def percentile(values, share):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def setup_django(var_dir: Path, postgres: bool) -> None:
    os.environ["KAIZEN_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    if postgres:
        import psycopg

        name = f"kaizen_bench_{os.getpid()}"
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{name}"
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def drop_postgres() -> None:
    from django.db import connections

    name = connections["default"].settings_dict["NAME"]
    connections.close_all()
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", action="store_true", help="use PostgreSQL on 127.0.0.1")
    parser.add_argument("--jobs", type=int, default=40, help="jobs per broker for the latency")
    parser.add_argument("--polls", type=int, default=300)
    return parser.parse_args(argv)


# A program, not a library: its scratch folder and database come from its command line,
# so Django is set up here, before the imports below read models (Django's way for a
# standalone script).
ARGS = parse_args(sys.argv[1:])
VAR_DIR = Path(tempfile.mkdtemp(prefix="kaizen-bench-"))
setup_django(VAR_DIR, ARGS.postgres)

from django.db import connection  # noqa: E402

from departments.models import Department  # noqa: E402
from optimizations.models import Job, JobLog, Run, TargetService  # noqa: E402
from optimizations.tasks import run_job  # noqa: E402
from tests.optimizations.workers import (  # noqa: E402
    StubTarget,
    Worker,
    broker_settings,
    purge,
    use_broker,
)


def make_target():
    return TargetService.objects.create(
        name="Bench target",
        slug=f"bench-{time.time_ns()}",
        base_url="http://127.0.0.1:1",
        owner_department=Department.objects.get(code="dev"),
    )


def enqueue_latency(kind: str, var_dir: Path, count: int) -> list[float] | str:
    if kind == "redis":
        import socket

        try:
            socket.create_connection(("127.0.0.1", 6379), 1).close()
        except OSError:
            return "Redis is not reachable on 127.0.0.1:6379"
    (var_dir / kind).mkdir(parents=True, exist_ok=True)
    url, options = broker_settings(kind, var_dir / kind)
    server = StubTarget()
    target = make_target()
    target.base_url = server.url
    target.save()
    latencies = []
    with use_broker(url, options):
        purge()
        worker = Worker(url, var_dir / kind)
        try:
            worker.wait_ready()
            for _ in range(count):
                run = Run.objects.create(target=target, mode="custom")
                job = Job.objects.create(
                    run=run, kind="probe", target=target, params={"requests_per_operation": 1}
                )
                sent = time.time()
                run_job.apply_async(args=(job.pk,), queue="analysis")
                while True:
                    job.refresh_from_db(fields=["status", "started_at"])
                    if job.started_at:
                        latencies.append(job.started_at.timestamp() - sent)
                        break
                    time.sleep(0.005)
                while job.status not in Job.ENDED:
                    time.sleep(0.02)
                    job.refresh_from_db(fields=["status"])
        finally:
            worker.stop()
            server.close()
            purge()
    return latencies


def polling(requests: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    target = make_target()
    run = Run.objects.create(target=target, mode="performance")
    Job.objects.bulk_create(Job(run=run, kind="probe", target=target) for _ in range(999))
    job = Job.objects.create(run=run, kind="probe", target=target)
    job.claim("bench")
    now = timezone.now()
    for start in range(1, 100_001, 10_000):
        JobLog.objects.bulk_create(
            JobLog(job=job, seq=seq, at=now, message=f"step {seq}: did something useful")
            for seq in range(start, start + 10_000)
        )
    Job.objects.filter(pk=job.pk).update(log_lines=100_000)
    user = get_user_model().objects.create_user("bench", password="x")
    client = Client()
    client.force_login(user)
    client.get("/")  # the session learns the user's time zone once
    url = f"/jobs/{job.pk}/live/"
    times, queries = [], []
    after = 99_990
    for n in range(requests):
        # Each poll finds a few new lines, as a running job would give it.
        JobLog.objects.create(job=job, seq=100_001 + n, at=now, message=f"new line {n}")
        Job.objects.filter(pk=job.pk).update(log_lines=100_001 + n)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(f"{url}?after={after}", headers={"HX-Request": "true"})
            times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
        after = 100_001 + n
        queries.append(len(captured))
    return {
        "jobs": Job.objects.count(),
        "log_lines": JobLog.objects.filter(job=job).count(),
        "queries": max(queries),
        "p50_ms": statistics.median(times),
        "p95_ms": percentile(times, 0.95),
    }


def main() -> int:
    args, var_dir = ARGS, VAR_DIR
    try:
        print(f"database: {connection.vendor}; machine: {os.cpu_count()} cores")
        print("\n1. enqueue → running (a real worker; probe jobs one after another)")
        for kind in ("filesystem", "redis"):
            result = enqueue_latency(kind, var_dir, args.jobs)
            if isinstance(result, str):
                print(f"   {kind:<10} skipped: {result}")
                continue
            print(
                f"   {kind:<10} n={len(result)}  p50 {1000 * statistics.median(result):6.0f} ms"
                f"   p95 {1000 * percentile(result, 0.95):6.0f} ms   (goal: p95 < 1000 ms)"
            )
        print("\n2. the job page's polling endpoint (in-process Django test client)")
        figures = polling(args.polls)
        print(
            f"   {figures['jobs']} jobs, a {figures['log_lines']}-line log: "
            f"{figures['queries']} queries per poll (2 of them authentication: "
            f"{figures['queries'] - 2} beyond it, goal ≤ 3)"
        )
        print(
            f"   server time p50 {figures['p50_ms']:.2f} ms, p95 {figures['p95_ms']:.2f} ms "
            "(goal: p95 < 20 ms)"
        )
        if args.postgres:
            drop_postgres()
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
