"""Every endpoint answers correctly, in both modes and on both databases, with the same API."""

import json
import re
import uuid

import pytest

from examples.shop_api.common.seeding import example_ids
from tests.shop_api.conftest import CATEGORIES, ITEMS, SEED

PATHS = {
    "/health",
    "/metrics",
    "/categories",
    "/categories/{category_id}/stats",
    "/items",
    "/items/search",
    "/items/export",
    "/items/{item_id}",
    "/items/bulk",
}
ITEM_FIELDS = {
    "id",
    "sku",
    "name",
    "price_cents",
    "attributes",
    "category_id",
    "created_at",
    "updated_at",
    "category",
}
CATEGORY_FIELDS = {"id", "name", "slug", "created_at"}


def exported(shop) -> list[dict]:
    response = shop.get("/items/export")
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines()]


def test_health(shop):
    response = shop.get("/health")

    assert response.status_code == 200
    expected_database = "sqlite" if shop.backend == "sqlite" else "postgresql"
    assert response.json() == {"status": "ok", "mode": shop.mode, "database": expected_database}


def test_openapi_lists_every_operation_with_path_examples(shop):
    document = shop.get("/openapi.json").json()

    assert set(document["paths"]) >= PATHS
    category_id, item_id = example_ids()
    item_parameter = document["paths"]["/items/{item_id}"]["get"]["parameters"][0]
    assert item_parameter["examples"]["seeded"]["value"] == str(item_id)
    stats = document["paths"]["/categories/{category_id}/stats"]["get"]
    category_parameter = next(p for p in stats["parameters"] if p["name"] == "category_id")
    assert category_parameter["examples"]["seeded"]["value"] == str(category_id)


def test_docs_page_is_served_without_the_internet(shop):
    response = shop.get("/docs")

    assert response.status_code == 200
    assert "cdn." not in response.text  # every asset is served by the target itself
    assert "/_docs/swagger-ui-bundle.js" in response.text
    assert shop.get("/_docs/swagger-ui-bundle.js").status_code == 200
    assert shop.get("/_docs/swagger-ui.css").status_code == 200


def test_categories_are_listed_by_slug(shop):
    categories = shop.get("/categories").json()

    assert len(categories) == CATEGORIES
    assert set(categories[0]) == CATEGORY_FIELDS
    assert [c["slug"] for c in categories] == sorted(c["slug"] for c in categories)


def test_items_page_has_items_with_their_category(shop):
    page = shop.get("/items", params={"limit": 10}).json()

    assert len(page["items"]) == 10
    assert page["next_cursor"]
    item = page["items"][0]
    assert set(item) == ITEM_FIELDS
    assert item["category"]["id"] == item["category_id"]
    created = [i["created_at"] for i in page["items"]]
    assert created == sorted(created, reverse=True)


def test_walking_the_pages_of_a_category_returns_each_item_once(shop):
    category_id = str(example_ids(SEED)[0])
    expected = sorted(
        (row for row in exported(shop) if row["category_id"] == category_id),
        key=lambda row: (row["created_at"], row["id"]),
        reverse=True,
    )
    seen, cursor = [], None
    while True:
        params = {"limit": 7, "category_id": category_id}
        if cursor:
            params["cursor"] = cursor
        page = shop.get("/items", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break

    assert seen == [row["id"] for row in expected]
    assert len(expected) > 7


def test_item_detail_has_its_category_and_stock(shop):
    item_id = example_ids(SEED)[1]

    item = shop.get(f"/items/{item_id}").json()

    assert item["id"] == str(item_id)
    assert item["sku"] == "SKU-00000001"
    assert item["category"]["id"] == item["category_id"]
    assert item["in_stock"] == item_id.int % 50


def test_unknown_item_is_404_and_a_bad_id_422(shop):
    assert shop.get(f"/items/{uuid.uuid4()}").status_code == 404
    assert shop.get("/items/not-a-uuid").status_code == 422


def test_search_finds_items_by_a_word_of_their_name(shop):
    results = shop.get("/items/search", params={"q": "Steel", "limit": 100}).json()

    everything = [row for row in exported(shop) if "Steel" in row["name"].split()]
    assert {item["id"] for item in results} == {row["id"] for row in everything}
    assert all(item["category"]["id"] == item["category_id"] for item in results)
    assert [i["name"] for i in results] == sorted(i["name"] for i in results)


def test_search_for_nothing_known_is_empty(shop):
    assert shop.get("/items/search", params={"q": "zzzunknown"}).json() == []


def test_category_stats_count_items_and_expensive_share(shop):
    category_id = str(example_ids(SEED)[0])
    rows = [row for row in exported(shop) if row["category_id"] == category_id]
    expensive = [row for row in rows if row["price_cents"] >= 5_000]

    stats = shop.get(
        f"/categories/{category_id}/stats", params={"expensive_over_cents": 5_000}
    ).json()

    assert stats["item_count"] == len(rows)
    assert stats["expensive_count"] == len(expensive)
    assert stats["expensive_share"] == round(len(expensive) / len(rows), 4)
    average = sum(row["price_cents"] for row in rows) / len(rows)
    assert stats["average_price_cents"] == pytest.approx(average, abs=0.01)


def test_stats_of_an_unknown_category_is_404(shop):
    assert shop.get(f"/categories/{uuid.uuid4()}/stats").status_code == 404


def test_export_is_ndjson_of_every_item(shop):
    response = shop.get("/items/export")

    assert response.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in response.text.splitlines()]
    assert len(rows) == ITEMS
    assert len({row["id"] for row in rows}) == ITEMS
    assert set(rows[0]) == {"id", "sku", "name", "price_cents", "category_id", "created_at"}


def test_every_response_tells_its_query_count(shop):
    response = shop.get("/categories")

    assert int(response.headers["X-DB-Queries"]) >= 1


def test_metrics_expose_the_documented_names(shop):
    shop.get("/items")

    samples = shop.metrics()

    names = {name for name, _labels in samples}
    assert {
        "shop_info",
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "http_requests_in_progress",
        "db_pool_size",
        "db_pool_checked_out",
        "db_pool_checked_in",
        "db_pool_overflow",
        "db_pool_max_overflow",
        "db_pool_checkouts_total",
        "db_pool_checkout_timeouts_total",
        "db_connections_opened_total",
        "db_queries_total",
        "shop_cache_entries",
        "shop_cache_hits_total",
        "shop_cache_misses_total",
        "process_resident_memory_bytes",
        "process_pss_memory_bytes",
        "process_peak_resident_memory_bytes",
        "process_cpu_seconds_total",
    } <= names
    labels = frozenset({"method": "GET", "route": "/items", "status": "200"}.items())
    assert samples[("http_requests_total", labels)] >= 1
    inf_bucket = frozenset({**dict(labels), "le": "+Inf"}.items())
    assert (
        samples[("http_request_duration_seconds_bucket", inf_bucket)]
        == samples[("http_request_duration_seconds_count", labels)]
    )


def test_routes_are_labelled_by_template_not_by_url(shop):
    shop.get(f"/items/{uuid.uuid4()}")
    shop.get("/no/such/path")

    samples = shop.metrics()

    routes = {dict(labels)["route"] for name, labels in samples if name == "http_requests_total"}
    assert {"/items/{item_id}", "unmatched"} <= routes
    assert not [route for route in routes if re.search(r"[0-9a-f]{8}-[0-9a-f]{4}", route)]


@pytest.mark.parametrize(
    "path",
    [
        "/categories",
        "/items?limit=25",
        "/items/search?q=Chair",
        f"/categories/{example_ids(SEED)[0]}/stats",
        "/items/export",
    ],
)
def test_both_modes_answer_the_same(shops, backend, path):
    slow = shops.get(backend, "slow").get(path)
    fast = shops.get(backend, "fast").get(path)

    assert slow.status_code == fast.status_code == 200
    if path.startswith("/items?"):
        # The cursor format differs (OFFSET versus keyset); the items do not.
        assert slow.json()["items"] == fast.json()["items"]
    else:
        assert slow.content == fast.content


def test_item_detail_is_the_same_in_both_modes_but_for_the_leak(shops, backend):
    path = f"/items/{example_ids(SEED)[1]}"
    slow = shops.get(backend, "slow").get(path).json()
    fast = shops.get(backend, "fast").get(path).json()

    assert slow.pop("cost_cents") > 0
    assert slow == fast


def test_pool_checkout_timeouts_are_counted(shop):
    before = shop.metric("db_pool_checkout_timeouts_total")

    # uvicorn closes the connection after an unhandled exception; do not reuse it.
    response = shop.get("/test/pool-timeout", headers={"Connection": "close"})

    assert response.status_code == (503 if shop.mode == "fast" else 500)
    assert shop.metric("db_pool_checkout_timeouts_total") == before + 1
    if shop.mode == "fast":
        assert response.headers["retry-after"] == "1"
