"""ORM models of the slow mode: the same tables as fast mode, with the wrong indexes."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Uuid, func
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base; AsyncAttrs gives the ``awaitable_attrs`` lazy loads used per row."""


class Category(Base):
    """A product category."""

    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())

    items: Mapped[list["Item"]] = relationship(back_populates="category")


class Item(Base):
    """A product for sale; prices are integer cents."""

    __tablename__ = "items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    cost_cents: Mapped[int] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    # PLANTED db.fk_without_index: no index on the foreign key (sequential scans per category).
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    # PLANTED db.seqscan_heavy: the list's sort column has no index (a full sort per page).
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, server_default=func.now(), onupdate=func.now()
    )

    # PLANTED FSA102: a plain lazy relationship; the routes read it row by row.
    category: Mapped[Category] = relationship(back_populates="items")

    __table_args__ = (
        # PLANTED db.duplicate_index: sku is already indexed by its unique constraint.
        Index("ix_items_sku", "sku"),
        # PLANTED db.unused_index: no query filters or sorts on updated_at.
        Index("ix_items_updated_at", "updated_at"),
    )


class Customer(Base):
    """A shop customer who logs in with a password (``POST /auth/token``)."""

    __tablename__ = "customers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())


class StockLevel(Base):
    """Units of an item in stock; an item without a row has none."""

    __tablename__ = "stock_levels"

    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, server_default=func.now(), onupdate=func.now()
    )


class Order(Base):
    """An order of some units of one item, placed by a customer (or a guest in slow mode)."""

    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="placed")
    # PLANTED (integrity: idempotency): the key is stored but nothing makes it unique.
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)

    # Covers the foreign key (the planted problems are on items, not here).
    __table_args__ = (Index("ix_orders_item_id", "item_id"),)
