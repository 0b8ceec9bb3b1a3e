"""Recall (issue 14): N+1 through a repository method, unbounded pagination spelled as
"all", module-level state growing per request. Each with its quiet twin."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Card, Deck

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]
RECENT_SEARCHES: list[str] = []  # expect: FSA305
HITS: dict[str, int] = {}  # expect: FSA305
CARD_LIMIT = 100


class CardRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def count_for_deck(self, deck_id: int) -> int:
        stmt = select(func.count(Card.id)).where(Card.deck_id == deck_id)
        return (await self.session.execute(stmt)).scalar_one()

    async def counts_for_decks(self, deck_ids: list[int]) -> dict[int, int]:
        stmt = (
            select(Card.deck_id, func.count(Card.id))
            .where(Card.deck_id.in_(deck_ids))
            .group_by(Card.deck_id)
        )
        return dict((await self.session.execute(stmt)).all())


@router.get("/decks/with-counts")
async def decks_with_counts(session: Session):
    decks = (await session.scalars(select(Deck).limit(50))).all()
    cards = CardRepository(session)
    return [
        {"id": deck.id, "cards": await cards.count_for_deck(deck.id)}  # expect: FSA101
        for deck in decks
    ]


@router.get("/decks/with-counts/batched")
async def decks_with_counts_batched(session: Session):
    decks = (await session.scalars(select(Deck).limit(50))).all()
    counts = await CardRepository(session).counts_for_decks([deck.id for deck in decks])
    return [{"id": deck.id, "cards": counts.get(deck.id, 0)} for deck in decks]  # ok: one query


@router.get("/cards")
async def list_cards(session: Session, limit: Annotated[int, Query(ge=0, le=500)] = 50):
    stmt = select(Card).limit(limit or -1)  # expect: FSA105
    return [card.id for card in (await session.scalars(stmt)).all()]


@router.get("/cards/bounded")
async def list_cards_bounded(session: Session, limit: Annotated[int, Query(ge=0, le=500)] = 50):
    stmt = select(Card).limit(min(limit or CARD_LIMIT, CARD_LIMIT))  # ok: capped
    return [card.id for card in (await session.scalars(stmt)).all()]


async def page_of_cards(session: AsyncSession, deck_id: int, size: int | None):
    stmt = select(Card).where(Card.deck_id == deck_id).order_by(Card.id).limit(size)
    return (await session.scalars(stmt)).all()


@router.get("/decks/{deck_id}/cards")
async def deck_cards(
    session: Session,
    deck_id: int,
    size: Annotated[int | None, Query(le=200)] = None,  # expect: FSA105
):
    return [card.id for card in await page_of_cards(session, deck_id, size)]


@router.get("/decks/{deck_id}/cards/paged")
async def deck_cards_paged(
    session: Session,
    deck_id: int,
    size: Annotated[int, Query(ge=1, le=200)] = 50,  # ok: a bounded default
):
    return [card.id for card in await page_of_cards(session, deck_id, size)]


def paginate(items: list, per_page: int = 20) -> list:
    return items if per_page < 0 else items[:per_page]  # expect: FSA105


@router.get("/decks/export")
async def export_decks(session: Session):
    names = list((await session.scalars(select(Deck.name).limit(10_000))).all())
    return paginate(names, per_page=-1)  # expect: FSA105


@router.get("/search")
async def search(session: Session, q: str):
    RECENT_SEARCHES.append(q)
    HITS[q] = HITS.get(q, 0) + 1
    stmt = select(Card.id).where(Card.front == q).limit(20)
    return {"ids": list((await session.scalars(stmt)).all())}
