"""DATABASE_URL becomes a DATABASES entry that serves many short requests cheaply."""

import pytest
from django.db import connection

from portal.env import database_from_url


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


@pytest.mark.django_db
def test_the_test_database_connection_has_jit_off():
    if connection.vendor != "postgresql":
        pytest.skip("JIT is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == "off"
