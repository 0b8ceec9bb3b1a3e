"""The write endpoints (login, orders, stock, bulk) in both modes, and the integrity bugs
planted in slow mode that fast mode fixes: lost update, partial bulk, unique race, ignored
Idempotency-Key. Each runs on a database of its own ("writes"), so the read tests' counts
stay true."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from examples.shop_api import cli
from examples.shop_api.common.auth import DEFAULT_DEMO_PASSWORD, DEMO_CUSTOMERS
from examples.shop_api.common.seeding import example_ids
from tests.shop_api.conftest import API_KEY, ITEMS, SEED, SHOP_PARAMS

NEW_PATHS = {
    "/items",
    "/auth/token",
    "/orders",
    "/orders/{order_id}",
    "/orders/{order_id}/cancel",
    "/items/{item_id}/stock",
}
CONCURRENT = 8
# Slow mode's 500s close the connection (Starlette re-raises after answering): no keep-alive.
CLOSE = {"Connection": "close"}


@pytest.fixture(params=SHOP_PARAMS)
def writable(request, shops):
    backend, mode = request.param
    return shops.get(backend, mode, "writes")


def staff(shop) -> dict[str, str]:
    """Credentials for catalogue writes: none in slow mode (planted), the API key in fast."""
    return {"X-API-Key": API_KEY} if shop.mode == "fast" else {}


def login(shop, username: str = DEMO_CUSTOMERS[0]) -> dict[str, str]:
    response = shop.client.post(
        "/auth/token", json={"username": username, "password": DEFAULT_DEMO_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def an_item(shop) -> str:
    return shop.get("/items", params={"limit": 1}).json()["items"][0]["id"]


def a_category(shop) -> str:
    return shop.get("/categories").json()[0]["id"]


def new_item(category_id: str, marker: str, sku: str | None = None) -> dict:
    return {
        "sku": sku or f"T-{uuid.uuid4().hex[:12]}",
        "name": f"Probe {marker} Basket",
        "price_cents": 1_000,
        "cost_cents": 500,
        "category_id": category_id,
    }


def at_once(calls):
    """Run the calls concurrently; their results in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def test_openapi_declares_the_write_endpoints(writable):
    document = writable.get("/openapi.json").json()

    assert set(document["paths"]) >= NEW_PATHS
    parameters = document["paths"]["/orders"]["post"]["parameters"]
    assert "Idempotency-Key" in {p["name"] for p in parameters}
    schemes = document["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"]["flows"]["password"]["tokenUrl"] == "auth/token"


def test_login_by_form_or_json_and_refusals(writable):
    form = writable.client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "bob", "password": DEFAULT_DEMO_PASSWORD},
    )
    wrong = writable.client.post("/auth/token", json={"username": "bob", "password": "nope"})
    unknown = writable.client.post(
        "/auth/token", json={"username": "mallory", "password": DEFAULT_DEMO_PASSWORD}
    )
    malformed = writable.client.post("/auth/token", json={"username": "bob"})
    forged = writable.client.get(
        f"/orders/{uuid.uuid4()}", headers={"Authorization": "Bearer abc.def"}
    )

    assert form.status_code == 200 and form.json()["token_type"] == "bearer"
    assert wrong.status_code == unknown.status_code == 401
    assert malformed.status_code == 422
    assert forged.status_code == 401


def test_an_order_is_placed_read_and_cancelled_once(writable):
    alice, bob = login(writable, "alice"), login(writable, "bob")
    item_id = an_item(writable)
    price = writable.get(f"/items/{item_id}").json()["price_cents"]

    placed = writable.client.post(
        "/orders", json={"item_id": item_id, "quantity": 2}, headers=alice
    )
    order = placed.json()
    read = writable.get(f"/orders/{order['id']}", headers=alice)
    by_other = writable.get(f"/orders/{order['id']}", headers=bob)
    cancelled = writable.client.post(f"/orders/{order['id']}/cancel", headers=alice)
    again = writable.client.post(f"/orders/{order['id']}/cancel", headers=alice)

    assert placed.status_code == 201, placed.text
    assert order["customer"] == "alice" and order["status"] == "placed"
    assert order["total_cents"] == 2 * price
    assert read.json() == order
    assert by_other.status_code == 404
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancelled_at"] is not None
    assert again.status_code == 409


def test_an_order_of_an_unknown_item_is_refused(writable):
    response = writable.client.post(
        "/orders", json={"item_id": str(uuid.uuid4())}, headers=login(writable)
    )

    assert response.status_code == 422


def test_fast_orders_need_a_customer_or_the_api_key(shops, backend):
    shop = shops.get(backend, "fast", "writes")
    item_id = an_item(shop)

    anonymous = shop.client.post("/orders", json={"item_id": item_id})
    back_office = shop.client.post("/orders", json={"item_id": item_id}, headers=staff(shop))

    assert anonymous.status_code == 401
    assert back_office.status_code == 201 and back_office.json()["customer"] == "api-key"


def test_stock_changes_by_a_delta_and_never_below_zero(writable):
    item_id = an_item(writable)
    start = writable.get(f"/items/{item_id}/stock").json()["stock"]

    up = writable.client.patch(
        f"/items/{item_id}/stock", json={"delta": 5}, headers=staff(writable)
    )
    down = writable.client.patch(
        f"/items/{item_id}/stock", json={"delta": -2}, headers=staff(writable)
    )
    too_far = writable.client.patch(
        f"/items/{item_id}/stock", json={"delta": -(start + 100)}, headers=staff(writable)
    )
    missing = writable.client.patch(
        f"/items/{uuid.uuid4()}/stock", json={"delta": 1}, headers=staff(writable)
    )

    assert up.json() == {"item_id": item_id, "stock": start + 5}
    assert down.json()["stock"] == start + 3
    assert too_far.status_code == 409
    assert writable.get(f"/items/{item_id}/stock").json()["stock"] == start + 3
    assert missing.status_code == 404


def test_fast_stock_changes_need_the_api_key(shops, backend):
    shop = shops.get(backend, "fast", "writes")

    response = shop.client.patch(f"/items/{an_item(shop)}/stock", json={"delta": 1})

    assert response.status_code == 401


def test_concurrent_stock_changes_lose_updates_only_in_slow_mode(writable):
    item_id = an_item(writable)
    path, headers = f"/items/{item_id}/stock", staff(writable)
    writable.client.patch(path, json={"delta": 1}, headers=headers)  # the row exists
    start = writable.get(path).json()["stock"]

    responses = at_once(
        [lambda: writable.client.patch(path, json={"delta": 1}, headers=headers)] * CONCURRENT
    )
    final = writable.get(path).json()["stock"]

    assert [r.status_code for r in responses] == [200] * CONCURRENT
    if writable.mode == "slow":
        assert final < start + CONCURRENT  # acknowledged changes were overwritten
    else:
        assert final == start + CONCURRENT
        assert sorted(r.json()["stock"] for r in responses) == list(
            range(start + 1, start + CONCURRENT + 1)
        )


def test_a_bulk_create_with_one_bad_row_is_partial_only_in_slow_mode(writable):
    marker = uuid.uuid4().hex[:10]
    category_id = a_category(writable)
    rows = [new_item(category_id, marker), new_item(category_id, marker)]
    rows.append(new_item(str(uuid.uuid4()), marker))  # unknown category

    response = writable.client.post(
        "/items/bulk", json={"items": rows}, headers={**staff(writable), **CLOSE}
    )
    left = writable.get("/items/search", params={"q": f"Probe {marker}"}).json()

    if writable.mode == "slow":
        assert response.status_code == 500
        assert len(left) == 2  # the rows before the bad one stayed committed
    else:
        assert response.status_code == 422
        assert left == []


def test_two_creates_of_one_sku_at_once(writable):
    row = new_item(a_category(writable), uuid.uuid4().hex[:10])
    headers = {**staff(writable), **CLOSE}

    statuses = sorted(
        r.status_code
        for r in at_once([lambda: writable.client.post("/items", json=row, headers=headers)] * 2)
    )
    sequential = writable.client.post("/items", json=row, headers=headers)
    found = writable.get("/items/search", params={"q": row["name"]}).json()

    assert statuses == ([201, 500] if writable.mode == "slow" else [201, 409])
    assert sequential.status_code == 409  # checked in code in slow mode, by the index in fast
    assert [item["sku"] for item in found] == [row["sku"]]


def test_a_retried_order_with_an_idempotency_key(writable):
    headers = {**login(writable, "carol"), "Idempotency-Key": uuid.uuid4().hex}
    body = {"item_id": an_item(writable), "quantity": 1}

    first = writable.client.post("/orders", json=body, headers=headers)
    retry = writable.client.post("/orders", json=body, headers=headers)
    different = writable.client.post("/orders", json={**body, "quantity": 3}, headers=headers)

    assert first.status_code == retry.status_code == 201
    if writable.mode == "slow":
        assert retry.json()["id"] != first.json()["id"]  # the key is ignored: two orders
    else:
        assert retry.json() == first.json()
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert different.status_code == 422


def test_fast_concurrent_retries_with_one_key_make_one_order(shops, backend):
    shop = shops.get(backend, "fast", "writes")
    headers = {**login(shop, "bob"), "Idempotency-Key": uuid.uuid4().hex}
    body = {"item_id": an_item(shop)}

    responses = at_once([lambda: shop.client.post("/orders", json=body, headers=headers)] * 4)

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1


def test_reseed_puts_the_seeded_data_back(scratch_shop, backend):
    shop = scratch_shop(backend, "fast")
    category_id = a_category(shop)
    rows = [new_item(category_id, "reseed") for _ in range(3)]
    assert (
        shop.client.post("/items/bulk", json={"items": rows}, headers=staff(shop)).status_code
        == 201
    )
    item_id = str(example_ids(SEED)[1])  # a seeded item
    shop.client.patch(f"/items/{item_id}/stock", json={"delta": 4}, headers=staff(shop))
    order = shop.client.post("/orders", json={"item_id": item_id}, headers=login(shop)).json()

    result = cli.reseed(shop.database_url)  # the seeded sizes are read from the data

    assert result.items == ITEMS
    assert len(shop.get("/items/export").text.splitlines()) == ITEMS
    assert shop.get(f"/items/{item_id}/stock").json()["stock"] == 0
    assert shop.get(f"/orders/{order['id']}", headers=login(shop)).status_code == 404
