"""Counting loaded rows: to lock them FOR UPDATE first, or only to count them."""

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Card

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]


async def lock_cards(session: AsyncSession, ids: list[int]):
    stmt = select(Card.id).where(Card.id.in_(ids)).with_for_update()
    return (await session.scalars(stmt)).all()


@router.post("/cards/archive")
async def archive(session: Session, ids: list[int]):
    locked = await lock_cards(session, ids[:100])
    if len(locked) != len(ids[:100]):  # ok: the rows were loaded to lock them
        raise HTTPException(409, "some cards are gone")
    await session.execute(update(Card).where(Card.id.in_(ids[:100])).values(front=""))
    await session.commit()
    return {"archived": len(ids[:100])}


@router.get("/decks/{deck_id}/has-cards")
async def has_cards(session: Session, deck_id: int):
    cards = (await session.scalars(select(Card).where(Card.deck_id == deck_id))).all()
    return {"any": len(cards) > 0}  # expect: FSA108
