"""A DB scan waiting on a slow statement stops within a second of cancel.

The statement is cancelled on the server (psycopg's cancel), not waited out
until statement_timeout: the connection is free again right after.
"""

import threading
import time

import pytest

from optimizations.analyzers.base import Cancelled, LocalContext
from optimizations.analyzers.dbscan.connect import session_for
from tests.analyzers.dbscan_fixtures import MAIN_SERVER
from tests.conftest import need, reachable

LOOPBACK = ("127.0.0.0/8",)


@pytest.fixture
def session():
    need(reachable(MAIN_SERVER), f"no PostgreSQL at {MAIN_SERVER}")
    with session_for(MAIN_SERVER, LOOPBACK, statement_timeout_ms=60_000) as session:
        yield session


def test_a_cancel_stops_the_running_statement_on_the_server(session):
    ctx = LocalContext()
    session.cancelled = ctx.cancelled
    asked = {}

    def cancel_soon():
        time.sleep(0.3)
        asked["at"] = time.monotonic()
        ctx.cancel()

    threading.Thread(target=cancel_soon).start()
    with pytest.raises(Cancelled):
        session.rows("SELECT pg_sleep(30)")
    # Polled every 0.1 s; a generous bound for a loaded machine (not waiting out 30 s).
    assert time.monotonic() - asked["at"] < 5
    session.cancelled = None
    assert session.scalar("SELECT 1") == 1  # the server stopped it: the connection is free


def test_a_statement_after_cancel_is_not_sent(session):
    ctx = LocalContext()
    ctx.cancel()
    session.cancelled = ctx.cancelled
    statements = session.load.statements
    with pytest.raises(Cancelled):
        session.rows("SELECT 1")
    assert session.load.statements == statements


def test_without_a_cancel_statements_run_as_before(session):
    session.cancelled = LocalContext().cancelled
    assert session.rows("SELECT 2 AS two") == [{"two": 2}]
