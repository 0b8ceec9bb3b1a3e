"""A service that runs on SQLite as well as PostgreSQL, served with uvicorn[standard]."""

import uvicorn
from fastapi import FastAPI
from sqlalchemy import JSON
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

app = FastAPI()


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)  # ok: portable across SQLite and PostgreSQL


def serve() -> None:
    uvicorn.run(app, host="127.0.0.1", port=8000)  # ok: uvicorn[standard] brings uvloop and httptools
