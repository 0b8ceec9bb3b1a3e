from fastapi import FastAPI, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Thing

app = FastAPI()


@app.get("/things")  # kaizen: ignore[FSA301] -- internal admin route behind the gateway's filter
async def things(session: AsyncSession, limit: int = Query(10)):  # kaizen: ignore[FSA105] -- capped by the proxy
    return (await session.scalars(select(Thing).limit(limit))).all()


@app.get("/others")  # kaizen: ignore  # expect: FSA002
async def others(session: AsyncSession, limit: int = Query(10)):  # expect: FSA105
    return (await session.scalars(select(Thing).limit(limit))).all()
