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

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import column, func, literal_column, select, table, tuple_
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import joinedload

from examples.shop_api.common.seeding import example_ids
from examples.shop_api.fast.db import SessionDep
from examples.shop_api.fast.models import Category, Item
from examples.shop_api.fast.schemas import (
    BulkCreate,
    BulkCreated,
    CategoryOut,
    CategoryStats,
    ItemDetail,
    ItemOut,
    ItemPage,
)
from examples.shop_api.fast.security import require_api_key

EXAMPLE_CATEGORY_ID, EXAMPLE_ITEM_ID = example_ids()
WAREHOUSE_LATENCY_SECONDS = 0.002
MAX_PAGE_SIZE = 200
MAX_SEARCH_RESULTS = 100
MAX_CATEGORY_PAGE = 500
MAX_SEARCH_TERMS = 5
EXPORT_BATCH_ROWS = 1_000

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
        .where(search_condition(session.bind.dialect.name, terms))
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
