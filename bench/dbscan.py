"""Figure: how long a DB scan takes on a large schema, and what it costs the target.

Builds a throwaway PostgreSQL 15 cluster with 1 000 tables, 3 000 indexes and
200 statement families (plus 999 foreign keys, half of them unindexed), scans
it with window 0 (the figures since the statistics were reset — the window's
wait is not scan work) and prints the scan's duration and its own load on the
target: statements issued, their time, rows read. The cluster is removed after.

    .venv/bin/python bench/dbscan.py [--tables 1000] [--families 200]
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from examples import pgcluster
from optimizations.analyzers import dbscan
from optimizations.analyzers.base import LocalContext, TargetSpec


def free_port() -> int:
    with closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def build(dsn: str, tables: int, families: int) -> dict:
    started = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        # Table i: primary key + two more indexes = 3 per table. Table i > 0 references
        # table i-1; even tables index that foreign key (one of their two indexes).
        # In chunks: one transaction creating 1 000 tables runs out of lock slots.
        for lo in range(0, tables, 100):
            hi = min(lo + 100, tables) - 1
            conn.execute(
                f"""
            DO $$
            BEGIN
              FOR i IN {lo}..{hi} LOOP
                EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, parent_id int, a int,
                                b text, c timestamptz DEFAULT now())', i);
                IF i > 0 THEN
                  EXECUTE format('ALTER TABLE t%s ADD FOREIGN KEY (parent_id) REFERENCES t%s',
                                 i, i - 1);
                END IF;
                IF i % 2 = 0 THEN
                  EXECUTE format('CREATE INDEX ON t%s (parent_id)', i);
                ELSE
                  EXECUTE format('CREATE INDEX ON t%s (c)', i);
                END IF;
                EXECUTE format('CREATE INDEX ON t%s (b, a)', i);
              END LOOP;
            END $$;
            """
            )
        conn.execute(
            f"""
            DO $$
            BEGIN
              FOR i IN 0..{families - 1} LOOP
                EXECUTE format('INSERT INTO t%s (id, a, b) SELECT g, g %% 100, ''v'' || g
                                FROM generate_series(1, 2000) g', i);
                EXECUTE format('ANALYZE t%s', i);
              END LOOP;
            END $$;
            """
        )
        # 200 statement families: a filter on an unindexed column of 200 tables.
        for i in range(families):
            for value in range(5):
                conn.execute(f"SELECT id, b FROM t{i} WHERE a = %s", (value,))
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "        WHERE n.nspname = 'public' AND c.relkind = 'r') AS tables, "
            "(SELECT count(*) FROM pg_indexes WHERE schemaname = 'public') AS indexes, "
            "(SELECT count(*) FROM pg_constraint WHERE contype = 'f') AS fks"
        ).fetchone()
    assert counts is not None  # an aggregate answers one row
    return {
        "tables": counts[0],
        "indexes": counts[1],
        "foreign_keys": counts[2],
        "build_s": round(time.monotonic() - started, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--families", type=int, default=200)
    args = parser.parse_args(argv)
    if pgcluster.server_bin_dir() is None:
        print(f"needs PostgreSQL 15 or newer server binaries.\n{pgcluster.INSTALL_HINT}")
        return 2
    datadir = tempfile.mkdtemp(prefix="kaizen-bench-pg-")
    try:
        dsn = pgcluster.ensure_cluster(datadir, free_port(), "kz_bench")
        built = build(dsn, args.tables, args.families)
        print(
            f"schema: {built['tables']} tables, {built['indexes']} indexes, "
            f"{built['foreign_keys']} foreign keys (built in {built['build_s']}s)"
        )
        started = time.monotonic()
        report = dbscan.test_connection(dsn)
        print(
            f"test_connection: {time.monotonic() - started:.3f}s, {report['statements']} statements"
        )
        result = dbscan.run(
            TargetSpec(name="bench", database_url=dsn), {"window": 0}, LocalContext()
        )
        scan = result.summary["scan"]
        advisor = result.summary.get("advisor", {})
        by_rule: dict[str, int] = {}
        for finding in result.findings:
            by_rule[finding.rule_id] = by_rule.get(finding.rule_id, 0) + 1
        print(
            f"scan: {scan['seconds']:.2f}s wall; load on the target: {scan['statements']} "
            f"statements, {scan['statement_seconds']:.2f}s of statement time, "
            f"{scan['rows_read']} rows read"
        )
        print(
            f"      {result.summary.get('families')} statement families; advisor examined "
            f"{advisor.get('families_examined')} with {advisor.get('explains')} EXPLAINs "
            f"(HypoPG {'on' if advisor.get('hypopg') else 'off'})"
        )
        print("      findings: " + ", ".join(f"{k} {v}" for k, v in sorted(by_rule.items())))
        print(f"under 10 s: {'yes' if scan['seconds'] < 10 else 'NO'}")
        return 0 if scan["seconds"] < 10 else 1
    finally:
        pgcluster.remove_cluster(datadir)


if __name__ == "__main__":
    sys.exit(main())
