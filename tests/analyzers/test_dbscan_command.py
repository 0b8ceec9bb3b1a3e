"""``manage.py dbscan``: exit 0 pass, 1 fail, 2 when it cannot run, 3 incomplete."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def cluster():
    port = fx.acquire_cluster()
    try:
        clean = fx.fresh_database(port, "kz_cli_clean")
        bad = fx.fresh_database(port, "kz_cli_bad")
        fx.fresh_database(port, "kz_cli_noext", extensions=())
        with fx.admin(port, "kz_cli_bad") as conn:
            conn.execute("CREATE TABLE counters (id serial PRIMARY KEY)")
            conn.execute("SELECT setval('counters_id_seq', 2100000000)")
        yield clean, bad
    finally:
        fx.drop_database(port, "kz_cli_clean")
        fx.drop_database(port, "kz_cli_bad")
        fx.drop_database(port, "kz_cli_noext")
        fx.release_cluster()


def dbscan(*args):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("dbscan", *args, stdout=out, stderr=err)
    return exited.value.code, out.getvalue(), err.getvalue()


def test_clean_database_exits_0(cluster):
    clean, _ = cluster
    code, out, _ = dbscan(clean, "--window", "0")
    assert code == 0
    assert "passed   db.fk_without_index" in out


def test_high_severity_finding_exits_1_with_json(cluster):
    _, bad = cluster
    code, out, _ = dbscan(bad, "--window", "0", "--json")
    assert code == 1
    data = json.loads(out)
    (seq,) = [f for f in data["findings"] if f["rule_id"] == "db.sequence_overflow"]
    assert seq["severity"] == "high" and len(seq["fingerprint"]) == 40
    assert {c["check_id"] for c in data["checks"]} >= {"db.capabilities", "db.sequence_overflow"}


def test_without_pg_stat_statements_it_is_incomplete_and_exits_3(cluster):
    noext = cluster[0].rsplit("/", 1)[0] + "/kz_cli_noext"
    code, out, _ = dbscan(noext, "--window", "0")
    assert code == 3
    assert "Verdict: incomplete" in out and "CREATE EXTENSION pg_stat_statements" in out


def test_an_slo_override_changes_the_verdict(cluster):
    clean, _ = cluster
    code, _, err = dbscan(clean, "--window", "0", "--slo", "db_avg_ms=nope")
    assert code == 2 and "not a number" in err
    code, out, _ = dbscan(clean, "--window", "0", "--json", "--slo", "db_avg_ms=0")
    avg = next(c for c in json.loads(out)["checks"] if c["check_id"] == "db.avg_query_time")
    assert code == 1 and avg["status"] == "failed"  # any average breaks an SLO of 0 ms


def test_unreachable_database_exits_2():
    port = fx.free_port()
    code, _, err = dbscan(f"postgresql://app:secret@127.0.0.1:{port}/shop", "--window", "0")
    assert code == 2
    assert "connection refused" in err and "secret" not in err
