"""Routes of the slow mode: a working API with the classic problems planted (see README.md)."""

import asyncio
import json
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from examples.shop_api.common.auth import (
    TOKEN_REQUEST_OPENAPI,
    TOKEN_TTL_SECONDS,
    optional_customer,
    read_credentials,
    verify_password,
)
from examples.shop_api.common.seeding import example_ids
from examples.shop_api.slow.db import SessionDep
from examples.shop_api.slow.models import Category, Customer, Item, Order, StockLevel
from examples.shop_api.slow.schemas import (
    BulkCreate,
    BulkCreated,
    CategoryOut,
    CategoryStats,
    ItemCreated,
    ItemIn,
    ItemOut,
    ItemPage,
    OrderIn,
    OrderOut,
    StockChange,
    StockOut,
    TokenOut,
)

EXAMPLE_CATEGORY_ID, EXAMPLE_ITEM_ID = example_ids()
WAREHOUSE_LATENCY_SECONDS = 0.002
# The planted integrity bugs' windows: wide enough that concurrent requests always overlap in
# them (on SQLite too), so Kaizen's integrity probes find the bugs every time.
STOCK_WRITE_WINDOW_SECONDS = 0.1
SKU_CHECK_WINDOW_SECONDS = 0.1
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="A retried request with the same key should create one order.",
    ),
]

ItemId = Annotated[
    uuid.UUID,
    Path(
        description="Id of the item.",
        openapi_examples={
            "seeded": {"summary": "First item of the default seed", "value": str(EXAMPLE_ITEM_ID)}
        },
    ),
]
CategoryId = Annotated[
    uuid.UUID,
    Path(
        description="Id of the category.",
        openapi_examples={
            "seeded": {
                "summary": "Biggest category of the default seed",
                "value": str(EXAMPLE_CATEGORY_ID),
            }
        },
    ),
]

router = APIRouter()

# PLANTED FSA305: module-level mutable state changed per request — an item cache that is
# never bounded nor expired, so memory grows with every distinct item read.
_item_cache: dict[uuid.UUID, dict] = {}


def cache_size() -> int:
    return len(_item_cache)


def _columns(row: Category | Item) -> dict:
    return {column.key: getattr(row, column.key) for column in row.__table__.columns}


def _warehouse_stock(item_id: uuid.UUID) -> int:
    """Units in stock, from the warehouse's synchronous client."""
    # PLANTED FSA104: a blocking call (it stands for a sync HTTP client) reached from an
    # async route; the whole event loop waits for it.
    time.sleep(WAREHOUSE_LATENCY_SECONDS)
    return item_id.int % 50


@router.get("/health", tags=["operations"], summary="Liveness and database check")
async def health(request: Request, session: SessionDep) -> dict[str, str]:
    await session.execute(text("SELECT 1"))
    return {"status": "ok", "mode": "slow", "database": request.app.state.metrics.database}


@router.get("/categories", response_model=list[CategoryOut], tags=["catalogue"])
async def list_categories(session: SessionDep):
    # PLANTED FSA105: unbounded result set, every category in one response.
    result = await session.scalars(select(Category).order_by(Category.slug))
    return result.all()


@router.get("/categories/{category_id}/stats", response_model=CategoryStats, tags=["analytics"])
async def category_stats(
    request: Request, category_id: CategoryId, expensive_over_cents: int = 10_000
):
    # PLANTED FSA201: an engine, and so a connection pool, created and disposed per request.
    engine = create_async_engine(request.app.state.database_url)
    try:
        async with AsyncSession(engine) as session:
            if await session.get(Category, category_id) is None:
                raise HTTPException(status_code=404, detail="Category not found")
            in_category = select(Item).where(Item.category_id == category_id)
            # PLANTED FSA103: one AsyncSession used by concurrent tasks (asyncio.gather).
            every_item, expensive_items = await asyncio.gather(
                session.scalars(in_category),
                session.scalars(in_category.where(Item.price_cents >= expensive_over_cents)),
            )
            # PLANTED FSA108: counting by loading every row.
            items = every_item.all()
            expensive_count = len(expensive_items.all())
    finally:
        await engine.dispose()
    item_count = len(items)
    average = round(sum(item.price_cents for item in items) / item_count, 2) if items else None
    return CategoryStats(
        category_id=category_id,
        item_count=item_count,
        expensive_count=expensive_count,
        expensive_share=round(expensive_count / item_count, 4) if items else 0.0,
        average_price_cents=average,
        expensive_over_cents=expensive_over_cents,
    )


@router.get("/items", response_model=ItemPage, tags=["catalogue"])
async def list_items(
    session: SessionDep,
    cursor: str | None = None,
    category_id: uuid.UUID | None = None,
    # PLANTED FSA105: page size without an upper bound (le=).
    limit: int = 50,
):
    # PLANTED: the cursor is trusted; a malformed one raises ValueError, a 500 whose body
    # carries the stack trace (security scan: error leakage, invalid input).
    offset = int(cursor) if cursor else 0
    query = select(Item).order_by(Item.created_at.desc(), Item.id.desc())
    if category_id is not None:
        query = query.where(Item.category_id == category_id)
    # PLANTED FSA106: OFFSET pagination driven by the request; deep pages scan and skip.
    items = (await session.scalars(query.offset(offset).limit(limit))).all()
    for item in items:
        # PLANTED FSA102: lazy relationship read per row while serializing (N+1).
        await item.awaitable_attrs.category
    next_cursor = str(offset + limit) if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/items/search", response_model=list[ItemOut], tags=["catalogue"])
async def search_items(
    session: SessionDep,
    q: Annotated[
        str, Query(min_length=1, description="Words of the item name.", examples=["lamp"])
    ],
    # PLANTED FSA105: page size without an upper bound (le=).
    limit: int = 20,
):
    # PLANTED FSA107: leading-wildcard ILIKE; no B-tree index can serve it.
    query = select(Item).where(Item.name.ilike(f"%{q}%")).order_by(Item.name, Item.id)
    items = (await session.scalars(query.limit(limit))).all()
    for item in items:
        # PLANTED FSA102: lazy relationship read per row while serializing (N+1).
        await item.awaitable_attrs.category
    return items


@router.get("/items/export", tags=["catalogue"], summary="Every item as NDJSON")
async def export_items(session: SessionDep) -> Response:
    # PLANTED FSA105: unbounded result set — and the memory problem: the whole table and the
    # whole response body are built in memory instead of being streamed.
    items = (await session.scalars(select(Item).order_by(Item.created_at, Item.id))).all()
    body = "".join(
        json.dumps(
            {
                "id": str(item.id),
                "sku": item.sku,
                "name": item.name,
                "price_cents": item.price_cents,
                "category_id": str(item.category_id),
                "created_at": item.created_at.isoformat(),
            }
        )
        + "\n"
        for item in items
    )
    return Response(body, media_type="application/x-ndjson")


# PLANTED FSA301: no response model nor return annotation; every column goes out, including
# the internal cost_cents.
@router.get("/items/{item_id}", tags=["catalogue"])
async def get_item(item_id: ItemId, request: Request, session: SessionDep):
    in_stock = _warehouse_stock(item_id)
    metrics = request.app.state.metrics
    cached = _item_cache.get(item_id)
    metrics.count_cache(hit=cached is not None)
    if cached is None:
        item = await session.get(Item, item_id)
        if item is None:
            raise HTTPException(status_code=404, detail="Item not found")
        category = await item.awaitable_attrs.category
        cached = {**_columns(item), "category": _columns(category)}
        _item_cache[item_id] = cached
    return {**cached, "in_stock": in_stock}


# PLANTED (security scan: unauthenticated write): anyone may create items.
@router.post("/items/bulk", response_model=BulkCreated, status_code=201, tags=["catalogue"])
async def bulk_create(payload: BulkCreate, session: SessionDep):
    ids = []
    for entry in payload.items:
        # PLANTED FSA404: mass assignment from the request body into the model.
        item = Item(**entry.model_dump())
        session.add(item)
        # PLANTED FSA109: one commit (one transaction, one round trip) per row.
        # PLANTED (integrity: atomicity): a failing row leaves the rows before it committed.
        await session.commit()
        # PLANTED FSA202: expire_on_commit expired the row; reading item.id needs a refresh.
        await session.refresh(item)
        ids.append(item.id)
    return BulkCreated(created=len(ids), ids=ids)


# PLANTED (security scan: unauthenticated write): anyone may create an item.
@router.post("/items", status_code=201, tags=["catalogue"])
async def create_item(entry: ItemIn, session: SessionDep) -> ItemCreated:
    # PLANTED (integrity: unique race): the sku's uniqueness is checked in code, then the row
    # is inserted after a window; two concurrent creates of one sku both pass the check, and
    # the second INSERT hits the constraint as a 500 instead of a 409.
    if await session.scalar(select(Item.id).where(Item.sku == entry.sku)) is not None:
        raise HTTPException(status_code=409, detail="An item with this sku exists")
    await asyncio.sleep(SKU_CHECK_WINDOW_SECONDS)
    item_id = uuid.uuid4()
    item = Item(id=item_id, sku=entry.sku, name=entry.name, price_cents=entry.price_cents)
    item.cost_cents, item.category_id = entry.cost_cents, entry.category_id
    item.attributes = entry.attributes
    session.add(item)
    await session.commit()
    return ItemCreated(id=item_id, sku=entry.sku)


@router.post(
    "/auth/token",
    tags=["auth"],
    summary="Log in: a bearer token for a customer",
    openapi_extra=TOKEN_REQUEST_OPENAPI,
)
async def issue_token(request: Request, session: SessionDep) -> TokenOut:
    username, password = await read_credentials(request)
    stored = await session.scalar(
        select(Customer.password_hash).where(Customer.username == username)
    )
    if stored is None or not await asyncio.to_thread(verify_password, password, stored):
        raise HTTPException(
            status_code=401,
            detail="Wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenOut(
        access_token=request.app.state.tokens.issue(username), expires_in=TOKEN_TTL_SECONDS
    )


@router.get("/items/{item_id}/stock", tags=["stock"])
async def get_stock(item_id: ItemId, session: SessionDep) -> StockOut:
    level = await session.get(StockLevel, item_id)
    if level is None and await session.get(Item, item_id) is None:
        raise HTTPException(status_code=404, detail="Item not found")
    return StockOut(item_id=item_id, stock=level.quantity if level else 0)


# PLANTED (security scan: unauthenticated write): anyone may change the stock.
@router.patch("/items/{item_id}/stock", tags=["stock"])
async def change_stock(item_id: ItemId, change: StockChange, session: SessionDep) -> StockOut:
    level = await session.get(StockLevel, item_id)
    if level is None:
        if await session.get(Item, item_id) is None:
            raise HTTPException(status_code=404, detail="Item not found")
        level = StockLevel(item_id=item_id, quantity=0)
        session.add(level)
    # PLANTED (integrity: lost update): read, compute in Python, write back after a window;
    # a change committed by another request in between is overwritten.
    current = level.quantity
    await asyncio.sleep(STOCK_WRITE_WINDOW_SECONDS)
    if current + change.delta < 0:
        raise HTTPException(status_code=409, detail=f"Only {current} in stock")
    level.quantity = current + change.delta
    await session.commit()
    return StockOut(item_id=item_id, stock=current + change.delta)


async def _order(session: AsyncSession, order_id: uuid.UUID, customer: str | None) -> Order:
    order = await session.get(Order, order_id)
    # Another customer's order is not found; a guest's order is found by its id.
    if order is None or (order.customer is not None and order.customer != customer):
        raise HTTPException(status_code=404, detail="Order not found")
    return order


@router.post("/orders", status_code=201, tags=["orders"])
async def place_order(
    order: OrderIn,
    session: SessionDep,
    customer: Annotated[str | None, Depends(optional_customer)],
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    item = await session.get(Item, order.item_id)
    if item is None:
        raise HTTPException(status_code=422, detail="Unknown item")
    # PLANTED (integrity: idempotency): the Idempotency-Key is declared and stored but never
    # looked up, so a retried POST creates a second order.
    row = Order(
        customer=customer,
        item_id=item.id,
        quantity=order.quantity,
        total_cents=item.price_cents * order.quantity,
        status="placed",
        idempotency_key=idempotency_key,
    )
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return OrderOut.model_validate(row)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(
    order_id: uuid.UUID,
    session: SessionDep,
    customer: Annotated[str | None, Depends(optional_customer)],
) -> OrderOut:
    return OrderOut.model_validate(await _order(session, order_id, customer))


@router.post("/orders/{order_id}/cancel", tags=["orders"])
async def cancel_order(
    order_id: uuid.UUID,
    session: SessionDep,
    customer: Annotated[str | None, Depends(optional_customer)],
) -> OrderOut:
    order = await _order(session, order_id, customer)
    if order.status != "placed":
        raise HTTPException(status_code=409, detail=f"Order is {order.status}")
    order.status = "cancelled"
    order.cancelled_at = func.now()
    await session.commit()
    await session.refresh(order)
    return OrderOut.model_validate(order)
