"""Schema checks: FK covers, duplicate / unused / invalid indexes, invalid
constraints, seq-scan-heavy tables and sequences near their type's maximum.

All of them read the catalogs and the cumulative usage counters; none needs
pg_stat_statements. Each query returns only offending rows, bounded.
"""

from __future__ import annotations

from typing import Any

from ..base import FindingData
from .common import DOCS, ScanState, size_mb
from .connect import quote_ident

USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg_toast%%' AND n.nspname NOT LIKE 'pg_temp%%'"
)

# An index is a usable cover of a foreign key when its leading key columns are
# exactly the FK's columns (in any order), it is valid and not partial. INCLUDE
# columns (beyond indnkeyatts) do not count; expression columns show as 0 in
# indkey and so never match. Both CTEs are MATERIALIZED: inlined into the NOT
# EXISTS below they made the query quadratic (5 s on 1 000 foreign keys).
FK_COVERS = f"""
fk AS MATERIALIZED (
    SELECT con.oid AS con_oid, con.conname, con.conrelid, con.confrelid, con.conkey,
           cardinality(con.conkey) AS nkeys, n.nspname, r.relname, r.reltuples
    FROM pg_constraint con
    JOIN pg_class r ON r.oid = con.conrelid
    JOIN pg_namespace n ON n.oid = r.relnamespace
    WHERE con.contype = 'f' AND {USER_SCHEMAS}
),
cover AS MATERIALIZED (
    SELECT fk.con_oid, i.indexrelid
    FROM fk JOIN pg_index i ON i.indrelid = fk.conrelid
    WHERE i.indisvalid AND i.indpred IS NULL AND i.indnkeyatts >= fk.nkeys
      AND (SELECT array_agg(k ORDER BY k) FROM unnest((i.indkey::int2[])[0:fk.nkeys - 1]) k)
        = (SELECT array_agg(k ORDER BY k) FROM unnest(fk.conkey) k)
)"""


def fk_without_index(state: ScanState) -> None:
    s, t = state.session, state.thresholds
    rows = s.rows(
        f"""WITH {FK_COVERS}
        SELECT fk.con_oid, fk.conname, fk.nspname, fk.relname, fk.conrelid, fk.conkey,
               fk.confrelid::regclass::text AS parent, fk.reltuples::bigint AS est_rows,
               pg_get_constraintdef(fk.con_oid) AS definition,
               array(SELECT a.attname::text FROM pg_attribute a
                     WHERE a.attrelid = fk.conrelid AND a.attnum = ANY(fk.conkey)
                     ORDER BY array_position(fk.conkey, a.attnum)) AS columns,
               (SELECT count(*) FROM pg_index i WHERE i.indrelid = fk.conrelid
                  AND i.indpred IS NOT NULL) AS partial_indexes
        FROM fk WHERE NOT EXISTS (SELECT 1 FROM cover c WHERE c.con_oid = fk.con_oid)
        ORDER BY fk.reltuples DESC, fk.nspname, fk.relname, fk.conname"""
    )
    state.facts["fk_uncovered"] = []
    for r in rows:
        cols = list(r["columns"])
        table = f"{quote_ident(r['nspname'])}.{quote_ident(r['relname'])}"
        collist = ", ".join(quote_ident(c) for c in cols)
        name = quote_ident(f"{r['relname']}_{'_'.join(cols)}_idx"[:63])
        ddl = f"CREATE INDEX CONCURRENTLY {name} ON {table} ({collist});"
        est = max(int(r["est_rows"] or 0), 0)
        severity = "high" if est >= t.seqscan_min_rows else "medium" if est >= 1000 else "low"
        finding = FindingData(
            rule_id="db.fk_without_index",
            title=f"Foreign key {r['conname']} on {table} ({', '.join(cols)}) has no usable index",
            severity=severity,
            category="performance",
            location=table,
            key=f"fk:{r['nspname']}.{r['relname']}({','.join(sorted(cols))})->{r['parent']}",
            evidence={
                "constraint": r["conname"],
                "definition": r["definition"],
                "columns": cols,
                "references": r["parent"],
                "estimated_rows": est,
                "ddl": ddl,
                "note": "a usable index has these columns as its leading key columns, "
                "is valid and not partial",
            },
            fix_hint=(
                f"{ddl} — joins on {', '.join(cols)} and every DELETE/UPDATE of the referenced "
                f"key in {r['parent']} otherwise scan {table} sequentially."
            ),
            doc_url=DOCS + "ddl-constraints.html#DDL-CONSTRAINTS-FK",
        )
        state.add(finding)
        state.facts["fk_uncovered"].append(
            {"schema": r["nspname"], "table": r["relname"], "columns": cols, "finding": finding}
        )
    state.verdict("db.fk_without_index", len(rows), "foreign key(s) without a usable index")


INDEXES = f"""
idx AS (
    SELECT i.indexrelid, i.indrelid, i.indisunique, i.indisprimary, i.indnkeyatts, i.indnatts,
           (i.indkey::int2[])[0:i.indnkeyatts - 1] AS keys,
           (i.indclass::oid[])[0:i.indnkeyatts - 1] AS classes,
           (i.indoption::int2[])[0:i.indnkeyatts - 1] AS options,
           (i.indcollation::oid[])[0:i.indnkeyatts - 1] AS colls,
           coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS exprs,
           coalesce(pg_get_expr(i.indpred, i.indrelid), '') AS pred,
           c.relam, c.relname, n.nspname,
           EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid
                   AND k.contype IN ('p', 'u', 'x')) AS backs_constraint
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indisvalid AND {USER_SCHEMAS}
)"""


def duplicate_index(state: ScanState) -> None:
    """Exact duplicates and left-prefix duplicates (B-tree), never the one a constraint needs."""
    rows = state.session.rows(
        f"""WITH {INDEXES}
        SELECT a.nspname, a.relname AS dup, b.relname AS covered_by,
               a.indrelid::regclass::text AS table_name,
               CASE WHEN cardinality(a.keys) = cardinality(b.keys) THEN 'exact'
                    ELSE 'prefix' END AS kind,
               pg_get_indexdef(a.indexrelid) AS dup_def,
               pg_get_indexdef(b.indexrelid) AS covered_def,
               pg_relation_size(a.indexrelid) AS dup_bytes, a.indisunique AS dup_unique,
               b.indisunique AS covered_unique
        FROM idx a JOIN idx b
          ON a.indrelid = b.indrelid AND a.indexrelid <> b.indexrelid AND a.relam = b.relam
        WHERE a.exprs = b.exprs AND a.pred = b.pred AND NOT a.backs_constraint
          AND cardinality(a.keys) <= cardinality(b.keys)
          AND a.keys = b.keys[1:cardinality(a.keys)]
          AND a.classes = b.classes[1:cardinality(a.keys)]
          AND a.options = b.options[1:cardinality(a.keys)]
          AND a.colls = b.colls[1:cardinality(a.keys)]
          AND (
            -- prefix: only B-tree can use the leading columns of a longer index,
            -- and a unique index enforces something the longer one does not.
            (cardinality(a.keys) < cardinality(b.keys) AND NOT a.indisunique
             AND a.relam = (SELECT oid FROM pg_am WHERE amname = 'btree'))
            OR (cardinality(a.keys) = cardinality(b.keys) AND (
                 b.backs_constraint
                 OR (b.indisunique AND NOT a.indisunique)
                 OR (a.indisunique = b.indisunique AND a.indexrelid > b.indexrelid)))
          )
        ORDER BY a.nspname, a.relname"""
    )
    seen = set()
    for r in rows:
        if r["dup"] in seen:
            continue
        seen.add(r["dup"])
        name = f"{quote_ident(r['nspname'])}.{quote_ident(r['dup'])}"
        state.add(
            FindingData(
                rule_id="db.duplicate_index",
                title=f"Index {name} is {'a duplicate' if r['kind'] == 'exact' else 'a prefix'} "
                f"of {r['covered_by']}",
                severity="medium" if r["kind"] == "exact" else "low",
                category="performance",
                location=r["table_name"],
                key=f"dup:{r['dup_def']}",
                evidence={
                    "kind": r["kind"],
                    "index": r["dup_def"],
                    "covered_by": r["covered_def"],
                    "size_mb": size_mb(r["dup_bytes"]),
                },
                fix_hint=(
                    f"DROP INDEX CONCURRENTLY {name}; — {r['covered_by']} serves the same "
                    "lookups; each extra index slows every write and takes space."
                ),
                doc_url=DOCS + "indexes-multicolumn.html",
            )
        )
    state.verdict("db.duplicate_index", len(seen), "duplicate or prefix index(es)")


def unused_index(state: ScanState) -> None:
    """Never-scanned indexes, except those that enforce something or are a FK's only cover."""
    t = state.thresholds
    rows = state.session.rows(
        f"""WITH {FK_COVERS},
        sole AS (SELECT min(indexrelid) AS indexrelid, con_oid FROM cover
                 GROUP BY con_oid HAVING count(*) = 1)
        SELECT n.nspname, c.relname AS index_name, s.relname AS table_name,
               pg_get_indexdef(i.indexrelid) AS definition,
               pg_relation_size(i.indexrelid) AS bytes, s.idx_scan,
               (SELECT string_agg(k.conname, ', ') FROM sole JOIN pg_constraint k
                  ON k.oid = sole.con_oid WHERE sole.indexrelid = i.indexrelid) AS sole_fk
        FROM pg_stat_user_indexes s
        JOIN pg_index i ON i.indexrelid = s.indexrelid
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary AND i.indisvalid
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
          AND pg_relation_size(i.indexrelid) >= %(min_bytes)s
        ORDER BY pg_relation_size(i.indexrelid) DESC""",
        {"min_bytes": int(t.unused_index_mb * 1024 * 1024)},
    )
    since = state.caps.stats_reset
    kept = []
    reported = 0
    for r in rows:
        name = f"{quote_ident(r['nspname'])}.{quote_ident(r['index_name'])}"
        if r["sole_fk"]:
            # Dropping it would bring back the sequential scans of every parent
            # DELETE/UPDATE: it is the only cover of a foreign key.
            kept.append({"index": name, "foreign_keys": r["sole_fk"]})
            continue
        reported += 1
        state.add(
            FindingData(
                rule_id="db.unused_index",
                title=f"Index {name} has not been used since the statistics were reset",
                severity="medium" if r["bytes"] >= 100 * 1024 * 1024 else "low",
                category="performance",
                location=f"{quote_ident(r['nspname'])}.{quote_ident(r['table_name'])}",
                key=f"unused:{r['definition']}",
                evidence={
                    "index": r["definition"],
                    "size_mb": size_mb(r["bytes"]),
                    "idx_scan": 0,
                    "stats_since": since.isoformat() if since else None,
                    "note": "counters are per server: check standbys before dropping",
                },
                fix_hint=(
                    f"DROP INDEX CONCURRENTLY {name}; once you are sure no rare job (monthly "
                    "report) or standby uses it."
                ),
                doc_url=DOCS + "monitoring-stats.html#MONITORING-PG-STAT-ALL-INDEXES-VIEW",
            )
        )
    state.summary["unused_fk_covers_kept"] = kept
    detail = f"{reported} unused index(es) ≥ {t.unused_index_mb:g} MB"
    if kept:
        detail += f"; {len(kept)} unused index(es) kept as a foreign key's only cover"
    if reported:
        state.failed("db.unused_index", detail)
    else:
        state.passed("db.unused_index", detail)


def invalid_index(state: ScanState) -> None:
    rows = state.session.rows(
        f"""SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid) AS definition,
               i.indrelid::regclass::text AS table_name
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT i.indisvalid AND {USER_SCHEMAS} ORDER BY 1, 2"""
    )
    for r in rows:
        name = f"{quote_ident(r['nspname'])}.{quote_ident(r['relname'])}"
        state.add(
            FindingData(
                rule_id="db.invalid_index",
                title=f"Index {name} is invalid (a failed CREATE INDEX CONCURRENTLY?)",
                severity="medium",
                category="correctness",
                location=r["table_name"],
                key=f"invalid:{r['definition']}",
                evidence={"index": r["definition"]},
                fix_hint=(
                    f"REINDEX INDEX CONCURRENTLY {name}; (or DROP INDEX CONCURRENTLY {name}; and "
                    "create it again) — it is maintained on every write but never used, and a "
                    "unique one enforces nothing."
                ),
                doc_url=DOCS + "sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY",
            )
        )
    state.verdict("db.invalid_index", len(rows), "invalid index(es)")


# Rows counted per NOT VALID constraint, at most: enough to tell "a few" from "many".
VIOLATION_COUNT_CAP = 10_000
NOT_VALID_CONSTRAINTS = f"""
SELECT n.nspname, con.conname, con.contype, con.confmatchtype,
       con.conrelid::regclass::text AS table_name,
       con.confrelid::regclass::text AS parent_table,
       pg_get_constraintdef(con.oid) AS definition,
       pg_get_expr(con.conbin, con.conrelid) AS check_expression,
       ARRAY(SELECT quote_ident(a.attname)
             FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS columns,
       ARRAY(SELECT quote_ident(a.attname)
             FROM unnest(con.confkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.attnum
             ORDER BY k.ord) AS parent_columns
FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
WHERE NOT con.convalidated AND con.contype IN ('c', 'f') AND {USER_SCHEMAS}
ORDER BY 1, 5, 2"""


def offending_rows(row: dict[str, Any], select: str = "1") -> str:
    """The rows a NOT VALID constraint would refuse: orphans of a foreign key (MATCH
    SIMPLE: a row with a NULL in its key is not checked, as PostgreSQL does; MATCH FULL:
    only all-NULL keys are exempt) or rows whose CHECK is false. Everything in the
    statement comes from the catalogs (quoted names, PostgreSQL's own expression text)."""
    table = row["table_name"]
    if row["contype"] == "f":
        columns, parents = list(row["columns"]), list(row["parent_columns"])
        joined = " AND ".join(f"p.{p} = c.{c}" for c, p in zip(columns, parents, strict=True))
        if row["confmatchtype"] == "f":
            checked = "NOT (" + " AND ".join(f"c.{c} IS NULL" for c in columns) + ")"
        else:
            checked = " AND ".join(f"c.{c} IS NOT NULL" for c in columns)
        return (
            f"SELECT {select} FROM {table} AS c WHERE {checked} "
            f"AND NOT EXISTS (SELECT 1 FROM {row['parent_table']} AS p WHERE {joined})"
        )
    # A CHECK passes when its expression is true or NULL: only false violates it.
    return f"SELECT {select} FROM {table} AS c WHERE ({row['check_expression']}) IS FALSE"


def count_violations(state: ScanState, row: dict[str, Any]) -> tuple[int | None, str]:
    """(rows offending, up to the cap; None and why when the count failed)."""
    inner = offending_rows(row)
    # % doubled: the driver reads the statement for placeholders.
    sql = f"SELECT count(*) AS n FROM ({inner} LIMIT {VIOLATION_COUNT_CAP}) AS offending"
    counted, failure = state.session.try_rows(sql.replace("%", "%%"))
    if not counted:
        return None, str(failure)
    return int(counted[0]["n"]), ""


def invalid_constraint(state: ScanState) -> None:
    rows = state.session.rows(NOT_VALID_CONSTRAINTS)
    for r in rows:
        violating, failure = count_violations(state, r)
        evidence: dict[str, Any] = {"definition": r["definition"]}
        what = "orphan rows" if r["contype"] == "f" else "rows violating it"
        title = f"Constraint {r['conname']} on {r['table_name']} is NOT VALID"
        severity, category = "low", "correctness"
        if violating is None:
            evidence["violating_rows"] = None
            evidence["not_counted"] = f"the count failed: {failure}"
        else:
            evidence["violating_rows"] = violating
            evidence["violating_rows_capped"] = violating >= VIOLATION_COUNT_CAP
        if violating:
            shown = f"≥ {violating:,}" if violating >= VIOLATION_COUNT_CAP else f"{violating:,}"
            title += f" and {shown} {what} break it"
            severity, category = "high", "integrity"
        fix = (
            f"ALTER TABLE {r['table_name']} VALIDATE CONSTRAINT {quote_ident(r['conname'])}; "
            "— existing rows are unchecked until then, and the planner cannot rely on it."
        )
        if violating:
            fix = (
                f"Repair or remove the {what} first (find them with the query in the evidence), "
                "then " + fix
            )
            evidence["query"] = offending_rows(r, "c.*") + " LIMIT 100"
        state.add(
            FindingData(
                rule_id="db.invalid_constraint",
                title=title,
                severity=severity,
                category=category,
                location=r["table_name"],
                key=f"notvalid:{r['table_name']}.{r['conname']}",
                evidence=evidence,
                fix_hint=fix,
                doc_url=DOCS + "sql-altertable.html",
            )
        )
    state.verdict("db.invalid_constraint", len(rows), "constraint(s) not validated")


def seqscan_heavy(state: ScanState) -> None:
    """Large tables read mostly by sequential scans — including tables with no index at all
    (idx_scan NULL) or never index-scanned (idx_scan = 0), which pghero skips."""
    t = state.thresholds
    rows = state.session.rows(
        """SELECT schemaname, relname, seq_scan, seq_tup_read, idx_scan, n_live_tup,
                  pg_total_relation_size(relid) AS bytes,
                  (SELECT count(*) FROM pg_index i WHERE i.indrelid = relid) AS indexes
           FROM pg_stat_user_tables
           WHERE n_live_tup >= %(min_rows)s AND seq_scan >= 10
             AND seq_scan::float8 / (seq_scan + coalesce(idx_scan, 0)) >= 0.05
           ORDER BY seq_tup_read DESC""",
        {"min_rows": t.seqscan_min_rows},
    )
    for r in rows:
        table = f"{quote_ident(r['schemaname'])}.{quote_ident(r['relname'])}"
        idx_scan = r["idx_scan"]
        if r["indexes"] == 0:
            why = "it has no index at all"
        elif not idx_scan:
            why = "its indexes were never used"
        else:
            why = f"only {idx_scan / (idx_scan + r['seq_scan']):.0%} of its scans use an index"
        state.add(
            FindingData(
                rule_id="db.seqscan_heavy",
                title=f"{table} ({r['n_live_tup']:,} rows) is read by sequential scans: {why}",
                severity="medium",
                category="performance",
                location=table,
                key=f"seqscan:{r['schemaname']}.{r['relname']}",
                evidence={
                    "seq_scan": r["seq_scan"],
                    "seq_tup_read": r["seq_tup_read"],
                    "idx_scan": idx_scan,
                    "live_rows": r["n_live_tup"],
                    "indexes": r["indexes"],
                    "size_mb": size_mb(r["bytes"]),
                    "rows_per_seq_scan": round(r["seq_tup_read"] / max(r["seq_scan"], 1)),
                },
                fix_hint=(
                    "Find the statements that filter this table (slow families, index suggestions "
                    "below) and index their filter columns."
                ),
                doc_url=DOCS + "indexes-intro.html",
            )
        )
    state.verdict("db.seqscan_heavy", len(rows), "seq-scan-heavy large table(s)")


SEQUENCES = """
seq AS (
    SELECT s.schemaname, s.sequencename, s.data_type::text AS seq_type, s.last_value,
           s.max_value, c.oid AS seq_oid
    FROM pg_sequences s
    JOIN pg_namespace n ON n.nspname = s.schemaname
    JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
    WHERE s.increment_by > 0
),
seqmax AS (
    -- A bigint sequence feeding an integer column overflows at the column's maximum.
    SELECT seq.*, a.attrelid::regclass::text AS owner_table, a.attname AS owner_column,
           format_type(a.atttypid, a.atttypmod) AS column_type,
           LEAST(seq.max_value, CASE a.atttypid WHEN 'int2'::regtype THEN 32767
                 WHEN 'int4'::regtype THEN 2147483647 ELSE seq.max_value END) AS effective_max
    FROM seq
    LEFT JOIN pg_depend d ON d.objid = seq.seq_oid AND d.classid = 'pg_class'::regclass
         AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
)"""


def sequence_overflow(state: ScanState) -> None:
    """Sequences (and the integer columns they feed) near their maximum."""
    t = state.thresholds
    rows = state.session.rows(
        f"""WITH {SEQUENCES}
        SELECT * FROM seqmax
        WHERE last_value IS NOT NULL AND 100.0 * last_value / effective_max >= %(pct)s
        ORDER BY last_value::float8 / effective_max DESC""",
        {"pct": t.sequence_pct},
    )
    unreadable = state.session.scalar(
        f"WITH {SEQUENCES} SELECT count(*) FROM seqmax WHERE last_value IS NULL"
    )
    flagged = len(rows)
    for r in rows:
        pct = 100.0 * float(r["last_value"]) / float(r["effective_max"])
        name = f"{quote_ident(r['schemaname'])}.{quote_ident(r['sequencename'])}"
        column = f"{r['owner_table']}.{r['owner_column']}" if r["owner_column"] else None
        fix = f"ALTER SEQUENCE {name} AS bigint;"
        if column and r["column_type"] in {"integer", "smallint"}:
            fix = (
                f"ALTER TABLE {r['owner_table']} ALTER COLUMN {quote_ident(r['owner_column'])} "
                f"TYPE bigint; then {fix} (rewrites the table: plan a window)"
            )
        state.add(
            FindingData(
                rule_id="db.sequence_overflow",
                title=f"Sequence {name} has used {pct:.1f}% of its range",
                severity="high",
                category="reliability",
                location=column or name,
                key=f"seq:{r['schemaname']}.{r['sequencename']}",
                evidence={
                    "last_value": int(r["last_value"]),
                    "max": int(r["effective_max"]),
                    "sequence_type": r["seq_type"],
                    "column": column,
                    "column_type": r["column_type"],
                    "used_pct": round(pct, 2),
                },
                fix_hint=fix + " — inserts fail once the maximum is reached.",
                doc_url=DOCS + "sql-altersequence.html",
            )
        )
    detail = f"{flagged} sequence(s) ≥ {t.sequence_pct:g}% of their maximum"
    if unreadable:
        detail += f" ({unreadable} unread: never used or no privilege)"
    if flagged:
        state.failed("db.sequence_overflow", detail)
    else:
        state.passed("db.sequence_overflow", detail)


CHECKS = (
    ("db.fk_without_index", fk_without_index),
    ("db.duplicate_index", duplicate_index),
    ("db.unused_index", unused_index),
    ("db.invalid_index", invalid_index),
    ("db.invalid_constraint", invalid_constraint),
    ("db.seqscan_heavy", seqscan_heavy),
    ("db.sequence_overflow", sequence_overflow),
)
