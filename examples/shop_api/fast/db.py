"""Engine, sessions and the schema migration of the fast mode."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from examples.shop_api.common.auth import ensure_demo_customers
from examples.shop_api.common.config import configure_sqlite
from examples.shop_api.fast.models import Base, Item, Order

POOL_SIZE = 10
MAX_OVERFLOW = 5
POOL_TIMEOUT_SECONDS = 10
POOL_RECYCLE_SECONDS = 1800

# The slow mode's redundant (duplicate of the unique constraint on sku) and unused indexes.
SLOW_MODE_OBJECTS = (
    "DROP INDEX IF EXISTS ix_items_sku",
    "DROP INDEX IF EXISTS ix_items_updated_at",
)
# Word-prefix search served by a GIN index; needs no extension (pg_trgm is not required).
POSTGRES_SEARCH_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_items_name_fts ON items USING gin (to_tsvector('simple', name))"
)
# SQLite's equivalent: an external-content FTS5 table kept in sync by triggers.
SQLITE_SEARCH_TABLE = "CREATE VIRTUAL TABLE items_fts USING fts5(name, content='items')"
SQLITE_SEARCH_TRIGGERS = (
    """CREATE TRIGGER IF NOT EXISTS items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts(rowid, name) VALUES (new.rowid, new.name);
    END""",
    """CREATE TRIGGER IF NOT EXISTS items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, name) VALUES ('delete', old.rowid, old.name);
    END""",
    """CREATE TRIGGER IF NOT EXISTS items_fts_update AFTER UPDATE OF name ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, name) VALUES ('delete', old.rowid, old.name);
        INSERT INTO items_fts(rowid, name) VALUES (new.rowid, new.name);
    END""",
)
SQLITE_SEARCH_REBUILD = "INSERT INTO items_fts(items_fts) VALUES ('rebuild')"
# Slow mode keeps Idempotency-Keys without a unique index, so a shared database may hold
# repeats; the later orders of a customer's repeated key lose the key before the index is made.
FORGET_REPEATED_IDEMPOTENCY_KEYS = """
UPDATE orders SET idempotency_key = NULL
WHERE customer IS NOT NULL AND idempotency_key IS NOT NULL AND EXISTS (
    SELECT 1 FROM orders AS earlier
    WHERE earlier.customer = orders.customer
      AND earlier.idempotency_key = orders.idempotency_key
      AND (earlier.created_at < orders.created_at
           OR (earlier.created_at = orders.created_at AND earlier.id < orders.id))
)"""


def create_engine(database_url: str) -> AsyncEngine:
    """One engine per process, made in the lifespan, with a bounded and checked pool."""
    engine = create_async_engine(
        database_url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        pool_pre_ping=True,
        pool_recycle=POOL_RECYCLE_SECONDS,
    )
    configure_sqlite(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # expire_on_commit=False: objects stay readable after commit without implicit IO.
    return async_sessionmaker(engine, expire_on_commit=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, closed when the request ends."""
    async with request.app.state.sessionmaker() as session:
        yield session


# scope="function": the session closes, and its connection goes back to the pool, as soon as
# the route returns; responses are built from eagerly loaded data and need no connection.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def apply_schema(engine: AsyncEngine) -> None:
    """Migrate the shared database to the fast schema (idempotent, run at every start)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        for statement in SLOW_MODE_OBJECTS:
            await connection.execute(text(statement))
        await connection.execute(text(FORGET_REPEATED_IDEMPOTENCY_KEYS))
        for index in (*Item.__table__.indexes, *Order.__table__.indexes):  # type: ignore[attr-defined]  # mapped classes' __table__ is a Table
            await connection.run_sync(index.create, checkfirst=True)
        await ensure_demo_customers(connection)
        if engine.dialect.name == "postgresql":
            await connection.execute(text(POSTGRES_SEARCH_INDEX))
        else:
            await _create_sqlite_search(connection)
        await connection.execute(text("ANALYZE"))


async def _create_sqlite_search(connection) -> None:
    exists = await connection.scalar(
        text("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'items_fts'")
    )
    if not exists:
        await connection.execute(text(SQLITE_SEARCH_TABLE))
    for statement in SQLITE_SEARCH_TRIGGERS:
        await connection.execute(text(statement))
    if not exists:
        # Index the rows written while the search table was absent (seeding, slow mode).
        await connection.execute(text(SQLITE_SEARCH_REBUILD))
