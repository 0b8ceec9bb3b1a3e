"""Celery tasks: thin wrappers that load rows by primary key and call the real code."""

from __future__ import annotations

from celery import shared_task
from celery.signals import worker_init

from optimizations.analyzers.dbscan.connect import clear_libpq_environment
from optimizations.jobs import availability, generators, housekeeping, runner
from optimizations.observe import alerting, channels, incidents, sources


@worker_init.connect
def _forget_libpq_environment(**kwargs):
    # A target's database is reached only through its checked URL: libpq must not take a
    # host, service or password file from the worker's environment (PGHOST, PGSERVICE…).
    # Kaizen's own database comes from DATABASE_URL, never from PG* variables. Connected
    # here, in the module every worker imports before it sends worker_init.
    clear_libpq_environment()


@shared_task(bind=True, acks_late=True, ignore_result=True)
def run_job(self, job_id: int) -> str:
    """Run one job. Safe to deliver twice: only the first claim runs it."""
    return runner.execute(job_id, self.request.hostname or "worker")


@shared_task(bind=True, acks_late=True, ignore_result=True)
def run_generator(self, generator_id: int) -> str:
    """Be one generator of a distributed load test. Safe to deliver twice (claimed once)."""
    return generators.serve(generator_id, self.request.hostname or "worker")


@shared_task(ignore_result=True)
def tick() -> dict:
    """Every few seconds from beat: reap lost jobs, start due schedules, expire stale ones."""
    return housekeeping.tick()


@shared_task(ignore_result=True)
def check_availability() -> int:
    """Every minute from beat: each target's health and /metrics."""
    return availability.check_all()


@shared_task(ignore_result=True)
def incident_sweep() -> dict:
    """Every few seconds from beat: escalate unacknowledged incidents, send and retry the
    webhook deliveries that are due."""
    return {"escalated": incidents.escalate_overdue(), "delivered": channels.deliver_due()}


@shared_task(ignore_result=True)
def observe_minute() -> dict:
    """Every minute from beat: read each target's Prometheus, then judge the burn-rate
    alert rules (opening and resolving incidents)."""
    return {"prometheus": sources.read_all(), "judged": alerting.evaluate_all()}


@shared_task(ignore_result=True)
def purge_old_data() -> dict:
    """Daily from beat: job logs and per-second samples past their retention."""
    return housekeeping.purge()
