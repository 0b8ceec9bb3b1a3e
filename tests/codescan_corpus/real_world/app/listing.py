"""A repository module: the column to sort or filter by arrives as a parameter."""

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Item

SORTABLE = {"name", "price"}
FIELD = re.compile(r"^(name|price)$")


async def sorted_items(session: AsyncSession, sort: str, limit: int = 50):
    column = getattr(Item, sort)  # expect: FSA403
    return (await session.scalars(select(Item).order_by(column).limit(limit))).all()


async def checked_sort(session: AsyncSession, sort: str):
    if sort not in SORTABLE:
        raise ValueError(sort)
    column = getattr(Item, sort)  # ok: allow-list membership checked before use
    return (await session.scalars(select(Item).order_by(column).limit(50))).all()


async def pattern_sort(session: AsyncSession, sort: str):
    if not FIELD.fullmatch(sort):
        raise ValueError(sort)
    column = getattr(Item, sort)  # ok: checked by a regular expression first
    return (await session.scalars(select(Item).order_by(column).limit(50))).all()


def validate_sort_field(sort: str) -> None:
    if sort not in SORTABLE:
        raise ValueError(sort)


async def validated_sort(session: AsyncSession, sort: str):
    validate_sort_field(sort)
    column = getattr(Item, sort)  # ok: a validator that raises ran first
    return (await session.scalars(select(Item).order_by(column).limit(50))).all()


async def filtered(session: AsyncSession, filters: dict, limit: int = 50):
    stmt = select(Item)
    for attr, value in filters.items():
        stmt = stmt.where(getattr(Item, attr) == value)  # ok: callers pass constant keys
    return (await session.scalars(stmt.limit(limit))).all()
