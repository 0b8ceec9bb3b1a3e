"""A page builder with its own text(), beside SQLAlchemy's text() fed by the request."""

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Session

from app.html import text
from app.sync_db import get_db

router = APIRouter()
Db = Annotated[Session, Depends(get_db)]


@router.get("/pages/hello")
def hello(name: str):
    return {"html": text(f"<p>Hello {name}</p>")}  # ok: app.html.text builds HTML, not SQL


@router.get("/pages/search")
def search(db: Db, term: str):
    rows = db.execute(sql_text(f"select id from pages where title = '{term}'"))  # expect: FSA402
    return [row.id for row in rows]
