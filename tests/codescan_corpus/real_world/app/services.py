"""N+1 through a service holding repositories (issue 14 recall): rows come from one
repository, a second repository queries once per row inside a comprehension."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Card, Deck

router = APIRouter()


class DeckRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def list(self, limit: int = 50):
        return (await self.session.scalars(select(Deck).order_by(Deck.id).limit(limit))).all()


class CardCounter:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def count(self, deck_id: int) -> int:
        stmt = select(func.count(Card.id)).where(Card.deck_id == deck_id)
        return (await self.session.execute(stmt)).scalar_one()


class DeckService:
    def __init__(self, session: AsyncSession):
        self.decks = DeckRepository(session)
        self.counter = CardCounter(session)

    async def overview(self):
        decks = await self.decks.list()
        return [
            {"id": deck.id, "cards": await self.counter.count(deck.id)}  # expect: FSA101
            for deck in decks
        ]

    async def names(self):
        decks = await self.decks.list()
        return [deck.name for deck in decks]  # ok: no query per row


def get_service(session: Annotated[AsyncSession, Depends(get_session)]) -> DeckService:
    return DeckService(session)


@router.get("/overview")
async def overview(service: Annotated[DeckService, Depends(get_service)]):
    return await service.overview()


@router.get("/names")
async def names(service: Annotated[DeckService, Depends(get_service)]):
    return await service.names()
