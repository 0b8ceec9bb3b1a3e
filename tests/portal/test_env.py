"""DATABASE_URL becomes a DATABASES entry that serves many short requests cheaply."""

import psycopg
import pytest

from portal.env import database_from_url
from tests.conftest import need, reachable


@pytest.mark.parametrize(
    "url", ["sqlite:///{tmp}/kaizen.sqlite3", "postgres://kaizen@127.0.0.1:5432/kaizen"]
)
def test_connections_outlive_a_request(url, tmp_path):
    # Fifty tabs poll job pages every few seconds: each poll is three small
    # queries, and opening a connection for each (on SQLite: the PRAGMAs and
    # Django's SQL functions) cost more than the queries (bench/polling.py).
    entry = database_from_url(url.format(tmp=tmp_path), tmp_path / "unused.sqlite3")
    assert entry["CONN_MAX_AGE"] >= 60


def test_postgresql_connections_compile_no_query_just_in_time(tmp_path):
    # JIT compilation cost 35 ms on a 1 ms query of the SLO board at bench scale 10.
    entry = database_from_url("postgres://kaizen@127.0.0.1:5432/kaizen", tmp_path / "unused")
    assert entry["OPTIONS"]["options"] == "-c jit=off"
    own = database_from_url("postgres://k@127.0.0.1/k?options=-c%20work_mem%3D8MB", tmp_path)
    assert own["OPTIONS"]["options"] == "-c work_mem=8MB"


def test_a_connection_made_with_those_options_runs_without_jit(tmp_path):
    # On both CI passes: a real PostgreSQL server, reached with the options the URL gives.
    url = "postgres://postgres@127.0.0.1:5432/postgres"
    need(reachable(url), "needs PostgreSQL on 127.0.0.1:5432")
    entry = database_from_url(url, tmp_path / "unused")
    with psycopg.connect(
        host=entry["HOST"],
        port=entry["PORT"],
        user=entry["USER"],
        dbname=entry["NAME"],
        options=entry["OPTIONS"]["options"],
        connect_timeout=5,
    ) as conn:
        assert conn.execute("SHOW jit").fetchone() == ("off",)
