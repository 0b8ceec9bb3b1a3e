from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker

sync_engine = create_engine("postgresql+psycopg://localhost/app", pool_pre_ping=True)
SyncSession = sessionmaker(bind=sync_engine)

async_engine = create_async_engine("postgresql+asyncpg://localhost/app", pool_recycle=1800)
AsyncSessionLocal = async_sessionmaker(async_engine)  # expect: FSA202


def get_sync_db():
    with SyncSession() as session:
        yield session


async def get_db():
    async with AsyncSessionLocal() as session:
        yield session
