"""``manage.py dbscan``: exit 0 clean, 1 on a high-severity finding, 2 when it cannot run."""

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
        with fx.admin(port, "kz_cli_bad") as conn:
            conn.execute("CREATE TABLE counters (id serial PRIMARY KEY)")
            conn.execute("SELECT setval('counters_id_seq', 2100000000)")
        yield clean, bad
    finally:
        fx.drop_database(port, "kz_cli_clean")
        fx.drop_database(port, "kz_cli_bad")
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


def test_unreachable_database_exits_2():
    port = fx.free_port()
    code, _, err = dbscan(f"postgresql://app:secret@127.0.0.1:{port}/shop", "--window", "0")
    assert code == 2
    assert "connection refused" in err and "secret" not in err
