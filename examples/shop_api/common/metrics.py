"""Instrumentation of the shop API: statement counts, request metrics, /metrics (Prometheus).

Metric names are a contract read by Kaizen's load engine and DB scan; README.md lists them.
Everything runs on the event loop thread, so plain integers need no lock.
"""

import bisect
import os
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psutil
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

QUERY_COUNT_HEADER = "X-DB-Queries"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED_ROUTE = "unmatched"
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class Histogram:
    """Cumulative-bucket latency histogram, Prometheus style."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


class Metrics:
    """The counters of one application instance."""

    def __init__(self, *, mode: str, database: str) -> None:
        self.mode = mode
        self.database = database
        self.started_at = time.time()
        self.requests: dict[tuple[str, str, str], int] = {}
        self.latency: dict[tuple[str, str, str], Histogram] = {}
        self.in_progress = 0
        self.db_queries = 0
        self.pool_checkouts = 0
        self.pool_checkout_timeouts = 0
        self.connections_opened = 0
        self.pool_checked_out_peak = 0
        self.cache_hits = 0
        self.cache_misses = 0
        self.engine: AsyncEngine | None = None
        self.cache_backend = "none"
        self.cache_entries: Callable[[], Awaitable[int]] | None = None

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.setdefault(key, Histogram()).observe(seconds)

    def watch_engine(self, engine: AsyncEngine) -> None:
        """Report the pool of the application's engine, and the peak of its checkouts."""
        self.engine = engine
        pool = engine.sync_engine.pool
        if not hasattr(pool, "checkedout"):
            return

        def record_peak(_dbapi_connection, _record, _proxy) -> None:
            # Scrapes are instants; the peak shows saturation that happened between two.
            self.pool_checked_out_peak = max(self.pool_checked_out_peak, pool.checkedout())

        event.listen(pool, "checkout", record_peak)

    def count_cache(self, *, hit: bool) -> None:
        if hit:
            self.cache_hits += 1
        else:
            self.cache_misses += 1

    def watch_cache(self, backend: str, entries: Callable[[], Awaitable[int]]) -> None:
        self.cache_backend = backend
        self.cache_entries = entries

    async def render(self) -> str:
        """Return every metric in the Prometheus text exposition format."""
        out = _Writer()
        out.gauge(
            "shop_info",
            "Mode and database of this shop API process.",
            [({"mode": self.mode, "database": self.database}, 1)],
        )
        self._render_http(out)
        self._render_db(out)
        await self._render_cache(out)
        _render_process(out, self.started_at)
        return out.text()

    def _render_http(self, out: "_Writer") -> None:
        out.counter(
            "http_requests_total",
            "HTTP requests by method, route template and status.",
            [(_labels(key), count) for key, count in sorted(self.requests.items())],
        )
        name = "http_request_duration_seconds"
        out.header(name, "histogram", "HTTP request latency by method, route template and status.")
        for key, histogram in sorted(self.latency.items()):
            labels = _labels(key)
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS, "+Inf"), histogram.counts, strict=True):
                cumulative += count
                out.sample(f"{name}_bucket", {**labels, "le": str(bound)}, cumulative)
            out.sample(f"{name}_sum", labels, histogram.total)
            out.sample(f"{name}_count", labels, cumulative)
        out.gauge(
            "http_requests_in_progress", "HTTP requests being served.", [({}, self.in_progress)]
        )

    def _render_db(self, out: "_Writer") -> None:
        pool = self.engine.sync_engine.pool if self.engine is not None else None
        pool_figures = [
            ("db_pool_size", "Connections the pool keeps open (pool_size).", "size"),
            ("db_pool_checked_out", "Connections checked out of the pool now.", "checkedout"),
            ("db_pool_checked_in", "Idle connections in the pool now.", "checkedin"),
        ]
        for name, text, method in pool_figures:
            if pool is not None and hasattr(pool, method):
                out.gauge(name, text, [({}, getattr(pool, method)())])
        if pool is not None and hasattr(pool, "overflow"):
            # QueuePool.overflow() counts from -pool_size; only connections beyond the size matter.
            out.gauge(
                "db_pool_overflow",
                "Connections open beyond pool_size now.",
                [({}, max(pool.overflow(), 0))],
            )
            # No public accessor exists for the configured max_overflow.
            max_overflow = getattr(pool, "_max_overflow", None)
            if max_overflow is not None:
                out.gauge(
                    "db_pool_max_overflow",
                    "Configured max_overflow of the pool.",
                    [({}, max_overflow)],
                )
        out.gauge(
            "db_pool_checked_out_peak",
            "Most connections checked out of the pool at once so far.",
            [({}, self.pool_checked_out_peak)],
        )
        out.counter(
            "db_pool_checkouts_total",
            "Connections checked out of a pool.",
            [({}, self.pool_checkouts)],
        )
        out.counter(
            "db_pool_checkout_timeouts_total",
            "Requests that timed out waiting for a pooled connection.",
            [({}, self.pool_checkout_timeouts)],
        )
        out.counter(
            "db_connections_opened_total",
            "New DBAPI connections opened.",
            [({}, self.connections_opened)],
        )
        out.counter(
            "db_queries_total",
            "SQL statements executed while serving requests.",
            [({}, self.db_queries)],
        )

    async def _render_cache(self, out: "_Writer") -> None:
        labels = {"backend": self.cache_backend}
        entries = await self.cache_entries() if self.cache_entries is not None else 0
        out.gauge("shop_cache_entries", "Entries in the item cache.", [(labels, entries)])
        out.counter("shop_cache_hits_total", "Item cache hits.", [(labels, self.cache_hits)])
        out.counter("shop_cache_misses_total", "Item cache misses.", [(labels, self.cache_misses)])


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def header(self, name: str, kind: str, text: str) -> None:
        self.lines.append(f"# HELP {name} {text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        if labels:
            rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{rendered}}} {_number(value)}")
        else:
            self.lines.append(f"{name} {_number(value)}")

    def gauge(self, name: str, text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.header(name, "gauge", text)
        for labels, value in samples:
            self.sample(name, labels, value)

    def counter(self, name: str, text: str, samples: list[tuple[dict[str, str], float]]) -> None:
        self.header(name, "counter", text)
        for labels, value in samples:
            self.sample(name, labels, value)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _labels(key: tuple[str, str, str]) -> dict[str, str]:
    method, route, status = key
    return {"method": method, "route": route, "status": status}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _proc_kilobytes(path: Path, field_name: str) -> int | None:
    """Read one ``Name:   123 kB`` line of a /proc file, in bytes; None where /proc lacks it."""
    try:
        with path.open() as handle:
            for line in handle:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _render_process(out: _Writer, started_at: float) -> None:
    process = psutil.Process()
    memory = process.memory_info()
    cpu = process.cpu_times()
    out.gauge("process_resident_memory_bytes", "Resident set size.", [({}, memory.rss)])
    out.gauge("process_virtual_memory_bytes", "Virtual memory size.", [({}, memory.vms)])
    proc = Path("/proc/self")
    pss = _proc_kilobytes(proc / "smaps_rollup", "Pss")
    if pss is not None:
        out.gauge(
            "process_pss_memory_bytes", "Proportional set size (shared pages split).", [({}, pss)]
        )
    peak = _proc_kilobytes(proc / "status", "VmHWM")
    if peak is not None:
        out.gauge(
            "process_peak_resident_memory_bytes", "Peak resident set size (VmHWM).", [({}, peak)]
        )
    out.counter(
        "process_cpu_seconds_total", "User and system CPU time.", [({}, cpu.user + cpu.system)]
    )
    out.gauge(
        "process_start_time_seconds", "Start of the application, Unix time.", [({}, started_at)]
    )
    out.gauge("process_pid", "Operating-system process id.", [({}, os.getpid())])


# --- statement and connection counting -------------------------------------------------------


@dataclass
class RequestStats:
    """What one request made the database do."""

    metrics: Metrics
    queries: int = 0
    scope: Scope | None = None


_current_request: ContextVar[RequestStats | None] = ContextVar("shop_request_stats", default=None)
_listeners_installed = False


def current_request_stats() -> RequestStats | None:
    """The statistics of the request being served, or None outside a request."""
    return _current_request.get()


def install_sqlalchemy_listeners() -> None:
    """Count statements, checkouts and new connections of every engine, per request.

    Listening on the Engine and Pool classes also covers engines made while serving a
    request. Outside a request (start-up, scripts) nothing is counted.
    """
    global _listeners_installed
    if _listeners_installed:
        return
    event.listen(Engine, "before_cursor_execute", _on_statement, retval=True)
    event.listen(Pool, "checkout", _on_checkout)
    event.listen(Pool, "connect", _on_connect)
    _listeners_installed = True


def _on_statement(_conn, _cursor, statement, parameters, _context, _executemany):
    """Count the statement, and tag it with the route it serves (sqlcommenter style).

    The comment lets the database's own views (pg_stat_activity,
    pg_stat_statements) say which endpoint a slow query comes from; PostgreSQL
    ignores comments when it groups statements into families.
    """
    stats = _current_request.get()
    if stats is None:
        return statement, parameters
    stats.queries += 1
    stats.metrics.db_queries += 1
    route = getattr((stats.scope or {}).get("route"), "path", None)
    if route:
        method = quote(stats.scope.get("method", ""), safe="")
        statement = f"{statement} /*method='{method}',route='{quote(route, safe='')}'*/"
    return statement, parameters


def _on_checkout(_dbapi_connection, _record, _proxy) -> None:
    stats = _current_request.get()
    if stats is not None:
        stats.metrics.pool_checkouts += 1


def _on_connect(_dbapi_connection, _record) -> None:
    stats = _current_request.get()
    if stats is not None:
        stats.metrics.connections_opened += 1


class InstrumentationMiddleware:
    """Outermost ASGI middleware: times requests, counts their statements, adds X-DB-Queries."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        stats = RequestStats(self.metrics, scope=scope)
        token = _current_request.set(stats)
        status = 500
        started = time.perf_counter()

        async def send_with_count(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(QUERY_COUNT_HEADER, str(stats.queries))
            await send(message)

        self.metrics.in_progress += 1
        try:
            await self.app(scope, receive, send_with_count)
        except sa_exc.TimeoutError:
            self.metrics.pool_checkout_timeouts += 1
            raise
        finally:
            self.metrics.in_progress -= 1
            _current_request.reset(token)
            route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
            self.metrics.observe_request(
                scope["method"], route, status, time.perf_counter() - started
            )


router = APIRouter()


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    tags=["operations"],
)
async def metrics_endpoint(request: Request) -> PlainTextResponse:
    metrics: Metrics = request.app.state.metrics
    return PlainTextResponse(await metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)
