from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import joinedload

from models import Order
from repository import totals
from schemas import OrderBrief, OrderOut

engine = create_async_engine("postgresql+asyncpg://localhost/shop", pool_pre_ping=True)
SessionLocal = async_sessionmaker(engine, expire_on_commit=False)
app = FastAPI()
router = APIRouter(prefix="/orders")


async def get_session():
    async with SessionLocal() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@router.get("/all", response_model=list[OrderBrief])
async def every_order(session: SessionDep):
    return (await session.scalars(select(Order))).all()  # expect: FSA105


@router.get("/page", response_model=list[OrderBrief])
async def order_page(
    session: SessionDep,
    limit: int = Query(50, ge=1),  # expect: FSA105
    offset: int = 0,
):
    stmt = select(Order).order_by(Order.id).offset(offset).limit(limit)  # expect: FSA106
    return (await session.scalars(stmt)).all()


@router.get("/bounded", response_model=list[OrderBrief])
async def bounded_page(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: int = 0,
):
    stmt = select(Order).where(Order.id > after).order_by(Order.id).limit(limit)
    return (await session.scalars(stmt)).all()


@router.get("/everything", response_model=list[OrderBrief])
async def maybe_all(session: SessionDep, size: Annotated[int, Query(le=500)] = 50):
    stmt = select(Order).order_by(Order.id)
    if size == -1:  # expect: FSA105
        return (await session.scalars(stmt.where(Order.id > 0))).all()
    return (await session.scalars(stmt.limit(size))).all()


@router.get("/detailed", response_model=list[OrderOut])  # expect: FSA102
async def detailed(session: SessionDep):
    stmt = select(Order).where(Order.id > 0).limit(50)
    return (await session.scalars(stmt)).all()


@router.get("/detailed-eager", response_model=list[OrderOut])
async def detailed_eager(session: SessionDep):
    stmt = select(Order).options(joinedload(Order.customer)).where(Order.id > 0).limit(50)
    return (await session.scalars(stmt)).all()


@router.get("/totals")
async def order_totals(session: SessionDep) -> dict[int, int]:
    return await totals(session)


app.include_router(router)
