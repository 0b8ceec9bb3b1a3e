"""Engines made lazily once and kept, beside one really made per request (issue 14)."""

from fastapi import APIRouter
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

router = APIRouter()


def make_sync_engine(url: str):
    return create_engine(url, pool_pre_ping=True)


def make_async_engine(url: str):
    return create_async_engine(url, pool_pre_ping=True)


class Registry:
    _jobstore_engine = None

    def __init__(self):
        self.async_engine = None

    @classmethod
    def jobstore_engine(cls):
        if cls._jobstore_engine is None:
            cls._jobstore_engine = make_sync_engine("postgresql://app@db/app")  # ok: once
        return cls._jobstore_engine

    def ensure_async(self):
        if self.async_engine is not None:
            return self.async_engine
        engine = make_async_engine("postgresql+asyncpg://app@db/app")  # ok: after the early return
        self.async_engine = engine
        return engine


REGISTRY = Registry()


@router.get("/jobs/run")
def run_job():
    with Registry.jobstore_engine().connect() as connection:
        connection.execute(text("select 1"))
    return {"engine": str(REGISTRY.ensure_async().url)}


@router.get("/report")
def report(dsn: str):
    engine = create_engine(dsn, pool_pre_ping=True)  # expect: FSA201
    with engine.connect() as connection:
        return {"one": connection.execute(text("select 1")).scalar()}


_CACHE: dict[str, object] = {}  # expect: FSA305


def lookup(dsn: str):
    engine = _CACHE.get(dsn)
    if engine is not None:
        return engine
    engine = make_report_engine(dsn)  # a miss for every new dsn: not a one-off creation
    _CACHE[dsn] = engine
    return engine


def make_report_engine(dsn: str):
    return create_engine(dsn, pool_pre_ping=True)  # expect: FSA201


@router.get("/report/cached")
def cached_report(dsn: str):
    with lookup(dsn).connect() as connection:
        return {"one": connection.execute(text("select 1")).scalar()}
