"""The integrity probes against the demo target: slow mode's planted integrity bugs are
each found (true twin), the fixed twin gives none (false twin) — on SQLite and PostgreSQL.

Each mode runs under real uvicorn on its own seeded database (tests/shop_api/conftest.py)."""

from __future__ import annotations

import pytest

from examples.shop_api import cli
from optimizations.analyzers import integrity
from optimizations.analyzers.base import (
    CHECK_PASSED,
    AnalysisError,
    Cancelled,
    LocalContext,
    TargetSpec,
    validate_params,
)
from tests.shop_api.conftest import API_KEY, CATEGORIES, ITEMS, SEED, Databases, start_shop

PLANTED = {
    "integrity.lost_update": "PATCH /items/{item_id}/stock",
    "integrity.bulk_atomicity": "POST /items/bulk",
    "integrity.unique_race": "POST /items",
    "integrity.idempotency": "POST /orders",
}
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def spec_for(shop, allows_writes: bool = True) -> TargetSpec:
    return TargetSpec(
        name=f"shop {shop.mode}",
        base_url=str(shop.client.base_url).rstrip("/"),
        auth_header=("X-API-Key", API_KEY) if shop.mode == "fast" else None,
        allows_writes=allows_writes,
    )


@pytest.fixture(scope="module", params=BACKENDS)
def scans(request, tmp_path_factory):
    """Both modes probed once per backend: (results by mode, shops by mode)."""
    databases = Databases(tmp_path_factory.mktemp("integrity"))
    results, shops = {}, {}
    try:
        for mode in ("slow", "fast"):
            shop = start_shop(mode, request.param, databases.new(request.param))
            shops[mode] = shop
            params = validate_params(integrity.PARAMS, {})
            results[mode] = integrity.run(spec_for(shop), params, LocalContext())
        yield results, shops
    finally:
        for shop in shops.values():
            shop.stop()
        databases.drop_all()


def by_rule(result):
    return {finding.rule_id: finding for finding in result.findings}


def test_slow_mode_yields_each_planted_integrity_bug(scans):
    results, _ = scans
    found = by_rule(results["slow"])

    assert {rule: f.location for rule, f in found.items()} == PLANTED
    assert all(f.category == "integrity" for f in found.values())
    assert found["integrity.lost_update"].severity == "high"
    assert found["integrity.lost_update"].evidence["lost"] > 0
    assert found["integrity.bulk_atomicity"].evidence["elements_left"] == 2
    assert 500 in found["integrity.unique_race"].evidence["statuses"]
    assert len(found["integrity.idempotency"].evidence["ids"]) >= 2
    assert results["slow"].verdict == "fail"


def test_fixed_twin_yields_none(scans):
    results, _ = scans
    result = results["fast"]

    assert result.findings == []
    assert {c.check_id: c.status for c in result.checks} == {
        f"integrity.{name}": CHECK_PASSED for name in integrity.PROBES
    }
    assert result.verdict == "pass", result.verdict_reason


def test_findings_carry_replayable_curl_with_credentials_masked(scans):
    results, _ = scans
    lost = by_rule(results["slow"])["integrity.lost_update"]

    patch = next(line for line in lost.evidence["requests"] if "-X PATCH" in line)
    assert patch.startswith("curl -sS -X PATCH http://127.0.0.1:")
    assert "--data-raw '{\"delta\": 1}'" in patch and "# → 200" in patch
    assert "SET stock = stock + :delta" in lost.fix_hint
    # The fast twin's requests carried the API key; a curl line never shows it.
    for result in results.values():
        for finding in result.findings:
            assert API_KEY not in repr(finding.evidence)


def test_probes_undo_what_the_api_lets_them(scans):
    results, shops = scans
    fast = shops["fast"]

    # Stock changes were compensated and orders cancelled; items cannot be deleted (no
    # DELETE in the API), so they are listed as left behind for the demo's reseed.
    assert results["fast"].summary["left_behind"]
    assert all("/items/" in left for left in results["fast"].summary["left_behind"])
    first = fast.get("/items", params={"limit": 50}).json()["items"]
    seeded = [item for item in first if item["sku"].startswith("SKU-")]
    stock = fast.get(f"/items/{seeded[0]['id']}/stock").json()["stock"]
    assert stock == 0


def test_a_target_that_allows_no_writes_is_refused(scans):
    _, shops = scans
    target = spec_for(shops["fast"], allows_writes=False)

    with pytest.raises(AnalysisError, match="does not allow writes"):
        integrity.run(target, validate_params(integrity.PARAMS, {}), LocalContext())


def test_after_reseed_the_data_size_is_the_seeded_one(scans):
    _, shops = scans
    for shop in shops.values():
        cli.reseed(shop.database_url, items=ITEMS, categories=CATEGORIES, seed=SEED)
        assert len(shop.get("/items/export").text.splitlines()) == ITEMS


class CancelAfter(LocalContext):
    """Cancelled at the ``n``-th time the analyzer asks (each request asks once or more)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.asked, self.n = 0, n

    def cancelled(self) -> bool:
        self.asked += 1
        if self.asked >= self.n:
            self.cancel()
        return super().cancelled()


def test_a_cancel_stops_the_probes_between_requests_and_skips_the_cleanup(scans):
    _, shops = scans
    ctx = CancelAfter(40)

    with pytest.raises(Cancelled):
        integrity.run(spec_for(shops["fast"]), validate_params(integrity.PARAMS, {}), ctx)

    assert ctx.step != "cleaning up"
