"""What Kaizen can see on a target database, detected rung by rung.

Every later check asks this first: a check whose data source is missing
reports *unknown — why — the exact fix*, never "0 slow queries".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .connect import QueryFailed, Session, quote_ident

PGSS = "pg_stat_statements"
PRELOAD_FIX = (
    "Add pg_stat_statements to shared_preload_libraries (e.g. ALTER SYSTEM SET "
    "shared_preload_libraries = 'pg_stat_statements'; keep any libraries already listed), "
    "restart PostgreSQL, then run CREATE EXTENSION pg_stat_statements; in database {db}."
)


@dataclass
class Rung:
    """One step of the ladder: ok True/False, or None when it could not be tried."""

    id: str
    label: str
    ok: bool | None
    detail: str = ""
    fix: str = ""


@dataclass
class Capabilities:
    """The facts later checks need, plus the ladder for the person reading."""

    server_version: str = ""
    server_version_num: int = 0
    database: str = ""
    role: str = ""
    role_oid: int = 0
    is_superuser: bool = False
    in_recovery: bool = False
    read_all_stats: bool = False  # pg_read_all_stats or pg_monitor (or superuser)
    read_all_settings: bool = False
    read_all_data: bool = False
    unreadable_tables: int = 0  # user tables without SELECT: no EXPLAIN, no pg_stats
    pgss_available: bool = False
    pgss_schema: str | None = None
    pgss_readable: bool = False
    pgss_unreadable_reason: str = ""
    pgss_all_text: bool = False
    pgss_hidden_rows: int = 0
    pgss_dealloc: int | None = None
    pgss_stats_reset: datetime | None = None
    pgss_max: int | None = None
    pgss_track: str = ""
    hypopg_schema: str | None = None
    hypopg_available: bool = False
    pg_trgm_schema: str | None = None
    stats_reset: datetime | None = None
    track_counts: bool = True
    rungs: list[Rung] = field(default_factory=list)

    @property
    def pgss(self) -> str | None:
        """The qualified pg_stat_statements view, or None when it cannot be read."""
        if self.pgss_readable and self.pgss_schema:
            return f"{quote_ident(self.pgss_schema)}.{PGSS}"
        return None

    def rung(self, rung_id: str) -> Rung | None:
        return next((r for r in self.rungs if r.id == rung_id), None)

    def pgss_unknown(self) -> tuple[str, str]:
        """(why, fix) for checks that need pg_stat_statements when it is unreadable."""
        for rung_id in ("pgss.contrib", "pgss.extension", "pgss.readable"):
            rung = self.rung(rung_id)
            if rung and rung.ok is False:
                return rung.detail, rung.fix
        return "pg_stat_statements cannot be read", PRELOAD_FIX.format(db=self.database)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("pgss_stats_reset", "stats_reset"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


def _has_role(session: Session, role: str) -> bool:
    try:
        return bool(
            session.scalar(
                "SELECT pg_has_role(current_user, oid, 'USAGE') FROM pg_roles "
                "WHERE rolname = %(r)s",
                {"r": role},
            )
        )
    except QueryFailed:
        return False


def detect(session: Session) -> Capabilities:
    """Detect server facts, pg_stat_statements, HypoPG and the role's privileges."""
    caps = Capabilities()
    info = session.one(
        "SELECT current_setting('server_version') AS version, "
        "current_setting('server_version_num')::int AS num, current_database() AS db, "
        "current_user AS role, "
        "(SELECT oid FROM pg_roles WHERE rolname = current_user) AS role_oid, "
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS superuser, "
        "pg_is_in_recovery() AS in_recovery, "
        "current_setting('track_counts') AS track_counts"
    )
    assert info is not None
    caps.server_version = info["version"]
    caps.server_version_num = info["num"]
    caps.database = info["db"]
    caps.role = info["role"]
    caps.role_oid = int(info["role_oid"])
    caps.is_superuser = bool(info["superuser"])
    caps.in_recovery = bool(info["in_recovery"])
    caps.track_counts = info["track_counts"] == "on"
    db = quote_ident(caps.database)
    rungs = caps.rungs
    rungs.append(
        Rung(
            "server",
            "Server",
            True,
            f"PostgreSQL {caps.server_version} as role {caps.role}"
            + (" (superuser)" if caps.is_superuser else "")
            + (", standby (in recovery)" if caps.in_recovery else ""),
        )
    )

    # What the role may read.
    caps.read_all_stats = caps.is_superuser or any(
        _has_role(session, r) for r in ("pg_read_all_stats", "pg_monitor")
    )
    caps.read_all_settings = caps.is_superuser or any(
        _has_role(session, r) for r in ("pg_read_all_settings", "pg_monitor")
    )
    caps.read_all_data = caps.is_superuser or _has_role(session, "pg_read_all_data")
    grant = f"GRANT pg_monitor TO {quote_ident(caps.role)};"
    rungs.append(
        Rung(
            "role.read_all_stats",
            "Other sessions' queries and statistics visible (pg_read_all_stats / pg_monitor)",
            caps.read_all_stats,
            "" if caps.read_all_stats else "other users' query texts and states are hidden",
            "" if caps.read_all_stats else f"As a superuser: {grant}",
        )
    )
    unreadable = session.scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r','p','m') AND n.nspname NOT IN ('pg_catalog','information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%' "
        "AND NOT has_table_privilege(c.oid, 'SELECT')"
    )
    caps.unreadable_tables = int(unreadable or 0)
    rungs.append(
        Rung(
            "role.select",
            "SELECT on the tables (needed for EXPLAIN and pg_stats)",
            caps.unreadable_tables == 0,
            (
                ""
                if caps.unreadable_tables == 0
                else f"{caps.unreadable_tables} table(s) are not readable: no EXPLAIN or "
                "column statistics for them, so no index advice there"
            ),
            (
                ""
                if caps.unreadable_tables == 0
                else f"As a superuser: GRANT pg_read_all_data TO {quote_ident(caps.role)}; "
                "(PostgreSQL 14+) or GRANT SELECT ON ALL TABLES IN SCHEMA <schema> TO "
                f"{quote_ident(caps.role)};"
            ),
        )
    )

    # pg_stat_statements, rung by rung.
    caps.pgss_available = bool(
        session.scalar(
            "SELECT count(*) FROM pg_available_extensions WHERE name = %(n)s", {"n": PGSS}
        )
    )
    rungs.append(
        Rung(
            "pgss.contrib",
            "pg_stat_statements installed on the server (contrib)",
            caps.pgss_available,
            "" if caps.pgss_available else "the contrib module is not installed on the server",
            (
                ""
                if caps.pgss_available
                else "Install PostgreSQL's contrib package on the server (Debian/Ubuntu: it ships "
                "with postgresql-NN; RHEL: postgresqlNN-contrib), then: "
                + PRELOAD_FIX.format(db=db)
            ),
        )
    )
    caps.pgss_schema = session.scalar(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = %(n)s",
        {"n": PGSS},
    )
    created = caps.pgss_schema is not None
    rungs.append(
        Rung(
            "pgss.extension",
            f"Extension created in database {caps.database}",
            created if caps.pgss_available else None,
            ""
            if created
            else f"CREATE EXTENSION pg_stat_statements was not run in {caps.database}",
            "" if created else PRELOAD_FIX.format(db=db),
        )
    )
    if created:
        view = f"{quote_ident(caps.pgss_schema)}.{PGSS}"
        try:
            session.rows(f"SELECT 1 FROM {view} LIMIT 1")
            caps.pgss_readable = True
        except QueryFailed as exc:
            caps.pgss_unreadable_reason = str(exc)
            if exc.sqlstate == "55000":
                detail = "the extension exists but the library is not preloaded (SQLSTATE 55000)"
                fix = PRELOAD_FIX.format(db=db)
            elif exc.sqlstate == "42501":
                detail = f"permission denied on {view}"
                fix = f"As a superuser: GRANT SELECT ON {view} TO {quote_ident(caps.role)}; {grant}"
            else:
                detail, fix = f"reading {view} failed: {exc}", PRELOAD_FIX.format(db=db)
            rungs.append(Rung("pgss.readable", "pg_stat_statements readable", False, detail, fix))
    else:
        rungs.append(Rung("pgss.readable", "pg_stat_statements readable", None, "not created"))
    if caps.pgss is not None:  # readable (and so created in a schema)
        rungs.append(Rung("pgss.readable", "pg_stat_statements readable", True))
        view = caps.pgss
        hidden = session.scalar(
            f"SELECT count(*) FROM {view} "
            "WHERE queryid IS NULL OR query = '<insufficient privilege>'"
        )
        caps.pgss_hidden_rows = int(hidden or 0)
        caps.pgss_all_text = caps.read_all_stats or caps.pgss_hidden_rows == 0
        rungs.append(
            Rung(
                "pgss.text",
                "Query text of every role visible",
                caps.pgss_all_text,
                (
                    ""
                    if caps.pgss_all_text
                    else f"{caps.pgss_hidden_rows} statement(s) of other roles show "
                    "'<insufficient privilege>' and no queryid"
                ),
                "" if caps.pgss_all_text else f"As a superuser: {grant}",
            )
        )
        row = session.one(
            "SELECT dealloc, stats_reset FROM "
            f"{quote_ident(caps.pgss_schema)}.pg_stat_statements_info"
        )
        settings = {
            r["name"]: r["setting"]
            for r in session.rows(
                "SELECT name, setting FROM pg_settings "
                "WHERE name IN ('pg_stat_statements.max', 'pg_stat_statements.track')"
            )
        }
        caps.pgss_max = (
            int(settings["pg_stat_statements.max"])
            if "pg_stat_statements.max" in settings
            else None
        )
        caps.pgss_track = settings.get("pg_stat_statements.track", "")
        if row:
            caps.pgss_dealloc = int(row["dealloc"])
            caps.pgss_stats_reset = row["stats_reset"]
        churn = bool(caps.pgss_dealloc)
        rungs.append(
            Rung(
                "pgss.churn",
                "No statement entries evicted (dealloc)",
                not churn,
                (
                    ""
                    if not churn
                    else f"{caps.pgss_dealloc} eviction round(s) since "
                    f"{caps.pgss_stats_reset:%Y-%m-%d %H:%M}: rare statements are forgotten, "
                    "totals under-count"
                ),
                (
                    ""
                    if not churn
                    else f"Raise pg_stat_statements.max (now {caps.pgss_max}) and restart"
                ),
            )
        )

    # HypoPG: used only where the target already has it; Kaizen creates nothing.
    caps.hypopg_schema = session.scalar(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'hypopg'"
    )
    caps.hypopg_available = bool(
        session.scalar("SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg'")
    )
    caps.pg_trgm_schema = session.scalar(
        "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'pg_trgm'"
    )
    if caps.hypopg_schema:
        hypo = Rung("hypopg", "HypoPG for measured index advice", True)
    elif caps.hypopg_available:
        hypo = Rung(
            "hypopg",
            "HypoPG for measured index advice",
            False,
            "HypoPG is installed on the server but not created in this database; index "
            "suggestions are heuristic and unvalidated",
            f"CREATE EXTENSION hypopg; in database {db} (Kaizen never creates it itself)",
        )
    else:
        hypo = Rung(
            "hypopg",
            "HypoPG for measured index advice",
            False,
            "HypoPG is not installed; index suggestions are heuristic and unvalidated",
            "Install it on the server (Debian/Ubuntu: apt-get install postgresql-NN-hypopg), "
            f"then CREATE EXTENSION hypopg; in database {db}",
        )
    rungs.append(hypo)

    reset = session.one(
        "SELECT stats_reset FROM pg_stat_database WHERE datname = current_database()"
    )
    caps.stats_reset = reset["stats_reset"] if reset else None
    rungs.append(
        Rung(
            "stats.track_counts",
            "Table and index usage counters collected (track_counts)",
            caps.track_counts,
            "" if caps.track_counts else "track_counts is off: no scan or vacuum counters",
            ""
            if caps.track_counts
            else "ALTER SYSTEM SET track_counts = on; SELECT pg_reload_conf();",
        )
    )
    return caps
