"""ORM models of the fast mode: the same tables as slow mode, with the right indexes."""

import uuid
from datetime import datetime

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Uuid, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    """Declarative base of the fast mode."""


class Category(Base):
    """A product category."""

    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(120))
    # The unique index on slug also serves the keyset pagination of /categories.
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())

    # lazy="raise": a forgotten eager load fails loudly instead of issuing N+1 queries.
    items: Mapped[list["Item"]] = relationship(back_populates="category", lazy="raise")


class Item(Base):
    """A product for sale; prices are integer cents."""

    __tablename__ = "items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    sku: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    cost_cents: Mapped[int] = mapped_column(Integer)
    attributes: Mapped[dict] = mapped_column(JSON, default=dict)
    category_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("categories.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime, server_default=func.now(), onupdate=func.now()
    )

    category: Mapped[Category] = relationship(back_populates="items", lazy="raise")

    __table_args__ = (
        # Covers the foreign key (leading column) and serves the per-category keyset pages
        # and the per-category statistics.
        Index("ix_items_category_created", "category_id", "created_at", "id"),
        # Serves the keyset pagination of /items (ORDER BY created_at DESC, id DESC).
        Index("ix_items_created_id", "created_at", "id"),
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
    """An order of some units of one item, placed by a customer (or the shop's API key)."""

    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    customer: Mapped[str | None] = mapped_column(String(200))
    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    total_cents: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="placed")
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime, server_default=func.now())
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime)

    __table_args__ = (
        # Covers the foreign key: deleting or checking an item finds its orders by index.
        Index("ix_orders_item_id", "item_id"),
        # A retried POST /orders with the same Idempotency-Key finds the first order; the
        # index also settles two concurrent retries (one INSERT wins, the other reads it).
        Index("ux_orders_customer_idempotency", "customer", "idempotency_key", unique=True),
    )
