"""The one connection a DB scan uses, and the safety limits on it.

Every statement runs in its own read-only transaction (``default_transaction_
read_only``), under ``statement_timeout`` and ``lock_timeout``, as application
``kaizen``. We deliberately do *not* hold one transaction open for the whole
scan: a read-only transaction kept open across a 30 s analysis window would
still hold back the target's xmin horizon and so its vacuum. One connection,
no pool (``NullPool``): a monitor must never leave idle connections behind, nor
queue on locks until it exhausts ``max_connections``.

Every statement Kaizen sends starts with the ``/* kaizen */`` marker so that
its own entries can be told apart in pg_stat_statements even when Kaizen
connects with the application's role.
"""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from ..base import AnalysisError
from ..netguard import DEFAULT_ALLOWED, HostNotAllowed, check_host

MARKER = "/* kaizen */"
APPLICATION_NAME = "kaizen"
DEFAULT_STATEMENT_TIMEOUT_MS = 5000
DEFAULT_LOCK_TIMEOUT_MS = 500
DEFAULT_MAX_ROWS = 500


class QueryFailed(Exception):
    """One statement failed (permission, timeout, missing object): the check goes unknown."""

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


def normalise_url(database_url: str) -> sa.URL:
    """A SQLAlchemy URL for psycopg 3 from whatever the target uses (asyncpg, psycopg2...)."""
    try:
        url = make_url(database_url.strip())
    except ArgumentError:
        raise AnalysisError(
            "The database URL is not valid; expected postgresql://user:password@host:port/dbname"
        ) from None
    backend = url.get_backend_name()
    if backend not in {"postgresql", "postgres"}:
        raise AnalysisError(f"Not a PostgreSQL URL (scheme {url.drivername!r}).")
    return url.set(drivername="postgresql+psycopg")


def safe_url(database_url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    try:
        return normalise_url(database_url).render_as_string(hide_password=True)
    except AnalysisError:
        return "<invalid database URL>"


def _explain_connect_error(exc: Exception, url: sa.URL) -> str:
    text = str(getattr(exc, "orig", exc) or exc)
    where = f"{url.host or 'local socket'}:{url.port or 5432}"
    low = text.lower()
    if "password authentication failed" in low:
        return (
            f"PostgreSQL at {where} rejected the password for user {url.username!r}. "
            "Check the password in the target's database URL."
        )
    if "no password supplied" in low or "password is required" in low:
        return (
            f"PostgreSQL at {where} asks for a password for user {url.username!r}: "
            "add it to the URL."
        )
    if "connection refused" in low:
        return (
            f"Could not connect to PostgreSQL at {where}: connection refused. "
            "Is the server running and listening on that host and port?"
        )
    if "timeout expired" in low or "timed out" in low:
        return f"Could not connect to PostgreSQL at {where}: the connection timed out."
    if "does not exist" in low and "database" in low:
        return f"PostgreSQL at {where} has no database {url.database!r}."
    if "role" in low and "does not exist" in low:
        return f"PostgreSQL at {where} has no role {url.username!r}."
    if "no pg_hba.conf entry" in low:
        return (
            f"PostgreSQL at {where} does not allow this connection (no pg_hba.conf entry "
            f"for user {url.username!r}); ask its administrator to add one."
        )
    if "too many" in low and "connections" in low:
        return f"PostgreSQL at {where} has no connection slot left (max_connections reached)."
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"Could not connect to PostgreSQL at {where}: {first}"


@dataclass
class Load:
    """What this scan itself cost the target."""

    statements: int = 0
    seconds: float = 0.0
    rows: int = 0
    by_tag: dict[str, int] = field(default_factory=dict)


class Session:
    """One read-only connection with bounded, counted, marked statements."""

    def __init__(self, engine: sa.Engine, conn: sa.Connection, url: sa.URL, max_rows: int):
        self.engine = engine
        self.conn = conn
        self.url = url
        self.max_rows = max_rows
        self.load = Load()

    def _execute(self, sql: str, params: dict[str, Any] | None = None):
        text = sql if sql.lstrip().startswith(MARKER) else f"{MARKER} {sql.strip()}"
        started = time.perf_counter()
        try:
            return self.conn.exec_driver_sql(text, params or {})
        except DBAPIError as exc:
            orig = exc.orig
            sqlstate = getattr(orig, "sqlstate", None)
            message = str(orig).strip().splitlines()[0] if orig else str(exc)
            if exc.connection_invalidated:
                raise AnalysisError(f"Lost the connection to the database: {message}") from None
            raise QueryFailed(message, sqlstate) from None
        finally:
            self.load.statements += 1
            self.load.seconds += time.perf_counter() - started

    def rows(
        self, sql: str, params: dict[str, Any] | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Run a query and return at most ``limit`` rows as dicts (``max_rows`` by default)."""
        limit = self.max_rows if limit is None else limit
        result = self._execute(sql, params)
        if not result.returns_rows:
            return []
        fetched = result.mappings().fetchmany(limit)
        result.close()
        self.load.rows += len(fetched)
        return [dict(row) for row in fetched]

    def one(self, sql: str, params: dict[str, Any] | None = None) -> dict[str, Any] | None:
        found = self.rows(sql, params, limit=1)
        return found[0] if found else None

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.rows(sql, params, limit=1)
        return next(iter(row[0].values())) if row else None

    def run(self, sql: str, params: dict[str, Any] | None = None) -> None:
        """A statement whose result is not needed (SET, PREPARE, DEALLOCATE)."""
        result = self._execute(sql, params)
        result.close()

    def try_rows(self, sql: str, params: dict[str, Any] | None = None, limit: int | None = None):
        """``rows`` that returns (rows, None) or (None, QueryFailed)."""
        try:
            return self.rows(sql, params, limit), None
        except QueryFailed as exc:
            return None, exc

    def close(self) -> None:
        try:
            self.conn.close()
        finally:
            self.engine.dispose()


def _options(statement_timeout_ms: int, lock_timeout_ms: int) -> str:
    settings = {
        "default_transaction_read_only": "on",
        "statement_timeout": str(int(statement_timeout_ms)),
        "lock_timeout": str(int(lock_timeout_ms)),
        # A scan never sits idle inside a transaction; if it ever did, the
        # server ends that session rather than let it hold locks or xmin.
        "idle_in_transaction_session_timeout": "10000",
    }
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def open_session(
    database_url: str,
    allowed_hosts=DEFAULT_ALLOWED,
    *,
    statement_timeout_ms: int = DEFAULT_STATEMENT_TIMEOUT_MS,
    lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
    connect_timeout: int = 5,
    max_rows: int = DEFAULT_MAX_ROWS,
) -> Session:
    """Check the host against the allow-list, then open the scan's single connection.

    Raises AnalysisError with a message for a person when the host is not
    allowed or the server refuses us.
    """
    url = normalise_url(database_url)
    try:
        # The host of the parsed URL, so a host hidden in the query string
        # (?host=...) is checked too; no host at all means the local socket.
        if url.host or url.query.get("host"):
            host = url.host or str(url.query["host"])
            if not host.startswith("/"):
                check_host(host, allowed_hosts, url.port)
    except HostNotAllowed as exc:
        raise AnalysisError(str(exc)) from None
    # libpq would also read PGOPTIONS etc. from the environment; explicit args win.
    engine = sa.create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args={
            "application_name": APPLICATION_NAME,
            "connect_timeout": connect_timeout,
            "options": _options(statement_timeout_ms, lock_timeout_ms),
        },
    )
    load = Load()

    @event.listens_for(engine, "before_cursor_execute")
    def _count(conn, cursor, statement, parameters, context, executemany):
        # Counts the dialect's own start-up queries too: the load we report is
        # everything this scan sent.
        if not statement.lstrip().startswith(MARKER):
            load.statements += 1

    try:
        conn = engine.connect()
    except DBAPIError as exc:
        engine.dispose()
        raise AnalysisError(_explain_connect_error(exc, url)) from None
    session = Session(engine, conn, url, max_rows)
    session.load = load
    return session


@contextmanager
def session_for(database_url: str, allowed_hosts=DEFAULT_ALLOWED, **kwargs):
    session = open_session(database_url, allowed_hosts, **kwargs)
    try:
        yield session
    finally:
        session.close()


_RESERVED = frozenset(
    [
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    ]
)


def quote_ident(name: str) -> str:
    """Quote an identifier for DDL we print, only where PostgreSQL needs it."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'
