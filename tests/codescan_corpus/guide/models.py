"""Models of a PostgreSQL-only service: the guide's column habits, true and false twins."""

from sqlalchemy import JSON, Column, ForeignKey, Integer, MetaData, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from pydantic import BaseModel


class Base(DeclarativeBase):
    metadata = MetaData(schema="shop")  # ok: a custom MetaData on the base is the documented way


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)  # expect: FSA113
    tags: Mapped[dict] = mapped_column(JSONB, default=dict)  # ok: JSONB already
    meta: Mapped[dict] = mapped_column("metadata", JSONB)  # ok: the column is named metadata, the attribute is not


class Event(Base):
    __tablename__ = "events"

    id = Column(Integer, primary_key=True)
    metadata: Mapped[dict] = mapped_column(JSONB)  # expect: FSA110
    payload = Column(JSON())  # expect: FSA113


class ItemOut(BaseModel):
    id: int
    name: str
    metadata: dict = {}  # ok: a Pydantic schema may name a field metadata
