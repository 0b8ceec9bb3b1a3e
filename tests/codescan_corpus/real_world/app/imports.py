"""Per-row commits: in a request, isolated per row on purpose, and in a CLI command."""

from typing import Annotated

import typer
from fastapi import APIRouter, Depends
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Deck
from app.sync_db import SessionLocal as SyncSession

router = APIRouter()
cli = typer.Typer()
Session = Annotated[AsyncSession, Depends(get_session)]


@router.post("/decks/import")
async def import_decks(session: Session, names: list[str]):
    for name in names[:100]:
        session.add(Deck(name=name, owner_token=""))
        await session.commit()  # expect: FSA109
    return {"imported": len(names[:100])}


@router.post("/decks/import/isolated")
async def import_decks_isolated(session: Session, names: list[str]):
    failed = []
    for name in names[:100]:
        try:
            session.add(Deck(name=name, owner_token=""))
            await session.commit()  # ok: one transaction per row so one bad row fails alone
        except ValueError:
            await session.rollback()
            failed.append(name)
    return {"failed": failed}


@cli.command()
def backfill(names: list[str]) -> None:
    with SyncSession() as session:
        for name in names:
            session.add(Deck(name=name, owner_token=""))
            session.commit()  # ok: a command run by hand, not a request
