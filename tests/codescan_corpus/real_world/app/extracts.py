"""A library's class named Settings, beside the application's Settings rebuilt per request."""

from typing import Annotated

from fastapi import APIRouter, Depends
from ukrr_extract.config import Settings

from app import config

router = APIRouter()


@router.get("/extracts/{centre}")
def extract(centre: str):
    conf = Settings(centre=[centre], quarter=1)  # ok: the extract's parameters, not app settings
    return {"centre": conf.centre}


@router.get("/config")
def show_config(settings: Annotated[config.Settings, Depends(config.Settings)]):  # expect: FSA303
    return {"database": settings.database_url.split("@")[-1]}
