"""DB scan: windowed statement statistics, slow-query rate, slow families,
routes, the HypoPG advisor and the target's pool metrics."""

from __future__ import annotations

import http.server
import threading

import pytest

from optimizations.analyzers.base import CHECK_FAILED, CHECK_PASSED, LocalContext, TargetSpec
from optimizations.analyzers.dbscan import ActivitySampler, run
from optimizations.analyzers.dbscan.advisor import Advisor
from optimizations.analyzers.dbscan.capabilities import detect
from optimizations.analyzers.dbscan.common import ScanState, Thresholds
from optimizations.analyzers.dbscan.connect import open_session
from optimizations.analyzers.dbscan.snapshots import diff, take_snapshot

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres

SCHEMA = """
CREATE TABLE customers (id bigserial PRIMARY KEY, name text);
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id bigint REFERENCES customers (id),
                     total numeric);
INSERT INTO customers (name) SELECT 'name ' || i FROM generate_series(1, 2000) i;
INSERT INTO orders (customer_id, total) SELECT 1 + i % 2000, i FROM generate_series(1, 20000) i;
ANALYZE customers, orders;
"""
ORDERS = "/*route='GET /customers/{id}/orders'*/ SELECT * FROM orders WHERE customer_id = %s"
SEARCH = "SELECT id, name FROM customers WHERE name ILIKE %s"
SLEEP = "SELECT pg_sleep(%s)"


@pytest.fixture(scope="module")
def shop():
    port = fx.acquire_cluster()
    try:
        yield port, fx.fresh_database(port, "kz_queries")
    finally:
        fx.drop_database(port, "kz_queries")
        fx.release_cluster()


@pytest.fixture(scope="module")
def nohypo():
    port = fx.acquire_cluster()
    try:
        url = fx.fresh_database(port, "kz_nohypo", extensions=("pg_stat_statements",))
        with fx.admin(port, "kz_nohypo") as conn:
            conn.execute(SCHEMA)
        yield port, url
    finally:
        fx.drop_database(port, "kz_nohypo")
        fx.release_cluster()


def workload(port: int, db: str) -> None:
    """60 FK lookups, 50 ILIKE searches, 60 sleeps of which 3 take 150 ms."""
    with fx.admin(port, db) as conn:
        for i in range(60):
            conn.execute(ORDERS, (1 + i,))
        for i in range(50):
            conn.execute(SEARCH, (f"%name {i}%",))
        for i in range(60):
            conn.execute(SLEEP, (0.15 if i % 20 == 0 else 0,))


class LoadInWindow(LocalContext):
    """Runs the workload synchronously once the 'before' snapshot has been taken."""

    def __init__(self, port, db):
        super().__init__()
        self.port, self.db, self.done = port, db, False

    def progress(self, percent, step=""):
        super().progress(percent, step)
        if step == "db.fk_without_index" and not self.done:
            self.done = True
            workload(self.port, self.db)


@pytest.fixture(scope="module")
def windowed(shop):
    port, url = shop
    with fx.admin(port, "kz_queries") as conn:
        conn.execute(SCHEMA)
        conn.execute(ORDERS, (1,))  # the family exists before the window: a true diff
    ctx = LoadInWindow(port, "kz_queries")
    params = {
        "window": 1,
        "slow_query_ms": 100,
        "slow_family_mean_ms": 0.2,
        "slow_family_min_calls": 50,
        "db_avg_ms": 1000,
    }
    result = run(TargetSpec(name="shop", database_url=url), params, ctx)
    assert ctx.done
    return result


def family(result, needle):
    found = [f for f in fx.by_rule(result, "db.slow_families") if needle in f.evidence["query"]]
    assert found, [f.evidence["query"] for f in fx.by_rule(result, "db.slow_families")]
    return found[0]


def test_window_counts_only_the_window(windowed):
    orders = family(windowed, "FROM orders WHERE customer_id")
    assert orders.evidence["calls"] == 60  # the call before the window is not counted
    assert orders.evidence["window_exact_min_max"] is False
    assert orders.key == "family:SELECT * FROM orders WHERE customer_id = $1"


def test_kaizens_own_statements_are_not_in_the_statistics(windowed):
    assert all(
        "kaizen" not in f.evidence["query"]
        for f in windowed.findings
        if f.rule_id == "db.slow_families"
    )
    calls = next(m.value for m in windowed.measurements if m.name == "db.calls")
    assert calls == 60 + 50 + 60


def test_slow_query_rate_bounds_contain_the_truth(windowed):
    rate = windowed.summary["slow_query_rate"]
    assert rate["calls"] == 170
    assert rate["slow_low"] <= 3 <= rate["slow_high"]
    assert rate["low_pct"] > 0  # the window saw its 150 ms maximum
    assert rate["low_pct"] <= rate["estimate_pct"] <= rate["high_pct"]
    assert rate["exact_pct"] is None
    names = {m.name for m in windowed.measurements}
    assert {
        "db.slow_query_rate.low",
        "db.slow_query_rate.high",
        "db.slow_query_rate.estimate",
    } <= names


def test_slow_family_carries_route_and_evidence(windowed):
    orders = family(windowed, "FROM orders WHERE customer_id")
    assert orders.evidence["routes"] == {"GET /customers/{id}/orders": 0}
    assert orders.location == "GET /customers/{id}/orders"
    assert "from GET /customers/{id}/orders" in orders.title
    assert 0 < orders.evidence["share_pct"] <= 100


def test_advisor_suggests_the_fk_index_measured_with_hypopg(windowed):
    suggestions = {f.key: f for f in fx.by_rule(windowed, "db.index_suggestion")}
    fk = suggestions["index:public.orders btree (customer_id)"]
    assert fk.evidence["validated"] is True
    assert (
        fk.evidence["ddl"]
        == "CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id);"
    )
    (served,) = fk.evidence["queries"]
    assert served["cost_before"] >= 100 and served["saving_pct"] >= 50
    assert served["cost_after"] < served["cost_before"]


def test_leading_wildcard_search_gets_an_unvalidated_trigram_index(windowed):
    trgm = next(f for f in fx.by_rule(windowed, "db.index_suggestion") if "gin_trgm_ops" in f.key)
    assert trgm.evidence["validated"] is False
    assert trgm.severity == "low" and trgm.title.startswith("Unvalidated")
    assert "USING gin (name gin_trgm_ops)" in trgm.evidence["ddl"]
    assert "CREATE EXTENSION pg_trgm" in trgm.fix_hint  # not created in this database


def test_measurements_for_trends(windowed):
    got = {m.name: m for m in windowed.measurements}
    assert got["db.query.avg"].unit == "ms" and got["db.query.avg"].value > 0
    assert got["db.window"].value == 1
    assert got["db.cache_hit"].unit == "%"
    assert got["db.connections.use"].unit == "%"
    assert got["db.scan.statements"].value == windowed.summary["scan"]["statements"]


def test_hypothetical_index_needs_a_fresh_prepare(shop):
    """The pitfall itself: the cost only drops because each measurement re-PREPAREs."""
    _, url = shop
    session = open_session(url)
    try:
        state = ScanState(session, detect(session), Thresholds(), LocalContext())
        advisor = Advisor(state)
        session.run("SET plan_cache_mode = force_generic_plan")
        query = "SELECT * FROM orders WHERE customer_id = $1"
        before, _ = advisor.cost(query)
        after, used = advisor.hypothetical_cost(query, ("public", "orders"), ("customer_id",))
        assert used and after < before / 2
        session.run("PREPARE stale AS SELECT * FROM orders WHERE customer_id = $1")
        session.scalar("EXPLAIN (FORMAT JSON) EXECUTE stale(NULL)")  # caches the generic plan
        oid = session.scalar(
            "SELECT indexrelid FROM hypopg_create_index('CREATE INDEX ON orders (customer_id)')"
        )
        plan = session.scalar("EXPLAIN (FORMAT JSON) EXECUTE stale(NULL)")
        assert plan[0]["Plan"]["Node Type"] == "Seq Scan"  # prepared before: old plan
        session.run("SELECT hypopg_drop_index(%(o)s)", {"o": oid})
        session.run("DEALLOCATE ALL")
        assert session.scalar("SELECT count(*) FROM hypopg_list_indexes") == 0
    finally:
        session.close()


def test_without_hypopg_suggestions_are_heuristic(nohypo):
    port, url = nohypo
    with fx.admin(port, "kz_nohypo") as conn:
        for i in range(60):
            conn.execute(ORDERS, (1 + i,))
    result = fx.scan(url, slow_family_mean_ms=0.2, slow_family_min_calls=50)
    (sug,) = [f for f in fx.by_rule(result, "db.index_suggestion") if "customer_id" in f.key]
    assert sug.evidence["validated"] is False
    assert "HypoPG is not available" in sug.evidence["how"]
    assert result.summary["advisor"]["hypopg"] is False
    (fk,) = fx.by_rule(result, "db.fk_without_index")
    assert "measured" not in fk.evidence


def test_activity_sampler_attributes_live_statements_to_the_route_under_load(shop):
    port, url = shop

    def slow_request():
        with fx.admin(port, "kz_queries") as conn:
            conn.execute("SELECT pg_sleep(0.4), count(*) FROM customers")

    with ActivitySampler(url, ("127.0.0.0/8",), interval=0.02) as sampler:
        sampler.label = "GET /report"
        thread = threading.Thread(target=slow_request)
        thread.start()
        thread.join()
    routes = sampler.routes_by_queryid()
    assert any(r.get("GET /report", 0) >= 2 for r in routes.values()), routes
    assert sampler.errors == []


class Metrics(http.server.BaseHTTPRequestHandler):
    """A target exposing its pool: 2 of 10 checked out at first, then 9 with 3 timeouts."""

    hits = 0

    def do_GET(self):
        first = Metrics.hits == 0
        Metrics.hits += 1
        body = "\n".join(
            [
                "# TYPE db_pool_size gauge",
                "db_pool_size 5",
                "db_pool_max_overflow 5",
                f"db_pool_checked_out {2 if first else 9}",
                f"db_pool_checkout_timeouts_total {0 if first else 3}",
                f'db_query_duration_seconds_bucket{{le="0.1"}} {0 if first else 57}',
                f'db_query_duration_seconds_bucket{{le="+Inf"}} {0 if first else 60}',
            ]
        )
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def metrics_server():
    Metrics.hits = 0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metrics)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pool_use_from_the_targets_metrics(shop, metrics_server):
    _, url = shop
    target = TargetSpec(name="shop", base_url=metrics_server, database_url=url)
    params = {"window": 1, "slow_query_ms": 100, "checks": ["db.pool_usage", "db.slow_query_rate"]}
    result = run(target, params, LocalContext())
    outcome = fx.check(result, "db.pool_usage")
    assert outcome.status == CHECK_FAILED
    pool = result.summary["pool"]
    assert pool["peak_use_pct"] == 90.0 and pool["checkout_timeouts"] == 3
    (finding,) = fx.by_rule(result, "db.pool_usage")
    assert finding.severity == "high"
    # The target's histogram has a bucket at the threshold: the rate is exact.
    assert result.summary["slow_query_rate"]["exact_pct"] == 5.0
    assert result.summary["slow_query_rate"]["exact_source"] == "target's query-duration histogram"


def test_pool_usage_unknown_without_metrics(shop):
    _, url = shop
    result = fx.scan(url, checks=["db.pool_usage"])
    outcome = fx.check(result, "db.pool_usage")
    assert outcome.status == "unknown" and "db_pool_checked_out" in outcome.detail


def test_exact_rate_from_execution_samples(shop):
    _, url = shop
    result = fx.scan(
        url,
        checks=["db.slow_query_rate"],
        slow_query_ms=100,
        execution_samples_ms=[5, 5, 150, 5],
        slow_query_rate_pct=50,
    )
    assert result.summary["slow_query_rate"]["exact_pct"] == 25.0
    assert fx.check(result, "db.slow_query_rate").status == CHECK_PASSED


def test_snapshot_diff_on_a_live_server(shop):
    port, url = shop
    session = open_session(url)
    try:
        caps = detect(session)
        before = take_snapshot(session, caps.pgss, schema=caps.pgss_schema, with_text=False)
        with fx.admin(port, "kz_queries") as conn:
            for i in range(7):
                conn.execute("SELECT count(*) FROM customers WHERE id < %s", (i,))
        after = take_snapshot(session, caps.pgss, schema=caps.pgss_schema, with_text=True)
    finally:
        session.close()
    (fam,) = [f for f in diff(before, after) if "FROM customers WHERE id <" in f.query]
    assert fam.calls == 7
    assert fam.min_ms <= fam.mean_ms <= fam.max_ms
