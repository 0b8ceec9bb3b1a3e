"""Where the shop API's database is, and how its URL is turned into an async SQLAlchemy URL."""

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

REPOSITORY_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SQLITE_PATH = REPOSITORY_ROOT / "var" / "shop_api.sqlite3"

# Async drivers the service runs on; plain "postgresql://" (libpq style) means asyncpg.
_DRIVER_FOR_SCHEME = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "postgresql+asyncpg": "postgresql+asyncpg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+psycopg_async": "postgresql+psycopg_async",
}


class ConfigurationError(ValueError):
    """A setting of the shop API that it cannot work with."""


def resolve_database_url(url: str | None = None) -> str:
    """Return the async SQLAlchemy URL for ``url``, ``$DATABASE_URL`` or the default SQLite file.

    The SQLite file's folder is created when missing.
    """
    raw = url or os.environ.get("DATABASE_URL") or f"sqlite:///{DEFAULT_SQLITE_PATH}"
    scheme, separator, rest = raw.partition("://")
    if not separator:
        raise ConfigurationError(f"not a database URL: {raw!r}")
    driver = _DRIVER_FOR_SCHEME.get(scheme)
    if driver is None:
        supported = ", ".join(sorted(_DRIVER_FOR_SCHEME))
        raise ConfigurationError(f"unsupported database URL scheme {scheme!r} (use {supported})")
    parsed = make_url(f"{driver}://{rest}")
    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            # Every pooled connection would see its own empty in-memory database.
            raise ConfigurationError("the shop API needs a SQLite file, not an in-memory database")
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    return parsed.render_as_string(hide_password=False)


def backend_name(database_url: str) -> str:
    """Return ``sqlite`` or ``postgresql`` for a resolved URL."""
    return make_url(database_url).get_backend_name()


def configure_sqlite(engine: AsyncEngine) -> None:
    """Make SQLite behave like the PostgreSQL deployment: foreign keys enforced, WAL, busy wait."""
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine.sync_engine, "connect")
    def _set_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA busy_timeout = 5000")
        cursor.close()


def env_list(name: str, default: str) -> list[str]:
    """Read a comma-separated list from the environment."""
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]
