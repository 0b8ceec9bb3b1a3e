"""Routes of the fast mode: the same API as slow mode, each planted problem fixed."""

import asyncio
import base64
import binascii
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import column, func, literal_column, select, table, tuple_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from examples.shop_api.common.auth import (
    TOKEN_REQUEST_OPENAPI,
    TOKEN_TTL_SECONDS,
    hash_password,
    read_credentials,
    verify_password,
)
from examples.shop_api.common.seeding import example_ids
from examples.shop_api.fast.db import SessionDep
from examples.shop_api.fast.models import Category, Customer, Item, Order, StockLevel
from examples.shop_api.fast.schemas import (
    BulkCreate,
    BulkCreated,
    CategoryOut,
    CategoryStats,
    ItemCreated,
    ItemDetail,
    ItemIn,
    ItemOut,
    ItemPage,
    OrderIn,
    OrderOut,
    StockChange,
    StockOut,
    TokenOut,
)
from examples.shop_api.fast.security import CustomerDep, require_api_key

EXAMPLE_CATEGORY_ID, EXAMPLE_ITEM_ID = example_ids()
WAREHOUSE_LATENCY_SECONDS = 0.002
MAX_PAGE_SIZE = 200
MAX_SEARCH_RESULTS = 100
MAX_CATEGORY_PAGE = 500
MAX_SEARCH_TERMS = 5
EXPORT_BATCH_ROWS = 1_000
# Compared against when the username is unknown, so a wrong name costs what a wrong password
# costs (no timing hint about which accounts exist).
UNKNOWN_USER_HASH = hash_password("no such customer")
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retried request with the same key returns the first order.",
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
items_fts = table("items_fts", column("rowid"))


async def warehouse_stock(item_id: uuid.UUID) -> int:
    """Units in stock, from the warehouse's async client: the event loop keeps serving."""
    await asyncio.sleep(WAREHOUSE_LATENCY_SECONDS)
    return item_id.int % 50


def encode_cursor(item: Item) -> str:
    raw = f"{item.created_at.isoformat()}|{item.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Keyset position (created_at, id) of a cursor; 400 on anything malformed."""
    try:
        created_at, item_id = base64.urlsafe_b64decode(cursor).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(hex=item_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise HTTPException(status_code=400, detail="Invalid cursor") from error


def search_condition(dialect: str, terms: list[str]):
    """Word-prefix match served by an index: GIN full-text on PostgreSQL, FTS5 on SQLite."""
    if dialect == "postgresql":
        # The expression must match ix_items_name_fts exactly, so 'simple' is a literal.
        document = func.to_tsvector(literal_column("'simple'"), Item.name)
        query = func.to_tsquery(literal_column("'simple'"), " & ".join(f"{t}:*" for t in terms))
        return document.op("@@")(query)
    matching_rows = select(items_fts.c.rowid).where(
        literal_column("items_fts").op("MATCH")(" ".join(f'"{t}"*' for t in terms))
    )
    return literal_column("items.rowid").in_(matching_rows)


@router.get("/health", tags=["operations"], summary="Liveness and database check")
async def health(request: Request, session: SessionDep) -> JSONResponse:
    status = {"mode": "fast", "database": request.app.state.metrics.database}
    try:
        await session.execute(select(1))
    except (SQLAlchemyError, OSError):
        return JSONResponse({"status": "unavailable", **status}, status_code=503)
    return JSONResponse({"status": "ok", **status})


@router.get("/categories", response_model=list[CategoryOut], tags=["catalogue"])
async def list_categories(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_CATEGORY_PAGE)] = 100,
    after: Annotated[
        str | None,
        Query(max_length=120, pattern=r"^[a-z0-9-]*$", description="Last slug seen."),
    ] = None,
) -> list[Category]:
    query = select(Category).order_by(Category.slug).limit(limit)
    if after is not None:
        query = query.where(Category.slug > after)
    return list((await session.scalars(query)).all())


@router.get("/categories/{category_id}/stats", tags=["analytics"])
async def category_stats(
    session: SessionDep,
    category_id: CategoryId,
    expensive_over_cents: Annotated[int, Query(ge=0, le=100_000_000)] = 10_000,
) -> CategoryStats:
    if await session.scalar(select(Category.id).where(Category.id == category_id)) is None:
        raise HTTPException(status_code=404, detail="Category not found")
    item_count, expensive_count, average = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Item.price_cents >= expensive_over_cents),
                func.avg(Item.price_cents),
            ).where(Item.category_id == category_id)
        )
    ).one()
    return CategoryStats(
        category_id=category_id,
        item_count=item_count,
        expensive_count=expensive_count,
        expensive_share=round(expensive_count / item_count, 4) if item_count else 0.0,
        average_price_cents=round(float(average), 2) if average is not None else None,
        expensive_over_cents=expensive_over_cents,
    )


@router.get("/items", tags=["catalogue"])
async def list_items(
    session: SessionDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    category_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> ItemPage:
    # Keyset pagination: every page costs the same, however deep.
    query = (
        select(Item)
        .options(joinedload(Item.category))
        .order_by(Item.created_at.desc(), Item.id.desc())
        .limit(limit + 1)
    )
    if category_id is not None:
        query = query.where(Item.category_id == category_id)
    if cursor is not None:
        query = query.where(tuple_(Item.created_at, Item.id) < tuple_(*decode_cursor(cursor)))
    rows = list((await session.scalars(query)).all())
    next_cursor = encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return ItemPage(
        items=[ItemOut.model_validate(row) for row in rows[:limit]], next_cursor=next_cursor
    )


@router.get("/items/search", response_model=list[ItemOut], tags=["catalogue"])
async def search_items(
    session: SessionDep,
    q: Annotated[
        str,
        Query(
            min_length=1, max_length=200, description="Words of the item name.", examples=["lamp"]
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_SEARCH_RESULTS)] = 20,
) -> list[Item]:
    terms = re.findall(r"\w+", q.lower())[:MAX_SEARCH_TERMS]
    if not terms:
        return []
    query = (
        select(Item)
        .options(joinedload(Item.category))
        .where(search_condition(session.bind.dialect.name, terms))  # type: ignore[union-attr]  # bound: db.py
        .order_by(Item.name, Item.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def _export_lines(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[bytes]:
    # Its own session: the stream outlives the request's dependencies.
    columns = (Item.id, Item.sku, Item.name, Item.price_cents, Item.category_id, Item.created_at)
    query = (
        select(*columns)
        .order_by(Item.created_at, Item.id)
        .execution_options(yield_per=EXPORT_BATCH_ROWS)
    )
    async with sessionmaker() as session:
        result = await session.stream(query)
        async for rows in result.partitions():
            yield "".join(
                json.dumps(
                    {
                        "id": str(row.id),
                        "sku": row.sku,
                        "name": row.name,
                        "price_cents": row.price_cents,
                        "category_id": str(row.category_id),
                        "created_at": row.created_at.isoformat(),
                    }
                )
                + "\n"
                for row in rows
            ).encode()


@router.get("/items/export", tags=["catalogue"], summary="Every item as NDJSON")
async def export_items(request: Request) -> StreamingResponse:
    """Streamed in batches of rows: memory stays flat whatever the table size."""
    return StreamingResponse(
        _export_lines(request.app.state.sessionmaker), media_type="application/x-ndjson"
    )


@router.get("/items/{item_id}", tags=["catalogue"])
async def get_item(item_id: ItemId, request: Request, session: SessionDep) -> ItemDetail:
    in_stock = await warehouse_stock(item_id)
    cache = request.app.state.cache
    cached = await cache.get(str(item_id))
    if cached is not None:
        item = ItemOut.model_validate_json(cached)
    else:
        row = await session.scalar(
            select(Item).options(joinedload(Item.category)).where(Item.id == item_id)
        )
        if row is None:
            raise HTTPException(status_code=404, detail="Item not found")
        item = ItemOut.model_validate(row)
        await cache.set(str(item_id), item.model_dump_json().encode())
    return ItemDetail(**dict(item), in_stock=in_stock)


@router.post(
    "/items/bulk",
    status_code=201,
    tags=["catalogue"],
    dependencies=[Depends(require_api_key)],
)
async def bulk_create(payload: BulkCreate, session: SessionDep) -> BulkCreated:
    category_ids = {entry.category_id for entry in payload.items}
    known = set(await session.scalars(select(Category.id).where(Category.id.in_(category_ids))))
    if unknown := category_ids - known:
        raise HTTPException(
            status_code=422, detail=f"Unknown category ids: {sorted(map(str, unknown))}"
        )
    items = [
        Item(
            id=uuid.uuid4(),
            sku=entry.sku,
            name=entry.name,
            price_cents=entry.price_cents,
            cost_cents=entry.cost_cents,
            category_id=entry.category_id,
            attributes=entry.attributes,
        )
        for entry in payload.items
    ]
    # One transaction; the ORM batches the INSERTs (insertmanyvalues).
    session.add_all(items)
    try:
        await session.commit()
    except IntegrityError as error:
        await session.rollback()
        raise HTTPException(status_code=409, detail="An item with this sku exists") from error
    return BulkCreated(created=len(items), ids=[item.id for item in items])


@router.post("/items", status_code=201, tags=["catalogue"], dependencies=[Depends(require_api_key)])
async def create_item(entry: ItemIn, session: SessionDep) -> ItemCreated:
    if await session.scalar(select(Category.id).where(Category.id == entry.category_id)) is None:
        raise HTTPException(status_code=422, detail="Unknown category id")
    item = Item(
        id=uuid.uuid4(),
        sku=entry.sku,
        name=entry.name,
        price_cents=entry.price_cents,
        cost_cents=entry.cost_cents,
        category_id=entry.category_id,
        attributes=entry.attributes,
    )
    session.add(item)
    try:
        await session.commit()
    except IntegrityError as error:
        # The unique index on sku decides, also between two concurrent creates.
        await session.rollback()
        raise HTTPException(status_code=409, detail="An item with this sku exists") from error
    return ItemCreated(id=item.id, sku=item.sku)


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
    # The hash runs in a thread: the event loop keeps serving during the ~10 ms it takes.
    valid = await asyncio.to_thread(verify_password, password, stored or UNKNOWN_USER_HASH)
    if stored is None or not valid:
        raise HTTPException(
            status_code=401,
            detail="Wrong username or password",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return TokenOut(
        access_token=request.app.state.tokens.issue(username), expires_in=TOKEN_TTL_SECONDS
    )


async def _item_exists(session: AsyncSession, item_id: uuid.UUID) -> bool:
    return await session.scalar(select(Item.id).where(Item.id == item_id)) is not None


@router.get("/items/{item_id}/stock", tags=["stock"])
async def get_stock(item_id: ItemId, session: SessionDep) -> StockOut:
    stock = await session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item_id))
    if stock is None and not await _item_exists(session, item_id):
        raise HTTPException(status_code=404, detail="Item not found")
    return StockOut(item_id=item_id, stock=stock or 0)


@router.patch("/items/{item_id}/stock", tags=["stock"], dependencies=[Depends(require_api_key)])
async def change_stock(item_id: ItemId, change: StockChange, session: SessionDep) -> StockOut:
    # One atomic statement: the database adds the delta to the value it holds, so concurrent
    # changes all count; the condition keeps the stock from going below zero.
    stock = await session.scalar(
        update(StockLevel)
        .where(StockLevel.item_id == item_id, StockLevel.quantity + change.delta >= 0)
        .values(quantity=StockLevel.quantity + change.delta, updated_at=func.now())
        .returning(StockLevel.quantity)
    )
    if stock is None:
        stock = await _first_stock_level(session, item_id, change.delta)
    await session.commit()
    return StockOut(item_id=item_id, stock=stock)


async def _first_stock_level(session: AsyncSession, item_id: uuid.UUID, delta: int) -> int:
    """The item had no stock row, or too little stock: insert its row or refuse."""
    current = await session.scalar(select(StockLevel.quantity).where(StockLevel.item_id == item_id))
    if current is not None:
        raise HTTPException(status_code=409, detail=f"Only {current} in stock")
    if not await _item_exists(session, item_id):
        raise HTTPException(status_code=404, detail="Item not found")
    if delta < 0:
        raise HTTPException(status_code=409, detail="Only 0 in stock")
    # A concurrent first change may insert the row first: then add to it, still atomically.
    postgres = session.bind.dialect.name == "postgresql"  # type: ignore[union-attr]  # bound: db.py
    dialect_insert = postgresql_insert if postgres else sqlite_insert
    upsert = dialect_insert(StockLevel).values(item_id=item_id, quantity=delta)
    return await session.scalar(  # type: ignore[return-value]  # RETURNING: the row's quantity
        upsert.on_conflict_do_update(
            index_elements=[StockLevel.item_id],
            set_={"quantity": StockLevel.quantity + delta, "updated_at": func.now()},
        ).returning(StockLevel.quantity)
    )


async def _order(session: AsyncSession, order_id: uuid.UUID, customer: str) -> Order:
    order = await session.scalar(select(Order).where(Order.id == order_id))
    if order is None or order.customer != customer:
        raise HTTPException(status_code=404, detail="Order not found")
    return order


@router.post("/orders", status_code=201, tags=["orders"])
async def place_order(
    order: OrderIn,
    session: SessionDep,
    customer: CustomerDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> OrderOut:
    if idempotency_key is not None:
        earlier = await _order_for_key(session, customer, idempotency_key)
        if earlier is not None:
            return _replayed(earlier, order, response)
    price = await session.scalar(select(Item.price_cents).where(Item.id == order.item_id))
    if price is None:
        raise HTTPException(status_code=422, detail="Unknown item")
    row = Order(
        id=uuid.uuid4(),
        customer=customer,
        item_id=order.item_id,
        quantity=order.quantity,
        total_cents=price * order.quantity,
        status="placed",
        idempotency_key=idempotency_key,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        # A concurrent retry with the same key inserted first (ux_orders_customer_idempotency).
        await session.rollback()
        earlier = await _order_for_key(session, customer, idempotency_key or "")
        if earlier is None:
            raise
        return _replayed(earlier, order, response)
    await session.refresh(row)
    return OrderOut.model_validate(row)


async def _order_for_key(session: AsyncSession, customer: str, key: str) -> Order | None:
    return await session.scalar(
        select(Order).where(Order.customer == customer, Order.idempotency_key == key)
    )


def _replayed(earlier: Order, order: OrderIn, response: Response) -> OrderOut:
    if (earlier.item_id, earlier.quantity) != (order.item_id, order.quantity):
        raise HTTPException(
            status_code=422, detail="Idempotency-Key was used for a different order"
        )
    response.headers["Idempotent-Replayed"] = "true"
    return OrderOut.model_validate(earlier)


@router.get("/orders/{order_id}", tags=["orders"])
async def get_order(order_id: uuid.UUID, session: SessionDep, customer: CustomerDep) -> OrderOut:
    return OrderOut.model_validate(await _order(session, order_id, customer))


@router.post("/orders/{order_id}/cancel", tags=["orders"])
async def cancel_order(order_id: uuid.UUID, session: SessionDep, customer: CustomerDep) -> OrderOut:
    # A conditional UPDATE: of two concurrent cancels exactly one changes the row.
    cancelled = await session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.customer == customer, Order.status == "placed")
        .values(status="cancelled", cancelled_at=func.now())
        .returning(Order.id)
    )
    await session.commit()
    order = await _order(session, order_id, customer)
    if cancelled is None:
        raise HTTPException(status_code=409, detail=f"Order is {order.status}")
    return OrderOut.model_validate(order)
