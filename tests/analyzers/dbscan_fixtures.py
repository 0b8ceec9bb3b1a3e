"""Shared helpers for the DB-scan tests: one throwaway cluster per test session.

Not a conftest: test modules define thin fixtures that call these, so the
cluster is started once (reference-counted) and stopped by the last finalizer.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from contextlib import closing

import psycopg
import pytest

from examples import pgcluster
from optimizations.analyzers import dbscan
from optimizations.analyzers.base import LocalContext, TargetSpec
from tests.conftest import need

MAIN_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def require_server_binaries() -> None:
    """Skip (visibly) only when no PostgreSQL server is installed; under CI, fail."""
    if pgcluster.server_bin_dir() is None:
        reason = "no PostgreSQL 15 or newer server binaries in /usr/lib/postgresql/*/bin"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI must run the DB-scan tests)\n{pgcluster.INSTALL_HINT}")
        pytest.skip(reason)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Cluster:
    users = 0
    datadir: str | None = None
    port = 0
    lock = threading.Lock()


def acquire_cluster() -> int:
    """Start the shared throwaway cluster if needed; return its port."""
    require_server_binaries()
    with _Cluster.lock:
        if _Cluster.users == 0:
            # Under /tmp (world-traversable) so the postgres user reaches it.
            datadir = tempfile.mkdtemp(prefix="kaizen-pg-")
            port = free_port()
            try:
                pgcluster.ensure_cluster(datadir, port)
            except Exception:
                pgcluster.remove_cluster(datadir)
                raise
            _Cluster.datadir, _Cluster.port = datadir, port
        _Cluster.users += 1
        return _Cluster.port


def release_cluster() -> None:
    with _Cluster.lock:
        _Cluster.users -= 1
        if _Cluster.users == 0 and _Cluster.datadir:
            pgcluster.remove_cluster(_Cluster.datadir)
            _Cluster.datadir = None


def url(port: int, db: str, user: str = "postgres", password: str | None = None) -> str:
    auth = f"{user}:{password}" if password else user
    return f"postgresql://{auth}@127.0.0.1:{port}/{db}"


def admin(port: int, db: str = "postgres"):
    return psycopg.connect(url(port, db), autocommit=True)


def fresh_database(port: int, name: str, extensions=("pg_stat_statements", "hypopg")) -> str:
    """Drop and create database ``name`` with the given extensions; return its URL."""
    with admin(port) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    with admin(port, name) as conn:
        available = {
            row[0] for row in conn.execute("SELECT name FROM pg_available_extensions").fetchall()
        }
        for ext in extensions:
            package = "postgresql-<version>-hypopg" if ext == "hypopg" else "postgresql-contrib"
            need(
                ext in available,
                f"PostgreSQL extension {ext} is not installed (apt install {package})",
            )
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
    return url(port, name)


def drop_database(port: int, name: str) -> None:
    with admin(port) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def scan(database_url: str, **params):
    """Run the DB scan with window 0 (cumulative) unless given."""
    params.setdefault("window", 0)
    target = TargetSpec(name="test", database_url=database_url)
    return dbscan.run(target, params, LocalContext())


def by_rule(result, rule_id: str):
    return [f for f in result.findings if f.rule_id == rule_id]


def check(result, check_id: str):
    found = [c for c in result.checks if c.check_id == check_id]
    assert len(found) == 1, f"{check_id}: {found}"
    return found[0]


CATALOG_FINGERPRINT = """
SELECT (SELECT count(*) FROM pg_class) AS relations,
       (SELECT coalesce(max(oid::int8), 0) FROM pg_class) AS max_rel_oid,
       (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension) AS extensions,
       (SELECT count(*) FROM pg_proc) AS functions,
       (SELECT count(*) FROM pg_roles) AS roles,
       (SELECT count(*) FROM pg_index) AS indexes,
       (SELECT count(*) FROM pg_constraint) AS constraints,
       (SELECT count(*) FROM pg_prepared_xacts) AS prepared
"""


def catalog_fingerprint(port: int, db: str) -> dict:
    with admin(port, db) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(CATALOG_FINGERPRINT).fetchone()


def cleanup_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)
