"""Mass assignment: a schema the client fills in, and the same schema built by the server."""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import get_session
from app.models import Membership

router = APIRouter()
Session = Annotated[AsyncSession, Depends(get_session)]


class MembershipIn(BaseModel):
    user_id: int
    team_id: int


class CurrentUser(BaseModel):
    id: int


async def current_user() -> CurrentUser:
    return CurrentUser(id=1)


async def add_membership(session: AsyncSession, membership: MembershipIn) -> Membership:
    row = Membership(**membership.model_dump())  # expect: FSA404
    session.add(row)
    await session.commit()
    return row


@router.post("/teams/{team_id}/join")
async def join(session: Session, team_id: int, user: Annotated[CurrentUser, Depends(current_user)]):
    row = await add_membership(session, MembershipIn(user_id=user.id, team_id=team_id))
    return {"id": row.id}  # ok above: the server sets user_id itself


@router.post("/memberships")
async def create_membership(session: Session, body: MembershipIn):
    row = await add_membership(session, body)  # the client chooses user_id
    return {"id": row.id}


async def require_admin(user: Annotated[CurrentUser, Depends(current_user)]) -> CurrentUser:
    return user


@router.post("/admin/memberships")
async def admin_create_membership(
    session: Session, body: MembershipIn, admin: Annotated[CurrentUser, Depends(require_admin)]
):
    row = Membership(**body.model_dump())  # ok: an administrator's endpoint sets these on purpose
    session.add(row)
    await session.commit()
    return {"id": row.id}
