"""Routes handing a request's sort field to another module (issue 14, recall and precision)."""

import enum
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app import listing
from app.db import get_session
from app.models import Item

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]


class SortField(enum.StrEnum):
    name = "name"
    price = "price"


@router.get("/items")
async def list_items(session: Session, sort: str = "name"):
    return [item.id for item in await listing.sorted_items(session, sort)]


@router.get("/items/checked")
async def list_checked(session: Session, sort: str = "name"):
    return [item.id for item in await listing.checked_sort(session, sort)]


@router.get("/items/pattern")
async def list_pattern(session: Session, sort: str = "name"):
    return [item.id for item in await listing.pattern_sort(session, sort)]


@router.get("/items/validated")
async def list_validated(session: Session, sort: str = "name"):
    return [item.id for item in await listing.validated_sort(session, sort)]


@router.get("/items/enum")
async def list_enum(session: Session, sort: str = "name"):
    field = SortField(sort)
    return [item.id for item in await listing.sorted_items(session, field)]


@router.get("/orgs/{org_id}/items")
async def org_items(session: Session, org_id: int, name: Annotated[str, Query(max_length=50)] = ""):
    return [item.id for item in await listing.filtered(session, {"org_id": org_id, "name": name})]


def check_rate_limit(request: Request) -> None:
    if request.headers.get("x-burst") == "1":
        raise ValueError("slow down")


@router.get("/items/raw")
async def list_raw(request: Request, session: Session):
    check_rate_limit(request)  # a validator of the request, not of its query string
    sort = request.query_params.get("sort", "name")
    stmt = select(Item).order_by(getattr(Item, sort)).limit(20)  # expect: FSA403
    return [item.id for item in (await session.scalars(stmt)).all()]
