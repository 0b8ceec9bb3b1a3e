"""A synchronous engine and session dependency for the sync routes."""

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

engine = create_engine("postgresql://app@db/app", pool_pre_ping=True)
SessionLocal = sessionmaker(engine)


def get_db():
    with SessionLocal() as session:
        yield session
