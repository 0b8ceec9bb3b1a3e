"""Each problem planted in slow mode is gone in fast mode."""

import asyncio
import gzip
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from examples.shop_api.common.metrics import Metrics
from examples.shop_api.common.seeding import example_ids
from examples.shop_api.fast import routes as fast_routes
from examples.shop_api.fast.cache import REDIS_KEY_PREFIX, MemoryCache, RedisCache
from examples.shop_api.fast.db import MAX_OVERFLOW, POOL_SIZE
from examples.shop_api.fast.routes import MAX_PAGE_SIZE
from examples.shop_api.slow import routes as slow_routes
from tests.conftest import need, reachable
from tests.shop_api.conftest import (
    ALLOWED_ORIGIN,
    API_KEY,
    SECRET_MESSAGE,
    SEED,
    index_names,
    sqlite_objects,
)

EVIL_ORIGIN = "https://evil.example"
# uvicorn closes the connection after an unhandled exception; do not reuse it.
CLOSE = {"Connection": "close"}
REDIS_URL = "redis://127.0.0.1:6379/15"


def test_a_list_page_costs_one_query_whatever_its_size(fast_shop):
    first = fast_shop.get("/items", params={"limit": 5}).json()

    assert fast_shop.queries("/items", params={"limit": 5}) == 1
    assert fast_shop.queries("/items", params={"limit": MAX_PAGE_SIZE}) == 1
    assert fast_shop.queries("/items", params={"limit": 50, "cursor": first["next_cursor"]}) == 1
    category_id = str(example_ids(SEED)[0])
    assert fast_shop.queries("/items", params={"category_id": category_id}) == 1


def test_search_costs_one_query(fast_shop):
    assert fast_shop.queries("/items/search", params={"q": "Chair", "limit": 50}) == 1


def test_item_detail_costs_one_query_then_none_from_the_cache(fast_shop):
    item_id = uuid.UUID(fast_shop.get("/items", params={"limit": 1}).json()["items"][0]["id"])
    assert fast_shop.queries(f"/items/{item_id}") == 1
    assert fast_shop.queries(f"/items/{item_id}") == 0


def test_stats_cost_two_queries_on_the_long_lived_pool(fast_shop):
    path = f"/categories/{example_ids(SEED)[0]}/stats"
    fast_shop.get(path)
    opened = fast_shop.metric("db_connections_opened_total")

    assert fast_shop.queries(path) == 2
    assert fast_shop.metric("db_connections_opened_total") == opened


def test_page_size_is_bounded(fast_shop):
    response = fast_shop.get("/items", params={"limit": MAX_PAGE_SIZE + 1})

    assert response.status_code == 422
    assert fast_shop.get("/items/search", params={"q": "Chair", "limit": 10_000}).status_code == 422
    assert fast_shop.get("/categories", params={"limit": 10_000}).status_code == 422


def test_malformed_cursor_is_a_clean_400(fast_shop):
    response = fast_shop.get("/items", params={"cursor": "not-a-cursor"})

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid cursor"}


def test_server_errors_say_nothing_of_the_internals(fast_shop):
    response = fast_shop.get("/test/boom", headers=CLOSE)

    assert response.status_code == 500
    body = response.json()
    assert set(body) == {"detail", "request_id"}
    assert body["detail"] == "Internal Server Error"
    assert SECRET_MESSAGE not in response.text


def test_cors_allows_only_the_configured_origins_without_credentials(fast_shop):
    evil = fast_shop.get("/items", params={"limit": 1}, headers={"Origin": EVIL_ORIGIN})
    allowed = fast_shop.get("/items", params={"limit": 1}, headers={"Origin": ALLOWED_ORIGIN})
    preflight = fast_shop.client.options(
        "/items/bulk",
        headers={"Origin": EVIL_ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    assert "access-control-allow-origin" not in evil.headers
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "access-control-allow-credentials" not in allowed.headers
    assert preflight.status_code == 400


def test_large_responses_are_gzipped(fast_shop):
    response = fast_shop.get("/items", params={"limit": 200}, headers={"Accept-Encoding": "gzip"})
    raw = fast_shop.client.build_request(
        "GET", "/items", params={"limit": 200}, headers={"Accept-Encoding": "gzip"}
    )
    compressed = fast_shop.client.send(raw, stream=True)
    body = b"".join(compressed.iter_raw())
    compressed.close()

    assert response.headers["content-encoding"] == "gzip"
    assert len(body) * 3 < len(gzip.decompress(body))


def test_security_headers_are_set(fast_shop):
    headers = fast_shop.get("/health").headers

    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert "content-security-policy" not in fast_shop.get("/docs").headers


def test_item_detail_shows_only_public_fields(fast_shop):
    item = fast_shop.get(f"/items/{example_ids(SEED)[1]}").json()

    assert "cost_cents" not in item


def test_export_is_streamed(fast_shop):
    with fast_shop.client.stream("GET", "/items/export") as response:
        chunks = list(response.iter_bytes())

    assert "content-length" not in response.headers
    assert response.headers["transfer-encoding"] == "chunked"
    lines = b"".join(chunks).decode().splitlines()
    assert json.loads(lines[0])["id"]


def test_concurrent_requests_overlap_their_waits(shops, backend, monkeypatch):
    """The burst that slow mode's blocking call serializes overlaps in fast mode.

    Counted, not timed: each mode's warehouse call records how many of its
    calls are in flight at once. Fast mode's calls wait until a second one has
    started (so the burst must overlap); slow mode's, being synchronous on the
    event loop, can never see a second.
    """
    peak = {"slow": 0, "fast": 0}
    in_flight = {"slow": 0, "fast": 0}
    lock = threading.Lock()

    def enter(mode):
        with lock:
            in_flight[mode] += 1
            peak[mode] = max(peak[mode], in_flight[mode])

    def leave(mode):
        with lock:
            in_flight[mode] -= 1

    slow_original = slow_routes._warehouse_stock

    def slow_stock(item_id):
        enter("slow")
        try:
            return slow_original(item_id)
        finally:
            leave("slow")

    fast_original = fast_routes.warehouse_stock
    overlapped = asyncio.Event()

    async def fast_stock(item_id):
        enter("fast")
        try:
            if peak["fast"] >= 2:
                overlapped.set()
            await asyncio.wait_for(overlapped.wait(), timeout=10)
            return await fast_original(item_id)
        finally:
            leave("fast")

    monkeypatch.setattr(slow_routes, "_warehouse_stock", slow_stock)
    monkeypatch.setattr(fast_routes, "warehouse_stock", fast_stock)
    requests = 20
    for mode in ("slow", "fast"):
        shop = shops.get(backend, mode)
        path = f"/items/{example_ids(SEED)[1]}"
        with ThreadPoolExecutor(max_workers=requests) as pool:
            answers = list(
                pool.map(lambda _, shop=shop, path=path: shop.get(path), range(requests))
            )
        assert all(answer.status_code == 200 for answer in answers)

    assert peak["slow"] == 1
    assert peak["fast"] >= 2


def test_engine_is_configured_by_the_book(fast_shop):
    engine = fast_shop.app.state.engine

    assert not engine.echo
    assert engine.pool._pre_ping is True
    assert fast_shop.metric("db_pool_size") == POOL_SIZE
    assert fast_shop.metric("db_pool_max_overflow") == MAX_OVERFLOW


def test_pool_figures_move(fast_shop):
    before = fast_shop.metric("db_pool_checkouts_total")
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: fast_shop.get("/items", params={"limit": 100}), range(8)))

    assert fast_shop.metric("db_pool_checkouts_total") >= before + 8
    assert fast_shop.metric("db_pool_checked_out") == 0


def _new_items(count: int) -> dict:
    category_id = str(example_ids(SEED)[0])
    return {
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


def test_bulk_create_needs_the_api_key_and_costs_constant_queries(scratch_shop, backend):
    shop = scratch_shop(backend, "fast")

    anonymous = shop.client.post("/items/bulk", json=_new_items(2))
    wrong = shop.client.post("/items/bulk", json=_new_items(2), headers={"X-API-Key": "nope"})
    small = shop.client.post("/items/bulk", json=_new_items(3), headers={"X-API-Key": API_KEY})
    large = shop.client.post("/items/bulk", json=_new_items(40), headers={"X-API-Key": API_KEY})

    assert anonymous.status_code == wrong.status_code == 401
    assert small.status_code == large.status_code == 201
    assert large.json()["created"] == 40
    # One category check and one batched INSERT, however many rows.
    assert int(small.headers["X-DB-Queries"]) == int(large.headers["X-DB-Queries"]) == 2
    created = large.json()["ids"][0]
    assert shop.get(f"/items/{created}").json()["name"] == "Fresh Linen Basket"
    assert shop.get("/items/search", params={"q": "fresh linen"}).json()


def test_bulk_create_rejects_bad_input_cleanly(scratch_shop, backend):
    shop = scratch_shop(backend, "fast")
    headers = {"X-API-Key": API_KEY}
    body = _new_items(1)
    duplicate = {"items": body["items"] * 2}
    unknown_category = _new_items(1)
    unknown_category["items"][0]["category_id"] = str(uuid.uuid4())

    assert shop.client.post("/items/bulk", json=body, headers=headers).status_code == 201
    assert shop.client.post("/items/bulk", json=body, headers=headers).status_code == 409
    assert shop.client.post("/items/bulk", json=duplicate, headers=headers).status_code == 409
    assert (
        shop.client.post("/items/bulk", json=unknown_category, headers=headers).status_code == 422
    )
    assert (
        shop.client.post("/items/bulk", json=_new_items(1_001), headers=headers).status_code == 422
    )


def test_schema_has_the_right_indexes(fast_shop):
    indexes = index_names(fast_shop.database_url)

    assert "ix_items_sku" not in indexes
    assert "ix_items_updated_at" not in indexes
    assert indexes["ix_items_category_created"] == ["category_id", "created_at", "id"]
    assert indexes["ix_items_created_id"] == ["created_at", "id"]
    if fast_shop.backend == "sqlite":
        assert {"items_fts", "items_fts_insert", "items_fts_delete"} <= sqlite_objects(
            fast_shop.database_url
        )
    else:
        assert "ix_items_name_fts" in indexes


def test_memory_cache_is_bounded_and_expires():
    metrics = Metrics(mode="fast", database="sqlite")
    cache = MemoryCache(metrics, max_entries=3, ttl_seconds=0.05)

    async def exercise() -> tuple[int, bytes | None, bytes | None]:
        for key in "abcde":
            await cache.set(key, key.encode())
        size = await cache.size()
        newest = await cache.get("e")
        await asyncio.sleep(0.06)
        return size, newest, await cache.get("e")

    size, newest, expired = asyncio.run(exercise())

    assert size == 3
    assert newest == b"e"
    assert expired is None
    assert (metrics.cache_hits, metrics.cache_misses) == (1, 1)


@pytest.mark.redis
def test_redis_cache_expires_keys_and_counts_them():
    need(reachable(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    metrics = Metrics(mode="fast", database="sqlite")
    cache = RedisCache(metrics, REDIS_URL, ttl_seconds=5, key_prefix=f"test:{uuid.uuid4().hex}:")

    async def exercise() -> tuple[bytes | None, bytes | None, int, int | None]:
        await cache.set("a", b"1")
        found, missing = await cache.get("a"), await cache.get("b")
        size = await cache.size()
        ttl = await cache.client.ttl(cache.key_prefix + "a")
        await cache.client.delete(cache.key_prefix + "a")
        await cache.close()
        return found, missing, size, ttl

    found, missing, size, ttl = asyncio.run(exercise())

    assert (found, missing, size) == (b"1", None, 1)
    assert 0 < ttl <= 5


@pytest.mark.redis
def test_item_detail_is_cached_in_redis_when_configured(scratch_shop):
    need(reachable(REDIS_URL), f"Redis not reachable at {REDIS_URL}")
    item_id = example_ids(SEED)[1]
    with redis.Redis.from_url(REDIS_URL) as client:
        client.delete(f"{REDIS_KEY_PREFIX}{item_id}")
    shop = scratch_shop("sqlite", "fast", redis_url=REDIS_URL)
    path = f"/items/{item_id}"

    assert shop.queries(path) == 1
    assert shop.queries(path) == 0
    assert shop.metric("shop_cache_entries", backend="redis") >= 1


def test_redis_outage_degrades_to_the_database(scratch_shop):
    shop = scratch_shop("sqlite", "fast", redis_url="redis://127.0.0.1:1/0")
    path = f"/items/{example_ids(SEED)[1]}"

    assert shop.queries(path) == 1
    assert shop.queries(path) == 1
