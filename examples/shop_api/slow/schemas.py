"""Pydantic schemas of the slow mode's API."""

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


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


class ItemPage(BaseModel):
    items: list[ItemOut]
    next_cursor: str | None


class ItemIn(BaseModel):
    # PLANTED: no bounds on lengths or prices (the security scan's invalid-input checks).
    sku: str
    name: str
    price_cents: int
    cost_cents: int
    category_id: uuid.UUID
    attributes: dict = {}


class BulkCreate(BaseModel):
    # PLANTED: no upper bound on the batch size.
    items: list[ItemIn]


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


class StockChange(BaseModel):
    delta: int


class StockOut(BaseModel):
    item_id: uuid.UUID
    stock: int


class OrderIn(BaseModel):
    item_id: uuid.UUID
    quantity: int = 1


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
