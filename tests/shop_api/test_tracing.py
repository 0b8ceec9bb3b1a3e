"""The demo target with tracing on: real OTLP/HTTP exports, received on loopback and read by
Kaizen's decoder and trace analysis — the planted N+1 shows at runtime, the fixed twin has none."""

import time
from pathlib import Path

import httpx
import pytest

from examples.shop_api.common import tracing
from examples.shop_api.common.config import ConfigurationError
from optimizations.analyzers.observe import otlp, traces
from tests.shop_api.traced_demo import Receiver, serve_traced, stop

ITEMS_PAGES = 3


def drive_and_collect(mode: str, database_url: str, tmp_path: Path) -> list[otlp.Span]:
    receiver = Receiver()
    process, base, output = serve_traced(
        mode,
        database_url,
        # No path: the standard /v1/traces is added.
        receiver.url,
        tmp_path / f"{mode}.log",
    )
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(ITEMS_PAGES):
                assert client.get("/items", params={"limit": 50}).status_code == 200
            assert client.get("/metrics").status_code == 200
        # Wait for the exports of the requests just made (sent every 100 ms).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = traces.requests(receiver.received())
            if sum(r.endpoint == "GET /items" for r in found.requests) >= ITEMS_PAGES:
                break
            time.sleep(0.1)
    finally:
        stop(process, output)
        receiver.close()
    assert receiver.requests, "no export arrived"
    assert {path for path, _, _ in receiver.requests} == {"/v1/traces"}
    assert {kind for _, kind, _ in receiver.requests} == {"application/x-protobuf"}
    return receiver.received()


@pytest.fixture(scope="module")
def traced(databases, tmp_path_factory):
    """What the slow demo and its fixed twin exported for the same requests, on one dataset."""
    url = databases.new("sqlite")
    tmp = tmp_path_factory.mktemp("traced")
    spans = {mode: drive_and_collect(mode, url, tmp) for mode in ("slow", "fast")}
    return {mode: (found, traces.requests(found)) for mode, found in spans.items()}


def test_the_slow_demo_shows_its_planted_n_plus_one_at_runtime(traced):
    _, slow = traced["slow"]

    found = traces.n_plus_one(slow.requests)

    (n_plus_one,) = [n for n in found if n.endpoint == "GET /items"]
    assert n_plus_one.family.startswith("SELECT categories.")
    assert "WHERE categories.id = ?" in n_plus_one.family
    assert n_plus_one.repeats >= traces.N_PLUS_ONE_THRESHOLD
    assert n_plus_one.requests == n_plus_one.of_requests == ITEMS_PAGES
    assert n_plus_one.finding().evidence["route"] == "GET /items"


def test_the_fixed_twin_has_none(traced):
    _, fast = traced["fast"]

    assert [r.endpoint for r in fast.requests].count("GET /items") == ITEMS_PAGES
    assert traces.n_plus_one(fast.requests) == []


def test_the_exported_spans_carry_what_kaizen_reads(traced):
    for mode, (_, analysis) in traced.items():
        (items,) = [e for e in traces.endpoints(analysis.requests) if e.endpoint == "GET /items"]
        assert items.requests == ITEMS_PAGES and items.errors == 0, mode
        assert items.db_ms > 0 and items.app_ms > 0, mode
        assert analysis.orphans == 0, mode
        # /metrics is scraped often and is not traced; /health was (the start-up check).
        assert "GET /metrics" not in {r.endpoint for r in analysis.requests}, mode
    slow_items = [r for r in traced["slow"][1].requests if r.endpoint == "GET /items"]
    fast_items = [r for r in traced["fast"][1].requests if r.endpoint == "GET /items"]
    assert min(len(r.statements) for r in slow_items) > max(len(r.statements) for r in fast_items)


def test_a_slow_requests_waterfall(traced):
    spans, analysis = traced["slow"]
    (items,) = [e for e in traces.endpoints(analysis.requests) if e.endpoint == "GET /items"]
    slowest = next(r for r in analysis.requests if r.trace_id == items.slowest_trace_id)

    rows = traces.waterfall(spans, slowest.trace_id)

    root, *below = rows
    assert (root.kind, root.depth, root.offset_ms, root.detail) == ("server", 0, 0.0, "/items")
    assert root.duration_ms == slowest.duration_ms
    # The database rows: the pool's connect, then one per statement in the order sent.
    statements = [row for row in below if row.category == "db" and row.name != "connect"]
    assert [row.detail for row in statements] == [s.text for s in slowest.statements]
    assert all(row.depth >= 1 and 0 <= row.offset_ms <= root.duration_ms for row in below)
    offsets = [row.offset_ms for row in statements]
    assert offsets == sorted(offsets)


def test_tracing_is_off_unless_an_endpoint_is_named(monkeypatch):
    monkeypatch.delenv(tracing.ENDPOINT_VARIABLE, raising=False)

    assert tracing.resolve_endpoint() is None
    assert tracing.resolve_endpoint("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert (
        tracing.resolve_endpoint("http://c:4318/otlp/v1/traces") == "http://c:4318/otlp/v1/traces"
    )
    monkeypatch.setenv(tracing.ENDPOINT_VARIABLE, "https://kaizen.local/otlp/7/v1/traces")
    assert tracing.resolve_endpoint() == "https://kaizen.local/otlp/7/v1/traces"


@pytest.mark.parametrize(
    ("endpoint", "sample", "message"),
    [
        ("127.0.0.1:4318", None, "must be an http"),
        ("http://127.0.0.1:4318", 1.5, "between 0 and 1"),
    ],
)
def test_unusable_tracing_settings_are_refused(endpoint, sample, message):
    with pytest.raises(ConfigurationError, match=message):
        tracing.install(None, "slow", endpoint, sample)
