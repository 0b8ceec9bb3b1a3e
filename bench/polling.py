#!/usr/bin/env python
"""The portal under its own polling (issue 15 point 9): p95 and req/s, 50 clients beside 1.

Starts the portal the way ``./kaizen up`` does (gunicorn with the same
command line and worker count, ``portal.processes.commands``) on a scratch
database, makes runs whose jobs a simulated worker moves like the real one
(progress and a heartbeat every half second, a log line every two seconds;
half of the watched jobs sit still, waiting), and then lets browser-like
clients watch them: each is one tab with a job page or a run page open,
polling it as htmx would (the next job poll the interval its answer names
after that answer arrived, the run poll a second after its answer, with the
ETag it was given) and reopening the page every 10 to 20 seconds.

Like people, the clients do not act in the same millisecond: each opens its
page at a random moment of the first 15 seconds (the warm-up, not measured;
it also leaves out each tab's first, cold page) and reopens it after a random
10-20 s. The randomness is seeded per client, so a second run makes the same
requests. One client alone first, then many, for N seconds each after the
warm-up.

It prints, for each: requests, req/s, p50/p95/max latency (ms) of all
answers and of the polls and pages apart, the answers by status, the load
generator's CPU (this process: the clients and the simulated worker), the
portal's CPU (gunicorn's processes), how the requests were shared among
gunicorn's workers, and the load average. Goal: p95 < 200 ms at 50 clients
on this machine's default process count. Figures are printed, not asserted.

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
import random
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
from typing import Any
from urllib.parse import urlsplit

import django

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 200.0
# A tab is reopened after 10 to 20 s; each is first opened in the warm-up (15 s).
PAGE_EVERY = (10.0, 20.0)
WARM_UP = 15.0
POLL_RE = re.compile(r'<div id="job-\d+-poll" hx-get="([^"]+)" hx-trigger="every (\d+)s"')


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--port", type=int, default=18250)
    parser.add_argument("--database-url", default="")
    return parser.parse_args(argv)


def _postgres(url: str, create: bool) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = parts._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            connection.execute(f'CREATE DATABASE "{name}"')


# A program, not a library: its scratch folder and database come from its command line,
# so Django is set up here, before the imports below read models (Django's way for a
# standalone script).
ARGS = parse_args(sys.argv[1:])
SCRATCH = Path(tempfile.mkdtemp(prefix="kaizen-bench-polling-"))
DATABASE_URL = ARGS.database_url or f"sqlite:///{SCRATCH / 'kaizen.sqlite3'}"
if DATABASE_URL.startswith("postgres"):
    _postgres(DATABASE_URL, create=True)
os.environ.update(KAIZEN_VAR_DIR=str(SCRATCH), DATABASE_URL=DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from departments.models import Department, Membership  # noqa: E402
from optimizations.models import Job, JobLog, Run, TargetService  # noqa: E402
from portal.processes import commands  # noqa: E402

# --- the scratch portal ------------------------------------------------------------------


def prepare(clients: int) -> dict:
    """Migrate, collect static files, make the people and runs; returns what clients watch."""
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
    connection.close()
    return {"watched": watched}


def simulate_worker(jobs: list[int], stop: threading.Event) -> None:
    """What the runner writes while jobs run: progress and heartbeat every 0.5 s, log lines."""

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


def web_command(var_dir: Path | None = None) -> list[str]:
    return commands(str(var_dir or "."))["web"]


def describe(command: list[str]) -> str:
    """gunicorn's process count, threads and worker class, from its command line."""

    def option(name: str, default: str) -> str:
        return command[command.index(name) + 1] if name in command else default

    return (
        f"gunicorn, {option('--workers', '1')} workers × {option('--threads', '1')} threads "
        f"({option('--worker-class', 'gthread' if '--threads' in command else 'sync')})"
    )


def start_portal(var_dir: Path, port: int, log) -> subprocess.Popen:
    os.environ["KAIZEN_BIND"] = f"127.0.0.1:{port}"
    web = web_command(var_dir)
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


def portal_cpu_seconds(root_pid: int) -> dict[int, float]:
    """User + system CPU of gunicorn's master and each worker, from /proc, by pid."""
    ticks = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root_pid or ppid == root_pid:
            seconds[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return seconds


# --- the clients ---------------------------------------------------------------------------


class Window:
    """The measured span: requests started in it count; the warm-up before it does not."""

    def __init__(self, warm_up: float, seconds: float):
        self.opens = time.monotonic() + warm_up
        self.closes = self.opens + seconds
        self.samples: list[tuple[str, float]] = []  # (poll or page, milliseconds)
        self.statuses: dict[int, int] = {}
        self.lock = threading.Lock()

    def record(self, started: float, what: str, milliseconds: float, status: int) -> None:
        if not self.opens <= started < self.closes:
            return
        with self.lock:
            self.samples.append((what, milliseconds))
            self.statuses[status] = self.statuses.get(status, 0) + 1


class Client(threading.Thread):
    """One browser tab: a job page or a run page, polled as htmx polls it, reopened now and
    then, at moments of its own (seeded, so a second run asks the same)."""

    def __init__(self, port: int, watched: dict, window: Window, seed: int):
        super().__init__(daemon=True)
        self.port, self.watched, self.window = port, watched, window
        self.random = random.Random(seed)
        self.etags: dict[str, str] = {}

    def get(self, path: str, htmx: bool = False) -> tuple[int, str]:
        headers = {"Cookie": self.watched["cookie"]}
        if htmx:
            headers["HX-Request"] = "true"
        if path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        started = time.monotonic()
        try:
            self.connection.request("GET", path, headers=headers)
            response = self.connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            # gunicorn closed the idle keep-alive connection: a browser reconnects.
            self.connection.close()
            self.connection.request("GET", path, headers=headers)
            response = self.connection.getresponse()
        body = response.read().decode("utf-8", "replace")
        elapsed = (time.monotonic() - started) * 1000
        self.window.record(started, "poll" if htmx else "page", elapsed, response.status)
        etag = response.getheader("ETag")
        if etag:
            self.etags[path] = etag
        return response.status, body

    def next_page(self) -> float:
        return time.monotonic() + self.random.uniform(PAGE_EVERY[0], PAGE_EVERY[1])

    def run(self) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        tab = self.watched["tab"]
        page = f"/jobs/{self.watched['job']}/" if tab == "job" else f"/runs/{self.watched['run']}/"
        # The tab is opened at a moment of the warm-up of its own.
        poll, poll_at = None, 0.0
        next_page = time.monotonic() + self.random.uniform(0, WARM_UP)
        until = self.window.closes
        while True:
            now = time.monotonic()
            if now >= until:
                break
            if now >= next_page:
                _, body = self.get(page)
                if tab == "job":
                    found = POLL_RE.search(body)
                    poll = found.group(1).replace("&amp;", "&") if found else None
                else:
                    poll = f"/runs/{self.watched['run']}/live/"
                # htmx arms the poll when the page has loaded.
                poll_at, next_page = time.monotonic() + 1, self.next_page()
            elif poll and now >= poll_at:
                status, body = self.get(poll, htmx=True)
                if status == 286:
                    poll = None
                elif tab == "job":
                    # The answer's poll element replaces the old one and asks again
                    # after the interval it names, counted from its arrival.
                    found = POLL_RE.search(body)
                    poll = found.group(1).replace("&amp;", "&") if found else None
                    poll_at = time.monotonic() + (int(found.group(2)) if found else 1)
                else:
                    poll_at = time.monotonic() + 1
            wake = min(poll_at if poll else next_page, next_page, until)
            time.sleep(max(0.0, wake - time.monotonic()))
        self.connection.close()


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)] if ordered else 0.0


def measure(
    port: int, watched: list[dict], clients: int, seconds: float, portal_pid: int
) -> dict[str, Any]:
    window = Window(WARM_UP, seconds)
    threads = [Client(port, watched[i % len(watched)], window, seed=i) for i in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(max(0.0, window.opens - time.monotonic()))
    cpu_before, portal_before = os.times(), portal_cpu_seconds(portal_pid)
    time.sleep(max(0.0, window.closes - time.monotonic()))
    cpu_after, portal_after = os.times(), portal_cpu_seconds(portal_pid)
    for thread in threads:
        thread.join()
    generator = (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)
    used = {pid: portal_after[pid] - portal_before.get(pid, 0.0) for pid in portal_after}
    portal = sum(used.values())
    workers = sorted((cpu for pid, cpu in used.items() if pid != portal_pid), reverse=True)
    figures: dict[str, Any] = {"clients": clients, "seconds": seconds}
    for what in ("all", "poll", "page"):
        ordered = sorted(ms for kind, ms in window.samples if what in ("all", kind))
        figures[what] = {
            "requests": len(ordered),
            "p50": statistics.median(ordered) if ordered else 0.0,
            "p95": _percentile(ordered, 0.95),
            "max": ordered[-1] if ordered else 0.0,
        }
    requests = figures["all"]["requests"]
    figures.update(
        rps=requests / seconds,
        statuses=dict(sorted(window.statuses.items())),
        generator_cpu=100 * generator / seconds,
        portal_cpu=100 * portal / seconds,
        workers_cpu=[100 * cpu / seconds for cpu in workers],
        portal_ms_per_request=1000 * portal / max(1, requests),
        load=os.getloadavg(),
    )
    return figures


def report(figures: dict) -> None:
    every = figures["all"]
    verdict = "within" if every["p95"] < GOAL_MS else "OVER"
    print(
        f"{figures['clients']:>3} client(s): {every['requests']:>6} requests in "
        f"{figures['seconds']:g} s, {figures['rps']:6.1f} req/s, p50 {every['p50']:6.1f} ms, "
        f"p95 {every['p95']:6.1f} ms ({verdict} the {GOAL_MS:.0f} ms goal), "
        f"max {every['max']:7.1f} ms"
    )
    for what, name in (("poll", "polls"), ("page", "pages")):
        part = figures[what]
        print(
            f"     {name}: {part['requests']:>5}, p50 {part['p50']:6.1f} ms, "
            f"p95 {part['p95']:6.1f} ms, max {part['max']:7.1f} ms"
        )
    load = ", ".join(f"{value:.2f}" for value in figures["load"])
    workers = " + ".join(f"{cpu:.0f} %" for cpu in figures["workers_cpu"])
    print(
        f"     answers {figures['statuses']}; load generator CPU {figures['generator_cpu']:.0f} %, "
        f"portal CPU {figures['portal_cpu']:.0f} % (of one core; workers {workers}; "
        f"{figures['portal_ms_per_request']:.1f} ms a request); load average {load}"
    )


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    args, scratch, database_url = ARGS, SCRATCH, DATABASE_URL
    postgres = database_url.startswith("postgres")
    portal = log = None
    stop = threading.Event()
    try:
        print(f"• Preparing {database_url} with {args.clients} watchers…", flush=True)
        prepared = prepare(args.clients)
        moving = [w["job"] for w in prepared["watched"] if w["moves"]]
        log = (scratch / "gunicorn.log").open("w")
        portal = start_portal(scratch, args.port, log)
        print(
            f"• Portal: {describe(web_command())} on 127.0.0.1:{args.port}; "
            f"{len(moving)} of {args.clients} watched jobs move; {args.seconds:g} s measured "
            f"after a {WARM_UP:g} s warm-up",
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
            connections.close_all()
            _postgres(database_url, create=False)
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
