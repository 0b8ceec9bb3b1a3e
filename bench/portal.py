#!/usr/bin/env python
"""Figures of the portal's pages at size (issue 9), printed, not asserted.

On PostgreSQL it builds an organisation's worth of history — ~20 targets,
200 initiatives with their four phases and tasks, 20 000 jobs in their runs
with result summaries, 100 000 findings, 1 000 000 per-second benchmark
samples plus the summary measurements, minute checks and audit events — then
times the pages a manager opens with Django's test client, in-process:
queries per request, p50 and p95 server time over N requests after a warm-up,
against the goal p95 < 150 ms. Pages other sessions are still building
(portfolio, SLO board, ROI, an initiative's findings) are timed when their
URL resolves.

Run from the repository root:

    .venv/bin/python bench/portal.py [--scale 1.0] [--keep] [--reuse] [--requests 30]
                                     [--sql] [--explain]

It creates its own database (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/kaizen_bench_portal, or kaizen_bench_scale10
for --scale 10), drops it at the end unless --keep, and with --reuse times a
database kept earlier without building it again; --sql prints each page's
slowest queries and --explain the plan of the slowest (pages over the goal
always show their slowest queries). It prints the build's time and the disk
it took. A full build takes 1–3 minutes on 2 cores; --scale 10 (2 000
initiatives, 200 000 jobs, 1 000 000 findings, 10 000 000 per-second samples
and as many minute checks, ~6 GB) took 31 minutes on a machine at load 9:

    nice -n 10 .venv/bin/python bench/portal.py --scale 10 --keep    # build once
    .venv/bin/python bench/portal.py --scale 10 --reuse --keep       # time again

The minute checks and per-second samples are made by the server
(generate_series); the big tables take their rows without their secondary
indexes, built once after. The data are made up for the
benchmark (the product never invents a figure); a fixed seed makes every run
build the same rows. Rows go in by COPY with foreign-key triggers off for the
session (the builder keeps the references consistent itself), then VACUUM
ANALYZE.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER_URL = "postgres://postgres@127.0.0.1:5432"
# Scale 1 builds kaizen_bench_portal; another scale its own, kaizen_bench_scale10 for 10.
DEFAULT_URL = f"{SERVER_URL}/kaizen_bench_portal"
GOAL_MS = 150.0
NULL = r"\N"  # COPY's NULL
SEED = 20240609

KINDS_BY_MODE = {
    "comprehensive": ("probe", "code_scan", "db_scan", "benchmark", "security_scan"),
    "performance": ("probe", "code_scan", "db_scan", "benchmark"),
    "quality": ("probe", "security_scan", "benchmark"),
    "strategy": ("probe", "db_scan", "benchmark"),
}
SOURCE_OF_KIND = {
    "code_scan": "code",
    "db_scan": "db",
    "security_scan": "security",
    "benchmark": "benchmark",
    "probe": "probe",
}
OPERATIONS = ("GET /items", "GET /items/{id}", "POST /orders", "GET /search")
LATENCY_KEYS = ("avg", "min", "med", "p90", "p95", "p99", "p999", "max")
SAMPLE_FIELDS = ("at", "offered", "achieved", "errors", "p50_ms", "p95_ms", "p99_ms")

# (source, rule ids, categories, title, location pattern)
FINDING_KINDS = {
    "code": (
        [f"FSA{n}" for n in range(101, 131)],
        ("fastapi", "sqlalchemy", "async"),
        "{rule}: blocking call in an async endpoint",
        "app/routes/{module}.py:{line}",
    ),
    "db": (
        ["db.missing_index", "db.unused_index", "db.duplicate_index", "db.slow_family", "db.bloat"],
        ("index", "query", "settings"),
        "{rule} on {module}",
        "public.{module}",
    ),
    "security": (
        ["SEC.headers", "SEC.cors", "SEC.error_leak", "SEC.unauth_write", "SEC.invalid_input"],
        ("security",),
        "{rule} on /{module}",
        "GET /{module}/{line}",
    ),
    "benchmark": (
        ["BENCH.slo_latency", "BENCH.slo_errors", "BENCH.capacity"],
        ("performance",),
        "{rule} of GET /{module}",
        "GET /{module}",
    ),
    "availability": (
        ["AVAIL.down", "AVAIL.slo"],
        ("monitoring",),
        "{rule}: /{module} health",
        "/health",
    ),
    "probe": (
        ["PROBE.metrics", "PROBE.openapi"],
        ("monitoring",),
        "{rule} missing on {module}",
        "/metrics",
    ),
}
SOURCE_WEIGHTS = {
    "code": 40,
    "db": 25,
    "security": 15,
    "benchmark": 10,
    "availability": 5,
    "probe": 5,
}
SEVERITY_WEIGHTS = {"critical": 3, "high": 15, "medium": 35, "low": 30, "info": 17}
TRIAGED = ("accepted", "wont_fix", "false_positive")
STATUS_WEIGHTS = {"open": 35, "fixed": 50, "accepted": 5, "wont_fix": 5, "false_positive": 5}
MODULES = (
    "items",
    "orders",
    "customers",
    "search",
    "invoices",
    "warehouse",
    "users",
    "reports",
    "payments",
    "shipping",
    "catalog",
    "reviews",
)


def percentile(values, share):
    """Nearest rank: the smallest value with at least ``share`` of them at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def pick(rng, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


# --- database -----------------------------------------------------------------------


def server_url(url: str) -> tuple[str, str]:
    """(a URL of the server's ``postgres`` database, the benchmark database's name)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or parts.scheme not in ("postgres", "postgresql"):
        raise SystemExit(f"DATABASE_URL must name a PostgreSQL database: {url}")
    return parts._replace(scheme="postgresql", path="/postgres").geturl(), name


def database_exists(url: str) -> bool:
    import psycopg

    admin, name = server_url(url)
    with psycopg.connect(admin, autocommit=True) as c:
        return bool(c.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone())


def recreate_database(url: str) -> None:
    import psycopg

    admin, name = server_url(url)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    admin, name = server_url(url)
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def setup_django(url: str, var_dir: Path) -> None:
    os.environ["DATABASE_URL"] = url
    os.environ["KAIZEN_VAR_DIR"] = str(var_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ.pop("DEBUG", None)  # time the pages as production serves them
    import django
    from django.conf import settings

    django.setup()
    # Pages render without a collectstatic manifest; {% static %} only builds a URL.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


# --- COPY ---------------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of the full data set")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time a kept database as it is")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--sql", action="store_true", help="print each page's slowest queries")
    parser.add_argument(
        "--explain", action="store_true", help="EXPLAIN ANALYZE each page's slowest query"
    )
    return parser.parse_args(argv)


# A program, not a library: its database and scratch folder come from its command line
# and DATABASE_URL, so Django is set up here, before the imports below read models
# (Django's way for a standalone script).
ARGS = parse_args(sys.argv[1:])
URL = os.environ.get("DATABASE_URL") or (
    DEFAULT_URL if ARGS.scale == 1 else f"{SERVER_URL}/kaizen_bench_scale{ARGS.scale:g}"
)
BEGAN = time.perf_counter()
REUSE = ARGS.reuse and database_exists(URL)
if not REUSE:
    recreate_database(URL)
VAR_DIR = Path(tempfile.mkdtemp(prefix="kaizen-bench-portal-"))
setup_django(URL, VAR_DIR)

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from departments.models import Department, Membership  # noqa: E402
from optimizations.models import (  # noqa: E402
    Finding,
    GateSignoff,
    Incident,
    Initiative,
    Job,
    Measurement,
    Phase,
    PhaseTask,
    RoiAssumptions,
    Run,
    Schedule,
    TargetService,
)
from optimizations.models import TargetService as Target  # noqa: E402
from optimizations.work.actions import do_create_initiative  # noqa: E402
from optimizations.work.plan import STANDARD_PHASES  # noqa: E402
from portal.models import AuditEvent, Notification  # noqa: E402

# The tables that take most rows: loaded without their secondary indexes (build()).
BULK_MODELS = (Measurement, Finding, Job, Run, AuditEvent)


def _text(value) -> str:
    """A value in COPY's text format."""
    if value is None:
        return r"\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        value = json.dumps(value, separators=(",", ":"))
    elif isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    else:
        value = str(value)
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "")


def copy(model, fields: tuple[str, ...], rows, *, raw_lines: bool = False) -> int:
    """COPY ``rows`` (tuples in ``fields`` order, or ready text lines) into ``model``'s table."""
    from django.db import connection

    meta = model._meta
    columns = ", ".join(f'"{meta.get_field(name).column}"' for name in fields)
    count = 0
    statement = f'COPY "{meta.db_table}" ({columns}) FROM STDIN'
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as out:
        buffer = []
        for row in rows:
            buffer.append(row if raw_lines else "\t".join(_text(v) for v in row))
            if len(buffer) >= 20_000:
                out.write("\n".join(buffer) + "\n")
                count += len(buffer)
                buffer = []
        if buffer:
            out.write("\n".join(buffer) + "\n")
            count += len(buffer)
    return count


def copy_dicts(model, rows: list[dict]) -> int:
    """COPY rows given as {field: value}, all with the same fields."""
    if not rows:
        return 0
    fields = tuple(rows[0])
    return copy(model, fields, (tuple(row[f] for f in fields) for row in rows))


def next_id(model) -> int:
    from django.db.models import Max

    return (model.objects.aggregate(m=Max("pk"))["m"] or 0) + 1


def reset_sequences(*models) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for model in models:
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                f'COALESCE((SELECT MAX(id) FROM "{table}"), 1))'
            )


# --- the data -----------------------------------------------------------------------


class Builder:
    """Makes the rows; every reference points at a row it made before."""

    def __init__(self, scale: float, now: datetime.datetime):
        self.rng = random.Random(SEED)
        self.scale = scale
        self.now = now
        self.sizes: dict[str, int] = {}

    def n(self, count: int) -> int:
        return max(1, round(count * self.scale))

    def ago(self, days: float) -> datetime.datetime:
        return self.now - datetime.timedelta(days=days)

    # people, targets ------------------------------------------------------------

    def people(self):
        from django.contrib.auth import get_user_model

        User = get_user_model()
        departments = {d.code: d for d in Department.objects.all()}
        plan = [("bench.manager", "dev", Membership.MANAGER)]
        plan += [(f"dev.eng{n}", "dev", Membership.ENGINEER) for n in range(1, 5)]
        plan += [(f"qa.eng{n}", "qa", Membership.ENGINEER) for n in range(1, 5)]
        plan += [(f"strategy.eng{n}", "strategy", Membership.ENGINEER) for n in range(1, 4)]
        plan += [(f"hr.editor{n}", "hr", Membership.EDITOR) for n in range(1, 3)]
        plan += [("qa.manager", "qa", Membership.MANAGER), ("viewer", "strategy", "viewer")]
        users = []
        for username, code, role in plan:
            # No password: the benchmark signs in with force_login (and hashing costs seconds).
            user = User.objects.create_user(username, f"{username}@example.com")
            Membership.objects.create(user=user, department=departments[code], role=role)
            user.department_code = code
            users.append(user)
        self.departments = departments
        self.users = users
        self.manager = users[0]
        self.by_department = {
            code: [u for u in users if u.department_code == code] for code in departments
        }
        self.sizes["users"] = len(users)

    def targets(self):
        count = self.n(20)
        self.target_list = TargetService.objects.bulk_create(
            TargetService(
                name=f"Service {n:02d} API",
                slug=f"svc-{n:02d}",
                base_url=f"http://127.0.0.1:{9000 + n}",
                owner_department=self.departments[("dev", "qa", "strategy")[n % 3]],
                environment=("production", "staging")[n % 2],
                expected_rps=self.rng.choice((200, 500, 1000, 2000)),
                description="A FastAPI + SQLAlchemy service (benchmark data).",
            )
            for n in range(1, count + 1)
        )
        self.sizes["targets"] = len(self.target_list)

    # initiatives ----------------------------------------------------------------

    def initiatives(self):
        """A few through do_create_initiative (the product's path), the rest as raw rows."""
        rng = self.rng
        count = self.n(200)
        made = []
        for n in range(min(5, count)):
            made.append(
                do_create_initiative(
                    self.manager,
                    title=f"Speed up {self.target_list[n % len(self.target_list)].name}",
                    target=self.target_list[n % len(self.target_list)],
                    run_mode="comprehensive",
                    focus=[],
                    owner=self.manager,
                    start_date=(self.ago(20)).date(),
                    target_date=(self.ago(-100)).date(),
                )
            )
        statuses = {"active": 45, "done": 35, "draft": 10, "archived": 10}
        raw = []
        for n in range(len(made), count):
            start = self.ago(rng.uniform(10, 700)).date()
            raw.append(
                Initiative(
                    title=f"Initiative {n + 1}: {rng.choice(MODULES)} latency",
                    target=self.target_list[n % len(self.target_list)],
                    run_mode=rng.choice(list(KINDS_BY_MODE)),
                    owner=rng.choice([self.manager, self.users[-2]]),
                    start_date=start,
                    target_date=start + datetime.timedelta(days=rng.choice((60, 90, 120, 180))),
                    status=pick(rng, statuses),
                    description="Benchmark initiative.",
                )
            )
        raw = Initiative.objects.bulk_create(raw)
        phases = []
        for initiative in raw:
            done_phases = {"done": 4, "archived": 4, "draft": 0}.get(
                initiative.status, rng.randint(0, 3)
            )
            length = (initiative.target_date - initiative.start_date) / 4
            for template in STANDARD_PHASES:
                status = (
                    Phase.DONE
                    if template.number <= done_phases
                    else Phase.ACTIVE
                    if template.number == done_phases + 1 and initiative.status == "active"
                    else Phase.NOT_STARTED
                )
                start = initiative.start_date + length * (template.number - 1)
                phases.append(
                    Phase(
                        initiative=initiative,
                        number=template.number,
                        name=template.name,
                        lead_department=self.departments[template.lead],
                        status=status,
                        planned_start=start,
                        planned_end=start + length,
                        actual_start=start if status != Phase.NOT_STARTED else None,
                        actual_end=start + length if status == Phase.DONE else None,
                        exit_criterion=template.exit_criterion,
                    )
                )
        phases = Phase.objects.bulk_create(phases, batch_size=2000)
        templates = {t.number: t for t in STANDARD_PHASES}
        tasks = []
        for phase in phases:
            for position, task in enumerate(templates[phase.number].tasks):
                status = {
                    Phase.DONE: "done",
                    Phase.ACTIVE: rng.choice(("todo", "doing", "doing", "blocked", "done")),
                }.get(phase.status, "todo")
                people = self.by_department[task.department]
                tasks.append(
                    PhaseTask(
                        phase=phase,
                        title=task.title,
                        description=task.description,
                        department=self.departments[task.department],
                        assignee=rng.choice(people) if rng.random() < 0.7 else None,
                        status=status,
                        estimate_hours=task.estimate_hours,
                        logged_hours=round(task.estimate_hours * rng.uniform(0.2, 1.5), 1)
                        if status != "todo"
                        else 0,
                        due_date=phase.planned_end,
                        position=position,
                        run_mode=task.run_mode,
                        run_focus=list(task.run_focus),
                    )
                )
        PhaseTask.objects.bulk_create(tasks, batch_size=2000)
        self.initiative_list = made + list(raw)
        self.phases_by_initiative = {}
        for phase in Phase.objects.order_by("initiative_id", "number"):
            self.phases_by_initiative.setdefault(phase.initiative_id, []).append(phase)
        self.initiatives_by_target = {}
        for initiative in self.initiative_list:
            self.initiatives_by_target.setdefault(initiative.target_id, []).append(initiative)
        self.sizes["initiatives"] = len(self.initiative_list)
        self.sizes["phases"] = Phase.objects.count()

    # runs and jobs -----------------------------------------------------------------

    def runs_and_jobs(self):
        rng = self.rng
        job_goal = self.n(20_000)
        run_id, job_id = next_id(Run), next_id(Job)
        runs, jobs = [], []
        self.jobs_by_target: dict[int, list[tuple[int, str]]] = {}
        # Succeeded jobs, for their measurements: (job id, run id, target id, mode or kind,
        # finished at, summary[, params]).
        self.benchmark_jobs: list[tuple] = []
        self.scan_jobs: list[tuple] = []
        while len(jobs) < job_goal:
            # Oldest first over a year, so ids grow with time as they do in production.
            fraction = len(jobs) / job_goal
            created = self.ago(365 * (1 - fraction)) + datetime.timedelta(seconds=run_id % 60)
            target = self.target_list[rng.randrange(len(self.target_list))]
            if rng.random() < 0.35:
                mode, kinds = "custom", (rng.choice(list(SOURCE_OF_KIND)),)
            else:
                mode = rng.choice(list(KINDS_BY_MODE))
                kinds = KINDS_BY_MODE[mode]
            initiative = phase = None
            candidates = self.initiatives_by_target.get(target.pk) or []
            if candidates and rng.random() < 0.35:
                initiative = rng.choice(candidates)
                phase = rng.choice(self.phases_by_initiative[initiative.pk])
            run_jobs = []
            for kind in kinds:
                if fraction > 0.999:  # the last few are still in flight
                    status = rng.choice(("queued", "running"))
                else:
                    status = pick(rng, {"succeeded": 88, "failed": 7, "cancelled": 3, "expired": 2})
                started = created + datetime.timedelta(seconds=rng.uniform(1, 30))
                duration = rng.uniform(20, 600) if kind == "benchmark" else rng.uniform(2, 90)
                finished = started + datetime.timedelta(seconds=duration)
                ended = status not in ("queued", "running")
                summary, verdict, params, bench_mode = {}, "", {}, "load"
                if kind == "benchmark":
                    bench_mode = pick(rng, {"load": 70, "stress": 20, "endurance": 10})
                    params = {
                        "mode": bench_mode,
                        "rate": float(rng.choice((50, 100, 200, 500, 1000))),
                        "duration": round(duration, 1),
                        "seed": rng.randrange(1000),
                    }
                if status == "succeeded":
                    summary, verdict = self.summary(kind, bench_mode, params)
                    if kind == "benchmark":
                        self.benchmark_jobs.append(
                            (job_id, run_id, target.pk, bench_mode, finished, summary, params)
                        )
                    else:
                        self.scan_jobs.append((job_id, run_id, target.pk, kind, finished, summary))
                run_jobs.append(
                    {
                        "id": job_id,
                        "run_id": run_id,
                        "kind": kind,
                        "target_id": target.pk,
                        "initiative_id": initiative.pk if initiative else None,
                        "phase_id": phase.pk if phase else None,
                        "params": params,
                        "status": status,
                        "progress": 100.0 if status == "succeeded" else 0.0,
                        "step": "done" if ended else "",
                        "summary": summary,
                        "verdict": verdict,
                        "error": "The target did not answer." if status == "failed" else "",
                        "triggered_by_id": rng.choice(self.users).pk
                        if rng.random() < 0.8
                        else None,
                        "created_at": created,
                        "started_at": None if status == "queued" else started,
                        "finished_at": finished if ended else None,
                        "heartbeat_at": started if status == "running" else None,
                        "worker": "" if status == "queued" else "bench-worker@host",
                        "attempt": 0 if status == "queued" else 1,
                        "max_attempts": 1,
                        "sends": 1,
                        "cancel_requested": False,
                        "log_lines": 0 if status == "queued" else rng.randrange(50, 3000),
                    }
                )
                self.jobs_by_target.setdefault(target.pk, []).append((job_id, kind))
                job_id += 1
            jobs += run_jobs
            statuses = {job["status"] for job in run_jobs}
            verdicts = {job["verdict"] for job in run_jobs if job["verdict"]}
            status = next(
                (s for s in ("running", "queued") if s in statuses),
                "succeeded" if statuses == {"succeeded"} else "failed",
            )
            runs.append(
                {
                    "id": run_id,
                    "target_id": target.pk,
                    "mode": mode,
                    "focus": list(rng.choice(((), ("fastapi",), ("sqlalchemy", "async"))))
                    if mode == "performance"
                    else [],
                    "initiative_id": initiative.pk if initiative else None,
                    "phase_id": phase.pk if phase else None,
                    "triggered_by_id": rng.choice(self.users).pk if rng.random() < 0.8 else None,
                    "trigger": pick(rng, {"ui": 60, "cli": 15, "api": 10, "schedule": 15}),
                    "skipped": [],
                    "created_at": created,
                    "finished_at": None
                    if status in ("queued", "running")
                    else max(job["finished_at"] for job in run_jobs),
                    "status": status,
                    "verdict": "fail"
                    if "fail" in verdicts
                    else "pass"
                    if verdicts == {"pass"}
                    else "",
                }
            )
            run_id += 1
        copy_dicts(Run, runs)
        copy_dicts(Job, jobs)
        reset_sequences(Run, Job)
        self.sizes["runs"], self.sizes["jobs"] = len(runs), len(jobs)
        # The first benchmark of each target is its baseline, as the product pins it.
        for target in self.target_list:
            first = next((j for j in self.benchmark_jobs if j[2] == target.pk), None)
            if first:
                TargetService.objects.filter(pk=target.pk).update(baseline_run_id=first[1])

    def summary(self, kind, bench_mode, params) -> tuple[dict, str]:
        """A result summary shaped like the analyzers' (sizes included: histograms, steps)."""
        rng = self.rng
        tracked = {"reported": rng.randrange(0, 40), "fixed": rng.randrange(0, 10)}
        checks = [
            {"id": f"check.{n}", "status": rng.choice(("passed", "passed", "failed")), "detail": ""}
            for n in range(rng.randrange(5, 25))
        ]
        if kind == "benchmark":
            med = rng.uniform(8, 250)
            latency = self.latency(med)
            ops = [
                {
                    "name": op,
                    "rps": round(params["rate"] / len(OPERATIONS), 2),
                    "error_rate": round(rng.uniform(0, 0.02), 6),
                    "latency_ms": self.latency(med * rng.uniform(0.5, 1.8)),
                }
                for op in OPERATIONS
            ]
            rps = round(params["rate"] * rng.uniform(0.85, 1.0), 2)
            summary = {
                "mode": bench_mode,
                "model": "open",
                "arrival": "constant",
                "engine_version": "1",
                "workers": 1,
                "offered_rate": params["rate"],
                "duration_s": params["duration"],
                "requests": {"offered": int(rps * params["duration"]), "errors": rng.randrange(9)},
                "rps": rps,
                "error_rate": round(rng.uniform(0, 0.03), 6),
                "latency_ms": latency,
                "service_ms": self.latency(med * 0.8),
                "operations": ops,
                "validity": {"cpu_avg": rng.uniform(10, 60), "cpu_max": rng.uniform(60, 95)},
                "hdr": {
                    "latency": {"sub_bits": 7, "counts": [rng.randrange(500) for _ in range(160)]},
                    "service": {"sub_bits": 7, "counts": [rng.randrange(500) for _ in range(160)]},
                },
            }
            if bench_mode == "stress":
                summary["capacity_rps"] = round(rps * rng.uniform(1.5, 4), 1)
                summary["steps"] = [
                    {"rate": rps * s / 4, "latency_ms": self.latency(med * s)} for s in range(1, 7)
                ]
            if bench_mode == "endurance":
                summary["memory"] = {"mean_bytes": rng.randrange(80, 400) * 2**20, "trend": "flat"}
            verdict = "pass" if latency["p99"] < 500 else "fail"
        elif kind == "db_scan":
            summary = {
                "server_version": "16.3",
                "avg_query_ms": round(rng.uniform(0.5, 120), 3),
                "cache_hit_pct": round(rng.uniform(90, 99.9), 2),
                "pool": {"peak_use_pct": round(rng.uniform(20, 100), 1)},
                "slow_query_rate": {"exact_pct": round(rng.uniform(0, 8), 2)},
                "connections": {"max_connections": 100},
                "slow_families": [
                    {"query": f"SELECT * FROM {m} WHERE id = $1", "mean_ms": rng.uniform(50, 400)}
                    for m in rng.sample(MODULES, 4)
                ],
            }
            verdict = rng.choice(("pass", "fail"))
        elif kind == "code_scan":
            counts = {s: rng.randrange(0, 20) for s in SEVERITY_WEIGHTS}
            summary = {
                "files_scanned": rng.randrange(40, 600),
                "lines": rng.randrange(4000, 90000),
                "counts": {"total": sum(counts.values()), "by_severity": counts},
            }
            verdict = "fail" if counts["critical"] + counts["high"] else "pass"
        elif kind == "security_scan":
            summary = {"requests": rng.randrange(100, 2000), "findings": rng.randrange(0, 12)}
            verdict = rng.choice(("pass", "fail"))
        else:
            summary = {"health": {"status": 200, "ms": round(rng.uniform(1, 40), 2)}}
            verdict = "pass"
        summary["checks"] = checks
        summary["tracked"] = tracked
        return summary, verdict

    def latency(self, med: float) -> dict:
        factors = (1.1, 0.2, 1.0, 1.6, 2.0, 3.0, 4.5, 6.0)
        return {k: round(med * f, 3) for k, f in zip(LATENCY_KEYS, factors, strict=True)}

    # findings --------------------------------------------------------------------

    def findings(self):
        rng = self.rng
        goal = self.n(100_000)
        per_target = math.ceil(goal / len(self.target_list))
        assignable = self.by_department["dev"] + self.by_department["qa"]
        rows = []
        finding_id = next_id(Finding)
        self.open_findings: list[tuple[int, int, str]] = []
        for target in self.target_list:
            jobs = self.jobs_by_target.get(target.pk) or [(None, "")]
            by_source = {}
            for job, kind in jobs:
                by_source.setdefault(SOURCE_OF_KIND.get(kind, ""), []).append(job)
            for n in range(per_target):
                if len(rows) >= goal:
                    break
                source = pick(rng, SOURCE_WEIGHTS)
                rules, categories, title, location = FINDING_KINDS[source]
                rule = rng.choice(rules)
                module, line = rng.choice(MODULES), rng.randrange(1, 900)
                status = pick(rng, STATUS_WEIGHTS)
                source_jobs = by_source.get(source) or [job for job, _ in jobs]
                first_seen = self.ago(rng.uniform(1, 365))
                last_seen = first_seen + (self.now - first_seen) * rng.random()
                rows.append(
                    {
                        "id": finding_id,
                        "target_id": target.pk,
                        "source": source,
                        "rule_id": rule,
                        "severity": pick(rng, SEVERITY_WEIGHTS),
                        "category": rng.choice(categories),
                        "title": title.format(rule=rule, module=module),
                        "location": location.format(module=module, line=line),
                        "evidence": {
                            "calls": rng.randrange(10, 90000),
                            "mean_ms": round(rng.uniform(1, 900), 1),
                        },
                        "fix_hint": "See the rule's documentation for the fix.",
                        "doc_url": "",
                        "fingerprint": f"{source}-{rule}-{module}-{line}-{n}",
                        "status": status,
                        "status_reason": "Decided in review." if status in TRIAGED else "",
                        "first_seen_at": first_seen,
                        "last_seen_at": last_seen,
                        "fixed_at": last_seen if status == "fixed" else None,
                        "first_job_id": rng.choice(source_jobs),
                        "last_job_id": rng.choice(source_jobs),
                        "times_seen": rng.randrange(1, 30),
                        "assignee_id": rng.choice(assignable).pk if rng.random() < 0.2 else None,
                    }
                )
                if status == "open":
                    self.open_findings.append((finding_id, target.pk, source))
                finding_id += 1
        copy_dicts(Finding, rows)
        reset_sequences(Finding)
        self.sizes["findings"] = len(rows)

    def finding_tasks(self):
        """Findings turned into phase-2 tasks with acceptance criteria (issue 9's flow)."""
        rng = self.rng
        by_target = {}
        for finding_id, target_id, source in self.open_findings:
            by_target.setdefault(target_id, []).append((finding_id, source))
        tasks = []
        for initiative in self.initiative_list:
            if initiative.status not in ("active", "done"):
                continue
            phase = self.phases_by_initiative[initiative.pk][1]
            candidates = by_target.get(initiative.target_id) or []
            for finding_id, source in rng.sample(candidates, min(12, len(candidates))):
                tasks.append(
                    PhaseTask(
                        phase=phase,
                        title=f"Fix finding #{finding_id}",
                        department=self.departments["dev"],
                        assignee=rng.choice(self.by_department["dev"]),
                        status=rng.choice(("todo", "doing", "done")),
                        estimate_hours=rng.choice((2, 4, 8)),
                        position=10,
                        finding_id=finding_id,
                        criterion={
                            "kind": "finding_gone",
                            "finding": finding_id,
                            "source": source,
                            "text": f"finding #{finding_id} gone on re-scan",
                        },
                        criterion_state=rng.choice(("pending", "not_met", "unknown")),
                    )
                )
        PhaseTask.objects.bulk_create(tasks, batch_size=2000)
        self.sizes["tasks"] = PhaseTask.objects.count()

    # measurements -------------------------------------------------------------------

    def measurements(self):
        """Summary rows of every succeeded job, the minute checks, and per-second samples."""
        rng = self.rng
        fields = (
            "target_id",
            "run_id",
            "job_id",
            "name",
            "value",
            "unit",
            "labels",
            "second",
            "measured_at",
        )

        def line(target, run, job, at, name, value, unit, labels="{}", second=None):
            return (
                f"{target}\t{run or NULL}\t{job or NULL}\t{name}\t{value:.6g}\t{unit}\t"
                f"{labels}\t{NULL if second is None else second}\t{at}"
            )

        def benchmark_rows(summary, params, mode):
            for key, value in summary["latency_ms"].items():
                yield f"http.latency.{key}", value, "ms", "{}"
            yield "http.throughput", summary["rps"], "req/s", "{}"
            yield "http.offered_rate", params["rate"], "req/s", "{}"
            yield "http.error_rate", summary["error_rate"], "ratio", "{}"
            yield "generator.cpu.avg", summary["validity"]["cpu_avg"], "%", "{}"
            for op in summary["operations"]:
                labels = _text({"operation": op["name"]})
                for key, value in op["latency_ms"].items():
                    yield f"http.latency.{key}", value, "ms", labels
                yield "http.throughput", op["rps"], "req/s", labels
                yield "http.error_rate", op["error_rate"], "ratio", labels
            if mode == "stress":
                yield "http.capacity", summary["capacity_rps"], "req/s", "{}"
            if mode == "endurance":
                mean = summary["memory"]["mean_bytes"]
                yield "memory.pss.mean", mean, "bytes", _text({"source": "pss"})

        def scan_rows(summary, kind):
            if kind == "db_scan":
                yield "db.query.avg", summary["avg_query_ms"], "ms", "{}"
                yield "db.pool.use", summary["pool"]["peak_use_pct"], "%", '{"stat": "peak"}'
                yield "db.cache_hit", summary["cache_hit_pct"], "%", "{}"
                yield "db.slow_query_rate.exact", summary["slow_query_rate"]["exact_pct"], "%", "{}"
                yield "db.calls", rng.randrange(1000, 900000), "count", "{}"
            elif kind == "code_scan":
                yield "codescan.files", summary["files_scanned"], "files", "{}"
                yield "codescan.findings", summary["counts"]["total"], "findings", "{}"
            elif kind == "probe":
                yield "probe.health_ms", summary["health"]["ms"], "ms", "{}"
                yield "probe.pool_use", rng.uniform(10, 90), "%", "{}"

        def summaries():
            for job, run, target, mode, at, summary, params in self.benchmark_jobs:
                for name, value, unit, labels in benchmark_rows(summary, params, mode):
                    yield line(target, run, job, at.isoformat(), name, value, unit, labels)
            for job, run, target, kind, at, summary in self.scan_jobs:
                for name, value, unit, labels in scan_rows(summary, kind):
                    yield line(target, run, job, at.isoformat(), name, value, unit, labels)

        def minute_checks() -> int:
            # The minute check of the last 30 days (the SLO board's availability window):
            # up or down, and pool use from /metrics every fifth minute. Made by the server
            # (generate_series): at scale 10 they are 10 million rows.
            minutes = min(30 * 24 * 60, self.n(30 * 24 * 60))
            table = Measurement._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute("SELECT setseed(0.20240609)")
                cursor.execute(
                    f'INSERT INTO "{table}" ({columns}) '
                    "SELECT t.id, NULL, NULL, f.name, "
                    "  CASE WHEN f.name = 'availability.up' "
                    "    THEN CASE WHEN random() < 0.001 THEN 0.0 ELSE 1.0 END "
                    "    ELSE 20 + random() * 70 END, "
                    "  f.unit, '{}', NULL, %s - make_interval(mins => m) "
                    f'FROM "{TargetService._meta.db_table}" t '
                    "CROSS JOIN generate_series(0, %s - 1) m "
                    "CROSS JOIN (VALUES ('availability.up', 'bool'), ('metrics.pool_use', '%%')) "
                    "  AS f(name, unit) "
                    "WHERE f.name = 'availability.up' OR m %% 5 = 0 "
                    "ORDER BY t.id, m, f.name",
                    [self.now, minutes],
                )
                return cursor.rowcount

        goal = self.n(1_000_000)

        def samples() -> int:
            # The newest benchmarks keep their per-second rows (the live chart's source):
            # their figures go to the server in a scratch table, generate_series makes the
            # seconds (one row per field and second, as the runner stores them).
            left = math.ceil(goal / len(SAMPLE_FIELDS))
            chosen: list[tuple] = []
            for job, run, target, _, at, summary, params in reversed(self.benchmark_jobs):
                if left <= 0:
                    break
                seconds = int(params["duration"])
                start = at - datetime.timedelta(seconds=seconds)
                kept = min(seconds, left)
                left -= kept
                p50 = summary["latency_ms"]["med"]
                chosen.append(
                    (
                        len(chosen),
                        job,
                        run,
                        target,
                        start,
                        kept,
                        params["rate"],
                        summary["rps"],
                        p50,
                    )
                )
            table = Measurement._meta.db_table
            with connection.cursor() as cursor:
                cursor.execute(
                    "CREATE TEMPORARY TABLE bench_sampled (ord int, job int, run int, "
                    "target int, start timestamptz, seconds int, rate float8, rps float8, "
                    "p50 float8)"
                )
                with cursor.cursor.copy("COPY bench_sampled FROM STDIN") as out:
                    for row in chosen:
                        out.write_row(row)
                cursor.execute("SELECT setseed(0.5)")
                names = ", ".join(f"('sample.{name}', {n})" for n, name in enumerate(SAMPLE_FIELDS))
                cursor.execute(
                    "WITH seconds AS MATERIALIZED ("
                    "  SELECT j.*, s, 0.8 + random() * 0.45 AS noise, "
                    "    CASE WHEN random() < 0.98 THEN 0.0 ELSE 1.0 END AS errors "
                    "  FROM bench_sampled j CROSS JOIN LATERAL generate_series(0, j.seconds - 1) s"
                    ") "
                    f'INSERT INTO "{table}" ({columns}) '
                    "SELECT target, run, job, f.name, CASE f.n "
                    "  WHEN 0 THEN s WHEN 1 THEN rate WHEN 2 THEN rps * noise WHEN 3 THEN errors "
                    "  WHEN 4 THEN p50 * noise WHEN 5 THEN p50 * 2 * noise ELSE p50 * 3 * noise "
                    "  END, '', '{}', s, start + make_interval(secs => s) "
                    f"FROM seconds CROSS JOIN (VALUES {names}) AS f(name, n) "
                    "ORDER BY ord, s, f.n"
                )
                made = cursor.rowcount
                cursor.execute("DROP TABLE bench_sampled")
            return made

        meta = Measurement._meta
        columns = ", ".join(f'"{meta.get_field(name).column}"' for name in fields)
        self.sizes["measurements (summaries)"] = copy(
            Measurement, fields, summaries(), raw_lines=True
        )
        self.sizes["measurements (minute checks)"] = minute_checks()
        self.sizes["measurements (per-second samples)"] = samples()

    # the rest: audit events, notifications, schedules, incidents, ROI, gates ----------

    def the_rest(self):
        rng = self.rng
        goal = self.n(40_000)
        actions = ("job.start", "finding.status", "task.update", "task.status", "phase.status")
        events = []
        for n in range(goal):
            initiative = rng.choice(self.initiative_list)
            events.append(
                {
                    "created_at": self.ago(365 * (1 - n / goal)),
                    "actor_id": rng.choice(self.users).pk,
                    "action": rng.choice(actions),
                    "object_type": "task",
                    "object_id": str(rng.randrange(1, 9999)),
                    "object_repr": "A task",
                    "initiative_id": initiative.pk if rng.random() < 0.6 else None,
                    "target_id": initiative.target_id,
                    "changes": {"status": ["todo", "doing"]},
                    "summary": "moved task “Enhance SQLAlchemy” to doing",
                }
            )
        copy_dicts(AuditEvent, events)
        self.sizes["audit events"] = AuditEvent.objects.count()
        notes = [
            Notification(
                user=user,
                subject=f"Run #{n} finished",
                body="A run you started finished.",
                url="/jobs/",
                read_at=None if n % 10 == 0 else self.now,
            )
            for user in self.users
            for n in range(self.n(300))
        ]
        Notification.objects.bulk_create(notes, batch_size=5000)
        Schedule.objects.bulk_create(
            Schedule(
                target=target,
                name=name,
                mode=mode,
                cron=cron,
                next_run_at=self.ago(-rng.uniform(1, 60)),
                created_by=self.manager,
            )
            for target in self.target_list
            for name, mode, cron in (
                ("Monthly performance analysis", "performance", "0 3 1 * *"),
                ("Quarterly architecture review", "strategy", "0 4 1 */3 *"),
            )
        )
        Incident.objects.bulk_create(
            Incident(
                target=target,
                kind=rng.choice(("down", "slo")),
                slo_key="" if n % 2 else "error_rate_pct",
                started_at=self.ago(rng.uniform(0, 90)),
                ended_at=self.ago(rng.uniform(0, 1)) if n else None,
                detail="Benchmark incident.",
            )
            for target in self.target_list
            for n in range(10)
        )
        RoiAssumptions.objects.bulk_create(
            RoiAssumptions(
                initiative=initiative,
                expected_peak_rps=rng.choice((200, 500, 1000, 2000)),
                cost_per_instance_month=rng.choice((120, 250, 400)),
                hourly_rates={"dev": 95, "qa": 80, "strategy": 110, "hr": 60},
                horizon_months=12,
                note=f"Edit {edit + 1}",
                changed_by=self.manager,
            )
            for initiative in self.initiative_list[: len(self.initiative_list) // 2]
            for edit in range(rng.randrange(1, 4))
        )
        GateSignoff.objects.bulk_create(
            GateSignoff(
                phase=phase,
                signed_by=self.manager,
                comment="Evidence reviewed.",
                evidence=[{"key": "baseline", "label": "Baseline", "ok": True, "detail": ""}],
            )
            for phase in Phase.objects.filter(status=Phase.DONE)
        )
        self.sizes["gate sign-offs"] = GateSignoff.objects.count()


def build(scale: float) -> dict[str, int]:
    from django.db import connection
    from django.utils import timezone

    builder = Builder(scale, timezone.now())
    steps = (
        ("people", builder.people),
        ("targets", builder.targets),
        ("initiatives", builder.initiatives),
        ("runs and jobs", builder.runs_and_jobs),
        ("findings", builder.findings),
        ("finding tasks", builder.finding_tasks),
        ("measurements", builder.measurements),
        ("the rest", builder.the_rest),
    )
    with connection.cursor() as cursor:
        # Foreign-key triggers off for this session: the builder keeps references right.
        cursor.execute("SET session_replication_role = replica")
        # A bulk load: no wait for each commit's flush, room to sort when indexing.
        cursor.execute("SET synchronous_commit = off")
        cursor.execute("SET maintenance_work_mem = '512MB'")
    # The big tables take their rows without secondary indexes, which are built once
    # after (a sort each) rather than kept up row by row; constraints' indexes stay.
    indexes = drop_indexes(BULK_MODELS)
    try:
        for label, step in steps:
            started, started_cpu = time.perf_counter(), time.process_time()
            step()
            print(
                f"   {label:<16} {time.perf_counter() - started:6.1f} s "
                f"(this process's CPU {time.process_time() - started_cpu:.1f} s)",
                flush=True,
            )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = DEFAULT")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        for statement in indexes:
            cursor.execute(statement)
    print(f"   {f'{len(indexes)} indexes':<16} {time.perf_counter() - started:6.1f} s", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"   {'VACUUM ANALYZE':<16} {time.perf_counter() - started:6.1f} s", flush=True)
    return builder.sizes


def drop_indexes(models) -> list[str]:
    """Drop the secondary indexes of ``models``' tables; return the statements that make
    them again. Indexes behind a constraint (primary keys, unique) stay."""
    from django.db import connection

    tables = [model._meta.db_table for model in models]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i "
            "WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
            "  WHERE c.conindid = format('%%I.%%I', i.schemaname, i.indexname)::regclass) "
            "ORDER BY i.tablename, i.indexname",
            [tables],
        )
        found = cursor.fetchall()
        for name, _ in found:
            cursor.execute(f'DROP INDEX "{name}"')
    return [definition for _, definition in found]


def disk_use() -> list[tuple[str, int]]:
    """(the database, its size) then its ten largest tables with their indexes."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT current_database(), pg_database_size(current_database())")
        rows = [cursor.fetchone()]
        cursor.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND c.relispartition IS NOT TRUE "
            "ORDER BY 2 DESC LIMIT 10"
        )
        rows += cursor.fetchall()
    return rows


def counted_sizes() -> dict[str, int]:
    """What is in the database, counted (also for --reuse)."""
    from django.db.models import Q

    return {
        "targets": Target.objects.count(),
        "initiatives": Initiative.objects.count(),
        "phase tasks": PhaseTask.objects.count(),
        "runs": Run.objects.count(),
        "jobs": Job.objects.count(),
        "findings": Finding.objects.count(),
        "open findings": Finding.objects.filter(status="open").count(),
        "measurements": Measurement.objects.count(),
        "  per-second samples": Measurement.objects.filter(~Q(second=None)).count(),
        "  job summaries": Measurement.objects.filter(~Q(job=None), second=None).count(),
        "  minute checks": Measurement.objects.filter(job=None).count(),
    }


# --- timing ------------------------------------------------------------------------------


def pages() -> list[tuple[str, str]]:
    """(label, path) of the pages to time: the busiest objects, the worst case."""
    from django.db.models import Count, Q

    initiative = (
        Initiative.objects.filter(status="active")
        .annotate(n=Count("runs", distinct=True))
        .order_by("-n", "pk")
        .first()
    )
    target = (
        TargetService.objects.annotate(n=Count("findings", filter=Q(findings__status="open")))
        .order_by("-n", "pk")
        .first()
    )
    assert initiative is not None and target is not None, "the bench data has no initiative"
    return [
        ("dashboard", "/"),
        (f"initiative #{initiative.pk}", f"/initiatives/{initiative.pk}/"),
        (f"target {target.slug}", f"/targets/{target.slug}/"),
        ("target findings list", f"/targets/{target.slug}/findings/"),
        ("  … all statuses, page 40", f"/targets/{target.slug}/findings/?status=&page=40"),
        ("  … text search", f"/targets/{target.slug}/findings/?status=&q=orders"),
        ("initiative list", "/initiatives/"),
        ("job history", "/jobs/"),
        ("portfolio", "/portfolio/"),
        ("target SLO board", f"/targets/{target.slug}/slo/"),
        ("initiative ROI", f"/initiatives/{initiative.pk}/roi/"),
        ("initiative findings", f"/initiatives/{initiative.pk}/findings/"),
    ]


def exports() -> list[tuple[str, str]]:
    target = TargetService.objects.order_by("pk").first()
    initiative = Initiative.objects.order_by("pk").first()
    assert initiative is not None and target is not None, "the bench data has no initiative"
    return [
        ("target findings, all (CSV)", f"/targets/{target.slug}/findings.csv?status="),
        ("target findings, all (JSON)", f"/targets/{target.slug}/findings.json?status="),
        ("target runs (CSV)", f"/targets/{target.slug}/runs.csv"),
        ("initiative runs (JSON)", f"/initiatives/{initiative.pk}/runs.json"),
    ]


def present(path: str) -> bool:
    from django.urls import Resolver404, resolve

    try:
        resolve(urlsplit(path).path)
    except Resolver404:
        return False
    return True


class QueryTimer:
    """Times each query of a request (execute_wrapper): (milliseconds, SQL)."""

    def __init__(self):
        self.queries: list[tuple[float, str, object]] = []

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - started) * 1000, sql, params))


def measure(client, path: str, requests: int, warmup: int = 3) -> dict:
    from django.db import connection

    for _ in range(warmup):
        response = client.get(path)
        if response.status_code != 200:
            return {"status": response.status_code}
        _consume(response)
    times, cpu = [], []
    for _ in range(requests):
        started, started_cpu = time.perf_counter(), time.process_time()
        response = client.get(path)
        size = _consume(response)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    timer = QueryTimer()
    with connection.execute_wrapper(timer):
        _consume(client.get(path))
    slowest = sorted(timer.queries, key=lambda query: query[0], reverse=True)
    return {
        "status": 200,
        "queries": len(timer.queries),
        "sql_ms": sum(ms for ms, _, _ in timer.queries),
        "p50": statistics.median(times),
        "cpu": statistics.median(cpu),
        "p95": percentile(times, 0.95),
        "bytes": size,
        "slowest": slowest[:3],
    }


def _consume(response) -> int:
    if response.streaming:
        return sum(len(chunk) for chunk in response.streaming_content)
    return len(response.content)


def explain(sql: str, params) -> list[str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)
        return [line for (line,) in cursor.fetchall()]


def time_pages(requests: int, show_sql: bool, show_plans: bool) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench.manager"))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\ntimed in-process, {requests} requests per page after 3 warm-ups, as bench.manager; "
        f"load average {load} on {os.cpu_count()} cores.\n"
        "SQL ms: the queries of one request; CPU ms: this process's CPU per request (p50);\n"
        "p50/p95: wall time per request (on a shared machine, waiting for a core counts too).\n"
    )
    print(
        f"{'page':<28} {'queries':>7} {'SQL ms':>7} {'CPU ms':>7} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'KiB':>5}  goal p95 < {GOAL_MS:.0f} ms"
    )
    for label, path in pages():
        if not present(path):
            print(f"{label:<28} {'':>45}  not present ({path})")
            continue
        figures = measure(client, path, requests)
        if figures["status"] != 200:
            print(f"{label:<28} HTTP {figures['status']} ({path})")
            continue
        verdict = "PASS" if figures["p95"] < GOAL_MS else "FAIL"
        print(
            f"{label:<28} {figures['queries']:>7} {figures['sql_ms']:>7.1f} {figures['cpu']:>7.1f} "
            f"{figures['p50']:>7.1f} {figures['p95']:>7.1f} {figures['bytes'] / 1024:>5.0f}  "
            f"{verdict}  {path}",
            flush=True,
        )
        if show_sql or show_plans or verdict == "FAIL":
            for ms, sql, _ in figures["slowest"]:
                print(f"{'':<6}{ms:7.1f} ms  {' '.join(sql.split())[:240]}")
        if show_plans and figures["slowest"]:
            _, sql, params = figures["slowest"][0]
            for line in explain(sql, params):
                print(f"{'':<16}{line}")
    print(f"\n{'export (streamed, whole body)':<34} {'queries':>7} {'p50 ms':>8} {'KiB':>7}")
    for label, path in exports():
        if not present(path):
            print(f"{label:<34} not present ({path})")
            continue
        figures = measure(client, path, max(3, requests // 6), warmup=1)
        if figures["status"] != 200:
            print(f"{label:<34} HTTP {figures['status']} ({path})")
            continue
        print(
            f"{label:<34} {figures['queries']:>7} {figures['p50']:>8.1f} "
            f"{figures['bytes'] / 1024:>7.0f}  {path}",
            flush=True,
        )


def main() -> int:
    args, url, reuse, began = ARGS, URL, REUSE, BEGAN
    try:
        connection.ensure_connection()
        version = connection.pg_version  # type: ignore[attr-defined]  # PostgreSQL's wrapper
        print(
            f"database: PostgreSQL {version // 10000}.{version % 10000}, "
            f"{urlsplit(url).path.lstrip('/')}; machine: {os.cpu_count()} cores"
        )
        if reuse:
            # The code may have gained migrations since the build: apply them (an index on
            # a big table takes a while, once), so the pages read the columns they expect.
            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            print(
                f"reusing the kept database (no build; migrated in "
                f"{time.perf_counter() - started:.1f} s)"
            )
        else:
            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            print(
                f"migrated in {time.perf_counter() - started:.1f} s; building (scale {args.scale})"
            )
            started = time.perf_counter()
            build(args.scale)
            print(f"built in {time.perf_counter() - started:.0f} s (migrations excluded)")
        print("\ndisk use:")
        for name, size in disk_use():
            print(f"   {name:<32} {size / 2**20:>9,.0f} MiB")
        print("\ndata in the database:")
        for name, count in counted_sizes().items():
            print(f"   {name:<20} {count:>10,}")
        time_pages(args.requests, args.sql, args.explain)
        if not args.keep:
            drop_database(url)
        else:
            print(f"\nkept {url} (time it again with --reuse)")
    finally:
        shutil.rmtree(VAR_DIR, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
