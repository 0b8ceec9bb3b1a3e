"""Rows of SQLAlchemy 2: dict(row) breaks, the mapping view does not."""

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models import Category, Item


async def category_counts(session: AsyncSession) -> list[dict]:
    result = await session.execute(select(Category.name, Item.id).join(Item))
    return [dict(row) for row in result]  # expect: FSA111


async def category_counts_mapped(session: AsyncSession) -> list[dict]:
    result = await session.execute(select(Category.name, Item.id).join(Item))
    return [dict(row) for row in result.mappings()]  # ok: RowMapping is a mapping


async def category_counts_private(session: AsyncSession) -> list[dict]:
    result = await session.execute(select(Category.name, Item.id).join(Item))
    return [dict(row._mapping) for row in result]  # ok: the documented mapping view


async def first_row(session: AsyncSession, item_id: int) -> dict:
    row = (await session.execute(text("SELECT id, name FROM items WHERE id = :id"), {"id": item_id})).first()
    return dict(row)  # expect: FSA111


async def attributes(session: AsyncSession) -> list[dict]:
    result = await session.scalars(select(Item.attributes).limit(10))
    return [dict(value) for value in result]  # ok: scalars of a JSON column are dicts


def pairs(config: list[tuple[str, str]]) -> dict:
    return dict(config)  # ok: not rows of a query
