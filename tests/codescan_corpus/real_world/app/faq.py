"""A column named like another model's lazy relationship, beside a real lazy load per row."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import Faq, Product
from app.sync_db import get_db

router = APIRouter()
Db = Annotated[Session, Depends(get_db)]


@router.get("/faqs/grouped")
def grouped(db: Db):
    rows = db.execute(select(Faq.category, Faq.question).limit(500)).all()
    groups: dict[str, list[str]] = {}
    for row in rows:
        groups.setdefault(row.category, []).append(row.question)  # ok: a column of Faq
    return groups


@router.get("/products/categories")
def product_categories(db: Db):
    products = db.scalars(select(Product).limit(100)).all()
    return [product.category.title for product in products]  # expect: FSA102
