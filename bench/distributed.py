#!/usr/bin/env python3
"""One open-loop load test through Kaizen with 1 and with N generators (issue 20).

    bench/distributed.py --url http://127.0.0.1:PORT --path /load --count-log FILE
                         [--rate 2000] [--duration 10] [--generators 1,2] [--cpu auto]

Runs in a throw-away Kaizen of its own (a SQLite database and a file-system
broker under a temporary directory), with as many real benchmark workers on
this machine as the most generators asked for (KAIZEN_GENERATORS_SHARE_HOST:
in production one generator per host). Each test is a real benchmark job: the
parent holds the lease, fans out, starts every generator at one instant and
merges their histograms. The target's own count is the number of lines its
access log for ``--path`` gained (``--count-log``: bench/loadgen's nginx writes
one line per request to that location only, so health checks do not count).
Prints one JSON line per test on stdout; bench/loadgen section 7 reads them.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
if Path(sys.prefix).resolve() != VENV.resolve() and (VENV / "bin" / "python").exists():
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])
sys.path.insert(0, str(ROOT))

VAR = Path(tempfile.mkdtemp(prefix="kaizen-bench-distributed-"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "portal.settings",
    "KAIZEN_VAR_DIR": str(VAR),
    "DATABASE_URL": f"sqlite:///{VAR / 'kaizen.sqlite3'}",
    "CELERY_BROKER_URL": "filesystem://localhost/",
    "KAIZEN_GENERATORS_SHARE_HOST": "true",
    "KAIZEN_COOLDOWN_MAX_SECONDS": "10",
}
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

from departments.models import Department  # noqa: E402
from optimizations.models import Generator, Job, Run, TargetService  # noqa: E402
from optimizations.tasks import run_job  # noqa: E402


def lines(path: Path) -> int:
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


def start_workers(count: int) -> list[subprocess.Popen]:
    workers = []
    for number in range(count):
        log = open(VAR / f"worker-{number}.log", "wb")  # noqa: SIM115 - lives with the worker
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "portal",
                    "worker",
                    "--queues",
                    "benchmark",
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"bench-{number + 1}@%h",
                    "--without-mingle",
                    "--without-gossip",
                    "--loglevel",
                    "INFO",
                ],
                cwd=ROOT,
                env={**os.environ, **ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    deadline = time.monotonic() + 60
    for number in range(count):
        while b" ready." not in (VAR / f"worker-{number}.log").read_bytes():
            if time.monotonic() > deadline:
                raise SystemExit(f"benchmark worker {number + 1} did not start (see {VAR})")
            time.sleep(0.2)
    return workers


def one_test(target, args, generators: int) -> dict:
    before = lines(args.count_log)
    run = Run.objects.create(target=target, mode="custom")
    params = {
        "mode": "load",
        "rate": args.rate,
        "duration": args.duration,
        "paths": [args.path],
        "connections": args.connections,
        "max_connections": args.connections * 4,
        "cpu": args.cpu,
        "generators": generators,
    }
    job = Job.objects.create(run=run, kind="benchmark", target=target, params=params)
    run_job.apply_async(args=(job.pk,), queue="benchmark")
    deadline = time.monotonic() + args.duration + 180
    while Job.objects.get(pk=job.pk).status not in Job.ENDED:
        if time.monotonic() > deadline:
            raise SystemExit(f"job {job.pk} did not end (see {VAR})")
        time.sleep(0.5)
    job.refresh_from_db()
    time.sleep(0.5)  # nginx writes its log line after the answer
    served = lines(args.count_log) - before
    summary = job.summary or {}
    requests = summary.get("requests", {})
    return {
        "generators": generators,
        "status": job.status,
        "verdict": job.verdict,
        "error": job.error,
        "verdict_reason": summary.get("verdict_reason", ""),
        "sent": requests.get("sent"),
        "ok": requests.get("ok"),
        "target_counted": served,
        "equal": requests.get("sent") == requests.get("ok") == served,
        "rps": summary.get("rps"),
        "p50_ms": summary.get("latency_ms", {}).get("med"),
        "p99_ms": summary.get("latency_ms", {}).get("p99"),
        "send_lag_p99_ms": summary.get("validity", {}).get("send_lag_p99_ms"),
        "generator_limited": summary.get("validity", {}).get("generator_limited"),
        "per_generator": [
            {k: g.get(k) for k in ("name", "worker", "status", "sent", "ok", "healthy", "problem")}
            for g in summary.get("generators", [])
        ],
        "workers_used": sorted(
            set(Generator.objects.filter(job=job).values_list("worker", flat=True))
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--path", default="/load")
    parser.add_argument("--count-log", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--generators", default="1,2")
    parser.add_argument("--cpu", default="auto")
    args = parser.parse_args()
    counts = [int(n) for n in args.generators.split(",")]
    call_command("migrate", verbosity=0)
    department = Department.objects.order_by("pk").first() or Department.objects.create(
        code="dev", name="Development"
    )
    target = TargetService.objects.create(
        name="bench target",
        slug="bench-target",
        base_url=args.url,
        owner_department=department,
        max_rate=int(args.rate * 2),
        max_duration=int(args.duration * 4 + 60),
    )
    workers = start_workers(max(counts))
    try:
        for generators in counts:
            print(json.dumps(one_test(target, args, generators)), flush=True)
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(15)
            except subprocess.TimeoutExpired:
                worker.kill()
    shutil.rmtree(VAR, ignore_errors=True)  # kept when it failed: the workers' logs are there
    return 0


if __name__ == "__main__":
    sys.exit(main())
