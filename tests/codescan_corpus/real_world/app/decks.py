"""Routes whose response type shares its name with an ORM model (issue 14)."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app import models, schemas
from app.db import get_session

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]


@router.get("/decks/{deck_id}")  # ok: schemas.Deck is the Pydantic schema, not the table
async def get_deck(deck_id: int, session: Session) -> schemas.Deck:
    return await session.get(models.Deck, deck_id)


@router.get("/cards/{card_id}", response_model=schemas.Card)  # ok: the schema named Card
async def get_card(card_id: int, session: Session):
    return await session.get(models.Card, card_id)


@router.get("/raw/decks/{deck_id}")  # expect: FSA301
async def get_raw_deck(deck_id: int, session: Session) -> models.Deck:
    return await session.get(models.Deck, deck_id)
