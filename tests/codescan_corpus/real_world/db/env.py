"""Alembic environment under a folder not named alembic/ or migrations/."""

from alembic import context
from app.models import Base
from sqlalchemy import create_engine


def run_migrations_online() -> None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata)
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
