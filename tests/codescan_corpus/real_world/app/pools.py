"""Pool options passed through **kwargs: read when they can be, never called missing."""

import os

from sqlalchemy import create_engine


def engine_options() -> dict:
    return {"pool_size": 5, "max_overflow": 5, "pool_pre_ping": True, "pool_recycle": 1800}


def bare_options() -> dict:
    return {"pool_size": 5, "max_overflow": 5}


reporting = create_engine(os.environ["REPORTING_URL"], **engine_options())  # ok: pre-pings
warehouse = create_engine(os.environ["WAREHOUSE_URL"], **bare_options())  # expect: FSA204
archive = create_engine(os.environ["ARCHIVE_URL"], **dict(os.environ.items()))  # ok: unreadable

BASE_PATH = os.environ.get("DATA_DIR", ".")
local = create_engine(  # ok: the SQLite driver's own option says it is SQLite
    "sqlite:///" + BASE_PATH + "/app.db", connect_args={"check_same_thread": False}
)
