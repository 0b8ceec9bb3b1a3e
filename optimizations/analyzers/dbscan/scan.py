"""The DB scan's entry points: ``run`` (the analyzer contract) and ``test_connection``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..base import (
    SEVERITY_RANK,
    AnalysisError,
    AnalysisResult,
    Context,
    FindingData,
    Param,
    TargetSpec,
    validate_params,
    verdict_from_checks,
)
from ..netguard import AllowList
from . import checks_health, checks_schema
from .advisor import run_advisor
from .attribution import ActivitySampler, merge_routes
from .capabilities import Capabilities, detect
from .checks_queries import (
    avg_query_time,
    exact_from_samples,
    pgss_unknown,
    slow_families,
    slow_query_rate,
)
from .common import ScanState, Thresholds
from .connect import (
    DEFAULT_LOCK_TIMEOUT_MS,
    DEFAULT_MAX_ROWS,
    DEFAULT_STATEMENT_TIMEOUT_MS,
    open_session,
)
from .pool import (
    MetricsWatcher,
    conn_headroom,
    connection_usage,
    pool_usage,
    slow_count_from_histogram,
)
from .snapshots import diff, empty_snapshot, take_snapshot, wait_window

CHECK_IDS = (
    "db.capabilities",
    "db.avg_query_time",
    "db.slow_query_rate",
    "db.slow_families",
    "db.long_running",
    "db.idle_in_tx",
    "db.conn_headroom",
    "db.pool_usage",
    "db.fk_without_index",
    "db.duplicate_index",
    "db.unused_index",
    "db.invalid_index",
    "db.invalid_constraint",
    "db.seqscan_heavy",
    "db.cache_hit",
    "db.sequence_overflow",
    "db.txid_wraparound",
    "db.vacuum_health",
    "db.settings",
    "db.replication",
    "db.index_suggestion",
)
# The checks that judge the target's DB SLOs (average, slow-query rate, connection
# use): a scan where one of them could not run is incomplete, never pass.
SLO_CHECKS = ("db.avg_query_time", "db.slow_query_rate", "db.conn_headroom")
PGSS_CHECKS = ("db.avg_query_time", "db.slow_query_rate", "db.slow_families", "db.index_suggestion")

_THRESHOLD_HELP = {
    "slow_query_ms": "one execution at or above this many ms counts as a slow query",
    "slow_family_mean_ms": "a statement family with at least this mean (ms) ...",
    "slow_family_min_calls": "... over at least this many calls is a slow family",
    "db_avg_ms": "SLO: average query time (ms)",
    "slow_query_rate_pct": "SLO: share of executions that are slow (%)",
    "pool_use_pct": "SLO: connection-pool and max_connections use (%)",
    "cache_hit_pct": "minimum shared-buffer hit ratio (%)",
    "long_running_s": "a statement active longer than this (s) is long-running",
    "idle_in_tx_s": "a session idle in transaction longer than this (s) is reported",
    "unused_index_mb": "only unused indexes at least this large (MB) are reported",
    "seqscan_min_rows": "tables with fewer rows are never seq-scan-heavy",
    "sequence_pct": "report sequences that used this share (%) of their range",
    "wraparound_remaining": "report databases with fewer transaction IDs left",
    "replication_lag_s": "maximum standby replay lag (s)",
    "advisor_min_saving_pct": "index advice needs at least this cost saving (%) (Dexter: 50)",
    "advisor_min_cost": "index advice only for plans costing at least this (Dexter: 100)",
}

PARAMS: list[Param] = [
    Param(
        "window",
        "int",
        30,
        "analysis window in seconds (0: everything since the statistics were last reset)",
        "Window (s)",
        min=0,
        max=600,
    ),
    Param("checks", "list", [], "run only these checks (empty: all)", "Checks", choices=CHECK_IDS),
    Param(
        "metrics_url",
        "str",
        "",
        "the target's Prometheus metrics URL for its pool figures "
        "(default: base URL + metrics path)",
        "Metrics URL",
    ),
    Param(
        "sample_activity",
        "bool",
        True,
        "sample pg_stat_activity during the window (connection peaks, routes from SQL comments)",
        "Sample activity",
    ),
    Param(
        "routes",
        "json",
        None,
        "{queryid: {route: count}} from a benchmark's activity "
        "sampler, to name the endpoint of each slow family",
        "Routes",
    ),
    Param(
        "execution_samples_ms",
        "json",
        None,
        "per-execution durations (ms) for an exact slow-query rate",
        "Execution samples",
    ),
    Param(
        "statement_timeout_ms",
        "int",
        DEFAULT_STATEMENT_TIMEOUT_MS,
        "statement_timeout of the scan's own statements",
        "Statement timeout (ms)",
        min=100,
        max=60000,
    ),
    Param(
        "lock_timeout_ms",
        "int",
        DEFAULT_LOCK_TIMEOUT_MS,
        "lock_timeout of the scan's statements",
        "Lock timeout (ms)",
        min=10,
        max=10000,
    ),
    Param(
        "max_rows",
        "int",
        DEFAULT_MAX_ROWS,
        "most rows read per check",
        "Max rows",
        min=10,
        max=10000,
    ),
] + [
    Param(name, "float", None, _THRESHOLD_HELP.get(name, ""), name.replace("_", " "), min=0)
    for name in Thresholds.names()
]


def _capability_findings(state: ScanState) -> None:
    caps = state.caps
    missing = [r for r in caps.rungs if r.ok is False]
    for rung in missing:
        pgss = rung.id.startswith("pgss.")
        state.add(
            FindingData(
                rule_id="db.capabilities",
                title=f"Kaizen cannot see: {rung.label} — {rung.detail}",
                severity="medium" if pgss and rung.id != "pgss.churn" else "low",
                category="monitoring",
                location=caps.database,
                key=f"capability:{rung.id}",
                evidence={"rung": rung.id, "detail": rung.detail},
                fix_hint=rung.fix,
            )
        )
    state.summary["capabilities"] = [
        {"id": r.id, "label": r.label, "ok": r.ok, "detail": r.detail, "fix": r.fix}
        for r in caps.rungs
    ]
    detail = "; ".join(f"{r.id}: {r.detail}" for r in missing) or "everything visible"
    (state.failed if missing else state.passed)("db.capabilities", detail)


def _dedicated_role(state: ScanState) -> int | None:
    """Kaizen's role, when only Kaizen uses it: its statements are then filtered by role."""
    caps = state.caps
    if caps.is_superuser:
        return None
    row = state.session.one(
        "SELECT (SELECT count(*) FROM pg_stat_activity WHERE usename = current_user "
        "        AND application_name <> 'kaizen' AND backend_type = 'client backend') AS others, "
        "(SELECT count(*) FROM pg_class WHERE relowner = %(r)s AND relkind IN ('r','p')) AS owned",
        {"r": caps.role_oid},
    )
    return caps.role_oid if row and not row["others"] and not row["owned"] else None


def _metrics_url(target: TargetSpec, params: Mapping[str, Any]) -> str:
    if params.get("metrics_url"):
        return str(params["metrics_url"])
    if target.base_url and target.metrics_path:
        return target.base_url.rstrip("/") + "/" + target.metrics_path.lstrip("/")
    return ""


def run(target: TargetSpec, params: dict[str, Any], ctx: Context) -> AnalysisResult:
    """Scan the target's PostgreSQL read-only; see the package docstring."""
    params = dict(params or {})
    if "avg_query_ms" in params:  # the DB average's name before the one SLO table
        params.setdefault("db_avg_ms", params.pop("avg_query_ms"))
    try:
        params = validate_params(PARAMS, params)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    if not target.database_url:
        raise AnalysisError(f"Target {target.name!r} has no database URL to scan.")
    thresholds = Thresholds.build(target.thresholds, {n: params.get(n) for n in Thresholds.names()})
    wanted = set(params["checks"]) or set(CHECK_IDS)
    started = time.monotonic()
    ctx.progress(1, "connecting")
    session = open_session(
        target.database_url,
        target.allowed_hosts,
        statement_timeout_ms=params["statement_timeout_ms"],
        lock_timeout_ms=params["lock_timeout_ms"],
        max_rows=params["max_rows"],
    )
    session.cancelled = ctx.cancelled  # a cancel stops the running statement at once
    try:
        caps = detect(session)
        state = ScanState(session, caps, thresholds, ctx)
        _scan(state, target, params, wanted, started)
    finally:
        session.close()
    elapsed = time.monotonic() - started
    load = session.load
    state.summary["scan"] = {
        "seconds": round(elapsed, 3),
        "statements": load.statements,
        "statement_seconds": round(load.seconds, 3),
        "rows_read": load.rows,
    }
    state.measure("db.scan.duration", round(elapsed, 3), "s")
    state.measure("db.scan.statements", load.statements, "count")
    state.measure("db.scan.statement_time", round(load.seconds * 1000, 1), "ms")
    by_severity: dict[str, int] = {}
    for finding in state.findings:
        by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
    state.summary["findings_by_severity"] = by_severity
    worst = max((SEVERITY_RANK[f.severity] for f in state.findings), default=-1)
    verdict, reason = verdict_from_checks(
        state.checks,
        failed=worst >= SEVERITY_RANK["high"],
        required=[c for c in SLO_CHECKS if c in wanted],
    )
    ctx.progress(100, "done")
    return AnalysisResult(
        summary=state.summary,
        findings=state.findings,
        measurements=state.measurements,
        checks=state.checks,
        verdict=verdict,
        verdict_reason=reason,
    )


def _scan(
    state: ScanState,
    target: TargetSpec,
    params: Mapping[str, Any],
    wanted: set[str],
    started: float,
) -> None:
    caps, session, ctx = state.caps, state.session, state.ctx
    window = params["window"]
    state.summary.update(
        database=caps.database,
        server_version=caps.server_version,
        role=caps.role,
        window_s=window,
        hypopg=bool(caps.hypopg_schema),
        pg_stat_statements=bool(caps.pgss),
    )
    _capability_findings(state)
    ctx.progress(5, "capabilities")

    view = caps.pgss
    own_userid = _dedicated_role(state)
    state.summary["own_statements_filtered_by"] = "role and marker" if own_userid else "marker"
    before = None
    # (caps.pgss names the view only when it is readable in its schema)
    if view and caps.pgss_schema and window > 0:
        before = take_snapshot(session, view, schema=caps.pgss_schema, with_text=False)
    state.facts["db_counters_before"] = (
        checks_health.database_counters(session) if window > 0 else {}
    )
    watcher = None
    url = _metrics_url(target, params)
    if url and "db.pool_usage" in wanted:
        watcher = MetricsWatcher(url, tuple(target.allowed_hosts))
        watcher.scrape()

    steps = [c for c in (*checks_schema.CHECKS, *checks_health.CHECKS) if c[0] in wanted]
    for i, (check_id, func) in enumerate(steps):
        ctx.progress(5 + 45 * i / max(len(steps), 1), check_id)
        state.guarded(check_id, func)

    sampler = ActivitySampler(target.database_url, target.allowed_hosts)
    conn_samples: list[dict[str, Any]] = []
    last_tick = [0.0]

    def during() -> None:
        # About once a second: the connection peak, the pool, live route comments.
        now = time.monotonic()
        if now - last_tick[0] < 1.0:
            if params["sample_activity"] and view:
                sampler.sample_once(session)
            return
        last_tick[0] = now
        if params["sample_activity"]:
            conn_samples.append(connection_usage(state))
        if watcher is not None:
            watcher.scrape()

    if window > 0:
        ctx.progress(50, f"waiting for the {window}s window")
        wait_window(window, ctx, started, during, tick=0.2)
    state.facts["conn_samples"] = conn_samples
    if watcher is not None:
        watcher.scrape()
    ctx.progress(80, "statement statistics")

    families = []
    if view is None or caps.pgss_schema is None:
        pgss_unknown(state, [c for c in PGSS_CHECKS if c in wanted])
    else:
        after = take_snapshot(session, view, schema=caps.pgss_schema, with_text=True)
        families = diff(before or empty_snapshot(), after, own_userid=own_userid)
        state.summary["families"] = len(families)
        if after.truncated:
            state.summary["families_truncated"] = True
        exact = exact_from_samples(params["execution_samples_ms"], state.thresholds.slow_query_ms)
        if exact is None and watcher is not None and watcher.first and watcher.last:
            first = slow_count_from_histogram(watcher.first, state.thresholds.slow_query_ms)
            last = slow_count_from_histogram(watcher.last, state.thresholds.slow_query_ms)
            if first and last and last[1] > first[1]:
                exact = (
                    (last[0] - first[0]) / (last[1] - first[1]),
                    "target's query-duration histogram",
                )
        routes = merge_routes(params["routes"] or {}, sampler.routes_by_queryid())
        if "db.avg_query_time" in wanted:
            avg_query_time(state, families, window or None)
        if "db.slow_query_rate" in wanted:
            slow_query_rate(state, families, exact)
        slow_ids = slow_families(state, families, routes) if "db.slow_families" in wanted else set()
        if "db.index_suggestion" in wanted:
            ctx.progress(85, "index advice")
            state.guarded("db.index_suggestion", lambda st: run_advisor(st, families, slow_ids))
    ctx.progress(95, "connections")
    if "db.conn_headroom" in wanted:
        state.guarded("db.conn_headroom", conn_headroom)
    if "db.pool_usage" in wanted:
        pool_usage(state, watcher)
    if "db.cache_hit" in wanted:
        state.guarded("db.cache_hit", checks_health.cache_hit)
    if window > 0:
        state.measure("db.window", window, "s")


def _caps_report(caps: Capabilities) -> dict[str, Any]:
    can = [r.label for r in caps.rungs if r.ok]
    cannot = [{"what": r.label, "why": r.detail, "fix": r.fix} for r in caps.rungs if r.ok is False]
    return {
        "server_version": caps.server_version,
        "database": caps.database,
        "role": caps.role,
        "superuser": caps.is_superuser,
        "standby": caps.in_recovery,
        "pg_stat_statements": bool(caps.pgss),
        "hypopg": bool(caps.hypopg_schema),
        "can_see": can,
        "cannot_see": cannot,
        "ladder": [
            {"id": r.id, "label": r.label, "ok": r.ok, "detail": r.detail, "fix": r.fix}
            for r in caps.rungs
        ],
    }


def test_connection(
    database_url: str, allowed_hosts: AllowList = ("127.0.0.0/8", "::1", "localhost")
) -> dict[str, Any]:
    """What Kaizen can and cannot see on this database (the portal's "test connection").

    Never raises for a connection problem: returns ``{"ok": False, "error": message}``.
    """
    try:
        session = open_session(database_url, allowed_hosts, statement_timeout_ms=3000)
    except AnalysisError as exc:
        return {"ok": False, "error": str(exc)}
    try:
        caps = detect(session)
        return {
            "ok": True,
            "error": None,
            **_caps_report(caps),
            "statements": session.load.statements,
        }
    except AnalysisError as exc:
        return {"ok": False, "error": str(exc)}
    finally:
        session.close()


# pytest must not collect the portal's function as a test when a test module imports it.
test_connection.__test__ = False  # type: ignore[attr-defined]
