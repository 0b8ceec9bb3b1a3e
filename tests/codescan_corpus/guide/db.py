"""Engines: echo_pool hard-coded, and driven by settings."""

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from settings import settings

engine = create_async_engine(
    settings.database_url,
    pool_pre_ping=True,
    echo_pool=True,  # expect: FSA207
)

quiet_engine = create_async_engine(
    settings.database_url,
    pool_pre_ping=True,
    echo_pool=settings.debug_pool,  # ok: from settings, off by default
)

if settings.debug:
    debug_engine = create_async_engine(settings.database_url, pool_pre_ping=True, echo_pool=True)  # ok: development branch

SessionLocal = async_sessionmaker(engine, expire_on_commit=False)


async def get_session():
    async with SessionLocal() as session:
        yield session
