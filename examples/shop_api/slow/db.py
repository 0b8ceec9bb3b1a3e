"""Engine, sessions and schema of the slow mode."""

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
from examples.shop_api.slow.models import Base, Item, Order

# Objects of the fast mode's schema that the slow schema does not have; the database is
# shared between modes, so starting in slow mode removes them again.
FAST_MODE_OBJECTS = (
    "DROP INDEX IF EXISTS ix_items_category_created",
    "DROP INDEX IF EXISTS ix_items_created_id",
    "DROP INDEX IF EXISTS ix_items_name_fts",
    "DROP INDEX IF EXISTS ux_orders_customer_idempotency",
)
FAST_MODE_SQLITE_OBJECTS = (
    "DROP TRIGGER IF EXISTS items_fts_insert",
    "DROP TRIGGER IF EXISTS items_fts_delete",
    "DROP TRIGGER IF EXISTS items_fts_update",
    "DROP TABLE IF EXISTS items_fts",
)


def create_engine(database_url: str) -> AsyncEngine:
    """The application's engine, with the tutorial defaults nobody revisited."""
    # PLANTED FSA206: echo=True hard-coded, every statement is logged in production.
    # PLANTED FSA204: a long-lived pool without pool_pre_ping or pool_recycle.
    engine = create_async_engine(database_url, echo=True)
    configure_sqlite(engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # PLANTED FSA202: expire_on_commit left on; attributes are read again after commit.
    return async_sessionmaker(engine)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def apply_schema(engine: AsyncEngine) -> None:
    """Create the tables if missing and put the slow mode's indexes back (idempotent)."""
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
        for statement in FAST_MODE_OBJECTS:
            await connection.execute(text(statement))
        if engine.dialect.name == "sqlite":
            for statement in FAST_MODE_SQLITE_OBJECTS:
                await connection.execute(text(statement))
        for index in (*Item.__table__.indexes, *Order.__table__.indexes):  # type: ignore[attr-defined]  # mapped classes' __table__ is a Table
            await connection.run_sync(index.create, checkfirst=True)
        await ensure_demo_customers(connection)
        await connection.execute(text("ANALYZE"))
