import asyncio
import time
from typing import Annotated

import httpx
import requests
from fastapi import Depends, FastAPI
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from db import AsyncSessionLocal, get_db, get_sync_db
from models import Item
from service import ItemService

app = FastAPI()


@app.get("/items")
async def list_items(db: Session = Depends(get_sync_db)) -> list[dict]:
    service = ItemService(db)
    return [{"id": i.id} for i in service.catalogue()]


@app.get("/items/offloaded")
async def list_offloaded(db: Annotated[Session, Depends(get_sync_db)]) -> list[dict]:
    service = ItemService(db)
    items = await run_in_threadpool(service.catalogue)  # ok: runs in the threadpool
    return [{"id": i.id} for i in items]


@app.get("/items/sync")
def list_sync(db: Session = Depends(get_sync_db)) -> list[dict]:
    service = ItemService(db)  # ok: a sync route runs in the threadpool
    return [{"id": i.id} for i in service.catalogue()]


@app.get("/items/async")
async def list_async(db: Annotated[AsyncSession, Depends(get_db)]) -> list[dict]:
    rows = (await db.scalars(select(Item).limit(10))).all()  # ok: awaited AsyncSession
    return [{"id": r.id} for r in rows]


@app.get("/weather")
async def weather() -> dict:
    async with httpx.AsyncClient() as client:
        answer = await client.get("https://example.org", timeout=5)  # ok: async client
    return {"status": answer.status_code}


@app.get("/report")
def report() -> dict:
    time.sleep(2)  # expect: FSA304
    answer = requests.get("https://example.org/report", timeout=5)  # expect: FSA304
    return {"size": len(answer.content)}


@app.get("/counts")
async def counts(db: Annotated[AsyncSession, Depends(get_db)]) -> dict:
    first, second = await asyncio.gather(  # expect: FSA103
        db.scalar(select(Item.id).limit(1)),
        db.scalar(select(Item.name).limit(1)),
    )
    return {"first": first, "second": second}


async def load(name: str):
    async with AsyncSessionLocal() as session:
        return await session.scalar(select(Item).where(Item.name == name))


@app.get("/many")
async def many(names: str) -> dict:
    found = await asyncio.gather(*(load(n) for n in names.split(",")))  # ok: one session each
    return {"found": len(found)}


async def refresh_one(session: AsyncSession, item_id: int):
    item = await session.get(Item, item_id)
    await session.refresh(item)


@app.post("/refresh")
async def refresh_all(ids: str, db: Annotated[AsyncSession, Depends(get_db)]) -> dict:
    async with asyncio.TaskGroup() as group:
        for item_id in ids.split(","):
            group.create_task(refresh_one(db, int(item_id)))  # expect: FSA103
    return {}


@app.post("/items")
async def create_item(name: str, db: Annotated[AsyncSession, Depends(get_db)]) -> dict:
    item = Item(name=name)
    db.add(item)
    await db.commit()
    return {"id": item.id}
