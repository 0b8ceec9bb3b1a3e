#!/usr/bin/env python
"""The portal under its own polling (issue 15 point 9): p95 and req/s, 50 clients beside 1.

Starts the portal the way ``./kaizen up`` does (gunicorn with the same
command line and worker count, ``portal.processes.commands``) on a scratch
database, makes runs whose jobs a simulated worker moves like the real one
(progress and a heartbeat every half second, a log line every two seconds;
half of the watched jobs sit still, waiting), and then lets browser-like
clients watch them: each is one tab with a job page or a run page open,
polling it as htmx would (the job poll at the interval the answer names, the
run poll every second with the ETag it was given) and reopening the page
every 15 seconds. One client alone first, then many, for N seconds each.

It prints, for each: requests, req/s, p50/p95/max latency (ms), the answers
by status, the load generator's CPU (this process: the clients and the
simulated worker), the portal's CPU (gunicorn's processes) and the load
average. Goal: p95 < 200 ms at 50 clients on this machine's default process
count. Figures are printed, not asserted.

Run from the repository root (nothing else should run on the port):

    .venv/bin/python bench/polling.py [--clients 50] [--seconds 30] [--port 18250]
                                      [--database-url postgres://…/kaizen_bench_polling]

Without --database-url it uses SQLite in a temporary directory (the embedded
default). A PostgreSQL database named there is created and dropped.
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 200.0
PAGE_EVERY = 15.0
POLL_RE = re.compile(r'<div id="job-\d+-poll" hx-get="([^"]+)" hx-trigger="every (\d+)s"')


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=18250)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


# --- the scratch portal ------------------------------------------------------------------


def prepare(var_dir: Path, database_url: str, clients: int) -> dict:
    """Migrate, collect static files, make the people and runs; returns what clients watch."""
    os.environ.update(KAIZEN_VAR_DIR=str(var_dir), DATABASE_URL=database_url)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import User
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from departments.models import Department, Membership
    from optimizations.models import Job, Run, TargetService

    call_command("migrate", interactive=False, verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    qa = Department.objects.get(code="qa")
    target = TargetService.objects.create(
        name="Shop API", slug="shop-api", base_url="http://127.0.0.1:9", owner_department=qa
    )
    watched = []
    for index in range(clients):
        user = User.objects.create_user(f"watcher{index}", password="unused-bench-password")
        Membership.objects.create(user=user, department=qa, role=Membership.ENGINEER)
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        run = Run.objects.create(target=target, mode="performance", triggered_by=user)
        probe = Job.objects.create(
            run=run, kind="probe", target=target, status=Job.SUCCEEDED, progress=100
        )
        running = Job.objects.create(
            run=run, kind="code_scan", target=target, triggered_by=user, status=Job.QUEUED
        )
        running.claim("analysis@bench")
        Job.objects.create(
            run=run, kind="db_scan", target=target, status=Job.WAITING, after=running
        )
        watched.append(
            {
                "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
                "run": run.pk,
                "job": running.pk,
                # Half the jobs move (a worker writes them), half sit still; of each
                # half, one watcher has the job page open, the other the run page.
                "moves": index % 4 < 2,
                "tab": "job" if index % 2 == 0 else "run",
                "done": probe.pk,
            }
        )
    from django.db import connection

    connection.close()
    return {"watched": watched}


def simulate_worker(jobs: list[int], stop: threading.Event) -> None:
    """What the runner writes while jobs run: progress and heartbeat every 0.5 s, log lines."""
    from django.db import connection, transaction
    from django.utils import timezone

    from optimizations.models import Job, JobLog

    tick = 0
    seq = dict.fromkeys(jobs, 0)
    while not stop.wait(0.5):
        tick += 1
        now = timezone.now()
        with transaction.atomic():
            if tick % 4 == 0:
                lines = []
                for pk in jobs:
                    seq[pk] += 1
                    lines.append(JobLog(job_id=pk, seq=seq[pk], at=now, message=f"step {seq[pk]}"))
                JobLog.objects.bulk_create(lines)
            for pk in jobs:
                Job.objects.filter(pk=pk).update(
                    heartbeat_at=now,
                    progress=min(99.0, tick * 0.1),
                    step=f"file {tick}",
                    log_lines=seq[pk],
                )
    connection.close()


def start_portal(var_dir: Path, port: int, log) -> subprocess.Popen:
    from portal.processes import commands

    os.environ["KAIZEN_BIND"] = f"127.0.0.1:{port}"
    web = commands(str(var_dir))["web"]
    process = subprocess.Popen(
        web,
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/login/")
            connection.getresponse().read()
            connection.close()
            return process
        except OSError:
            if process.poll() is not None:
                raise SystemExit(f"gunicorn ended at start (exit {process.returncode})") from None
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within 60 s")


def portal_cpu_seconds(root_pid: int) -> float:
    """User + system CPU of gunicorn's master and workers, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# --- the clients ---------------------------------------------------------------------------


class Client(threading.Thread):
    """One browser tab: a job page or a run page, polled as htmx polls it, reopened now and
    then."""

    def __init__(self, port: int, watched: dict, until: float, samples: list, statuses: dict):
        super().__init__(daemon=True)
        self.port, self.watched, self.until = port, watched, until
        self.samples, self.statuses = samples, statuses
        self.etags: dict[str, str] = {}

    def get(self, path: str, htmx: bool = False) -> tuple[int, str]:
        headers = {"Cookie": self.watched["cookie"]}
        if htmx:
            headers["HX-Request"] = "true"
        if path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        started = time.perf_counter()
        try:
            self.connection.request("GET", path, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closed the idle keep-alive connection: a browser reconnects.
            self.connection.close()
            self.connection.request("GET", path, headers=headers)
            response = self.connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        self.samples.append((time.perf_counter() - started) * 1000)
        self.statuses[response.status] = self.statuses.get(response.status, 0) + 1
        etag = response.getheader("ETag")
        if etag:
            self.etags[path] = etag
        return response.status, body

    def run(self) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        tab = self.watched["tab"]
        page = f"/jobs/{self.watched['job']}/" if tab == "job" else f"/runs/{self.watched['run']}/"
        poll, poll_at, next_page = None, 0.0, time.monotonic()
        while True:
            now = time.monotonic()
            if now >= self.until:
                break
            if now >= next_page:
                _, body = self.get(page)
                if tab == "job":
                    found = POLL_RE.search(body)
                    poll = found.group(1).replace("&amp;", "&") if found else None
                else:
                    poll = f"/runs/{self.watched['run']}/live/"
                poll_at, next_page = now + 1, now + PAGE_EVERY
            elif poll and now >= poll_at:
                status, body = self.get(poll, htmx=True)
                if status == 286:
                    poll = None
                elif tab == "job":
                    found = POLL_RE.search(body)
                    poll = found.group(1).replace("&amp;", "&") if found else None
                    poll_at = now + (int(found.group(2)) if found else 1)
                else:
                    poll_at = now + 1
            wake = min(poll_at if poll else next_page, next_page, self.until)
            time.sleep(max(0.0, wake - time.monotonic()))
        self.connection.close()


def measure(port: int, watched: list[dict], clients: int, seconds: float, portal_pid: int):
    samples: list[float] = []
    statuses: dict[int, int] = {}
    cpu_before = os.times()
    portal_before = portal_cpu_seconds(portal_pid)
    started = time.monotonic()
    threads = [
        Client(port, watched[i % len(watched)], started + seconds, samples, statuses)
        for i in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    cpu_after = os.times()
    generator = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    portal = portal_cpu_seconds(portal_pid) - portal_before
    ordered = sorted(samples)
    return {
        "clients": clients,
        "requests": len(samples),
        "rps": len(samples) / wall,
        "p50": statistics.median(ordered) if ordered else 0.0,
        "p95": ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else 0.0,
        "max": ordered[-1] if ordered else 0.0,
        "statuses": dict(sorted(statuses.items())),
        "generator_cpu": 100 * generator / wall,
        "portal_cpu": 100 * portal / wall,
        "portal_ms_per_request": 1000 * portal / max(1, len(samples)),
        "load": os.getloadavg(),
    }


def report(figures: dict) -> None:
    verdict = "within" if figures["p95"] < GOAL_MS else "OVER"
    print(
        f"{figures['clients']:>3} client(s): {figures['requests']:>6} requests, "
        f"{figures['rps']:7.1f} req/s, p50 {figures['p50']:6.1f} ms, "
        f"p95 {figures['p95']:6.1f} ms ({verdict} the {GOAL_MS:.0f} ms goal), "
        f"max {figures['max']:7.1f} ms"
    )
    load = ", ".join(f"{value:.2f}" for value in figures["load"])
    print(
        f"     answers {figures['statuses']}; load generator CPU {figures['generator_cpu']:.0f} %, "
        f"portal CPU {figures['portal_cpu']:.0f} % (of one core, "
        f"{figures['portal_ms_per_request']:.1f} ms a request); load average {load}"
    )


# --- main ------------------------------------------------------------------------------------


def _postgres(url: str, create: bool) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    scratch = Path(tempfile.mkdtemp(prefix="kaizen-bench-polling-"))
    database_url = args.database_url or f"sqlite:///{scratch / 'kaizen.sqlite3'}"
    postgres = database_url.startswith("postgres")
    portal = log = None
    stop = threading.Event()
    try:
        if postgres:
            _postgres(database_url, create=True)
        print(f"• Preparing {database_url} with {args.clients} watchers…", flush=True)
        prepared = prepare(scratch, database_url, args.clients)
        moving = [w["job"] for w in prepared["watched"] if w["moves"]]
        log = (scratch / "gunicorn.log").open("w")
        portal = start_portal(scratch, args.port, log)
        workers = os.environ.get("WEB_CONCURRENCY", "2")
        print(
            f"• Portal: gunicorn, {workers} workers × 4 threads on 127.0.0.1:{args.port}; "
            f"{len(moving)} of {args.clients} watched jobs move, {args.seconds:g} s per "
            "measurement",
            flush=True,
        )
        worker = threading.Thread(target=simulate_worker, args=(moving, stop), daemon=True)
        worker.start()
        for clients in (1, args.clients):
            report(measure(args.port, prepared["watched"], clients, args.seconds, portal.pid))
        return 0
    finally:
        stop.set()
        if log is not None:
            log.close()
        if portal is not None:
            os.killpg(portal.pid, signal.SIGTERM)
            try:
                portal.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(portal.pid, signal.SIGKILL)
        if postgres:
            from django.db import connections

            connections.close_all()
            _postgres(database_url, create=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
