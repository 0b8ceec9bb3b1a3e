from contextlib import asynccontextmanager
from functools import lru_cache

from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from settings import get_settings

engine = create_async_engine(  # expect: FSA204, FSA205
    get_settings().database_url,
    echo=True,  # expect: FSA206
)
SessionFactory = async_sessionmaker(engine, expire_on_commit=False)

reporting_engine = create_engine(  # expect: FSA205
    "postgresql+psycopg://reports@db/reports",
    pool_pre_ping=True,
    echo=get_settings().debug,  # ok: driven by settings
    pool_size=2,
    max_overflow=0,
)
ReportSession = sessionmaker(bind=reporting_engine)


@lru_cache
def analytics_engine():
    return create_engine(  # expect: FSA205
        "postgresql+psycopg://analytics@db/analytics", pool_pre_ping=True, pool_size=5, max_overflow=0
    )  # ok: cached, so FSA201 stays quiet


async def get_session():
    async with SessionFactory() as session:
        yield session


def get_report_session():
    return ReportSession()  # expect: FSA203


def get_report_session_properly():
    session = ReportSession()
    try:
        yield session
    finally:
        session.close()


def get_report_session_leaky():
    session = ReportSession()  # expect: FSA203
    yield session
    session.close()


def per_request_session():
    engine_here = create_engine("postgresql+psycopg://app@db/app", poolclass=NullPool)  # expect: FSA201
    return Session(engine_here)


@asynccontextmanager
async def lifespan(app):
    startup_engine = create_async_engine("postgresql+asyncpg://app@db/app", pool_pre_ping=True)  # expect: FSA205
    app.state.engine = startup_engine
    yield
    await startup_engine.dispose()
