"""Python 3.14 syntax: the worker's Python may be older, the scan must still read it."""

import time

from fastapi import APIRouter

router = APIRouter()


@router.get("/slow")
async def slow() -> dict:
    try:
        time.sleep(1)  # expect: FSA104
    except ValueError, TypeError:
        pass
    name = "x"
    greeting = t"hello {name}"
    return {"greeting": str(greeting)}
