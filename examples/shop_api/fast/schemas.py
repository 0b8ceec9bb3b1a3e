"""Pydantic schemas of the fast mode's API, with bounds on everything a client sends."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

MAX_BULK_ITEMS = 1_000


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    slug: str
    created_at: datetime


class ItemOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    sku: str
    name: str
    price_cents: int
    attributes: dict
    category_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    category: CategoryOut


class ItemDetail(ItemOut):
    in_stock: int


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9-]+$")]
    name: Annotated[str, Field(min_length=1, max_length=200)]
    price_cents: Annotated[int, Field(ge=0, le=100_000_000)]
    cost_cents: Annotated[int, Field(ge=0, le=100_000_000)]
    category_id: uuid.UUID
    attributes: Annotated[dict, Field(max_length=50)] = {}


class BulkCreate(BaseModel):
    items: Annotated[list[ItemIn], Field(min_length=1, max_length=MAX_BULK_ITEMS)]


class ItemCreated(BaseModel):
    id: uuid.UUID
    sku: str


class BulkCreated(BaseModel):
    created: int
    ids: list[uuid.UUID]


class CategoryStats(BaseModel):
    category_id: uuid.UUID
    item_count: int
    expensive_count: int
    expensive_share: float
    average_price_cents: float | None
    expensive_over_cents: int


MAX_ORDER_QUANTITY = 100
MAX_STOCK_DELTA = 1_000_000


class StockChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: Annotated[int, Field(ge=-MAX_STOCK_DELTA, le=MAX_STOCK_DELTA)]


class StockOut(BaseModel):
    item_id: uuid.UUID
    stock: int


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_ORDER_QUANTITY)] = 1


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer: str | None
    item_id: uuid.UUID
    quantity: int
    total_cents: int
    status: str
    created_at: datetime
    cancelled_at: datetime | None


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
