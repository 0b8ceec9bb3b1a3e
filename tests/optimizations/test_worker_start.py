"""A Celery worker forgets the PG* environment as it starts (optimizations/tasks.py)."""

import os

from celery.signals import worker_init

from optimizations import tasks


def test_a_worker_starts_without_libpq_environment(monkeypatch):
    monkeypatch.setenv("PGHOST", "db.elsewhere.example")
    monkeypatch.setenv("PGPASSFILE", "/home/someone/.pgpass")
    # Connected in the task module, which every worker imports before sending worker_init
    # (sending the signal here would run Celery's Django fix-up, which opens the database).
    assert tasks._forget_libpq_environment in worker_init._live_receivers(sender=None)
    tasks._forget_libpq_environment()
    assert "PGHOST" not in os.environ
    assert "PGPASSFILE" not in os.environ
