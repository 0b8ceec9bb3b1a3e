"""Routes: streaming done right and wrong, exports, background payloads, the server."""

from typing import Annotated

import uvicorn
from fastapi import BackgroundTasks, Depends, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db import engine, get_session
from models import Item

app = FastAPI()  # expect: FSA306
SessionDep = Annotated[AsyncSession, Depends(get_session)]


class ItemIn(BaseModel):
    name: str


class ItemOut(BaseModel):
    id: int
    name: str


def store_items(items: list[dict]) -> None:
    print(len(items))


def send_receipt(address: str) -> None:
    print(address)


@app.get("/items/stream-wrong")
async def stream_wrong(session: SessionDep) -> StreamingResponse:
    async def generate():
        async with session.stream(select(Item)) as result:  # expect: FSA112
            async for row in result:
                yield f"{row.Item.id}\n"

    return StreamingResponse(generate(), media_type="application/x-ndjson")


@app.get("/items/stream-right")
async def stream_right(session: SessionDep) -> StreamingResponse:
    async def generate():
        result = await session.stream(select(Item).execution_options(yield_per=500))  # ok: awaited
        async for row in result:
            yield f"{row.Item.id}\n"

    return StreamingResponse(generate(), media_type="application/x-ndjson")


@app.get("/items/stream-unawaited")
async def stream_unawaited(session: SessionDep) -> StreamingResponse:
    async def generate():
        async for item in session.stream_scalars(select(Item)):  # expect: FSA112
            yield f"{item.id}\n"

    return StreamingResponse(generate(), media_type="application/x-ndjson")


@app.get("/items/stream-awaited-inline")
async def stream_awaited_inline(session: SessionDep) -> StreamingResponse:
    async def generate():
        async for item in await session.stream_scalars(select(Item).limit(1000)):  # ok: awaited
            yield f"{item.id}\n"

    return StreamingResponse(generate(), media_type="application/x-ndjson")


@app.get("/items/stream-connection")
async def stream_connection() -> StreamingResponse:
    async def generate():
        async with engine.connect() as conn:
            async with conn.stream(select(Item.id)) as result:  # ok: AsyncConnection.stream is a context manager
                async for row in result:
                    yield f"{row.id}\n"

    return StreamingResponse(generate(), media_type="application/x-ndjson")


@app.get("/categories/{category_id}/export")  # expect: FSA307
async def export_category(category_id: int, session: SessionDep) -> list[ItemOut]:
    rows = await session.scalars(select(Item).where(Item.category_id == category_id))
    return rows.all()


@app.get("/categories/{category_id}/export-page")  # ok: bounded by LIMIT
async def export_category_page(category_id: int, session: SessionDep) -> list[ItemOut]:
    rows = await session.scalars(
        select(Item).where(Item.category_id == category_id).order_by(Item.id).limit(500)
    )
    return rows.all()


@app.get("/categories/{category_id}/items")  # ok: not an export; one category's items
async def category_items(category_id: int, session: SessionDep) -> list[ItemOut]:
    rows = await session.scalars(select(Item).where(Item.category_id == category_id).limit(100))
    return rows.all()


@app.post("/items/bulk", status_code=202)
async def bulk(items: list[ItemIn], background_tasks: BackgroundTasks) -> dict:
    rows = [item.model_dump() for item in items]
    background_tasks.add_task(store_items, rows)  # expect: FSA302
    return {"accepted": len(rows)}


@app.post("/orders/{order_id}/receipt", status_code=202)
async def receipt(order_id: int, address: str, background_tasks: BackgroundTasks) -> dict:
    background_tasks.add_task(send_receipt, address)  # ok: one small value
    return {"order": order_id}


def serve() -> None:
    uvicorn.run(app, host="127.0.0.1", port=8000, loop="asyncio")  # expect: FSA306


def serve_fast() -> None:
    uvicorn.run(app, host="127.0.0.1", port=8000, loop="uvloop", http="httptools")  # ok: explicit


def serve_default() -> None:
    uvicorn.run("main:app", host="127.0.0.1", port=8000)  # expect: FSA306
