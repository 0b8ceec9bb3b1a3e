"""Server health checks: sessions (long-running, idle in transaction), cache hit,
wraparound, vacuum/analyze, settings sanity and the replication / HA view."""

from __future__ import annotations

from typing import Any

from ..base import FindingData
from .common import DOCS, ScanState, normalise_sql, short
from .connect import Session, quote_ident

XID_LIMIT = 2**31  # wraparound: PostgreSQL stops assigning XIDs ~2^31 after the oldest frozen one


def _sessions(state: ScanState, rule_id: str, where: str, limit_s: float, what: str) -> None:
    s = state.session
    rows = s.rows(
        f"""SELECT pid, usename, application_name, state, query_id,
                  left(query, 1000) AS query,
                  extract(epoch FROM now() - query_start) AS query_s,
                  extract(epoch FROM now() - xact_start) AS xact_s,
                  extract(epoch FROM now() - state_change) AS state_s,
                  wait_event_type, wait_event
           FROM pg_stat_activity
           WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
             AND datname = current_database() AND {where}
           ORDER BY query_start""",
        {"limit_s": limit_s},
    )
    hidden = 0
    if not state.caps.read_all_stats:
        hidden = s.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND state IS NULL AND datname = current_database()"
        )
    for r in rows:
        query = r["query"] or ""
        seconds = r["state_s"] if rule_id == "db.idle_in_tx" else r["query_s"]
        key_part = str(r["query_id"]) if r["query_id"] else normalise_sql(query)[:300]
        if rule_id == "db.idle_in_tx":
            fix = (
                "Find the code that holds its session across slow work (HTTP calls, awaits of "
                "other services) and commit or roll back first; as a safety net: ALTER ROLE "
                f"{quote_ident(r['usename'])} SET idle_in_transaction_session_timeout = '60s';"
                f" — to end this one now: SELECT pg_terminate_backend({r['pid']});"
            )
            title = (
                f"Session {r['pid']} ({r['application_name'] or 'no name'}) idle in "
                f"transaction for {seconds:.0f}s"
            )
        else:
            fix = (
                f"SELECT pg_cancel_backend({r['pid']}); to stop it now; set a statement_timeout "
                f"for the role (ALTER ROLE {quote_ident(r['usename'])} SET statement_timeout = "
                "'30s';) and index or rewrite the statement."
            )
            title = f"Statement running for {seconds:.0f}s: {short(query, 80)}"
        state.add(
            FindingData(
                rule_id=rule_id,
                title=title,
                severity="medium",
                category="performance" if rule_id == "db.long_running" else "reliability",
                location=r["application_name"] or r["usename"] or "",
                key=f"{r['usename']}:{r['application_name']}:{key_part}",
                evidence={
                    "pid": r["pid"],
                    "role": r["usename"],
                    "application_name": r["application_name"],
                    "state": r["state"],
                    "seconds": round(float(seconds or 0), 1),
                    "transaction_s": round(float(r["xact_s"] or 0), 1),
                    "wait": f"{r['wait_event_type']}:{r['wait_event']}"
                    if r["wait_event"]
                    else None,
                    "query": short(query, 500),
                },
                fix_hint=fix,
                doc_url=DOCS + "monitoring-stats.html#MONITORING-PG-STAT-ACTIVITY-VIEW",
            )
        )
    detail = f"{len(rows)} {what} (> {limit_s:g}s)"
    if hidden:
        detail += f"; {hidden} session(s) of other roles not visible (GRANT pg_monitor)"
    if rows:
        state.failed(rule_id, detail)
    elif hidden:
        state.unknown(
            rule_id,
            f"{hidden} session(s) of other roles are hidden from role {state.caps.role}",
            f"GRANT pg_monitor TO {quote_ident(state.caps.role)};",
        )
    else:
        state.passed(rule_id, detail)


def long_running(state: ScanState) -> None:
    _sessions(
        state,
        "db.long_running",
        "state = 'active' AND now() - query_start > make_interval(secs => %(limit_s)s)",
        state.thresholds.long_running_s,
        "long-running statement(s)",
    )


def idle_in_tx(state: ScanState) -> None:
    _sessions(
        state,
        "db.idle_in_tx",
        "state LIKE 'idle in transaction%%' "
        "AND now() - state_change > make_interval(secs => %(limit_s)s)",
        state.thresholds.idle_in_tx_s,
        "session(s) idle in transaction",
    )


def database_counters(session: Session) -> dict[str, Any]:
    """Cumulative blocks hit/read and transactions of the current database."""
    return (
        session.one(
            "SELECT blks_hit, blks_read, xact_commit, xact_rollback, numbackends "
            "FROM pg_stat_database WHERE datname = current_database()"
        )
        or {}
    )


def cache_hit(state: ScanState) -> None:
    """Shared-buffer hit ratio over the window, or since the last reset when the window was idle."""
    t = state.thresholds
    before = state.facts.get("db_counters_before") or {}
    after = database_counters(state.session)
    hit = after.get("blks_hit", 0) - before.get("blks_hit", 0)
    read = after.get("blks_read", 0) - before.get("blks_read", 0)
    scope = "window"
    if not before or hit + read < 1000:
        hit, read = after.get("blks_hit", 0), after.get("blks_read", 0)
        scope = "since statistics reset"
    if hit + read == 0:
        state.unknown(
            "db.cache_hit", "no block was read in this database yet", "scan again under load"
        )
        return
    ratio = 100.0 * hit / (hit + read)
    state.summary["cache_hit_pct"] = round(ratio, 2)
    state.measure("db.cache_hit", round(ratio, 3), "%", scope=scope)
    if ratio >= t.cache_hit_pct:
        state.passed("db.cache_hit", f"{ratio:.2f}% ({scope})")
        return
    state.add(
        FindingData(
            rule_id="db.cache_hit",
            title=f"Cache hit ratio {ratio:.1f}% is below {t.cache_hit_pct:g}%",
            severity="medium",
            category="architecture",
            location=state.caps.database,
            key=f"cache_hit:{state.caps.database}",
            evidence={
                "hit_blocks": hit,
                "read_blocks": read,
                "ratio_pct": round(ratio, 2),
                "scope": scope,
            },
            fix_hint=(
                "The working set does not fit in shared_buffers: index the seq-scanned tables "
                "first, then raise shared_buffers (≈25% of RAM) or the server's memory."
            ),
            doc_url=DOCS + "runtime-config-resource.html#GUC-SHARED-BUFFERS",
        )
    )
    state.failed("db.cache_hit", f"{ratio:.2f}% ({scope})")


def txid_wraparound(state: ScanState) -> None:
    t = state.thresholds
    rows = state.session.rows(
        "SELECT datname, age(datfrozenxid) AS xid_age, mxid_age(datminmxid) AS mxid_age "
        "FROM pg_database WHERE datallowconn ORDER BY age(datfrozenxid) DESC"
    )
    worst = 0
    flagged = 0
    for r in rows:
        age = max(int(r["xid_age"]), int(r["mxid_age"]))
        worst = max(worst, age)
        remaining = XID_LIMIT - age
        if remaining >= t.wraparound_remaining:
            continue
        flagged += 1
        tables = (
            state.session.rows(
                "SELECT c.oid::regclass::text AS name, age(c.relfrozenxid) AS age FROM pg_class c "
                "WHERE c.relkind IN ('r','m','t') ORDER BY age(c.relfrozenxid) DESC LIMIT 5"
            )
            if r["datname"] == state.caps.database
            else []
        )
        state.add(
            FindingData(
                rule_id="db.txid_wraparound",
                title=f"Database {r['datname']} has {remaining:,} transaction IDs left "
                "before wraparound",
                severity="critical" if remaining < 100_000_000 else "high",
                category="reliability",
                location=r["datname"],
                key=f"wraparound:{r['datname']}",
                evidence={
                    "xid_age": int(r["xid_age"]),
                    "mxid_age": int(r["mxid_age"]),
                    "remaining": remaining,
                    "oldest_tables": tables,
                },
                fix_hint=(
                    "Run VACUUM (FREEZE, VERBOSE) on the oldest tables listed, and find what "
                    "blocks autovacuum (long transactions, abandoned replication slots, prepared "
                    "transactions). At 0 the server refuses writes."
                ),
                doc_url=DOCS + "routine-vacuuming.html#VACUUM-FOR-WRAPAROUND",
            )
        )
    state.measure("db.xid_age", worst, "count")
    detail = f"oldest transaction ID age {worst:,} of {XID_LIMIT:,}"
    (state.failed if flagged else state.passed)("db.txid_wraparound", detail)


def vacuum_health(state: ScanState) -> None:
    rows = state.session.rows(
        """SELECT schemaname, relname, n_live_tup, n_dead_tup, n_mod_since_analyze,
                  last_vacuum, last_autovacuum, last_analyze, last_autoanalyze,
                  (last_analyze IS NULL AND last_autoanalyze IS NULL) AS never_analyzed
           FROM pg_stat_user_tables
           WHERE (n_dead_tup >= 1000 AND n_dead_tup >= 0.2 * greatest(n_live_tup, 1))
              OR (n_live_tup >= 1000 AND last_analyze IS NULL AND last_autoanalyze IS NULL)
              OR (n_live_tup >= 10000 AND n_mod_since_analyze > n_live_tup)
           ORDER BY n_dead_tup DESC, n_live_tup DESC"""
    )
    for r in rows:
        table = f"{quote_ident(r['schemaname'])}.{quote_ident(r['relname'])}"
        dead, live = int(r["n_dead_tup"]), int(r["n_live_tup"])
        problems = []
        if dead >= 1000 and dead >= 0.2 * max(live, 1):
            problems.append(f"{dead:,} dead rows ({dead / max(live + dead, 1):.0%})")
        if r["never_analyzed"]:
            problems.append("never analyzed")
        elif r["n_mod_since_analyze"] > live:
            problems.append(
                f"{int(r['n_mod_since_analyze']):,} rows changed since the last ANALYZE"
            )
        last_vac = max(filter(None, (r["last_vacuum"], r["last_autovacuum"])), default=None)
        state.add(
            FindingData(
                rule_id="db.vacuum_health",
                title=f"{table}: {', '.join(problems)}",
                severity="medium" if dead > live or r["never_analyzed"] else "low",
                category="performance",
                location=table,
                key=f"vacuum:{r['schemaname']}.{r['relname']}",
                evidence={
                    "live_rows": live,
                    "dead_rows": dead,
                    "modified_since_analyze": int(r["n_mod_since_analyze"]),
                    "last_vacuum": last_vac.isoformat() if last_vac else None,
                    "never_analyzed": bool(r["never_analyzed"]),
                },
                fix_hint=(
                    f"VACUUM (ANALYZE) {table}; then check that autovacuum keeps up (per-table "
                    "autovacuum_vacuum_scale_factor, no long transactions holding back cleanup)."
                ),
                doc_url=DOCS + "routine-vacuuming.html",
            )
        )
    state.verdict("db.vacuum_health", len(rows), "table(s) needing VACUUM or ANALYZE")


# (setting, whether it is set badly, severity, why, fix)
def _settings_rules(cfg: dict[str, str]) -> list[tuple[str, bool, str, str, str]]:
    def num(name: str) -> float:
        try:
            return float(cfg.get(name, "nan"))
        except ValueError:
            return float("nan")

    return [
        (
            "autovacuum",
            cfg.get("autovacuum") == "off",
            "high",
            "autovacuum is off: dead rows pile up and wraparound protection depends on "
            "manual VACUUM",
            "ALTER SYSTEM SET autovacuum = on; SELECT pg_reload_conf();",
        ),
        (
            "fsync",
            cfg.get("fsync") == "off",
            "high",
            "fsync is off: a crash can corrupt the database",
            "ALTER SYSTEM SET fsync = on; SELECT pg_reload_conf();",
        ),
        (
            "full_page_writes",
            cfg.get("full_page_writes") == "off",
            "high",
            "full_page_writes is off: torn pages after a crash",
            "ALTER SYSTEM SET full_page_writes = on; SELECT pg_reload_conf();",
        ),
        (
            "max_connections",
            num("max_connections") > 500,
            "medium",
            f"max_connections = {cfg.get('max_connections')}: each backend costs memory and "
            "contention; put a pooler (PgBouncer) in front instead",
            "Use PgBouncer in transaction mode and lower max_connections.",
        ),
        (
            "idle_in_transaction_session_timeout",
            cfg.get("idle_in_transaction_session_timeout") == "0",
            "low",
            "no idle_in_transaction_session_timeout: a leaked transaction holds locks and "
            "vacuum back forever",
            "ALTER SYSTEM SET idle_in_transaction_session_timeout = '5min'; "
            "SELECT pg_reload_conf();",
        ),
        (
            "log_min_duration_statement",
            cfg.get("log_min_duration_statement") == "-1",
            "info",
            "slow statements are not logged: the slow-query rate can only be bounded from "
            "aggregates, not counted",
            "ALTER SYSTEM SET log_min_duration_statement = '1s'; SELECT pg_reload_conf();",
        ),
        (
            "track_io_timing",
            cfg.get("track_io_timing") == "off",
            "info",
            "track_io_timing is off: I/O time per statement is not measured",
            "ALTER SYSTEM SET track_io_timing = on; SELECT pg_reload_conf();",
        ),
        (
            "shared_buffers",
            num("shared_buffers") * 8 <= 131072,
            "low",
            "shared_buffers is at most 128MB (the default): most servers should give it "
            "≈25% of RAM",
            "ALTER SYSTEM SET shared_buffers = '<25% of RAM>'; then restart.",
        ),
    ]


def settings(state: ScanState) -> None:
    names = (
        "autovacuum",
        "fsync",
        "full_page_writes",
        "max_connections",
        "idle_in_transaction_session_timeout",
        "log_min_duration_statement",
        "track_io_timing",
        "shared_buffers",
    )
    rows = state.session.rows(
        "SELECT name, setting, current_setting(name) AS shown FROM pg_settings "
        "WHERE name = ANY(%(n)s)",
        {"n": list(names)},
    )
    cfg = {r["name"]: r["setting"] for r in rows}
    shown = {r["name"]: r["shown"] for r in rows}
    state.summary["settings"] = shown
    flagged = 0
    for name, bad, severity, why, fix in _settings_rules(cfg):
        if name not in cfg or not bad:
            continue
        flagged += 1
        state.add(
            FindingData(
                rule_id="db.settings",
                title=f"Setting {name} = {shown[name]}",
                severity=severity,
                category="configuration",
                location=f"{state.caps.database}:{name}",
                key=f"setting:{name}",
                evidence={"setting": name, "value": shown[name], "why": why},
                fix_hint=fix,
                doc_url=DOCS + "runtime-config.html",
            )
        )
    state.verdict("db.settings", flagged, "setting(s) to review")


def replication(state: ScanState) -> None:
    """Standbys and their lag, inactive slots, and whether there is a standby at all."""
    t = state.thresholds
    s = state.session
    flagged = 0
    if state.caps.in_recovery:
        lag = s.scalar("SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())")
        state.summary["replication"] = {"role": "standby", "replay_lag_s": lag}
        if lag is not None and float(lag) > t.replication_lag_s:
            flagged += 1
            state.add(
                FindingData(
                    rule_id="db.replication",
                    title=f"This standby replays {float(lag):.0f}s behind its primary",
                    severity="high",
                    category="architecture",
                    location=state.caps.database,
                    key="replication:standby_lag",
                    evidence={"replay_lag_s": round(float(lag), 1)},
                    fix_hint="Check the standby's I/O and network, and long queries that "
                    "conflict with replay (max_standby_streaming_delay).",
                    doc_url=DOCS + "hot-standby.html",
                )
            )
        state.verdict("db.replication", flagged, "replication problem(s)", "standby keeps up")
        return
    standbys = s.rows(
        "SELECT application_name, client_addr::text AS addr, state, sync_state, "
        "extract(epoch FROM replay_lag) AS replay_lag_s, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) AS behind_bytes "
        "FROM pg_stat_replication"
    )
    slots = s.rows(
        "SELECT slot_name, slot_type, active, "
        "pg_wal_lsn_diff(pg_current_wal_lsn(), coalesce(restart_lsn, confirmed_flush_lsn)) "
        "AS retained_bytes FROM pg_replication_slots"
    )
    state.summary["replication"] = {
        "role": "primary",
        "standbys": len(standbys),
        "slots": len(slots),
    }
    state.measure("db.replication.standbys", len(standbys), "count")
    if not standbys:
        flagged += 1
        state.add(
            FindingData(
                rule_id="db.replication",
                title="No standby: the database is a single point of failure",
                severity="info",
                category="architecture",
                location=state.caps.database,
                key="replication:no_standby",
                evidence={"standbys": 0},
                fix_hint="For high availability add a streaming standby (with automatic "
                "failover, e.g. Patroni) or use a managed service with a replica.",
                doc_url=DOCS + "warm-standby.html",
            )
        )
    for r in standbys:
        lag = r["replay_lag_s"]
        if lag is not None and float(lag) > t.replication_lag_s:
            flagged += 1
            state.add(
                FindingData(
                    rule_id="db.replication",
                    title=f"Standby {r['application_name'] or r['addr']} lags {float(lag):.0f}s",
                    severity="high",
                    category="architecture",
                    location=r["application_name"] or r["addr"] or "",
                    key=f"replication:lag:{r['application_name'] or r['addr']}",
                    evidence={
                        k: (float(v) if k.endswith(("_s", "_bytes")) and v is not None else v)
                        for k, v in r.items()
                    },
                    fix_hint="Check the standby's network and I/O; a lagging standby loses data "
                    "on failover and serves stale reads.",
                    doc_url=DOCS + "monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW",
                )
            )
    for r in slots:
        if r["active"]:
            continue
        flagged += 1
        retained = float(r["retained_bytes"] or 0)
        state.add(
            FindingData(
                rule_id="db.replication",
                title=f"Replication slot {r['slot_name']} is inactive and retains "
                f"{retained / 1024 / 1024:.0f} MB of WAL",
                severity="high",
                category="reliability",
                location=r["slot_name"],
                key=f"replication:slot:{r['slot_name']}",
                evidence={
                    "slot": r["slot_name"],
                    "type": r["slot_type"],
                    "retained_bytes": retained,
                },
                fix_hint=f"Reconnect its consumer, or SELECT pg_drop_replication_slot("
                f"'{r['slot_name']}'); — it keeps WAL (disk fills) and holds back vacuum.",
                doc_url=DOCS + "warm-standby.html#STREAMING-REPLICATION-SLOTS",
            )
        )
    state.verdict("db.replication", flagged, "replication / availability point(s)")


CHECKS = (
    ("db.long_running", long_running),
    ("db.idle_in_tx", idle_in_tx),
    ("db.txid_wraparound", txid_wraparound),
    ("db.vacuum_health", vacuum_health),
    ("db.settings", settings),
    ("db.replication", replication),
)
