"""The example scenario file against the real demo shop: a load test of journeys (log in,
browse, order, read back, cancel) with per-step figures, on both the slow shop and its
fixed twin, started as the README starts them."""

from pathlib import Path

import pytest

from optimizations.analyzers.base import LocalContext, TargetSpec
from optimizations.analyzers.loadgen import run
from tests.analyzers.test_securityscan_shop import API_KEY, _shop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "shop_journey.yaml"
STEPS = [
    "order and cancel › log in",
    "order and cancel › browse items",
    "order and cancel › create order",
    "order and cancel › read order",
    "order and cancel › cancel order",
    "window shopping › browse items",
    "window shopping › read item",
]


@pytest.mark.parametrize("mode", ["slow", "fast"])
def test_the_example_journey_runs_against_the_demo_shop(mode, tmp_path):
    server, log, base_url = _shop(mode, tmp_path)
    try:
        target = TargetSpec(name=f"shop {mode}", base_url=base_url, max_rate=200)
        result = run(
            target,
            {
                "mode": "load",
                "rate": 20,
                "duration": 4,
                "scenario": EXAMPLE.read_text(),
                "cpu": "none",
            },
            LocalContext(),
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    summary = result.summary
    assert [op["name"] for op in summary["operations"]] == STEPS
    journeys = {journey["name"]: journey for journey in summary["journeys"]}
    for journey in journeys.values():
        assert journey["failed"] == 0, journey["failures"]
        assert journey["started"] == journey["completed"] + journey["unfinished"]
    ordered = journeys["order and cancel"]
    assert ordered["completed"] > 0
    by_name = {op["name"]: op for op in summary["operations"]}
    # Every order created was read back and cancelled by the journey that created it.
    assert by_name["order and cancel › cancel order"]["ok"] == ordered["completed"]
    assert by_name["order and cancel › create order"]["error_rate"] == 0
    assert all(op["latency_ms"]["p95"] > 0 for op in summary["operations"] if op["requests"])


def test_write_path_load_on_the_demo_shop_refers_to_real_rows(tmp_path):
    # The fixed twin: what is checked here is the load generator's bodies — they name rows
    # that exist and keep unique codes unique (its sku is ^[A-Za-z0-9-]+$, at most 32, unique)
    # — not the slow shop's planted write races, whose per-item commits on SQLite could make a
    # valid order wait past its timeout on a busy machine.
    server, log, base_url = _shop("fast", tmp_path)
    ctx = LocalContext()
    try:
        target = TargetSpec(
            name="shop",
            base_url=base_url,
            max_rate=200,
            allows_writes=True,
            auth_header=("X-API-Key", API_KEY),  # the twin's writes need the key
        )
        result = run(
            target,
            {
                "mode": "load",
                "rate": 30,
                "duration": 3,
                "allow_writes": True,
                "exclude": ["GET /items/export"],
                # A thousand commits a request on the slow shop: measured elsewhere.
                "weights": {"POST /items/bulk ×1000": 0, "POST /items/bulk ×100": 0},
                "cpu": "none",
            },
            ctx,
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
    by_name = {op["name"]: op for op in result.summary["operations"]}
    # Valid bodies whose category_id and item_id name rows that exist: created, not refused.
    shop_log = (tmp_path / "fast.log").read_text(errors="replace")[-3000:]
    for name in ("POST /items", "POST /orders", "POST /items/bulk ×10"):
        op = by_name[name]
        assert op["ok"] > 0 and op["error_rate"] == 0, (op, shop_log)
    assert "POST /auth/token" not in by_name
    assert any("POST /auth/token skipped" in message for _, message in ctx.logs)
