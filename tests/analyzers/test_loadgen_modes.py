"""The benchmark analyzer end to end: scenario, modes, limits, verdicts, findings, merging."""

import pytest

from optimizations.analyzers.base import (
    AnalysisError,
    Cancelled,
    LocalContext,
    TargetSpec,
)
from optimizations.analyzers.loadgen import PARAMS, PARAMS_BY_MODE, merge_summaries, run
from optimizations.analyzers.loadgen import scenario as scenarios
from optimizations.analyzers.loadgen.report import validity
from optimizations.analyzers.loadgen.verdicts import judge_run, overall, thresholds_for
from tests.analyzers.loadgen_server import OPENAPI, LoadgenServer, free_port


@pytest.fixture(scope="module")
def server():
    running = LoadgenServer()
    yield running
    running.stop()


@pytest.fixture
def target(server):
    server.reset()
    return TargetSpec(name="shop", base_url=server.url, max_rate=1000, max_duration=60)


def test_params_declare_every_mode():
    assert set(PARAMS_BY_MODE) == {"load", "closed", "stress", "endurance"}
    names = [param.name for param in PARAMS]
    assert len(names) == len(set(names)) and names[0] == "mode"
    # A default that differs between modes is left to the mode in the union.
    assert next(p for p in PARAMS if p.name == "duration").default is None


def test_scenario_from_openapi_fills_parameters_from_examples_and_lists(target):
    ctx = LocalContext()
    operations = scenarios.build(target, {"timeout": 2.0}, ctx.log)
    by_name = {op.name: op for op in operations}
    assert set(by_name) == {
        "GET /items",
        "GET /items/{item_id}",
        "GET /ok",
        "GET /status/{code}",
        "GET /search",
    }
    # Ids read from GET /items; the example given for code; the schema example for q.
    assert [r["path"] for r in by_name["GET /items/{item_id}"].requests] == [
        "/items/11",
        "/items/12",
        "/items/13",
    ]
    assert by_name["GET /status/{code}"].requests[0]["path"] == "/status/404"
    assert by_name["GET /search"].requests[0]["path"] == "/search?q=ab"
    assert any("GET /secret/{token} skipped" in message for _, message in ctx.logs)


def test_scenario_weights_and_exclusions():
    operations = scenarios.from_openapi(
        OPENAPI, weights={"GET /ok": 5}, exclude=["GET /items*", "/status/*", "/secret/*"]
    )
    assert [(op.name, op.weight) for op in operations] == [("GET /ok", 5.0), ("GET /search", 1.0)]
    requests = scenarios.engine_requests(
        operations, base_path="/api", auth_header=("Authorization", "Bearer t")
    )
    assert requests[0]["path"] == "/api/ok"
    assert requests[0]["headers"] == {"Authorization": "Bearer t"}


def test_custom_scenario_entries_are_checked():
    operations = scenarios.custom(
        [
            {"method": "post", "path": "/items", "body": {"name": "x"}, "weight": 2},
            {"method": "GET", "path": "/items/1", "name": "GET /items/{id}"},
        ]
    )
    assert [(op.name, op.weight) for op in operations] == [
        ("POST /items", 2.0),
        ("GET /items/{id}", 1.0),
    ]
    for bad, message in [
        ([], "non-empty"),
        ([{"method": "TRACE", "path": "/"}], "method"),
        ([{"path": "items"}], "path must start"),
        ([{"path": "/", "weight": -1}], "negative"),
        ([{"path": "/", "headers": {"X": "a\nb"}}], "line break"),
    ]:
        with pytest.raises(AnalysisError, match=message):
            scenarios.custom(bad)


def test_load_test_end_to_end(target):
    ctx = LocalContext()
    result = run(target, {"mode": "load", "rate": 100, "duration": 1, "paths": ["/ok"]}, ctx)
    summary = result.summary
    assert summary["requests"]["offered"] == summary["requests"]["ok"] == 100
    assert set(summary["latency_ms"]) >= {"avg", "min", "med", "p90", "p95", "p99", "max"}
    assert summary["hdr"]["latency"]["total"] == 100
    assert [op["name"] for op in summary["operations"]] == ["GET /ok"]
    assert summary["thresholds"]["api_avg_ms"] == 100.0
    assert summary["limits"] == {"max_rate": 1000, "max_duration": 60}
    # The rate offered is below the throughput objective: that SLO cannot be judged.
    slo = {verdict["slo"]: verdict["status"] for verdict in summary["slo"]}
    assert slo == {"api_avg_ms": "passed", "error_rate": "passed", "throughput_rps": "unknown"}
    assert result.verdict == "pass" and result.findings == []
    names = {m.name for m in result.measurements}
    assert {"http.latency.p95", "http.service_time.p99", "http.throughput", "http.error_rate"} <= (
        names
    )
    per_op = [m for m in result.measurements if m.labels.get("operation") == "GET /ok"]
    assert {m.name for m in per_op} >= {"http.latency.p95", "http.throughput"}
    assert ctx.samples and all(row["mode"] == "load" for row in ctx.samples)
    assert {"offered", "achieved", "ok", "p50_ms", "p95_ms", "p99_ms", "cpu_percent"} <= set(
        ctx.samples[0]
    )
    assert ctx.percent == 100.0


def test_errors_and_slow_operations_become_findings(target):
    target.thresholds = {"api_avg_ms": 20}
    params = {
        "mode": "load",
        "rate": 100,
        "duration": 1,
        "scenario": [
            {"path": "/ok", "weight": 4},
            {"path": "/delay/40", "weight": 4},
            {"path": "/status/500", "weight": 2},
        ],
    }
    result = run(target, params, LocalContext())
    rules = {(f.rule_id, f.location) for f in result.findings}
    assert ("benchmark.operation_errors", "GET /status/500") in rules
    assert ("benchmark.slow_operation", "GET /delay/40") in rules
    assert ("benchmark.bottleneck", "GET /delay/40") in rules
    assert ("benchmark.slo.error_rate", "shop") in rules
    assert result.verdict == "fail"
    checks = {check.check_id: check.status for check in result.checks}
    assert checks["benchmark.slo.error_rate"] == "failed"
    assert checks["benchmark.operation_errors"] == "failed"
    assert result.summary["status_codes"] == {"500": 20}


def test_closed_model_is_held_under_the_targets_rate_limit(target):
    target.max_rate = 50
    result = run(target, {"mode": "closed", "duration": 1, "paths": ["/ok"]}, LocalContext())
    assert result.summary["requests"]["sent"] <= 51
    assert result.summary["capped_by_target_limit"] is True
    slo = {v["slo"]: v for v in result.summary["slo"]}
    assert slo["throughput_rps"]["status"] == "unknown"


def test_limits_are_refused_before_any_traffic(target):
    target.max_rate, target.max_duration = 100, 10
    with pytest.raises(AnalysisError, match="exceeds this target's limit of 100 req/s"):
        run(target, {"rate": 150, "duration": 1, "paths": ["/ok"]}, LocalContext())
    with pytest.raises(AnalysisError, match="exceeds this target's limit of 10 s"):
        run(target, {"rate": 10, "duration": 11, "paths": ["/ok"]}, LocalContext())
    with pytest.raises(AnalysisError, match="exceeds this target's limit of 10 s"):
        run(target, {"rate": 10, "duration": 8, "warmup": 3, "paths": ["/ok"]}, LocalContext())
    with pytest.raises(AnalysisError, match="first step"):
        run(target, {"mode": "stress", "start_rate": 200, "paths": ["/ok"]}, LocalContext())


def test_hosts_off_the_allow_list_and_targets_that_are_down_fail_clearly():
    far = TargetSpec(name="far", base_url="http://10.1.2.3:8000")
    with pytest.raises(AnalysisError, match="not in KAIZEN_ALLOWED_TARGET_HOSTS"):
        run(far, {"paths": ["/"]}, LocalContext())
    down = TargetSpec(name="down", base_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(AnalysisError, match="cannot connect"):
        run(down, {"paths": ["/"]}, LocalContext())
    with pytest.raises(AnalysisError, match="unknown parameter"):
        run(down, {"rte": 5}, LocalContext())


def test_cancel_raises_and_stops(target, server):
    ctx = LocalContext(cancel_after=1.5)
    with pytest.raises(Cancelled):
        run(target, {"rate": 100, "duration": 30, "paths": ["/ok"]}, ctx)
    assert server.stats()["requests"] < 100 * 3


def test_stress_steps_up_to_the_targets_limit(target):
    target.max_rate = 400
    params = {"mode": "stress", "start_rate": 100, "step_factor": 2, "step_duration": 1}
    ctx = LocalContext()
    result = run(target, {**params, "paths": ["/ok"]}, ctx)
    summary = result.summary
    assert [step["offered_rate"] for step in summary["steps"]] == [100, 200, 400]
    assert all(step["sustainable"] for step in summary["steps"])
    assert summary["capacity_rps"] == 400 and summary["knee_step"] == 3
    assert "rate limit" in summary["stopped_because"]
    slo = {v["slo"]: v for v in summary["slo"]}
    # 400 req/s without a breach, but the limit stopped us below the 1000 req/s objective.
    assert slo["throughput_rps"]["status"] == "unknown"
    assert {row["step"] for row in ctx.samples} == {1, 2, 3}
    at = [row["at"] for row in ctx.samples]  # one time axis across the steps, for the chart
    assert at == sorted(at)
    step_labels = {m.labels.get("step") for m in result.measurements}
    assert {"1", "2", "3"} <= step_labels
    capacity = [m for m in result.measurements if m.name == "http.capacity"]
    assert capacity[0].value == 400


def test_stress_stops_at_the_step_that_breaks(target):
    params = {
        "mode": "stress",
        "start_rate": 50,
        "step_factor": 2,
        "step_duration": 1,
        "p99_ms": 10,
        "paths": ["/delay/30"],
        "saturation": False,
    }
    result = run(target, params, LocalContext())
    summary = result.summary
    (step,) = summary["steps"]
    assert not step["sustainable"]
    assert "corrected p99" in step["breaches"][0]
    assert summary["capacity_rps"] is None
    slo = {v["slo"]: v["status"] for v in summary["slo"]}
    assert slo["throughput_rps"] == "failed"
    assert result.verdict == "fail"


def test_stress_looks_past_the_knee_for_the_throughput_ceiling(target):
    params = {
        "mode": "stress",
        "start_rate": 50,
        "step_factor": 2,
        "step_duration": 1,
        "max_steps": 3,
        "p99_ms": 10,
        "paths": ["/delay/30"],
    }
    ctx = LocalContext()
    result = run(target, params, ctx)
    summary = result.summary
    # No step meets p99 ≤ 10 ms, so there is no knee; every step is served, so the
    # ceiling is the most throughput one of them achieved.
    assert summary["capacity_rps"] is None
    assert len(summary["steps"]) == 3
    assert all(s["breaches"][0].startswith("corrected p99") for s in summary["steps"])
    best = max(summary["steps"], key=lambda s: s["achieved_rate"])
    assert summary["saturation_step"] == best["step"]
    ceiling = [m.value for m in result.measurements if m.name == "http.saturation"]
    assert ceiling == [summary["saturation_rps"]] and ceiling[0] > 90
    assert any("looking for its ceiling" in message for _, message in ctx.logs)


def test_endurance_sees_memory_that_grows(target):
    params = {
        "mode": "endurance",
        "rate": 50,
        "duration": 3,
        "memory_interval": 0.1,
        "paths": ["/grow"],
    }
    ctx = LocalContext()
    result = run(target, params, ctx)
    memory = result.summary["memory"]
    assert memory["source"] == "psutil" and memory["metric"] == "pss"
    assert memory["trend"] == "growing"
    assert memory["end_bytes"] > memory["start_bytes"] + 5 * 1024 * 1024
    slo = {v["slo"]: v["status"] for v in result.summary["slo"]}
    assert slo["memory_trend"] == "failed"
    assert slo["memory_reduction"] == "unknown"  # no baseline given
    assert any(f.rule_id == "benchmark.slo.memory_trend" for f in result.findings)
    assert {"memory.pss.start", "memory.pss.end", "memory.growth"} <= {
        m.name for m in result.measurements
    }
    assert any("memory_bytes" in row for row in ctx.samples)


def test_endurance_on_a_steady_target_is_flat_and_judged_against_the_baseline(target):
    params = {
        "mode": "endurance",
        "rate": 50,
        "duration": 3,
        "memory_interval": 0.1,
        "paths": ["/ok"],
        "baseline_memory_bytes": 10 * 1024**3,
    }
    result = run(target, params, LocalContext())
    assert result.summary["memory"]["trend"] == "flat"
    slo = {v["slo"]: v["status"] for v in result.summary["slo"]}
    assert slo["memory_trend"] == "passed"
    assert slo["memory_reduction"] == "passed"  # far below half of 10 GiB


def test_endurance_falls_back_to_metrics(target):
    params = {
        "mode": "endurance",
        "rate": 20,
        "duration": 2,
        "memory_interval": 0.2,
        "memory_source": "metrics",
        "paths": ["/ok"],
    }
    result = run(target, params, LocalContext())
    memory = result.summary["memory"]
    assert memory["source"] == "metrics" and memory["metric"] == "rss"
    assert memory["mean_bytes"] > 1024 * 1024


def test_validity_guard_marks_a_saturated_generator():
    result = {"model": "open", "cpu_samples": [95.0, 97.0, 40.0], "lag": {"counts": []}}
    assert validity(result, [])["generator_limited"] is True
    result["cpu_samples"] = [95.0, 30.0, 30.0]  # one busy second is not "stayed"
    assert validity(result, [])["generator_limited"] is False
    rows = [{"interval": 1.0, "send_lag_p99_ms": 25.0}] * 3
    assert "send lag" in validity(result, rows)["reasons"][0]


def test_a_generator_limited_run_never_judges_throughput():
    summary = {
        "model": "closed",
        "rps": 5000.0,
        "error_rate": 0.0,
        "latency_ms": {"avg": 5.0, "p99": 20.0},
        "requests": {"completed": 100, "answered": 100},
        "validity": {"generator_limited": True},
    }
    verdicts = judge_run(summary, thresholds_for({}), mode="closed")
    throughput = next(v for v in verdicts if v.slo == "throughput_rps")
    assert throughput.status == "unknown" and "generator" in throughput.detail
    assert overall(verdicts) == "pass"


def test_thresholds_are_the_slo_tables_keys_and_units():
    # One table, one spelling: the portal's keys, percentages in % (1 is 1 %, not 100 %).
    merged = thresholds_for({"api_avg_ms": 50, "memory_reduction_pct": 1, "p99_ms": None})
    assert merged["api_avg_ms"] == 50 and merged["p99_ms"] == 500
    assert merged["memory_reduction_pct"] == 1
    assert thresholds_for({"avg_latency_ms": 50})["api_avg_ms"] == 100  # not a key of the table
    assert merged["p99_ms"] == 500.0


def test_summaries_of_a_split_run_merge_into_one(target):
    params = {"rate": 50, "duration": 1, "paths": ["/ok", "/delay/20"]}
    first = run(target, params, LocalContext()).summary
    second = run(target, {**params, "seed": 2}, LocalContext()).summary
    merged = merge_summaries([first, second])
    assert merged["requests"]["ok"] == first["requests"]["ok"] + second["requests"]["ok"] == 100
    assert merged["hdr"]["latency"]["total"] == 100
    assert merged["offered_rate"] == 100 and merged["workers"] == 2
    # Percentiles come from the merged histogram, not from averaging the parts'.
    assert merged["latency_ms"]["max"] == max(
        first["latency_ms"]["max"], second["latency_ms"]["max"]
    )
