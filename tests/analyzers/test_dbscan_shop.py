"""DB scan of the demo target (examples/shop_api) on PostgreSQL: slow mode yields its
planted database problems, fast mode none of them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request

import pytest

from examples.shop_api.cli import apply_schema, seed
from optimizations.analyzers.base import LocalContext, TargetSpec
from optimizations.analyzers.dbscan import run

from . import dbscan_fixtures as fx

pytestmark = pytest.mark.postgres

PLANTED = {
    "fk:public.items(category_id)->categories",  # db.fk_without_index
    "dup:CREATE INDEX ix_items_sku ON public.items USING btree (sku)",  # db.duplicate_index
    "unused:CREATE INDEX ix_items_updated_at ON public.items USING btree (updated_at)",
    "seqscan:public.items",  # db.seqscan_heavy: the list sorts on an unindexed column
}


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def traffic(base: str, mode: str) -> None:
    first = json.loads(get(f"{base}/categories"))
    first = first["items"] if isinstance(first, dict) else first
    category = first[0]["id"]
    for _ in range(12):
        # Slow mode pages by OFFSET (cursor=100); fast mode's cursors are keysets.
        get(f"{base}/items?limit=5" + ("&cursor=100" if mode == "slow" else ""))
        get(f"{base}/items?limit=5&category_id={category}")
    for word in ("red", "blue", "lamp", "chair", "steel") * 2:
        get(f"{base}/items/search?q={word}&limit=5")


def scan_mode(mode: str):
    port = fx.acquire_cluster()
    db = f"kz_shop_{mode}"
    url = fx.fresh_database(port, db)
    server = None
    try:
        apply_schema(url, mode)
        seed(url, items=12000, categories=60)
        with fx.admin(port, db) as conn:
            conn.execute("ANALYZE")
        http_port = fx.free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "examples.shop_api",
                "serve",
                "--mode",
                mode,
                "--port",
                str(http_port),
                "--database-url",
                url,
                "--no-seed",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert server.stderr is not None  # the pipe asked for above
        base = f"http://127.0.0.1:{http_port}"
        for _ in range(150):
            try:
                get(f"{base}/health")
                break
            except OSError:
                if server.poll() is not None:
                    raise AssertionError(server.stderr.read().decode()) from None
                time.sleep(0.1)

        # Usage counters reach pg_stat_user_tables only when a backend flushes its
        # pending statistics (up to ~10 s after it goes idle): drive the traffic first
        # and wait until the items table's scans are visible.
        traffic(base, mode)
        with fx.admin(port, db) as conn:
            for _ in range(300):
                scans = conn.execute(
                    "SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) "
                    "FROM pg_stat_user_tables WHERE relname = 'items'"
                ).fetchone()[0]
                if scans >= 24:
                    break
                time.sleep(0.1)

        class Ctx(LocalContext):
            def progress(self, percent, step=""):
                super().progress(percent, step)
                if step == "db.fk_without_index":
                    traffic(base, mode)

        target = TargetSpec(name=f"shop-{mode}", base_url=base, database_url=url)
        params = {
            "window": 1,
            "unused_index_mb": 0,
            "slow_family_mean_ms": 1,
            "slow_family_min_calls": 10,
        }
        return run(target, params, Ctx())
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
            if server.stderr is not None:
                server.stderr.close()
        fx.drop_database(port, db)
        fx.release_cluster()


def test_slow_mode_yields_the_planted_problems_and_fast_mode_none():
    slow = scan_mode("slow")
    keys = {f.key for f in slow.findings}
    missing = PLANTED - keys
    assert not missing, sorted(keys)
    fk = next(f for f in slow.findings if f.key.startswith("fk:public.items"))
    measured = fk.evidence["measured"]  # 200 items per category here: a modest saving
    assert measured["cost_after"] < measured["cost_before"]
    # The demo exposes its SQLAlchemy pool: the client-side pool is measured.
    assert slow.summary["pool"]["size"] is not None
    search = [f for f in slow.findings if f.rule_id == "db.index_suggestion" and "trgm" in f.key]
    assert search and "items" in search[0].location

    fast = scan_mode("fast")
    assert not PLANTED & {f.key for f in fast.findings}
    assert not [f for f in fast.findings if f.rule_id == "db.fk_without_index"]
