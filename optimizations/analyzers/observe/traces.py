"""What a target's traces say per endpoint: latency, where the time goes, SQL per request.

A *request* is a server span and the spans below it (down to, not into, another
server span: a call to another service is that service's request). Per
endpoint (method + route template) :func:`endpoints` gives the request count,
errors, latency percentiles, the time spent in the database, in outbound calls
and in the application itself, and the SQL statements per request.

The same statement family (literals, placeholders and IN-lists collapsed, see
:func:`statement_family`) run at least ``threshold`` times within one request
is a **runtime N+1** (:func:`n_plus_one`). It carries the route in the code
scan's spelling ("GET /items"), so the portal can put it beside the code-scan
finding (FSA101/FSA102) at the same route: the static and the runtime
evidence of one problem.

:func:`waterfall` lays out one request's spans as rows with offsets and depths.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..base import FindingData
from ..dbscan.common import normalise_sql
from .otlp import Span

RULE_N_PLUS_ONE = "trace.n_plus_one"
N_PLUS_ONE_THRESHOLD = 5  # repeats of one family in one request (Sentry's N+1 detector: 5)
QUANTILES = (0.5, 0.9, 0.95, 0.99)
SQLALCHEMY_LOADING_DOCS = "https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html"
DB, OUTBOUND, APP = "db", "outbound", "app"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Statements that are the driver's or the pool's, not the application's queries.
_HOUSEKEEPING = re.compile(
    r"^(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE|START TRANSACTION|SET|SHOW|RESET|DISCARD)\b"
    r"|^SELECT \?$",
    re.I,
)
_STRING = re.compile(r"(?:[EeNnBbXx])?'(?:[^']|'')*'")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|(?<![:\w]):\w+|\?")
_NUMBER = re.compile(r"(?<![\w$.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")
_POSTCOMPILE = re.compile(r"\(\s*__\[POSTCOMPILE_\w+\]\s*\)")
_LIST = re.compile(r"\(\s*\?(?:\s*,\s*\?)*\s*\)")
_ROWS = re.compile(r"\(\.\.\.\)(?:\s*,\s*\(\.\.\.\))+")


def statement_family(sql: str) -> str:
    """The statement with its values taken out, so repeats with other values match.

    String and number literals and driver placeholders ($1, %s, %(name)s, :name, ?)
    become ``?``; a parenthesised list of them (an IN-list, a VALUES row) becomes
    ``(...)`` whatever its length, and so do many rows. Comments and whitespace go
    as in the DB scan's ``normalise_sql`` (a sqlcommenter route comment does not split
    a family).
    """
    text = _STRING.sub("?", sql)
    text = _LINE_COMMENT.sub(" ", text)
    text = normalise_sql(text)
    text = _POSTCOMPILE.sub("(?)", text)
    text = _PLACEHOLDER.sub("?", text)
    text = _NUMBER.sub("?", text)
    text = _LIST.sub("(...)", text)
    return _ROWS.sub("(...)", text)


def family_key(family: str) -> str:
    return hashlib.sha256(family.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a request."""

    text: str
    family: str
    start_ns: int
    duration_ns: int


@dataclass(frozen=True)
class Request:
    """One served request: its server span and what happened below it."""

    trace_id: str
    span_id: str
    method: str
    route: str  # the route template; the span name when the server names none
    start_ns: int
    duration_ns: int
    status_code: int | None
    error: bool
    db_ns: int
    outbound_ns: int
    statements: tuple[Statement, ...]

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def app_ns(self) -> int:
        return self.duration_ns - self.db_ns - self.outbound_ns

    @property
    def duration_ms(self) -> float:
        return self.duration_ns / 1e6

    def families(self) -> Counter[str]:
        """Statements per family, housekeeping (BEGIN, SET, ping) left out."""
        return Counter(s.family for s in self.statements if not _HOUSEKEEPING.match(s.family))


@dataclass(frozen=True)
class Endpoint:
    """The figures of one endpoint over a set of requests. Times in milliseconds."""

    method: str
    route: str
    requests: int
    errors: int
    latency_ms: dict[str, float]  # "p50", "p90", "p95", "p99", "max", "mean"
    db_ms: float  # mean per request
    outbound_ms: float
    app_ms: float
    statements_mean: float  # SQL statements per request
    statements_max: int
    slowest_trace_id: str

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.route}"

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests


@dataclass(frozen=True)
class NPlusOne:
    """One statement family repeated within requests of one endpoint."""

    method: str
    route: str
    family: str
    example: str  # one statement as it was sent
    repeats: int  # most repeats within one request
    requests: int  # requests of the endpoint where it reached the threshold
    of_requests: int  # requests of the endpoint seen
    trace_id: str  # the request with the most repeats
    db_ms: float  # time those repeats took in that request
    threshold: int

    @property
    def endpoint(self) -> str:
        return f"{self.method} {self.route}"

    def finding(self) -> FindingData:
        """The runtime N+1 as a finding; its key is stable run after run."""
        verb = self.family.split(" ", 1)[0].upper()
        return FindingData(
            rule_id=RULE_N_PLUS_ONE,
            title=f"Runtime N+1 on {self.endpoint}: one {verb} statement "
            f"{self.repeats}× in one request",
            severity="high",
            category="performance",
            location=self.endpoint,
            key=f"{self.endpoint}\x1f{family_key(self.family)}",
            evidence={
                "route": self.endpoint,
                "family": self.family,
                "example": self.example,
                "repeats": self.repeats,
                "requests": self.requests,
                "of_requests": self.of_requests,
                "threshold": self.threshold,
                "trace_id": self.trace_id,
                "db_ms": round(self.db_ms, 3),
            },
            fix_hint="Load the related rows with the first query (selectinload / joinedload, "
            "or one query with IN over the ids) instead of one query per row; the code scan's "
            "FSA101/FSA102 finding at this route, when there is one, names the line.",
            doc_url=SQLALCHEMY_LOADING_DOCS,
        )


@dataclass
class Analysis:
    """Requests found in a set of spans, and the spans that belong to none."""

    requests: list[Request] = field(default_factory=list)
    orphans: int = 0  # spans with no server span above them (not sampled, or not yet received)


def requests(spans: Iterable[Span]) -> Analysis:
    """The served requests in ``spans`` (any order, any number of traces)."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    analysis = Analysis()
    for trace in by_trace.values():
        children: dict[str | None, list[Span]] = defaultdict(list)
        ids = {span.span_id for span in trace}
        for span in trace:
            children[span.parent_id if span.parent_id in ids else None].append(span)
        claimed: set[str] = set()
        for span in trace:
            if span.kind == "server":
                below = _below(span, children)
                claimed.update(s.span_id for s in below)
                claimed.add(span.span_id)
                analysis.requests.append(_request(span, below))
        analysis.orphans += sum(1 for span in trace if span.span_id not in claimed)
    analysis.requests.sort(key=lambda r: (r.start_ns, r.span_id))
    return analysis


def _below(server: Span, children: dict[str | None, list[Span]]) -> list[Span]:
    found: list[Span] = []
    pending = list(children.get(server.span_id, ()))
    while pending:
        span = pending.pop()
        if span.kind == "server":
            continue  # another service's request
        found.append(span)
        pending.extend(children.get(span.span_id, ()))
    return found


def _request(server: Span, below: list[Span]) -> Request:
    start, end = server.start_ns, server.end_ns
    db = [span for span in below if span.is_database]
    outbound = [span for span in below if span.kind == "client" and not span.is_database]
    db_ns = _covered([(s.start_ns, s.end_ns) for s in db], start, end)
    # Outbound time is what the calls add beyond the database's: concurrent calls and
    # queries are counted once, so db + outbound + app is the request's duration.
    either = _covered([(s.start_ns, s.end_ns) for s in db + outbound], start, end)
    statements = tuple(
        Statement(s.statement, statement_family(s.statement), s.start_ns, s.duration_ns)
        for s in sorted(db, key=lambda s: (s.start_ns, s.span_id))
        if s.statement
    )
    status_code = server.status_code
    return Request(
        trace_id=server.trace_id,
        span_id=server.span_id,
        method=(server.method or _method_from_name(server.name) or "?").upper(),
        route=server.route or _route_from_name(server.name),
        start_ns=start,
        duration_ns=server.duration_ns,
        status_code=status_code,
        # A 4xx is the client's mistake; the server failed on 5xx or an error status.
        error=server.status == "error" or (status_code is not None and status_code >= 500),
        db_ns=db_ns,
        outbound_ns=either - db_ns,
        statements=statements,
    )


def _method_from_name(name: str) -> str | None:
    word = name.split(" ", 1)[0]
    return word if word.isupper() and word.isalpha() else None


def _route_from_name(name: str) -> str:
    # Instrumentations name a server span "GET /items/{item_id}" (or just the method).
    parts = name.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[1].startswith("/") else "(no route)"


def _covered(intervals: list[tuple[int, int]], start: int, end: int) -> int:
    """Nanoseconds of [start, end] covered by the union of ``intervals``."""
    total, reached = 0, start
    for low, high in sorted(intervals):
        low, high = max(low, reached), min(high, end)
        if high > low:
            total += high - low
            reached = high
    return total


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile (the value at rank ceil(share × n)), as the probe computes it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def endpoints(found: Iterable[Request]) -> list[Endpoint]:
    """Figures per endpoint, busiest first."""
    grouped: dict[tuple[str, str], list[Request]] = defaultdict(list)
    for request in found:
        grouped[(request.method, request.route)].append(request)
    result = []
    for (method, route), group in grouped.items():
        durations = [r.duration_ms for r in group]
        latency = {f"p{round(q * 100)}": percentile(durations, q) for q in QUANTILES}
        latency["max"] = max(durations)
        latency["mean"] = sum(durations) / len(durations)
        counts = [len(r.statements) for r in group]
        slowest = max(group, key=lambda r: (r.duration_ns, r.span_id))
        result.append(
            Endpoint(
                method=method,
                route=route,
                requests=len(group),
                errors=sum(1 for r in group if r.error),
                latency_ms=latency,
                db_ms=_mean_ms(r.db_ns for r in group),
                outbound_ms=_mean_ms(r.outbound_ns for r in group),
                app_ms=_mean_ms(r.app_ns for r in group),
                statements_mean=sum(counts) / len(counts),
                statements_max=max(counts),
                slowest_trace_id=slowest.trace_id,
            )
        )
    result.sort(key=lambda e: (-e.requests, e.method, e.route))
    return result


def _mean_ms(values: Iterable[int]) -> float:
    listed = list(values)
    return sum(listed) / len(listed) / 1e6


def n_plus_one(found: Iterable[Request], threshold: int = N_PLUS_ONE_THRESHOLD) -> list[NPlusOne]:
    """Statement families run ≥ ``threshold`` times within one request, per endpoint."""
    if threshold < 2:
        raise ValueError("an N+1 needs a threshold of at least 2 repeats")
    seen: Counter[tuple[str, str]] = Counter()
    worst: dict[tuple[str, str, str], tuple[int, Request]] = {}
    affected: Counter[tuple[str, str, str]] = Counter()
    for request in found:
        seen[(request.method, request.route)] += 1
        for family, count in request.families().items():
            if count < threshold:
                continue
            key = (request.method, request.route, family)
            affected[key] += 1
            if key not in worst or count > worst[key][0]:
                worst[key] = (count, request)
    result = []
    for (method, route, family), (count, request) in worst.items():
        repeats = [s for s in request.statements if s.family == family]
        result.append(
            NPlusOne(
                method=method,
                route=route,
                family=family,
                example=repeats[0].text,
                repeats=count,
                requests=affected[(method, route, family)],
                of_requests=seen[(method, route)],
                trace_id=request.trace_id,
                db_ms=sum(s.duration_ns for s in repeats) / 1e6,
                threshold=threshold,
            )
        )
    result.sort(key=lambda n: (-n.repeats, n.method, n.route, n.family))
    return result


@dataclass(frozen=True)
class Row:
    """One span of a waterfall; offsets from the start of the request, in milliseconds."""

    span_id: str
    parent_id: str | None
    name: str
    kind: str
    category: str  # DB, OUTBOUND or APP
    depth: int  # 0 for the server span
    offset_ms: float
    duration_ms: float
    status: str
    detail: str  # the statement, the called host or the route


def waterfall(spans: Iterable[Span], trace_id: str, span_id: str | None = None) -> list[Row]:
    """The rows of one request of ``trace_id`` (its first server span, or ``span_id``).

    Depth-first, children in start order: the order a waterfall chart draws them.
    Empty when the trace holds no such server span.
    """
    trace = [span for span in spans if span.trace_id == trace_id]
    servers = sorted((s for s in trace if s.kind == "server"), key=lambda s: s.start_ns)
    root = next((s for s in servers if span_id in (None, s.span_id)), None)
    if root is None:
        return []
    children: dict[str | None, list[Span]] = defaultdict(list)
    for span in trace:
        children[span.parent_id].append(span)
    rows: list[Row] = []
    pending: list[tuple[Span, int]] = [(root, 0)]
    while pending:
        span, depth = pending.pop()
        rows.append(_row(span, depth, root.start_ns))
        below = [c for c in children.get(span.span_id, ()) if c.kind != "server"]
        below.sort(key=lambda c: (c.start_ns, c.span_id), reverse=True)
        pending.extend((child, depth + 1) for child in below)
    return rows


def _row(span: Span, depth: int, origin_ns: int) -> Row:
    if span.is_database:
        category, detail = DB, span.statement or span.db_system or ""
    elif span.kind == "client":
        category, detail = OUTBOUND, span.server_address or ""
    else:
        category, detail = APP, span.route or ""
    return Row(
        span_id=span.span_id,
        parent_id=span.parent_id,
        name=span.name,
        kind=span.kind,
        category=category,
        depth=depth,
        offset_ms=(span.start_ns - origin_ns) / 1e6,
        duration_ms=span.duration_ns / 1e6,
        status=span.status,
        detail=detail,
    )


def latency_events(
    found: Iterable[Request], objective_ms: float = 500.0
) -> list[tuple[datetime, bool]]:
    """(end time, good) per request, for a latency objective stated as a share of requests
    (good: served without error within ``objective_ms``); ``burnrate.bucketize`` takes them."""
    return [
        (
            _EPOCH + timedelta(microseconds=(r.start_ns + r.duration_ns) // 1000),
            not r.error and r.duration_ms <= objective_ms,
        )
        for r in found
    ]
