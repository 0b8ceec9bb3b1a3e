"""Requests, endpoint figures, runtime N+1 and waterfalls from span records."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from optimizations.analyzers.observe import traces
from optimizations.analyzers.observe.otlp import Span

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
_ids = itertools.count(1)


def span(trace, parent=None, kind="internal", start=0, end=1, name="work", **attributes) -> Span:
    """A span of ``trace`` from ``start`` to ``end`` milliseconds after T0."""
    return Span(
        trace_id=f"{trace:032x}",
        span_id=f"{next(_ids):016x}",
        parent_id=parent.span_id if parent else None,
        name=name,
        kind=kind,
        start_ns=T0 + int(start * MS),
        end_ns=T0 + int(end * MS),
        **attributes,
    )


def server(trace, route="/items", method="GET", start=0, end=10, **attributes) -> Span:
    return span(
        trace,
        kind="server",
        start=start,
        end=end,
        name=f"{method} {route}",
        route=route,
        method=method,
        **attributes,
    )


def query(trace, parent, sql, start, end) -> Span:
    return span(
        trace, parent, "client", start, end, name="SELECT", db_system="sqlite", statement=sql
    )


def test_a_request_splits_its_time_between_database_outbound_calls_and_the_app():
    root = server(1, start=0, end=100, status_code=200)
    handler = span(1, root, start=1, end=99, name="handler")
    spans = [
        root,
        handler,
        # two queries at once (asyncio.gather): their overlap counts once
        query(1, handler, "SELECT a FROM t", 10, 30),
        query(1, handler, "SELECT b FROM t", 20, 40),
        # an outbound call that overlaps the second query by 5 ms
        span(1, handler, "client", 35, 60, name="GET", server_address="stock.local"),
        # a query that ran past the end of the request is clipped to it
        query(1, handler, "SELECT c FROM t", 95, 120),
    ]

    (request,) = traces.requests(spans).requests

    assert request.endpoint == "GET /items"
    assert request.db_ns == (30 + 5) * MS
    assert request.outbound_ns == 20 * MS
    assert request.app_ns == 45 * MS
    assert [s.text for s in request.statements] == [
        "SELECT a FROM t",
        "SELECT b FROM t",
        "SELECT c FROM t",
    ]


def test_a_call_to_another_service_is_that_services_request():
    root = server(2, route="/orders", end=50)
    call = span(2, root, "client", 5, 45, name="GET", server_address="inventory")
    remote = server(2, route="/stock/{sku}", start=10, end=40)
    remote = Span(**{**remote.__dict__, "parent_id": call.span_id})
    remote_query = query(2, remote, "SELECT n FROM stock WHERE sku = $1", 15, 35)

    found = traces.requests([root, call, remote, remote_query]).requests

    by_route = {r.route: r for r in found}
    assert by_route["/orders"].db_ns == 0 and by_route["/orders"].outbound_ns == 40 * MS
    assert by_route["/stock/{sku}"].db_ns == 20 * MS
    assert by_route["/orders"].statements == ()


def test_spans_without_their_server_span_are_counted_as_orphans():
    missing_root = span(3, name="lost")
    spans = [query(3, missing_root, "SELECT 1", 0, 1), server(4)]

    analysis = traces.requests(spans)

    assert analysis.orphans == 1 and len(analysis.requests) == 1


def test_method_and_route_come_from_the_span_name_when_attributes_are_missing():
    named = span(5, kind="server", name="POST /items/bulk")
    bare = span(6, kind="server", name="GET")

    found = traces.requests([named, bare]).requests

    assert sorted(r.endpoint for r in found) == ["GET (no route)", "POST /items/bulk"]


def test_endpoint_figures():
    spans = []
    for n in range(1, 11):
        root = server(100 + n, start=0, end=n, status_code=500 if n == 3 else 200)
        spans.append(root)
        spans += [query(100 + n, root, "SELECT 1", 0, 0.5) for _ in range(n % 3)]
    spans.append(server(200, route="/health", status_code=404))
    spans.append(server(201, route="/health", status="error"))

    found = traces.endpoints(traces.requests(spans).requests)

    items, health = found
    assert (items.endpoint, items.requests, items.errors) == ("GET /items", 10, 1)
    assert items.latency_ms == {
        "p50": 5.0,
        "p90": 9.0,
        "p95": 10.0,
        "p99": 10.0,
        "max": 10.0,
        "mean": 5.5,
    }
    assert items.statements_mean == pytest.approx(1.0) and items.statements_max == 2
    assert items.db_ms == pytest.approx(0.35)  # concurrent queries count once
    assert items.slowest_trace_id == f"{110:032x}"
    # a 404 is the client's mistake, an error status is the server's
    assert (health.requests, health.errors, health.error_rate) == (2, 1, 0.5)


@pytest.mark.parametrize(
    ("sql", "family"),
    [
        (
            "SELECT c.id FROM categories AS c WHERE c.id = 'a1' AND c.n > 12 LIMIT 1",
            "SELECT c.id FROM categories AS c WHERE c.id = ? AND c.n > ? LIMIT ?",
        ),
        ("SELECT * FROM t WHERE id IN ($1, $2, $3)", "SELECT * FROM t WHERE id IN (...)"),
        ("SELECT * FROM t WHERE id IN (%(a)s, %(b)s)", "SELECT * FROM t WHERE id IN (...)"),
        ("SELECT * FROM t WHERE id IN (__[POSTCOMPILE_id])", "SELECT * FROM t WHERE id IN (...)"),
        ("INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?)", "INSERT INTO t (a, b) VALUES (...)"),
        ("SELECT x::text, :name FROM t -- trailing", "SELECT x::text, ? FROM t"),
        ("/*route='/items'*/ SELECT  t2.col1\n FROM t2", "SELECT t2.col1 FROM t2"),
        ("SELECT 'it''s', E'\\n' FROM t", "SELECT ?, ? FROM t"),
    ],
)
def test_statement_families_collapse_values_and_lists(sql, family):
    assert traces.statement_family(sql) == family


def n_plus_one_request(trace, repeats, route="/items", sql=None):
    root = server(trace, route=route, end=100)
    spans = [root, query(trace, root, "SELECT items.id FROM items LIMIT 50", 1, 2)]
    for n in range(repeats):
        statement = sql or f"SELECT categories.id FROM categories WHERE categories.id = {n}"
        spans.append(query(trace, root, statement, 3 + n, 3.5 + n))
    return spans


def test_one_family_repeated_within_a_request_is_a_runtime_n_plus_one():
    spans = n_plus_one_request(300, 12) + n_plus_one_request(301, 7) + n_plus_one_request(302, 4)

    (found,) = traces.n_plus_one(traces.requests(spans).requests)

    assert found.endpoint == "GET /items"
    assert found.family == "SELECT categories.id FROM categories WHERE categories.id = ?"
    assert found.example == "SELECT categories.id FROM categories WHERE categories.id = 0"
    assert (found.repeats, found.requests, found.of_requests) == (12, 2, 3)
    assert found.trace_id == f"{300:032x}"
    assert found.db_ms == pytest.approx(6.0)
    finding = found.finding()
    assert finding.rule_id == "trace.n_plus_one" and finding.severity == "high"
    assert finding.location == "GET /items" and finding.evidence["route"] == "GET /items"
    assert finding.title == "Runtime N+1 on GET /items: one SELECT statement 12× in one request"


def test_the_finding_is_the_same_one_on_the_next_run():
    first = traces.n_plus_one(traces.requests(n_plus_one_request(310, 9)).requests)[0]
    again = traces.n_plus_one(traces.requests(n_plus_one_request(311, 30)).requests)[0]

    assert first.finding().fingerprint("trace") == again.finding().fingerprint("trace")


def test_below_the_threshold_or_housekeeping_is_no_n_plus_one():
    spans = n_plus_one_request(320, 4) + n_plus_one_request(321, 9, sql="SELECT 1")
    spans += n_plus_one_request(322, 9, route="/health", sql="SAVEPOINT sa_1")
    found = traces.requests(spans).requests

    assert traces.n_plus_one(found) == []
    assert [n.repeats for n in traces.n_plus_one(found, threshold=4)] == [4]
    with pytest.raises(ValueError, match="at least 2"):
        traces.n_plus_one(found, threshold=1)


def test_a_waterfall_lays_out_one_request_depth_first():
    root = server(400, start=0, end=50)
    first = span(400, root, start=2, end=30, name="handler")
    late = span(400, root, start=31, end=49, name="serialize")
    sql = query(400, first, "SELECT 1", 5, 9)
    call = span(400, first, "client", 10, 20, name="GET", server_address="stock.local")
    other = server(401)

    rows = traces.waterfall([late, sql, other, call, first, root], f"{400:032x}")

    assert [(r.name, r.depth, r.category) for r in rows] == [
        ("GET /items", 0, "app"),
        ("handler", 1, "app"),
        ("SELECT", 2, "db"),
        ("GET", 2, "outbound"),
        ("serialize", 1, "app"),
    ]
    assert [(r.offset_ms, r.duration_ms) for r in rows] == [
        (0.0, 50.0),
        (2.0, 28.0),
        (5.0, 4.0),
        (10.0, 10.0),
        (31.0, 18.0),
    ]
    assert rows[2].detail == "SELECT 1" and rows[3].detail == "stock.local"
    assert traces.waterfall([root], f"{999:032x}") == []


def test_latency_events_for_an_objective_stated_as_a_share_of_requests():
    spans = [
        server(500, end=200, status_code=200),
        server(501, end=600, status_code=200),
        server(502, end=10, status_code=503),
    ]

    events = traces.latency_events(traces.requests(spans).requests, objective_ms=500)

    start = datetime.fromtimestamp(T0 / 1e9, UTC)
    assert events == [
        (start + timedelta(milliseconds=200), True),
        (start + timedelta(milliseconds=600), False),
        (start + timedelta(milliseconds=10), False),
    ]
