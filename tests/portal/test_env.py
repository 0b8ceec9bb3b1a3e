"""DATABASE_URL becomes a DATABASES entry that serves many short requests cheaply."""

import pytest

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
