"""The processes that make up Kaizen, defined once.

``./kaizen up`` starts each of them, and docker-compose.yml runs each service
as ``python -m portal.processes <name>``, so both start exactly the same
commands. Tunables come from the environment:

- ``KAIZEN_BIND`` (default ``127.0.0.1:8000``) — where the web server listens;
- ``WEB_CONCURRENCY`` (default 2) — gunicorn worker processes;
- ``KAIZEN_ANALYSIS_CONCURRENCY`` (default 2) — analysis jobs at once per host;
- the ``benchmark`` worker always runs one job at a time, so two load tests
  never share the cores;
- the ``maintenance`` worker (``KAIZEN_MAINTENANCE_CONCURRENCY``, default 2)
  serves only the ``maintenance`` queue: beat's tick (the reaper of lost jobs,
  due schedules, expiry) and the minute availability checks. No analysis or
  benchmark job is ever routed there, so a worker busy with long jobs cannot
  hold up the reaper that notices when a worker died. Both of its tasks have
  time limits far below a job's and their messages expire after one period,
  so a backlog never piles up behind a stopped maintenance worker.
"""

from __future__ import annotations

import os
import sys

PYTHON = sys.executable


def commands(var_dir: str) -> dict[str, list[str]]:
    bind = os.environ.get("KAIZEN_BIND", "127.0.0.1:8000")
    web_workers = os.environ.get("WEB_CONCURRENCY", "2")
    analysis = os.environ.get("KAIZEN_ANALYSIS_CONCURRENCY", "2")
    maintenance = os.environ.get("KAIZEN_MAINTENANCE_CONCURRENCY", "2")
    return {
        "web": [
            PYTHON,
            "-m",
            "gunicorn",
            "portal.wsgi:application",
            "--bind",
            bind,
            "--workers",
            web_workers,
            "--threads",
            "4",
            "--timeout",
            "60",
            "--graceful-timeout",
            "10",
            "--access-logfile",
            "-",
        ],
        "worker-analysis": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--queues",
            "analysis",
            "--hostname",
            "analysis@%h",
            "--concurrency",
            analysis,
            "--prefetch-multiplier",
            "1",
            "--loglevel",
            "INFO",
        ],
        "worker-benchmark": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--queues",
            "benchmark",
            "--hostname",
            "benchmark@%h",
            "--concurrency",
            "1",
            "--prefetch-multiplier",
            "1",
            "--loglevel",
            "INFO",
        ],
        "worker-maintenance": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--queues",
            "maintenance",
            "--hostname",
            "maintenance@%h",
            "--concurrency",
            maintenance,
            "--prefetch-multiplier",
            "1",
            "--loglevel",
            "INFO",
        ],
        "beat": [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "portal",
            "beat",
            "--schedule",
            os.path.join(var_dir, "celerybeat-schedule"),
            "--loglevel",
            "INFO",
        ],
    }


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    from django.conf import settings

    table = commands(str(settings.VAR_DIR))
    if len(argv) != 1 or argv[0] not in table:
        sys.exit(f"usage: python -m portal.processes {{{'|'.join(table)}}}")
    argv = table[argv[0]]
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main(sys.argv[1:])
