"""Leading-wildcard searches: on a trigram-indexed column, narrowed by an indexed filter,
and a real full scan."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Card, Item

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]
Term = Annotated[str, Query(max_length=50)]


@router.get("/search/items")
async def search_items(session: Session, term: Term):
    stmt = select(Item).where(Item.name.ilike(f"%{term}%")).limit(20)  # expect: FSA107
    return [item.id for item in (await session.scalars(stmt)).all()]


@router.get("/search/orgs/{org_id}/items")
async def search_org_items(session: Session, org_id: int, term: Term):
    stmt = select(Item.id).where(Item.org_id == org_id, Item.name.ilike(f"%{term}%")).limit(20)
    return list((await session.scalars(stmt)).all())  # ok above: narrowed by the org_id index


@router.get("/search/cards")
async def search_cards(session: Session, term: Term):
    stmt = select(Card).where(Card.front.ilike(f"%{term}%")).limit(20)  # expect: FSA107
    return [card.id for card in (await session.scalars(stmt)).all()]


@router.get("/search/items/optional-org")
async def search_optional_org(session: Session, term: Term, org_id: int | None = None):
    stmt = select(Item.id).where(
        Item.org_id == org_id if org_id is not None else True,
        Item.name.notilike(f"%{term}%"),  # expect: FSA107
    )
    return list((await session.scalars(stmt.limit(20))).all())
