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

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import psycopg
import sqlalchemy as sa
from psycopg import conninfo as pg_conninfo
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from ..base import AnalysisError, Cancelled
from ..netguard import (
    DEFAULT_ALLOWED,
    TARGET_SETTING,
    AllowList,
    HostNotAllowed,
    check_address,
    check_host,
    check_socket_dir,
)

MARKER = "/* kaizen */"
# How often a running statement looks at the job's cancel flag (seconds).
CANCEL_POLL = 0.1
APPLICATION_NAME = "kaizen"
DEFAULT_STATEMENT_TIMEOUT_MS = 5000
DEFAULT_LOCK_TIMEOUT_MS = 500
DEFAULT_MAX_ROWS = 500


class QueryFailed(Exception):
    """One statement failed (permission, timeout, missing object): the check goes unknown."""

    def __init__(self, message: str, sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


LIBPQ_DOC = "https://www.postgresql.org/docs/current/libpq-connect.html"
# Options that make libpq read hosts or credentials from files on the worker,
# where the allow-list cannot see them.
REFUSED_OPTIONS = {
    "service": "a service name (service=) makes libpq read the host and credentials from "
    "pg_service.conf on the worker",
    "servicefile": "servicefile= makes libpq read the host and credentials from a file "
    "on the worker",
    "passfile": "passfile= makes libpq read passwords from a file on the worker",
    "sslkeylogfile": "sslkeylogfile= makes libpq write TLS keys to a file on the worker",
    "gssdelegation": "gssdelegation= hands the worker's own Kerberos credentials to the server",
}
# libpq 18's OAuth options make libpq itself fetch URLs (the issuer's), out of
# reach of the allow-list.
OAUTH_PREFIX = "oauth_"
_OPTION_NAME = re.compile(r'(?:parameter|option):? "([A-Za-z_]+)"')


def _libpq_url(database_url: str) -> str:
    """The URL with a SQLAlchemy driver suffix dropped (postgresql+asyncpg:// → postgresql://)."""
    text = database_url.strip()
    scheme, sep, rest = text.partition("://")
    base = scheme.split("+", 1)[0].lower()
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        raise AnalysisError(
            "The database URL is not valid; expected postgresql://user:password@host:port/dbname"
        )
    if base not in {"postgresql", "postgres"}:
        raise AnalysisError(f"Not a PostgreSQL URL (scheme {scheme!r}).")
    return f"postgresql://{rest}"


def parse_database_url(database_url: str) -> dict[str, str]:
    """The connection parameters exactly as libpq reads the URL (query options included).

    Errors name the problem, never the URL: libpq's own messages may quote it,
    password and all.
    """
    try:
        params = pg_conninfo.conninfo_to_dict(_libpq_url(database_url))
    except psycopg.Error as exc:
        found = _OPTION_NAME.search(str(exc))
        detail = f" (unknown or invalid option {found.group(1)!r})" if found else ""
        raise AnalysisError(
            f"The database URL is not valid for libpq{detail}; expected "
            "postgresql://user:password@host:port/dbname"
        ) from None
    return {key: str(value) for key, value in params.items() if value is not None}


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in value.split(",")] if value is not None else []


def _port(ports: list[str], index: int) -> int:
    if not ports:
        return 5432
    text = ports[index] if len(ports) > 1 else ports[0]
    if not text:
        return 5432
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise AnalysisError("The database URL has an invalid port.")
    return int(text)


def check_database_url(
    database_url: str, allowed_hosts: AllowList = DEFAULT_ALLOWED, setting: str = TARGET_SETTING
) -> dict[str, str]:
    """Check every host libpq would use; return parameters that connect only to checked ones.

    The URL is read by libpq's own rules, so ``?host=``, ``?hostaddr=``, a list
    of hosts and socket paths are all seen. Each TCP host is resolved and its
    addresses checked against the allow-list, and the returned parameters pin
    ``hostaddr`` to the checked address (libpq then does no lookup of its own);
    a ``hostaddr`` given in the URL is checked as it is. A Unix socket (a host
    starting with ``/`` or ``@``, or no host at all) needs an explicit
    ``unix:<directory>`` entry. ``service``, ``servicefile``, ``passfile``,
    ``sslkeylogfile``, ``gssdelegation`` and the ``oauth_*`` options are
    refused. Raises AnalysisError with a message that never repeats the URL.
    """
    params = parse_database_url(database_url)
    for name in sorted(params):
        why = REFUSED_OPTIONS.get(name)
        if name.startswith(OAUTH_PREFIX):
            why = f"{name}= makes libpq contact an OAuth issuer itself"
        if why:
            raise AnalysisError(
                f"The database URL sets {name}=, which Kaizen refuses: {why}, out of reach "
                "of the host allow-list and its rules. Put host, port, user, password and "
                "database in the URL itself."
            )
    hosts, addresses, ports = (_split(params.get(key)) for key in ("host", "hostaddr", "port"))
    count = len(hosts) or len(addresses) or 1
    if hosts and addresses and len(hosts) != len(addresses):
        raise AnalysisError("The database URL gives a different number of host and hostaddr.")
    if len(ports) > 1 and len(ports) != count:
        raise AnalysisError("The database URL gives a different number of hosts and ports.")
    # One entry per address libpq may try: a name with several checked addresses
    # becomes as many entries, each pinned with hostaddr (libpq tries them in order).
    entries: list[tuple[str, str, int]] = []
    try:
        for index in range(count):
            host = hosts[index] if hosts else ""
            address = addresses[index] if addresses else ""
            port = _port(ports, index)
            if address:
                # libpq connects to hostaddr without looking the host name up.
                entries.append((host, check_address(address, allowed_hosts, setting), port))
            elif not host:
                raise HostNotAllowed(
                    "the database URL names no host, so libpq would use its default Unix "
                    "socket; name the socket directory (?host=/var/run/postgresql) and allow "
                    f"it in {setting} with unix:/var/run/postgresql, or give a TCP host"
                )
            elif host.startswith(("/", "@")):
                check_socket_dir(host, allowed_hosts, setting)
                entries.append((host, "", port))
            else:
                checked = check_host(host, allowed_hosts, port, setting)
                for checked_address in sorted(checked, key=lambda a: ":" in a):
                    entries.append((host, checked_address, port))
    except HostNotAllowed as exc:
        raise AnalysisError(str(exc)) from None
    if hosts:
        params["host"] = ",".join(host for host, _, _ in entries)
    if any(address for _, address, _ in entries):
        params["hostaddr"] = ",".join(address for _, address, _ in entries)
    params["port"] = ",".join(str(port) for _, _, port in entries)
    return params


def describe_database_url(database_url: str) -> str:
    """Scheme, user, host(s), port and database only: what may be shown to anyone.

    No password, no query option (``?password=`` among them), nothing libpq
    would read that is not one of those five.
    """
    try:
        params = parse_database_url(database_url)
    except AnalysisError:
        return "(not a valid PostgreSQL URL)"
    scheme = database_url.strip().partition("://")[0].lower() or "postgresql"
    hosts = _split(params.get("host")) or _split(params.get("hostaddr")) or ["local socket"]
    ports = _split(params.get("port"))
    shown = []
    for index, host in enumerate(hosts):
        host = f"[{host}]" if ":" in host else host
        port = (ports[index] if len(ports) > 1 else ports[0]) if ports else ""
        shown.append(quote(host, safe="/@[]:.") + (f":{quote(port)}" if port else ""))
    user = quote(params["user"], safe="") + "@" if params.get("user") else ""
    database = quote(params.get("dbname", ""), safe="")
    return f"{scheme}://{user}{','.join(shown)}/{database}"


def normalise_url(database_url: str) -> sa.URL:
    """A password-free SQLAlchemy URL naming the first host, for messages and the session."""
    params = parse_database_url(database_url)
    host = (_split(params.get("host")) or _split(params.get("hostaddr")) or [""])[0]
    port = _split(params.get("port"))
    return sa.URL.create(
        "postgresql+psycopg",
        username=params.get("user"),
        host=host or None,
        port=int(port[0]) if port and port[0].isdigit() else None,
        database=params.get("dbname"),
    )


def safe_url(database_url: str) -> str:
    """The URL without its password or options, for messages and logs."""
    return describe_database_url(database_url)


def clear_libpq_environment() -> None:
    """Forget PG* variables: libpq must take no host, service or password from the environment.

    Called at worker start and before every target connection; everything a
    target connection uses is in its checked URL.
    """
    for name in [name for name in os.environ if name.startswith("PG")]:
        os.environ.pop(name, None)


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
        # The job's ``cancelled``: while a statement runs it is polled every
        # CANCEL_POLL s, and a cancel asks the server to stop the statement
        # (psycopg's cancel) instead of waiting up to statement_timeout.
        self.cancelled: Callable[[], bool] | None = None

    def _execute(self, sql: str, params: dict[str, Any] | None = None) -> sa.CursorResult[Any]:
        if self.cancelled is not None and self.cancelled():
            raise Cancelled("cancelled")  # nothing more is sent once the job is cancelled
        text = sql if sql.lstrip().startswith(MARKER) else f"{MARKER} {sql.strip()}"
        started = time.perf_counter()
        stopped = threading.Event()
        try:
            with self._cancellable(stopped):
                result = self.conn.exec_driver_sql(text, params or {})
        except DBAPIError as exc:
            if stopped.is_set():
                raise Cancelled("cancelled") from None
            orig = exc.orig
            sqlstate = getattr(orig, "sqlstate", None)
            message = str(orig).strip().splitlines()[0] if orig else str(exc)
            if exc.connection_invalidated:
                raise AnalysisError(f"Lost the connection to the database: {message}") from None
            raise QueryFailed(message, sqlstate) from None
        finally:
            self.load.statements += 1
            self.load.seconds += time.perf_counter() - started
        if stopped.is_set():
            # It ended as the cancel went out: stop all the same (the cancel must not
            # land on a next statement).
            raise Cancelled("cancelled")
        return result

    @contextmanager
    def _cancellable(self, stopped: threading.Event) -> Iterator[None]:
        """While the block runs, cancel its statement on the server when the job is cancelled."""
        cancelled = self.cancelled
        if cancelled is None:
            yield
            return
        done = threading.Event()
        driver: psycopg.Connection[Any] | None = self.conn.connection.driver_connection

        def watch() -> None:
            while not done.wait(CANCEL_POLL):
                if cancelled():
                    stopped.set()
                    with contextlib.suppress(Exception):  # the statement may just have ended
                        if driver is not None:
                            driver.cancel_safe(timeout=5)
                    return

        watcher = threading.Thread(target=watch, name="dbscan-cancel", daemon=True)
        watcher.start()
        try:
            yield
        finally:
            done.set()
            watcher.join()

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

    def try_rows(
        self, sql: str, params: dict[str, Any] | None = None, limit: int | None = None
    ) -> tuple[list[dict[str, Any]], None] | tuple[None, QueryFailed]:
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
    allowed_hosts: AllowList = DEFAULT_ALLOWED,
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
    params = check_database_url(database_url, allowed_hosts)
    url = normalise_url(database_url)
    clear_libpq_environment()
    # Our options win over the URL's: read-only, timeouts, and no options= of the URL
    # can turn default_transaction_read_only off.
    params.update(
        application_name=APPLICATION_NAME,
        connect_timeout=str(int(connect_timeout)),
        options=_options(statement_timeout_ms, lock_timeout_ms),
    )
    engine = sa.create_engine(
        "postgresql+psycopg://",
        creator=lambda: psycopg.connect(pg_conninfo.make_conninfo("", **params)),
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
    )
    load = Load()

    @event.listens_for(engine, "before_cursor_execute")
    def _count(
        conn: sa.Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
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
def session_for(
    database_url: str, allowed_hosts: AllowList = DEFAULT_ALLOWED, **kwargs: Any
) -> Iterator[Session]:
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
