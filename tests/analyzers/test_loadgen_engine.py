"""The load engine against a local server with known behaviour: counts, latencies, errors.

Every run is a real engine subprocess driven by the runner, a second or two long.
"""

import os
import threading
import time

import psutil
import pytest

from optimizations.analyzers.base import LocalContext
from optimizations.analyzers.loadgen.hdr import DEFAULT_SUB_BITS
from optimizations.analyzers.loadgen.runner import (
    histogram_of,
    merge_results,
    run_engines,
)
from optimizations.analyzers.loadgen.wire import build_request, weighted_table
from tests.analyzers.loadgen_server import LoadgenServer, free_port

PRECISION = 2 ** -(DEFAULT_SUB_BITS - 1)
slow = pytest.mark.skipif(
    os.environ.get("KAIZEN_SLOW_TESTS") != "1", reason="slow: set KAIZEN_SLOW_TESTS=1"
)


@pytest.fixture(scope="module")
def server():
    running = LoadgenServer()
    yield running
    running.stop()


@pytest.fixture
def fresh(server):
    server.reset()
    return server


def config(port, paths, **extra):
    requests = []
    for path in paths:
        path, _, weight = path.partition("*")
        requests.append({"method": "GET", "path": path, "weight": float(weight or 1)})
    base = {
        "host": "127.0.0.1",
        "port": port,
        "requests": requests,
        "model": "open",
        "rate": 100,
        "duration": 1,
        "timeout": 2,
        "grace": 2,
        "connections": 4,
        "max_connections": 32,
        "cpu": "none",
    }
    base.update(extra)
    return base


def run(cfg, **kwargs):
    ctx = kwargs.pop("ctx", None) or LocalContext()
    output = run_engines(cfg, ctx, cpu=cfg.pop("cpu"), **kwargs)
    return output, ctx


def latency(output, key="latency"):
    histograms = [histogram_of(op[key]) for op in output.result["operations"]]
    merged = histograms[0]
    for other in histograms[1:]:
        merged.merge(other)
    return merged


def test_closed_model_counts_equal_the_servers_counters(fresh):
    output, ctx = run(config(fresh.port, ["/ok"], model="closed", rate=0, connections=4))
    totals = output.result["totals"]
    stats = fresh.stats()
    assert totals["sent"] > 100
    assert totals["sent"] == totals["ok"] == stats["requests"] == stats["responses"]
    assert sum(totals[name] for name in ("refused", "timeout", "reset", "malformed")) == 0
    # One row per second reached ctx.sample, and they add up to the totals.
    assert ctx.samples == output.rows
    assert sum(row["ok"] for row in output.rows) == totals["ok"]


def test_open_model_sends_exactly_the_offered_arrivals(fresh):
    output, _ = run(config(fresh.port, ["/ok"], rate=200, duration=1.5))
    totals = output.result["totals"]
    assert totals["offered"] == totals["sent"] == totals["ok"] == 300
    assert fresh.stats()["requests"] == 300
    assert totals["late"] == totals["dropped"] == 0


def test_poisson_arrivals_are_random_but_repeatable_by_seed(fresh):
    cfg = config(fresh.port, ["/ok"], rate=200, duration=1, arrival="poisson", seed=7)
    first, _ = run(dict(cfg))
    second, _ = run(dict(cfg))
    offered = first.result["totals"]["offered"]
    assert offered == second.result["totals"]["offered"]
    assert offered != 200 and 140 <= offered <= 260  # ~200 ± 4 sigma


def test_percentiles_match_the_servers_known_delays(fresh):
    # 90 % of requests wait 10 ms on the server, 10 % wait 60 ms.
    cfg = config(fresh.port, ["/delay/10*9", "/delay/60*1"], rate=100, duration=2)
    output, _ = run(cfg)
    service = latency(output, "service")
    assert service.total == 200
    med, p95, p99 = (value / 1000 for value in service.percentiles((0.5, 0.95, 0.99)))
    # Never below the server's delay (the histogram reads high, never low), and each
    # percentile falls in the right group: the median among the 10 ms answers, p95 and
    # p99 among the 60 ms ones. No upper bound in milliseconds: a busy machine adds delay.
    assert 10 * (1 - PRECISION) <= med < 60
    assert 60 * (1 - PRECISION) <= p95 <= p99
    by_name = {op["name"]: op for op in output.result["operations"]}
    assert set(by_name) == {"GET /delay/10", "GET /delay/60"}
    assert by_name["GET /delay/10"]["ok"] == 180 and by_name["GET /delay/60"]["ok"] == 20
    assert histogram_of(by_name["GET /delay/60"]["service"]).min >= 60_000 * (1 - PRECISION)


def test_a_stalled_server_shows_in_corrected_latency_not_in_service_time(fresh):
    """Coordinated omission: the target frozen for 1 s while arrivals keep their schedule."""
    cfg = config(fresh.port, ["/ok"], rate=200, duration=3, connections=2, max_connections=2)
    timer = threading.Timer(1.0, fresh.freeze)
    thaw = threading.Timer(2.0, fresh.thaw)
    timer.start()
    thaw.start()
    try:
        output, _ = run(cfg)
    finally:
        timer.cancel()
        thaw.join()
    corrected, service = latency(output), latency(output, "service")
    totals = output.result["totals"]
    assert totals["offered"] == totals["ok"] == 600
    # Arrivals during the stall waited for it: about 200 of 600 requests, up to 1 s late.
    assert totals["late"] >= 150
    assert corrected.max >= 900_000
    assert corrected.value_at_quantile(0.99) >= 800_000
    assert corrected.value_at_quantile(0.9) >= 300_000
    # Only the two requests in flight when it froze saw the stall as service time.
    assert service.value_at_quantile(0.9) < 50_000
    assert service.count_above(500_000) <= 2


@pytest.mark.parametrize(
    ("path", "error", "extra"),
    [
        ("/status/503", "non_2xx", {}),
        ("/malformed", "malformed", {}),
        ("/reset", "reset", {}),
        ("/hang", "timeout", {"timeout": 0.3, "grace": 0.5}),
    ],
)
def test_each_error_class_is_counted_as_such(fresh, path, error, extra):
    output, _ = run(config(fresh.port, [path], rate=20, duration=1, **extra))
    totals = output.result["totals"]
    assert totals["offered"] == 20
    assert totals[error] == 20
    others = {"ok", "refused", "timeout", "reset", "non_2xx", "malformed"} - {error}
    assert all(totals[name] == 0 for name in others)
    (op,) = output.result["operations"]
    assert op["errors"][error] == 20
    if error == "non_2xx":
        assert op["status"] == {"503": 20}
    assert output.result["error_samples"] or error == "non_2xx"


def test_refused_connections_are_counted_per_request():
    output, _ = run(config(free_port(), ["/ok"], rate=20, duration=1))
    totals = output.result["totals"]
    assert totals["offered"] == totals["refused"] == 20
    assert totals["sent"] == totals["ok"] == 0
    assert any("refused" in line.lower() for line in output.result["error_samples"])


def test_connection_close_answers_reconnect_without_errors(fresh):
    output, _ = run(config(fresh.port, ["/close"], rate=50, duration=1))
    totals = output.result["totals"]
    assert totals["ok"] == 50 and totals["reset"] == 0
    assert fresh.stats()["requests"] == 50


def test_cancel_stops_the_engine_and_the_traffic(fresh):
    ctx = LocalContext()

    def on_row(row):
        ctx.samples.append(row)
        ctx.cancel()  # as the job's cancel button would, once traffic flows

    output, _ = run(config(fresh.port, ["/ok"], rate=200, duration=60), ctx=ctx, on_row=on_row)
    assert output.cancelled and output.result["cancelled"]
    for pid in output.pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    seen = fresh.stats()["requests"]
    time.sleep(0.3)
    assert fresh.stats()["requests"] == seen
    assert seen < 200 * 5


def test_the_rate_ceiling_holds_in_the_open_model(fresh):
    output, _ = run(config(fresh.port, ["/ok"], rate=1000, max_rate=50, duration=1))
    assert output.result["totals"]["offered"] == 50
    assert fresh.stats()["requests"] == 50


def test_the_rate_ceiling_paces_the_closed_model(fresh):
    cfg = config(fresh.port, ["/ok"], model="closed", rate=0, max_rate=40, connections=4)
    output, _ = run(cfg)
    assert 38 <= output.result["totals"]["sent"] <= 41


def test_the_duration_ceiling_holds(fresh):
    output, _ = run(config(fresh.port, ["/ok"], rate=100, duration=30, max_duration=1))
    assert output.result["totals"]["offered"] == 100
    assert output.result["duration"] == 1


def test_two_workers_split_the_rate_and_their_histograms_merge(fresh):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: the runner keeps one worker")
    output, _ = run(config(fresh.port, ["/ok", "/delay/5"], rate=200, duration=1), workers=2)
    result = output.result
    assert result["workers"] == 2 and len(output.pids) == 2
    assert result["totals"]["offered"] == result["totals"]["ok"] == 200
    assert fresh.stats()["requests"] == 200
    assert sum(histogram_of(op["latency"]).total for op in result["operations"]) == 200
    assert output.rows[0]["workers"] == 2  # the first second, merged from both engines


def test_merge_results_adds_counts_and_histograms():
    def part(ok, values):
        counts = {}
        for value in values:
            counts[value] = counts.get(value, 0) + 1
        return {
            "model": "open",
            "sub_bits": DEFAULT_SUB_BITS,
            "rate": 50.0,
            "elapsed": 1.0,
            "totals": {"offered": ok, "ok": ok},
            "cpu_samples": [10.0, 90.0],
            "lag": {"counts": [], "sum": 0, "max": 0},
            "operations": [
                {
                    "name": "GET /x",
                    "ok": ok,
                    "errors": {"non_2xx": 1},
                    "status": {"500": 1},
                    "latency": {"counts": sorted(counts.items()), "sum": sum(values), "max": 900},
                    "service": {"counts": [], "sum": 0, "max": 0},
                }
            ],
        }

    merged = merge_results([part(3, [100, 200, 300]), part(2, [400, 900])])
    assert merged["totals"]["ok"] == 5 and merged["rate"] == 100.0
    (op,) = merged["operations"]
    assert op["ok"] == 5 and op["errors"]["non_2xx"] == 2 and op["status"] == {"500": 2}
    histogram = histogram_of(op["latency"])
    assert histogram.total == 5 and histogram.value_at_quantile(0.5) == 300
    assert merged["cpu_samples"] == [10.0, 90.0]


def test_requests_are_built_once_and_refuse_header_injection():
    wire = build_request("example:80", {"method": "post", "path": "/a", "body": {"k": 1}})
    assert wire.startswith(b"POST /a HTTP/1.1\r\nHost: example:80\r\n")
    assert wire.endswith(b'Content-Length: 7\r\nContent-Type: application/json\r\n\r\n{"k":1}')
    with pytest.raises(ValueError, match="line break"):
        build_request("h", {"path": "/", "headers": {"X": "a\r\nEvil: 1"}})


def test_weighted_table_gives_each_request_its_share_spread_out():
    table = weighted_table([3.0, 1.0, 0.0], seed=1)
    assert sorted(table) == [0, 0, 0, 1]  # reduced to its smallest exact pass
    table = weighted_table([5.0, 3.0, 2.0], seed=3)
    assert [table.count(i) for i in range(3)] == [5, 3, 2]
    assert table == weighted_table([5.0, 3.0, 2.0], seed=3)
    # Spread: no request three times in a row even though one weighs half.
    doubled = table * 2
    assert all(len(set(doubled[i : i + 3])) > 1 for i in range(len(table)))


@pytest.mark.slow
@slow
def test_a_longer_run_at_a_higher_rate_keeps_its_counts(fresh):
    output, _ = run(config(fresh.port, ["/ok"], rate=1000, duration=10, max_connections=64))
    totals = output.result["totals"]
    assert totals["offered"] == totals["ok"] == fresh.stats()["requests"] == 10_000


def test_engines_of_a_distributed_test_wait_connected_for_the_agreed_start(fresh):
    asked = []

    def gate():
        # Every engine is connected and nothing is sent yet: the instant is agreed now.
        asked.append(fresh.stats()["requests"])
        return time.time() + 0.3

    ticks = []
    output, _ = run(
        config(fresh.port, ["/ok"], rate=200, duration=1, cpu=None),
        workers=2,
        start_gate=gate,
        on_ticks=lambda raw, row: ticks.append((raw, row)),
    )
    assert asked == [0]
    totals = output.result["totals"]
    assert totals["sent"] == totals["ok"] == fresh.stats()["requests"] == 200
    # The raw ticks (bucket counts, for a parent to merge) come with each merged row.
    assert sum(t["ok"] for raw, _ in ticks for t in raw) == 200
    assert [row for _, row in ticks] == output.rows


def test_a_start_that_never_comes_sends_nothing(fresh):
    output, _ = run(
        config(fresh.port, ["/ok"], rate=200, duration=1, cpu=None), start_gate=lambda: None
    )
    assert output.cancelled
    assert fresh.stats()["requests"] == 0
