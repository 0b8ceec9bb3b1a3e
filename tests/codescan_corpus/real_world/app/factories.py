"""A local variable named like a session factory, beside the real factory with defaults."""

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_pre_ping=True)
DefaultSession = async_sessionmaker(engine)  # expect: FSA202


def registry_factory(name: str):
    return {"main": async_sessionmaker(engine, expire_on_commit=False)}[name]


async def first_id(model):
    async_sessionmaker = registry_factory("main")  # a local, not SQLAlchemy's
    async with async_sessionmaker() as session:  # ok: the configured factory, not the default
        return await session.scalar(select(model.id).limit(1))
