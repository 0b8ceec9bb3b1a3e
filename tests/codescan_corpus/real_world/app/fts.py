"""SQL text naming tables and columns from our own configuration, beside one from a caller."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session

INDEX_CONFIGS = {
    "items": {"table": "items", "column": "name"},
    "cards": {"table": "cards", "column": "front"},
}


async def search_index(session: AsyncSession, index: str, query: str):
    config = INDEX_CONFIGS.get(index)
    if not config:
        return []
    table = config["table"]
    sql = f"SELECT id FROM {table} WHERE {config['column']} % :query LIMIT 20"
    return (await session.execute(text(sql), {"query": query})).all()  # ok: our own names


async def drop_index(session: AsyncSession, index_name: str):
    await session.execute(text(f"DROP INDEX IF EXISTS {index_name}"))  # expect: FSA402


class Dialect:
    @property
    def tables_query(self) -> str:
        return "SELECT table_name FROM information_schema.tables WHERE table_name IN :names"


async def table_rows(session: AsyncSession, names: list[str]):
    query = text(Dialect().tables_query).bindparams(names=names)
    return (await session.execute(query)).fetchall()  # ok: SQL built elsewhere, not readable


async def every_item(session: AsyncSession):
    return (await session.execute(text("SELECT id, name FROM items"))).fetchall()  # expect: FSA105


router = APIRouter()


@router.get("/admin/tables")
async def tables(session: Annotated[AsyncSession, Depends(get_session)]):
    return [tuple(row) for row in await table_rows(session, ["items", "cards"])]


@router.get("/admin/items")
async def items(session: Annotated[AsyncSession, Depends(get_session)]):
    return [tuple(row) for row in await every_item(session)]
