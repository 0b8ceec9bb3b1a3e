"""One SLO table: a target's override of each SLO changes the verdict of the analyzer
that judges it (benchmark, DB scan), in the table's units (ms, %, req/s)."""

from types import SimpleNamespace

import pytest

from optimizations.analyzers import slo
from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    AnalysisError,
    CheckOutcome,
    LocalContext,
    TargetSpec,
    verdict_from_checks,
)
from optimizations.analyzers.dbscan import checks_queries, scan
from optimizations.analyzers.dbscan.common import ScanState, Thresholds
from optimizations.analyzers.dbscan.pool import PoolSample, pool_usage
from optimizations.analyzers.dbscan.snapshots import Family
from optimizations.analyzers.loadgen.verdicts import judge, judge_run, thresholds_for


def test_the_table_states_a_unit_and_a_direction_for_every_key():
    for threshold in slo.THRESHOLDS:
        assert threshold.unit in (slo.MS, slo.PCT, slo.RPS, slo.CALLS), threshold.key
        assert threshold.direction in ("max", "min"), threshold.key
        assert threshold.judged_by, threshold.key
        suffix = {"%": "_pct", "ms": "_ms", "req/s": "_rps", "calls": "_calls"}[threshold.unit]
        assert threshold.key.endswith(suffix), threshold.key


def test_overrides_merge_over_the_defaults_and_percent_converts_to_a_ratio():
    values = slo.merged({"error_rate_pct": 5, "db_avg_ms": None, "made_up": 3})
    assert values["error_rate_pct"] == 5 and values["db_avg_ms"] == 50
    assert "made_up" not in values
    assert slo.ratio(values, "error_rate_pct") == pytest.approx(0.05)
    with pytest.raises(ValueError):
        slo.ratio(values, "db_avg_ms")


# --- the benchmark (load, stress, endurance) ----------------------------------


def _summary(**over):
    summary = {
        "model": "open",
        "offered_rate": 50.0,
        "rps": 50.0,
        "error_rate": 0.0,
        "latency_ms": {"avg": 40.0, "p99": 300.0},
        "requests": {"completed": 500, "answered": 500},
        "validity": {"generator_limited": False},
    }
    summary.update(over)
    return summary


def _status(verdicts, key):
    return next(v.status for v in verdicts if v.slo == key)


def _bench(summary, overrides, mode="load", **kwargs):
    verdicts = judge_run(summary, thresholds_for(overrides), mode=mode, **kwargs)
    return verdicts, judge(verdicts, mode)[0]


def test_api_average_override_reaches_the_load_verdict():
    summary = _summary(latency_ms={"avg": 40.0, "p99": 60.0})
    assert _bench(summary, {})[1] == "pass"
    verdicts, verdict = _bench(summary, {"api_avg_ms": 30})
    assert _status(verdicts, "api_avg_ms") == CHECK_FAILED and verdict == "fail"


def test_error_rate_override_is_read_in_percent():
    summary = _summary(error_rate=0.03)  # 3 % of requests failed
    verdicts, verdict = _bench(summary, {})
    assert _status(verdicts, "error_rate") == CHECK_FAILED and verdict == "fail"
    verdicts, verdict = _bench(summary, {"error_rate_pct": 5})
    assert _status(verdicts, "error_rate") == CHECK_PASSED and verdict == "pass"


def test_throughput_override_reaches_the_stress_verdict():
    summary = _summary()
    verdicts, verdict = _bench(summary, {}, mode="stress", capacity=400.0)
    assert _status(verdicts, "throughput_rps") == CHECK_FAILED and verdict == "fail"
    verdicts, verdict = _bench(summary, {"throughput_rps": 300}, mode="stress", capacity=400.0)
    assert _status(verdicts, "throughput_rps") == CHECK_PASSED and verdict == "pass"


def test_p99_override_reaches_the_stress_verdict():
    summary = _summary(latency_ms={"avg": 40.0, "p99": 300.0})
    overrides = {"throughput_rps": 100}
    assert _bench(summary, overrides, mode="stress", capacity=400.0)[1] == "pass"
    verdicts, verdict = _bench(summary, {**overrides, "p99_ms": 250}, mode="stress", capacity=400.0)
    assert _status(verdicts, "p99_ms") == CHECK_FAILED and verdict == "fail"


def test_a_memory_reduction_of_one_percent_is_one_percent_not_all_of_it():
    memory = {"trend": "flat", "mean_bytes": 98_000_000}
    baseline = 100_000_000  # 2 % less than the baseline
    verdicts, _ = _bench(
        _summary(),
        {"memory_reduction_pct": 1},
        mode="endurance",
        memory=memory,
        baseline_memory=baseline,
    )
    assert _status(verdicts, "memory_reduction") == CHECK_PASSED
    verdicts, verdict = _bench(
        _summary(), {}, mode="endurance", memory=memory, baseline_memory=baseline
    )
    assert _status(verdicts, "memory_reduction") == CHECK_FAILED and verdict == "fail"


def test_a_stress_test_that_could_not_judge_capacity_is_incomplete_with_the_reason():
    summary = _summary(validity={"generator_limited": True})
    verdicts, verdict = _bench(summary, {}, mode="stress", capacity=400.0)
    reason = judge(verdicts, "stress")[1]
    assert verdict == "incomplete" and "generator-limited" in reason


# --- the DB scan --------------------------------------------------------------


def _state(overrides):
    caps = SimpleNamespace(database="shop", role="kaizen")
    return ScanState(None, caps, Thresholds.build(slo.merged(overrides)), LocalContext())


def _family(mean_ms, calls=100):
    return SimpleNamespace(
        calls=calls, total_ms=mean_ms * calls, mean_ms=mean_ms, share=1.0, query="SELECT 1"
    )


def test_the_db_scan_takes_the_tables_keys():
    thresholds = Thresholds.build(
        slo.merged({"db_avg_ms": 20, "slow_query_rate_pct": 2, "pool_use_pct": 60})
    )
    assert (thresholds.db_avg_ms, thresholds.slow_query_rate_pct) == (20, 2)
    assert thresholds.pool_use_pct == 60
    assert Thresholds().db_avg_ms == slo.BY_KEY["db_avg_ms"].default


def test_db_average_override_reaches_the_db_scan_verdict():
    state = _state({})
    checks_queries.avg_query_time(state, [_family(30.0)], 30)
    assert state.checks[-1].status == CHECK_PASSED and not state.findings
    state = _state({"db_avg_ms": 20})
    checks_queries.avg_query_time(state, [_family(30.0)], 30)
    assert state.checks[-1].status == CHECK_FAILED
    assert state.findings[0].severity == "high" and "20 ms SLO" in state.findings[0].title


def test_slow_query_rate_override_reaches_the_db_scan_verdict():
    state = _state({})
    checks_queries.slow_query_rate(state, [], (0.03, "per-execution samples"))
    assert state.checks[-1].status == CHECK_PASSED
    state = _state({"slow_query_rate_pct": 2})
    checks_queries.slow_query_rate(state, [], (0.03, "per-execution samples"))
    assert state.checks[-1].status == CHECK_FAILED and state.findings[0].severity == "high"


def test_pool_use_override_reaches_the_db_scan_verdict():
    watcher = SimpleNamespace(
        url="http://127.0.0.1:1/metrics",
        samples=[PoolSample(10.0, 0.0, 7.0, 0.0, None, None)],  # 70 % of the pool
    )
    state = _state({})
    pool_usage(state, watcher)
    assert state.checks[-1].status == CHECK_PASSED
    state = _state({"pool_use_pct": 60})
    pool_usage(state, watcher)
    assert state.checks[-1].status == CHECK_FAILED and state.findings[0].severity == "high"


def test_a_scan_verdict_is_incomplete_when_a_required_check_could_not_run():
    checks = [
        CheckOutcome("db.avg_query_time", "unknown", "pg_stat_statements: CREATE EXTENSION …"),
        CheckOutcome("db.conn_headroom", "passed"),
    ]
    required = ("db.avg_query_time", "db.conn_headroom", "db.slow_query_rate")
    verdict, reason = verdict_from_checks(checks, failed=False, required=required)
    assert verdict == "incomplete"
    assert "CREATE EXTENSION" in reason and "db.slow_query_rate: did not run" in reason
    verdict, reason = verdict_from_checks(checks, failed=True, required=required)
    assert verdict == "fail" and reason.startswith("also not checked: db.avg_query_time")
    assert verdict_from_checks(checks[1:], failed=False, required=required[1:2]) == ("pass", "")


def _window_family(*, mean_ms, min_ms, max_ms, calls=60):
    return Family(
        queryid=1,
        userid=10,
        query="SELECT 1",
        calls=calls,
        total_ms=calls * mean_ms,
        mean_ms=mean_ms,
        stddev_ms=5.0,
        min_ms=min_ms,
        max_ms=max_ms,
        max_in_window=True,
        window_exact=True,
        rows=calls,
        blks_hit=0,
        blks_read=0,
        share=1.0,
    )


def test_the_slow_query_and_slow_family_thresholds_reach_the_db_scan():
    family = _window_family(mean_ms=40.0, min_ms=20.0, max_ms=80.0)
    state = _state({})
    checks_queries.slow_families(state, [family], {})
    assert state.checks[-1].status == CHECK_PASSED  # 40 ms mean < 50 ms
    state = _state({"slow_family_mean_ms": 30})
    checks_queries.slow_families(state, [family], {})
    assert state.checks[-1].status == CHECK_FAILED
    state = _state({"slow_family_mean_ms": 30, "slow_family_min_calls": 100})
    checks_queries.slow_families(state, [family], {})
    assert state.checks[-1].status == CHECK_PASSED  # 60 calls < 100
    assert Thresholds.build(slo.merged({"slow_query_ms": 250})).slow_query_ms == 250


def test_the_slow_query_threshold_changes_the_slow_query_rate_verdict():
    family = _window_family(mean_ms=70.0, min_ms=60.0, max_ms=80.0)
    state = _state({})
    checks_queries.slow_query_rate(state, [family], None)
    assert state.checks[-1].status == CHECK_PASSED  # no execution reaches 1 s
    state = _state({"slow_query_ms": 50})
    checks_queries.slow_query_rate(state, [family], None)
    assert state.checks[-1].status == CHECK_FAILED  # every execution is ≥ 60 ms


def test_a_db_scan_job_stored_with_the_old_parameter_name_still_runs(monkeypatch):
    seen = {}
    build = Thresholds.build

    def record(*layers):
        seen["thresholds"] = build(*layers)
        return seen["thresholds"]

    def stop(url, *args, **kwargs):
        raise AnalysisError("stop here")

    monkeypatch.setattr(scan.Thresholds, "build", record)
    monkeypatch.setattr(scan, "open_session", stop)
    target = TargetSpec(name="shop", database_url="postgresql://127.0.0.1/shop")
    with pytest.raises(AnalysisError, match="stop here"):  # past the parameter check
        scan.run(target, {"avg_query_ms": 20}, LocalContext())
    assert seen["thresholds"].db_avg_ms == 20
