"""DB scan: schema and health checks on a fixture schema with each problem planted,
and a negative case beside each."""

from __future__ import annotations

import threading

import psycopg
import pytest

from optimizations.analyzers.base import CHECK_FAILED, CHECK_PASSED
from optimizations.analyzers.dbscan import CHECK_IDS

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, email text NOT NULL, name text);
CREATE UNIQUE INDEX customers_email_key ON customers (email);
CREATE INDEX customers_email_idx ON customers (email);            -- redundant beside the unique one

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),          -- no index: a problem
    status text, created_at timestamptz DEFAULT now(), note text);
CREATE INDEX orders_status_idx ON orders (status);                -- prefix of the next one
CREATE INDEX orders_status_created_idx ON orders (status, created_at);
CREATE INDEX orders_created_a ON orders (created_at);             -- exact duplicates
CREATE INDEX orders_created_b ON orders (created_at);
CREATE INDEX orders_note_partial ON orders (note) WHERE status = 'x';
CREATE INDEX orders_note_other ON orders (note) WHERE status = 'y';  -- other predicate: no dup

CREATE TABLE regions (country text, code text, PRIMARY KEY (country, code));
CREATE TABLE stores (id serial PRIMARY KEY, country text, code text,
    FOREIGN KEY (country, code) REFERENCES regions);
CREATE INDEX stores_code_country_idx ON stores (code, country);   -- reordered: still covers

CREATE TABLE payments (id serial PRIMARY KEY, order_id bigint REFERENCES orders (id), paid bool);
CREATE INDEX payments_order_partial ON payments (order_id) WHERE paid;  -- partial: no cover

CREATE TABLE shipments (id serial PRIMARY KEY, order_id bigint REFERENCES orders (id),
    carrier text);
CREATE INDEX shipments_carrier_incl ON shipments (carrier) INCLUDE (order_id);  -- INCLUDE: no cover

CREATE TABLE reviews (id serial PRIMARY KEY, customer_id bigint REFERENCES customers (id),
    body text);
CREATE INDEX reviews_customer_idx ON reviews (customer_id);       -- unused, but the FK's only cover
CREATE INDEX reviews_body_idx ON reviews (body);                  -- unused: report

CREATE TABLE codes (code text, kind text);
CREATE UNIQUE INDEX codes_code_key ON codes (code);
CREATE INDEX codes_code_kind_idx ON codes (code, kind);           -- unique prefix: not a duplicate

CREATE TABLE events (id bigint, kind text, payload text);         -- no index, seq-scanned
CREATE TABLE small_events (id bigint, kind text);                 -- seq-scanned but small

CREATE TABLE counters (id serial PRIMARY KEY);                    -- int4 column near its max
CREATE TABLE big_counters (id bigserial PRIMARY KEY);             -- bigint: far from its max

CREATE TABLE churn (id int, v text) WITH (autovacuum_enabled = false);

CREATE TABLE tags (id int, label text);
INSERT INTO tags VALUES (1, 'a'), (2, 'a');

INSERT INTO customers (email, name)
    SELECT 'c' || i || '@example.com', 'name ' || i FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, status, note)
    SELECT 1 + i % 2000, (ARRAY['new','paid','sent'])[1 + i % 3], 'n'
    FROM generate_series(1, 20000) i;
INSERT INTO reviews (customer_id, body)
    SELECT 1 + i % 2000, 'b' || i FROM generate_series(1, 500) i;
INSERT INTO events SELECT i, 'k' || (i % 10), 'p' FROM generate_series(1, 20000) i;
INSERT INTO small_events SELECT i, 'k' FROM generate_series(1, 50) i;
INSERT INTO churn SELECT i, 'v' FROM generate_series(1, 5000) i;
DELETE FROM churn WHERE id > 500;
SELECT setval('counters_id_seq', 2000000000);
SELECT setval('big_counters_id_seq', 2000000000);
ALTER TABLE orders ADD CONSTRAINT orders_status_chk CHECK (status <> '') NOT VALID;
ANALYZE customers, orders, regions, stores, payments, shipments, reviews, codes, events,
    small_events, counters, big_counters, tags;
"""


@pytest.fixture(scope="module")
def problems():
    port = fx.acquire_cluster()
    db = "kz_problems"
    url = fx.fresh_database(port, db)
    try:
        with fx.admin(port, db) as conn:
            conn.execute(SCHEMA)
            # A failed CREATE UNIQUE INDEX CONCURRENTLY leaves an invalid index behind.
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute("CREATE UNIQUE INDEX CONCURRENTLY tags_label_key ON tags (label)")
            for _ in range(12):
                conn.execute("SELECT count(*) FROM events WHERE kind = 'k1'")
                conn.execute("SELECT count(*) FROM small_events WHERE kind = 'k1'")
        yield port, db, url
    finally:
        fx.drop_database(port, db)
        fx.release_cluster()


@pytest.fixture(scope="module")
def result(problems):
    _, _, url = problems
    return fx.scan(url, unused_index_mb=0)


def titles(result, rule):
    return [f.title for f in fx.by_rule(result, rule)]


def test_fk_without_usable_index_is_reported_with_ddl(result):
    fks = {f.evidence["constraint"]: f for f in fx.by_rule(result, "db.fk_without_index")}
    orders = fks["orders_customer_id_fkey"]
    assert orders.severity == "high"  # 20 000 rows
    assert orders.evidence["ddl"].startswith("CREATE INDEX CONCURRENTLY")
    assert "(customer_id)" in orders.evidence["ddl"]
    assert orders.key == "fk:public.orders(customer_id)->customers"


def test_fk_covers_follow_the_definition(result):
    fks = {f.evidence["constraint"] for f in fx.by_rule(result, "db.fk_without_index")}
    # A partial index and an INCLUDE column do not cover ...
    assert "payments_order_id_fkey" in fks
    assert "shipments_order_id_fkey" in fks
    # ... an index with the FK's columns in another order does; so does a plain one.
    assert "stores_country_code_fkey" not in fks
    assert "reviews_customer_id_fkey" not in fks
    assert fx.check(result, "db.fk_without_index").status == CHECK_FAILED


def test_fk_finding_carries_the_measured_saving(result):
    orders = next(
        f
        for f in fx.by_rule(result, "db.fk_without_index")
        if f.evidence["constraint"] == "orders_customer_id_fkey"
    )
    measured = orders.evidence["measured"]
    assert measured["cost_after"] < measured["cost_before"]
    assert measured["saving_pct"] >= 50
    assert "HypoPG" in orders.fix_hint


def test_duplicates_are_labelled_and_never_the_constraint_index(result):
    dups = {
        f.evidence["index"].split(" ON ")[0]: f.evidence["kind"]
        for f in fx.by_rule(result, "db.duplicate_index")
    }
    assert dups == {
        "CREATE INDEX customers_email_idx": "exact",  # the unique index makes it redundant
        "CREATE INDEX orders_status_idx": "prefix",
        "CREATE INDEX orders_created_b": "exact",  # one of the pair, not both
    }


def test_unused_index_that_is_a_fks_only_cover_is_kept(result):
    unused = " ".join(titles(result, "db.unused_index"))
    assert "reviews_body_idx" in unused
    assert "reviews_customer_idx" not in unused
    kept = result.summary["unused_fk_covers_kept"]
    assert sorted(k["index"] for k in kept) == [
        "public.reviews_customer_idx",
        "public.stores_code_country_idx",  # the reordered cover of the composite FK
    ]
    # Unique and primary-key indexes enforce something: never "unused".
    assert "customers_pkey" not in unused and "customers_email_key" not in unused


def test_invalid_index_and_not_valid_constraint(result):
    assert titles(result, "db.invalid_index") == [
        "Index public.tags_label_key is invalid (a failed CREATE INDEX CONCURRENTLY?)"
    ]
    constraint = fx.by_rule(result, "db.invalid_constraint")
    assert [f.evidence["definition"] for f in constraint] == [
        "CHECK ((status <> ''::text)) NOT VALID"
    ]
    assert "VALIDATE CONSTRAINT orders_status_chk" in constraint[0].fix_hint


def test_seq_scan_heavy_includes_tables_without_any_index(result):
    heavy = {f.location: f for f in fx.by_rule(result, "db.seqscan_heavy")}
    assert "public.events" in heavy
    assert heavy["public.events"].evidence["idx_scan"] is None
    assert "no index at all" in heavy["public.events"].title
    assert "public.small_events" not in heavy  # below the row threshold


def test_sequence_overflow_uses_the_column_type(result):
    seqs = fx.by_rule(result, "db.sequence_overflow")
    assert [f.location for f in seqs] == ["counters.id"]
    assert seqs[0].evidence["max"] == 2147483647
    assert "TYPE bigint" in seqs[0].fix_hint


def test_vacuum_health_reports_dead_rows(result):
    assert any("public.churn" in t and "dead rows" in t for t in titles(result, "db.vacuum_health"))
    assert not any("public.orders" in t for t in titles(result, "db.vacuum_health"))


def test_every_check_reports_an_outcome(result):
    assert sorted(c.check_id for c in result.checks) == sorted(CHECK_IDS)
    assert fx.check(result, "db.txid_wraparound").status == CHECK_PASSED
    assert fx.check(result, "db.capabilities").status == CHECK_PASSED
    assert result.verdict == "fail"


def test_replication_view_says_there_is_no_standby(result):
    (finding,) = fx.by_rule(result, "db.replication")
    assert finding.key == "replication:no_standby"
    assert result.summary["replication"] == {"role": "primary", "standbys": 0, "slots": 0}


def test_fingerprints_are_stable_across_runs(problems, result):
    _, _, url = problems
    again = fx.scan(url, unused_index_mb=0, checks=["db.fk_without_index", "db.duplicate_index"])
    first = {
        f.fingerprint("db")
        for f in result.findings
        if f.rule_id in {"db.fk_without_index", "db.duplicate_index"}
    }
    assert {f.fingerprint("db") for f in again.findings} == first
    # Only the checks asked for (and the capabilities) ran: nothing else may be marked fixed.
    assert {c.check_id for c in again.checks} == {
        "db.capabilities",
        "db.fk_without_index",
        "db.duplicate_index",
    }


def test_sessions_long_running_and_idle_in_transaction(problems):
    port, db, url = problems
    idle = psycopg.connect(fx.url(port, db), application_name="shop-api")
    idle.execute("SELECT 1")  # opens a transaction and leaves it idle
    started = threading.Event()

    def sleeper():
        with psycopg.connect(fx.url(port, db), application_name="report-job", autocommit=True) as c:
            started.set()
            c.execute("SELECT pg_sleep(3)")

    thread = threading.Thread(target=sleeper)
    thread.start()
    try:
        started.wait(5)
        with fx.admin(port, db) as conn:
            for _ in range(100):  # until the sleeper is active and the idle one aged
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'report-job' "
                    "AND state = 'active' AND now() - query_start > interval '0.3 s'"
                ).fetchone()
                if row[0]:
                    break
                conn.execute("SELECT pg_sleep(0.05)")
        res = fx.scan(
            url,
            long_running_s=0.2,
            idle_in_tx_s=0.2,
            checks=["db.long_running", "db.idle_in_tx", "db.conn_headroom"],
        )
    finally:
        thread.join()
        idle.close()
    (long,) = fx.by_rule(res, "db.long_running")
    assert long.location == "report-job" and "pg_sleep" in long.evidence["query"]
    (stuck,) = fx.by_rule(res, "db.idle_in_tx")
    assert stuck.location == "shop-api"
    assert "idle_in_transaction_session_timeout" in stuck.fix_hint
    conns = res.summary["connections"]
    apps = {(r["application_name"], r["state"]) for r in conns["by_application_state"]}
    assert ("shop-api", "idle in transaction") in apps
    assert ("report-job", "active") in apps
    assert conns["available"] == 40 - 3  # max_connections - superuser_reserved_connections
