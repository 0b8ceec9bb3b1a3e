"""Windowed statement statistics: two pg_stat_statements snapshots, diffed.

We never call ``pg_stat_statements_reset``: the counters belong to the target's
own people and tools. Instead the window's figures are the difference of two
snapshots — calls, total time and the *sum of squares* (recovered from mean and
population stddev: Σx² = n·(σ² + μ²)), which gives the window's own mean and
standard deviation. min/max are cumulative in pg_stat_statements; an entry that
appeared during the window has exact window min/max, otherwise they only bound
the window's executions (and a max that grew during the window is a window
execution).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from ..base import Context
from .connect import MARKER, Session, quote_ident

QUERY_TEXT_LIMIT = 2000


@dataclass
class StatRow:
    userid: int
    dbid: int
    queryid: int
    toplevel: bool
    calls: int
    total_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    stddev_ms: float
    rows: int
    blks_hit: int
    blks_read: int
    query: str = ""

    @property
    def key(self) -> tuple[int, int, int, bool]:
        return (self.userid, self.dbid, self.queryid, self.toplevel)

    @property
    def sumsq(self) -> float:
        return self.calls * (self.stddev_ms**2 + self.mean_ms**2)


@dataclass
class Snapshot:
    taken_at: float  # time.monotonic()
    wall: datetime | None
    rows: dict[tuple[int, int, int, bool], StatRow]
    dealloc: int | None
    stats_reset: datetime | None
    truncated: bool = False


@dataclass
class Family:
    """One statement family's figures over the window."""

    queryid: int
    userid: int
    query: str
    calls: int
    total_ms: float
    mean_ms: float
    stddev_ms: float
    min_ms: float  # exact when ``window_exact``, else a lower bound of the window's executions
    max_ms: float  # exact when ``window_exact``, else an upper bound
    max_in_window: bool  # True when an execution of max_ms happened inside the window
    window_exact: bool
    rows: int
    blks_hit: int
    blks_read: int
    share: float = 0.0  # of the window's total execution time
    routes: dict[str, int] = field(default_factory=dict)


def take_snapshot(
    session: Session,
    view: str,
    *,
    schema: str,
    with_text: bool,
    limit: int = 10000,
) -> Snapshot:
    """Read pg_stat_statements for the current database (bounded, text optional)."""
    text_col = f"left(query, {QUERY_TEXT_LIMIT}) AS query" if with_text else "'' AS query"
    rows = session.rows(
        f"SELECT userid::bigint AS userid, dbid::bigint AS dbid, queryid, toplevel, calls, "
        f"total_exec_time, min_exec_time, max_exec_time, mean_exec_time, stddev_exec_time, "
        f"rows, shared_blks_hit, shared_blks_read, {text_col} "
        f"FROM {view} "
        "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        f"AND queryid IS NOT NULL AND calls > 0 "
        f"ORDER BY total_exec_time DESC LIMIT {int(limit) + 1}",
        limit=limit + 1,
    )
    info = session.one(
        f"SELECT dealloc, stats_reset, now() AS now "
        f"FROM {quote_ident(schema)}.pg_stat_statements_info"
    )
    parsed = {}
    for r in rows[:limit]:
        row = StatRow(
            userid=int(r["userid"]),
            dbid=int(r["dbid"]),
            queryid=int(r["queryid"]),
            toplevel=bool(r["toplevel"]),
            calls=int(r["calls"]),
            total_ms=float(r["total_exec_time"]),
            min_ms=float(r["min_exec_time"]),
            max_ms=float(r["max_exec_time"]),
            mean_ms=float(r["mean_exec_time"]),
            stddev_ms=float(r["stddev_exec_time"]),
            rows=int(r["rows"]),
            blks_hit=int(r["shared_blks_hit"]),
            blks_read=int(r["shared_blks_read"]),
            query=r["query"] or "",
        )
        parsed[row.key] = row
    return Snapshot(
        taken_at=time.monotonic(),
        wall=info["now"] if info else None,
        rows=parsed,
        dealloc=int(info["dealloc"]) if info else None,
        stats_reset=info["stats_reset"] if info else None,
        truncated=len(rows) > limit,
    )


def empty_snapshot() -> Snapshot:
    """The 'before' of a cumulative view (everything since the statistics were reset)."""
    return Snapshot(taken_at=0.0, wall=None, rows={}, dealloc=None, stats_reset=None)


def is_own(row: StatRow, own_userid: int | None) -> bool:
    """Kaizen's own statements: marked text, or (with a dedicated role) our role."""
    if row.query.lstrip().startswith(MARKER):
        return True
    return own_userid is not None and row.userid == own_userid


def diff(
    before: Snapshot,
    after: Snapshot,
    *,
    own_userid: int | None = None,
    top_level_only: bool = True,
) -> list[Family]:
    """The window's families, merged across roles by queryid, by total time descending.

    An entry whose calls went *down* was evicted and re-created during the
    window (or the statistics were reset): its 'after' counters are all window.
    """
    reset = before.stats_reset is not None and after.stats_reset != before.stats_reset
    merged: dict[int, Family] = {}
    sumsq: dict[int, float] = {}
    for key, cur in after.rows.items():
        if top_level_only and not cur.toplevel:
            continue
        if is_own(cur, own_userid):
            continue
        prev = None if reset else before.rows.get(key)
        if prev is not None and cur.calls < prev.calls:
            prev = None
        if prev is None:
            calls, total, sq = cur.calls, cur.total_ms, cur.sumsq
            rows, hit, read = cur.rows, cur.blks_hit, cur.blks_read
            exact, max_in = True, True
        else:
            calls = cur.calls - prev.calls
            if calls <= 0:
                continue
            total = cur.total_ms - prev.total_ms
            sq = cur.sumsq - prev.sumsq
            rows, hit, read = (
                cur.rows - prev.rows,
                cur.blks_hit - prev.blks_hit,
                cur.blks_read - prev.blks_read,
            )
            exact = False
            max_in = cur.max_ms > prev.max_ms
        fam = merged.get(cur.queryid)
        if fam is None:
            fam = merged[cur.queryid] = Family(
                queryid=cur.queryid,
                userid=cur.userid,
                query=cur.query,
                calls=0,
                total_ms=0.0,
                mean_ms=0.0,
                stddev_ms=0.0,
                min_ms=math.inf,
                max_ms=0.0,
                max_in_window=False,
                window_exact=True,
                rows=0,
                blks_hit=0,
                blks_read=0,
            )
            sumsq[cur.queryid] = 0.0
        fam.calls += calls
        fam.total_ms += max(total, 0.0)
        sumsq[cur.queryid] += max(sq, 0.0)
        fam.min_ms = min(fam.min_ms, cur.min_ms)
        if cur.max_ms >= fam.max_ms:
            fam.max_in_window = max_in if cur.max_ms > fam.max_ms else (fam.max_in_window or max_in)
            fam.max_ms = cur.max_ms
        fam.window_exact = fam.window_exact and exact
        fam.rows += rows
        fam.blks_hit += hit
        fam.blks_read += read
        if not fam.query and cur.query:
            fam.query = cur.query
    families = list(merged.values())
    grand_total = sum(f.total_ms for f in families) or 0.0
    for fam in families:
        fam.mean_ms = fam.total_ms / fam.calls
        variance = sumsq[fam.queryid] / fam.calls - fam.mean_ms**2
        # Subtracting two large sums of squares loses precision: clamp tiny negatives.
        fam.stddev_ms = math.sqrt(max(variance, 0.0))
        fam.min_ms = min(fam.min_ms, fam.mean_ms)
        fam.max_ms = max(fam.max_ms, fam.mean_ms)
        fam.share = fam.total_ms / grand_total if grand_total > 0 else 0.0
    families.sort(key=lambda f: f.total_ms, reverse=True)
    return families


def wait_window(
    seconds: float,
    ctx: Context,
    started: float,
    during: Callable[[], object] | None = None,
    tick: float = 0.25,
) -> None:
    """Wait until ``seconds`` after ``started``, honouring cancellation; ``during`` each tick."""
    deadline = started + seconds
    while True:
        ctx.check_cancel()
        now = time.monotonic()
        if now >= deadline:
            return
        if during is not None:
            during()
        time.sleep(min(tick, max(deadline - time.monotonic(), 0)))
