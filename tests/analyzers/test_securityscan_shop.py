"""The demo target: the security scan of the shop API finds what its code allows — the
planted HTTP problems in slow mode, none of them in fast mode.

Both modes run as the README starts them (``python -m examples.shop_api serve``), each on
its own seeded SQLite file, as subprocesses on free loopback ports.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from optimizations.analyzers import securityscan
from optimizations.analyzers.base import CHECK_PASSED, LocalContext, TargetSpec
from tests.analyzers.securityscan_servers import free_port

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "shop-demo-key-0042"
# The shop reads these; the test decides them (CI exports DATABASE_URL for Kaizen itself).
CLEAN_ENV = {
    name: value
    for name, value in os.environ.items()
    if name not in {"DATABASE_URL", "REDIS_URL", "SHOP_MODE", "SHOP_CORS_ORIGINS", "SHOP_API_KEY"}
}
PLANTED = {
    "sec.cors:any-origin-credentials",
    "sec.compression",
    "sec.error_leakage:GET /items",
    "sec.headers:x-content-type-options",
    "sec.headers:frame-protection",
    "sec.unauthenticated_writes:POST /items/bulk",
    "sec.input_bounds:POST /items/bulk",
    "sec.negative_testing:GET /items",
}


def _shop(mode: str, tmp: Path):
    database = f"sqlite+aiosqlite:///{tmp / f'{mode}.sqlite3'}"
    command = [sys.executable, "-m", "examples.shop_api"]
    subprocess.run(
        [*command, "seed", "--database-url", database, "--items", "2000", "--categories", "20"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        env=CLEAN_ENV,
    )
    port = free_port()
    log = open(tmp / f"{mode}.log", "wb")  # noqa: SIM115 - closed when the server stops
    server = subprocess.Popen(
        [*command, "serve", "--mode", mode, "--port", str(port), "--database-url", database],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**CLEAN_ENV, "SHOP_API_KEY": API_KEY},
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            server.wait()
            log.close()
            raise RuntimeError(
                f"shop API ({mode}) did not start: {(tmp / f'{mode}.log').read_text()}"
            )
        try:
            if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    return server, log, base_url


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """The full security scan of each mode, run once."""
    tmp = tmp_path_factory.mktemp("shop")
    results = {}
    for mode in ("slow", "fast"):
        server, log, base_url = _shop(mode, tmp)
        try:
            target = TargetSpec(
                name=f"shop {mode}",
                base_url=base_url,
                auth_header=("X-API-Key", API_KEY),
                max_rate=200,
                max_duration=60,
            )
            results[mode] = securityscan.run(target, {}, LocalContext())
        finally:
            server.terminate()
            server.wait(timeout=20)
            log.close()
    return results


def by_key(result):
    return {finding.key: finding for finding in result.findings}


def test_slow_mode_yields_each_planted_http_problem(scans):
    found = by_key(scans["slow"])
    assert set(found) >= PLANTED, PLANTED - set(found)
    assert found["sec.cors:any-origin-credentials"].severity == "high"
    assert found["sec.error_leakage:GET /items"].severity == "high"
    assert "stack trace" in found["sec.error_leakage:GET /items"].evidence["found"]
    assert found["sec.unauthenticated_writes:POST /items/bulk"].severity == "high"
    compression = found["sec.compression"]
    assert compression.location == "GET /items/export" and compression.severity == "medium"
    assert scans["slow"].verdict == "fail"


def test_fast_mode_yields_none_of_them(scans):
    result = scans["fast"]
    found = by_key(result)
    assert not PLANTED & set(found)
    assert not [f for f in result.findings if f.severity in {"medium", "high", "critical"}]
    statuses = {c.check_id: c.status for c in result.checks}
    for check in (
        "sec.cors",
        "sec.compression",
        "sec.error_leakage",
        "sec.unauthenticated_writes",
        "sec.input_bounds",
        "sec.negative_testing",
        "sec.keepalive",
    ):
        assert statuses[check] == CHECK_PASSED, check
    assert result.verdict == "pass"


def test_what_both_modes_really_have(scans):
    # Neither mode sends caching headers on its reads, names uvicorn in Server, nor limits a
    # burst: true of both, so the scan says so for both (low or info).
    for mode in ("slow", "fast"):
        found = by_key(scans[mode])
        assert found["sec.cache_headers"].severity == "low"
        assert found["sec.banner:server"].severity == "info"
        assert found["sec.rate_limiting"].severity == "info"


def test_the_compression_saving_is_measured_in_both_modes(scans):
    for mode, compressed in (("slow", "no"), ("fast", "yes")):
        savings = {
            m.labels["endpoint"]: m
            for m in scans[mode].measurements
            if m.name == "http.compression.saving"
        }
        export = savings["GET /items/export"]
        assert export.labels["compressed_by_server"] == compressed
        assert export.value > 50
