from typing import Annotated

from fastapi import Depends, FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from database import (
    analytics_engine,
    get_report_session,
    get_report_session_leaky,
    get_report_session_properly,
    lifespan,
    per_request_session,
)
from settings import Settings, get_settings, settings_uncached

app = FastAPI(lifespan=lifespan)


@app.get("/reports")
def reports(db: Session = Depends(get_report_session)) -> dict:
    return {"n": db.execute(text("SELECT count(*) FROM reports")).scalar()}


@app.get("/reports/safe")
def reports_safe(db: Annotated[Session, Depends(get_report_session_properly)]) -> dict:
    return {"n": db.execute(text("SELECT 1")).scalar()}


@app.get("/reports/leaky")
def reports_leaky(db: Annotated[Session, Depends(get_report_session_leaky)]) -> dict:
    return {"n": db.execute(text("SELECT 1")).scalar()}


@app.get("/adhoc")
def adhoc() -> dict:
    with per_request_session() as db:
        return {"n": db.execute(text("SELECT 1")).scalar()}


@app.get("/analytics")
def analytics() -> dict:
    with analytics_engine().connect() as conn:
        return {"n": conn.execute(text("SELECT 1")).scalar()}


@app.get("/config")
def config(settings: Annotated[Settings, Depends(get_settings)]) -> dict:
    return {"debug": settings.debug}


@app.get("/config/slow")
def config_slow(settings: Annotated[Settings, Depends(Settings)]) -> dict:  # expect: FSA303
    return {"debug": settings.debug}


@app.get("/config/uncached")
def config_uncached(settings: Annotated[Settings, Depends(settings_uncached)]) -> dict:
    return {"debug": settings.debug}
