#!/usr/bin/env python
"""The status page's time (issue 18 point 4), printed, not asserted.

Builds a scratch database with a day of jobs in every status (--jobs of them),
then asks for /status/ as a signed-in manager with Django's test client,
in-process: queries per request, p50 and p95 server time over N requests after
a warm-up, against the goal p95 < 300 ms. The page reads the workers from the
heartbeat rows they write (none here: a person sees the workers as down, the case
the issue reported as slow), so it asks the broker nothing; the broker's panel,
which the page loads once shown, is timed on a second line (htmx request to
/status/broker/): the embedded file-system broker of the scratch directory is
used unless CELERY_BROKER_URL says otherwise.

Run from the repository root:

    .venv/bin/python bench/status.py [--requests 30] [--jobs 2000]
                                     [--database-url postgres://…/kaizen_bench_status]

Without --database-url it uses SQLite in a temporary directory. A PostgreSQL
database named there is created and dropped.
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
from urllib.parse import urlsplit

import django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 300.0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


ARGS = parse_args(sys.argv[1:])
SCRATCH = Path(tempfile.mkdtemp(prefix="kaizen-bench-status-"))
DATABASE_URL = ARGS.database_url or f"sqlite:///{SCRATCH / 'status.sqlite3'}"
if ARGS.database_url:
    import psycopg

    _url = urlsplit(ARGS.database_url)
    with psycopg.connect(ARGS.database_url.replace(_url.path, "/postgres"), autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{_url.path.lstrip("/")}"')
        c.execute(f'CREATE DATABASE "{_url.path.lstrip("/")}"')
# The models are read below, so Django is set up here first (Django's way for a
# standalone script).
os.environ.update(KAIZEN_VAR_DIR=str(SCRATCH), DATABASE_URL=DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from optimizations.models import Job, Run, TargetService  # noqa: E402
from portal.demo import DEMO_TARGET_SLUG, load_demo  # noqa: E402

PASSWORD = "bench-status-password-42"


def build(jobs: int) -> None:
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    load_demo(PASSWORD, "http://127.0.0.1:9")
    target = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    now = timezone.now()
    statuses = [Job.SUCCEEDED, Job.FAILED, Job.CANCELLED, Job.QUEUED, Job.RUNNING]
    run = Run.objects.create(target=target, mode="custom", status="succeeded", finished_at=now)
    Job.objects.bulk_create(
        Job(
            run=run,
            kind="probe",
            target=target,
            status=statuses[i % len(statuses)],
            params={},
        )
        for i in range(jobs)
    )


def time_one(client, url, **headers) -> tuple[float, int]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(url, **headers)
        took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    return took, len(captured)


def report(what: str, timed: list[tuple[float, int]]) -> None:
    times = sorted(took for took, _ in timed)
    queries = timed[-1][1]
    p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
    verdict = "within" if p95 < GOAL_MS else "OVER"
    print(
        f"  {what}: queries {queries}  p50 {statistics.median(times):.1f} ms"
        f"  p95 {p95:.1f} ms  ({verdict} the goal of {GOAL_MS:.0f} ms)"
    )


def main() -> None:
    try:
        build(ARGS.jobs)
        client = Client()
        assert client.login(username="dev.manager", password=PASSWORD)
        for _ in range(3):  # warm-up: templates, connections, the broker's client
            client.get("/status/")
            client.get("/status/broker/", HTTP_HX_REQUEST="true")
        page = [time_one(client, "/status/") for _ in range(ARGS.requests)]
        panel = [
            time_one(client, "/status/broker/", HTTP_HX_REQUEST="true")
            for _ in range(ARGS.requests)
        ]
        print(f"status page, {connection.vendor}, {ARGS.jobs} jobs, {ARGS.requests} requests")
        report("page", page)
        report("broker panel (loaded after)", panel)
    finally:
        connections.close_all()
        if ARGS.database_url:
            url = urlsplit(ARGS.database_url)
            with psycopg.connect(
                ARGS.database_url.replace(url.path, "/postgres"), autocommit=True
            ) as c:
                c.execute(f'DROP DATABASE IF EXISTS "{url.path.lstrip("/")}"')
        shutil.rmtree(SCRATCH, ignore_errors=True)


if __name__ == "__main__":
    main()
