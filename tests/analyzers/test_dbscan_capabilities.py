"""DB scan: the capability ladder, connection errors a person can read, and the
promise that nothing is created on the target."""

from __future__ import annotations

import os

import psycopg
import pytest

from optimizations.analyzers.base import CHECK_UNKNOWN, AnalysisError, LocalContext, TargetSpec
from optimizations.analyzers.dbscan import run, test_connection
from optimizations.analyzers.dbscan.connect import QueryFailed, open_session

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres

PASSWORD = "s3cret-kz"


@pytest.fixture(scope="module")
def ladder():
    """Database kz_ladder with one role per rung it lacks, and kz_noext without extensions."""
    port = fx.acquire_cluster()
    fx.fresh_database(port, "kz_ladder")
    fx.fresh_database(port, "kz_revoked")
    fx.fresh_database(port, "kz_noext", extensions=())
    try:
        with fx.admin(port) as conn:
            for role in ("kz_plain", "kz_monitor"):
                conn.execute(f"DROP ROLE IF EXISTS {role}")
                conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute("GRANT pg_monitor, pg_read_all_data TO kz_monitor")
        with fx.admin(port, "kz_ladder") as conn:
            conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text)")
            conn.execute("SELECT count(*) FROM items")  # a statement of another role
        with fx.admin(port, "kz_revoked") as conn:
            conn.execute("REVOKE ALL ON pg_stat_statements FROM PUBLIC")
        yield port
    finally:
        for db in ("kz_ladder", "kz_revoked", "kz_noext"):
            fx.drop_database(port, db)
        with fx.admin(port) as conn:
            conn.execute("DROP ROLE IF EXISTS kz_plain")
            conn.execute("DROP ROLE IF EXISTS kz_monitor")
        fx.release_cluster()


def rungs(report):
    return {r["id"]: r for r in report["ladder"]}


def test_superuser_sees_everything(ladder):
    report = test_connection(fx.url(ladder, "kz_ladder"))
    assert report["ok"] and report["pg_stat_statements"] and report["hypopg"]
    assert report["cannot_see"] == []


def test_plain_role_lacks_stats_text_and_select(ladder):
    report = test_connection(fx.url(ladder, "kz_ladder", "kz_plain", PASSWORD))
    r = rungs(report)
    assert r["pgss.readable"]["ok"] is True
    assert r["pgss.text"]["ok"] is False
    assert "<insufficient privilege>" in r["pgss.text"]["detail"]
    assert r["pgss.text"]["fix"] == "As a superuser: GRANT pg_monitor TO kz_plain;"
    assert r["role.read_all_stats"]["ok"] is False
    assert r["role.select"]["ok"] is False
    assert "GRANT pg_read_all_data TO kz_plain" in r["role.select"]["fix"]


def test_monitor_role_sees_everything(ladder):
    report = test_connection(fx.url(ladder, "kz_ladder", "kz_monitor", PASSWORD))
    assert report["cannot_see"] == []


def test_revoked_view_is_permission_denied(ladder):
    r = rungs(test_connection(fx.url(ladder, "kz_revoked", "kz_plain", PASSWORD)))
    assert r["pgss.readable"]["ok"] is False
    assert "permission denied" in r["pgss.readable"]["detail"]
    assert r["pgss.readable"]["fix"].startswith(
        "As a superuser: GRANT SELECT ON public.pg_stat_statements"
    )


def test_extension_not_created_and_hypopg_missing(ladder):
    report = test_connection(fx.url(ladder, "kz_noext"))
    r = rungs(report)
    assert r["pgss.contrib"]["ok"] is True
    assert r["pgss.extension"]["ok"] is False
    assert "CREATE EXTENSION pg_stat_statements" in r["pgss.extension"]["fix"]
    assert r["hypopg"]["ok"] is False
    assert r["hypopg"]["fix"].startswith("CREATE EXTENSION hypopg; in database kz_noext")


def test_scan_without_statements_says_unknown_why_and_fix(ladder):
    result = fx.scan(fx.url(ladder, "kz_noext"))
    for check_id in ("db.avg_query_time", "db.slow_query_rate", "db.slow_families"):
        outcome = fx.check(result, check_id)
        assert outcome.status == CHECK_UNKNOWN
        assert "CREATE EXTENSION pg_stat_statements" in outcome.detail
    assert not [m for m in result.measurements if m.name.startswith("db.slow_query_rate")]
    assert "db.query.avg" not in {m.name for m in result.measurements}
    # The DB SLOs could not be judged: incomplete, naming what is missing and the fix.
    assert result.verdict == "incomplete"
    assert "db.avg_query_time" in result.verdict_reason
    assert "CREATE EXTENSION pg_stat_statements" in result.verdict_reason


@pytest.fixture(scope="module")
def not_preloaded():
    """A database on the machine's main server, where pg_stat_statements is not preloaded."""
    fx.require_server_binaries()
    name = f"kz_nopreload_{os.getpid()}"
    try:
        conn = psycopg.connect(fx.MAIN_SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the machine's PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    with conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with psycopg.connect(fx.MAIN_SERVER.rsplit("/", 1)[0] + f"/{name}", autocommit=True) as c:
            c.execute("CREATE EXTENSION pg_stat_statements")
        yield fx.MAIN_SERVER.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(fx.MAIN_SERVER, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_not_preloaded_is_sqlstate_55000_with_the_fix(not_preloaded):
    report = test_connection(not_preloaded)
    readable = rungs(report)["pgss.readable"]
    assert readable["ok"] is False
    assert "not preloaded (SQLSTATE 55000)" in readable["detail"]
    assert "shared_preload_libraries" in readable["fix"] and "restart" in readable["fix"]
    result = fx.scan(not_preloaded, checks=["db.slow_query_rate"])
    outcome = fx.check(result, "db.slow_query_rate")
    assert outcome.status == CHECK_UNKNOWN
    assert "SQLSTATE 55000" in outcome.detail and "shared_preload_libraries" in outcome.detail
    capability = fx.by_rule(result, "db.capabilities")
    assert [f.key for f in capability] == ["capability:pgss.readable", "capability:hypopg"]


def test_wrong_password_is_explained(ladder):
    report = test_connection(fx.url(ladder, "kz_ladder", "kz_plain", "wrong"))
    assert report == {
        "ok": False,
        "error": f"PostgreSQL at 127.0.0.1:{ladder} rejected the password for user 'kz_plain'. "
        "Check the password in the target's database URL.",
    }
    assert "wrong" not in report["error"]


def test_refused_connection_is_explained():
    port = fx.free_port()
    target = TargetSpec(name="t", database_url=f"postgresql://app:pw@127.0.0.1:{port}/shop")
    with pytest.raises(AnalysisError) as caught:
        run(target, {"window": 0}, LocalContext())
    assert str(caught.value) == (
        f"Could not connect to PostgreSQL at 127.0.0.1:{port}: connection refused. "
        "Is the server running and listening on that host and port?"
    )


def test_host_outside_the_allow_list_is_refused_before_connecting():
    report = test_connection("postgresql://app:pw@10.9.8.7:5432/shop", ("127.0.0.0/8",))
    assert report["ok"] is False
    assert "10.9.8.7" in report["error"] and "KAIZEN_ALLOWED_TARGET_HOSTS" in report["error"]


def test_scan_creates_nothing_and_leaves_no_session(ladder):
    port = ladder
    before = fx.catalog_fingerprint(port, "kz_ladder")
    result = fx.scan(fx.url(port, "kz_ladder"), window=1)
    assert result.summary["scan"]["statements"] > 0
    assert fx.catalog_fingerprint(port, "kz_ladder") == before
    with fx.admin(port) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kaizen'"
        ).fetchone()[0]
    assert left == 0


def test_scan_connection_is_read_only_with_timeouts(ladder):
    session = open_session(fx.url(ladder, "kz_ladder"))
    try:
        settings = session.one(
            "SELECT current_setting('transaction_read_only') AS ro, "
            "current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt, "
            "current_setting('application_name') AS app"
        )
        assert settings == {"ro": "on", "st": "5s", "lt": "500ms", "app": "kaizen"}

        with pytest.raises(QueryFailed) as caught:
            session.run("CREATE TABLE kaizen_must_not_exist (id int)")
        assert caught.value.sqlstate == "25006"  # read_only_sql_transaction
    finally:
        session.close()
