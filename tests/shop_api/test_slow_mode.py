"""Each problem planted in slow mode is really there (README.md lists them)."""

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from examples.shop_api.common.seeding import example_ids
from tests.shop_api.conftest import ITEMS, SECRET_MESSAGE, SEED, index_names, sqlite_objects

EVIL_ORIGIN = "https://evil.example"
# uvicorn closes the connection after an unhandled exception; do not reuse it.
CLOSE = {"Connection": "close"}


def test_listing_items_reads_each_category_lazily(slow_shop):
    response = slow_shop.get("/items", params={"limit": 50})

    categories = {item["category_id"] for item in response.json()["items"]}
    # One query for the page, then one lazy load per category not yet in the session's
    # identity map: N+1 up to the number of distinct categories.
    assert int(response.headers["X-DB-Queries"]) == 1 + len(categories)
    assert len(categories) >= 8


def test_queries_grow_with_the_page_size(slow_shop):
    small = slow_shop.queries("/items", params={"limit": 5})
    large = slow_shop.queries("/items", params={"limit": 100})

    assert large > small + 5


def test_search_reads_each_category_lazily(slow_shop):
    response = slow_shop.get("/items/search", params={"q": "Chair", "limit": 50})

    categories = {item["category_id"] for item in response.json()}
    assert int(response.headers["X-DB-Queries"]) == 1 + len(categories)


def test_page_size_has_no_upper_bound(slow_shop):
    response = slow_shop.get("/items", params={"limit": 1_000_000})

    assert response.status_code == 200
    assert len(response.json()["items"]) == ITEMS


def test_cursor_is_a_plain_offset(slow_shop):
    everything = slow_shop.get("/items", params={"limit": 30}).json()["items"]

    page = slow_shop.get("/items", params={"limit": 10, "cursor": "20"}).json()

    assert page["items"] == everything[20:30]


def test_malformed_cursor_returns_the_stack_trace(slow_shop):
    response = slow_shop.get("/items", params={"cursor": "not-a-number"}, headers=CLOSE)

    assert response.status_code == 500
    body = response.json()
    assert body["error"] == "ValueError"
    assert "Traceback (most recent call last)" in "".join(body["traceback"])


def test_server_errors_leak_internals(slow_shop):
    response = slow_shop.get("/test/boom", headers=CLOSE)

    assert response.status_code == 500
    assert SECRET_MESSAGE in response.text
    assert "Traceback" in response.text


def test_cors_mirrors_any_origin_with_credentials(slow_shop):
    response = slow_shop.get("/items", params={"limit": 1}, headers={"Origin": EVIL_ORIGIN})
    preflight = slow_shop.client.options(
        "/items/bulk",
        headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert response.headers["access-control-allow-origin"] == EVIL_ORIGIN
    assert response.headers["access-control-allow-credentials"] == "true"
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == EVIL_ORIGIN


def test_large_responses_are_not_compressed(slow_shop):
    response = slow_shop.get("/items", params={"limit": 200}, headers={"Accept-Encoding": "gzip"})

    assert "content-encoding" not in response.headers
    assert int(response.headers["content-length"]) > 50_000


def test_no_security_headers(slow_shop):
    headers = slow_shop.get("/health").headers

    assert "x-content-type-options" not in headers
    assert "x-frame-options" not in headers
    assert "content-security-policy" not in headers


def test_item_detail_leaks_the_internal_cost(slow_shop):
    item = slow_shop.get(f"/items/{example_ids(SEED)[1]}").json()

    assert "cost_cents" in item


def test_export_builds_the_whole_body_in_memory(slow_shop):
    response = slow_shop.get("/items/export")

    # A Content-Length means the body existed in full before the first byte was sent.
    assert int(response.headers["content-length"]) == len(response.content)


def test_item_cache_keeps_every_item_read(slow_shop):
    export = slow_shop.get("/items/export").text.splitlines()
    ids = [json.loads(line)["id"] for line in export]
    for item_id in ids[:60]:
        slow_shop.get(f"/items/{item_id}")

    # The module-level cache never evicts; other tests may have filled it further.
    assert slow_shop.metric("shop_cache_entries", backend="memory") >= 60


def test_statements_are_echoed_and_the_pool_is_never_checked(slow_shop):
    engine = slow_shop.app.state.engine

    assert engine.echo is True
    assert engine.pool._pre_ping is False


def test_pool_figures_move(slow_shop):
    before = slow_shop.metric("db_pool_checkouts_total")
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda _: slow_shop.get("/items", params={"limit": 100}), range(16)))

    assert slow_shop.metric("db_pool_checkouts_total") >= before + 16
    assert slow_shop.metric("db_pool_size") == 5
    assert slow_shop.metric("db_pool_max_overflow") == 10
    assert slow_shop.metric("db_pool_checked_out_peak") >= 2
    # The session dependency ends after the response is sent: wait for the connections.
    deadline = time.monotonic() + 5
    while slow_shop.metric("db_pool_checked_out") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert slow_shop.metric("db_pool_checked_out") == 0


def test_every_stats_request_opens_a_new_connection(slow_shop):
    path = f"/categories/{example_ids(SEED)[0]}/stats"
    before = slow_shop.metric("db_connections_opened_total")

    for _ in range(3):
        assert slow_shop.get(path).status_code == 200

    # A new engine per request: its pool, and so a new connection, every time.
    assert slow_shop.metric("db_connections_opened_total") >= before + 3


def test_bulk_create_commits_and_refreshes_row_by_row(scratch_shop, backend):
    shop = scratch_shop(backend, "slow")
    category_id = str(example_ids(SEED)[0])

    def create(count: int) -> int:
        body = {
            "items": [
                {
                    "sku": f"NEW-{uuid.uuid4().hex[:12]}",
                    "name": "Fresh Linen Basket",
                    "price_cents": 1_000,
                    "cost_cents": 500,
                    "category_id": category_id,
                }
                for _ in range(count)
            ]
        }
        # No credentials needed: anyone may write.
        response = shop.client.post("/items/bulk", json=body)
        assert response.status_code == 201, response.text
        assert response.json()["created"] == count
        return int(response.headers["X-DB-Queries"])

    # An INSERT and a refresh SELECT per row.
    assert create(3) == 6
    assert create(10) == 20


def test_schema_has_the_wrong_indexes(slow_shop):
    indexes = index_names(slow_shop.database_url)

    assert indexes["ix_items_sku"] == ["sku"]  # duplicates the unique constraint's index
    assert indexes["ix_items_updated_at"] == ["updated_at"]  # read by no query
    leading = {columns[0] for columns in indexes.values()}
    assert "category_id" not in leading  # the foreign key has no index
    assert "created_at" not in leading  # nor has the sort column
    if slow_shop.backend == "sqlite":
        assert "items_fts" not in sqlite_objects(slow_shop.database_url)
