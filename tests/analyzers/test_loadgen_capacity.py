"""Whose limit a benchmark met: our generator, the machine it ran on, or the target.

On a busy 2-core machine every stress step used to be called "generator-limited"
(send lag p99 > 10 ms with the generator at 1 % CPU) and no knee was stored.
The guard now tells the three apart from the per-second rows, and a knee that
our side stopped is stored as a lower bound instead of nothing. Everything here
runs on synthetic per-second rows and engine results: no process, no clock.
"""

from __future__ import annotations

import time

import pytest

from optimizations.analyzers.base import LocalContext, TargetSpec
from optimizations.analyzers.loadgen import modes, report
from optimizations.analyzers.loadgen.engine import COUNTERS, ERROR_CLASSES
from optimizations.analyzers.loadgen.hdr import Histogram
from optimizations.analyzers.loadgen.machine import MachineSampler
from optimizations.analyzers.loadgen.runner import RunOutput, merge_ticks
from optimizations.analyzers.loadgen.verdicts import judge_run, thresholds_for

SECONDS = 10
IDLE_MACHINE = {"cores": 2, "run_queue": 1, "machine_busy_pct": 35.0, "steal_pct": 0.0}


def rows(n=SECONDS, **row) -> list[dict]:
    base = {"interval": 1.0, "cpu_percent": 5.0, "send_lag_p99_ms": 0.4, "sched_wait_ms": 0.2}
    return [{**base, **IDLE_MACHINE, **row} for _ in range(n)]


OPEN = {"model": "open", "cpu_samples": [], "lag": {"counts": []}}


# --- the three cases, second by second -------------------------------------------------


def test_a_saturated_generator_is_the_generators_limit():
    validity = report.validity(OPEN, rows(cpu_percent=96.0, send_lag_p99_ms=35.0))
    assert validity["generator_limited"] is True
    assert validity["limited_by"] == "generator"
    assert "generator CPU above 80 %" in validity["reasons"][0]


def test_a_lagging_event_loop_on_an_idle_machine_is_the_generators_limit_too():
    validity = report.validity(OPEN, rows(cpu_percent=30.0, send_lag_p99_ms=25.0))
    assert validity["limited_by"] == "generator"
    assert "event loop" in validity["reasons"][0]


def test_the_issues_busy_machine_is_the_machines_limit_not_the_generators():
    # Send lag p99 > 10 ms with the generator at 1 % CPU, 9 processes runnable on 2 cores.
    busy = rows(
        cpu_percent=1.0,
        send_lag_p99_ms=18.0,
        sched_wait_ms=42.0,
        run_queue=9,
        machine_busy_pct=99.0,
    )
    validity = report.validity(OPEN, busy)
    assert validity["generator_limited"] is True
    assert validity["limited_by"] == "machine"
    assert "waited 42 ms for a CPU" in validity["reasons"][0]
    assert "9 processes runnable on 2 cores" in validity["reasons"][0]
    assert validity["seconds"]["machine_busy"] == SECONDS
    assert validity["machine"]["run_queue_max"] == 9


def test_cpu_stolen_by_the_hypervisor_is_the_machines_limit():
    stolen = rows(cpu_percent=2.0, send_lag_p99_ms=14.0, steal_pct=35.0)
    validity = report.validity(OPEN, stolen)
    assert validity["limited_by"] == "machine"
    assert "stolen by the hypervisor" in validity["reasons"][0]


def test_a_target_that_cannot_keep_up_leaves_our_side_in_the_clear():
    # Sends leave on time; the target's latency and errors climb.
    climbing = [
        {**row, "p99_ms": 20.0 * (i + 1), "error_rate": 0.01 * i}
        for i, row in enumerate(rows(cpu_percent=6.0, send_lag_p99_ms=0.6))
    ]
    validity = report.validity(OPEN, climbing)
    assert validity["generator_limited"] is False
    assert validity["limited_by"] is None
    assert validity["reasons"] == []


def test_one_bad_second_is_not_a_limit():
    mostly_fine = rows(SECONDS - 1) + rows(1, cpu_percent=1.0, send_lag_p99_ms=30.0)
    assert report.validity(OPEN, mostly_fine)["generator_limited"] is False


def test_the_majority_side_names_the_limit():
    mixed = rows(3, cpu_percent=95.0) + rows(
        7, cpu_percent=1.0, send_lag_p99_ms=20.0, sched_wait_ms=30.0
    )
    validity = report.validity(OPEN, mixed)
    assert validity["limited_by"] == "machine"
    assert len(validity["reasons"]) == 2


def test_without_the_machines_figures_lag_is_the_generators():
    # Another platform (no /proc): the send lag alone, as before.
    bare = [{"interval": 1.0, "cpu_percent": 3.0, "send_lag_p99_ms": 25.0}] * 4
    assert report.validity(OPEN, bare)["limited_by"] == "generator"


def test_the_engines_machine_figures_reach_the_merged_rows():
    sampler = MachineSampler()
    sum(i * i for i in range(300_000))  # some CPU time between the two readings
    time.sleep(0.05)
    first = sampler.sample()
    if not sampler.available:
        pytest.skip("no /proc on this platform")
    assert first["cores"] >= 1
    assert {"machine_busy_pct", "steal_pct", "run_queue", "sched_wait_ms"} <= set(first)
    tick = {"t": 1, "interval": 1.0, "latency": [], "service": [], "lag": [], "cpu": 2.0}
    a = {**tick, **dict.fromkeys(COUNTERS, 0), "sched_wait_ms": 3.0, "run_queue": 4, "cores": 2}
    b = {**a, "sched_wait_ms": 12.0, "run_queue": 2}
    merged = merge_ticks([a, b])
    assert merged["sched_wait_ms"] == 12.0 and merged["run_queue"] == 4 and merged["cores"] == 2


# --- a stress step's breach: whose is it? ---------------------------------------------


def summary_with(limited_by=None, service_p99=5.0) -> dict:
    return {
        "validity": {"generator_limited": limited_by is not None, "limited_by": limited_by},
        "service_ms": {"p99": service_p99},
    }


def test_a_breach_with_our_side_in_the_clear_is_the_targets():
    breaches = ["corrected p99 900 ms > 500 ms"]
    assert modes.step_limit(summary_with(None), breaches, 500) == "target"
    assert modes.step_limit(summary_with(None), [], 500) is None


def test_a_latency_breach_made_of_our_send_lag_is_ours():
    breaches = ["corrected p99 900 ms > 500 ms"]
    assert modes.step_limit(summary_with("machine", service_p99=8.0), breaches, 500) == "machine"
    # ...unless the target's own service time broke the objective as well.
    assert modes.step_limit(summary_with("machine", service_p99=700.0), breaches, 500) == "target"
    errors = ["error rate 9.00% > 1.00%", "corrected p99 900 ms > 500 ms"]
    assert modes.step_limit(summary_with("generator"), errors, 500) == "target"


# --- the knee: exact, or a lower bound, never nothing ---------------------------------


def histogram_part(value_ms: float, count: int) -> dict:
    histogram = Histogram()
    histogram.record(int(value_ms * 1000), count)
    data = histogram.to_dict()
    return {"counts": data["counts"], "sum": data["sum"], "max": data["max"]}


def engine_output(rate, *, latency_ms, service_ms, share=1.0, errors=0, row=None) -> RunOutput:
    """One step's engine output: ``rate`` offered for SECONDS, ``share`` of it served."""
    offered = int(rate * SECONDS)
    completed = int(offered * share)
    ok = completed - errors
    totals = dict.fromkeys(COUNTERS, 0)
    totals.update(offered=offered, sent=completed, ok=ok, timeout=errors)
    operation = {
        "name": "GET /ok",
        "ok": ok,
        "errors": {**dict.fromkeys(ERROR_CLASSES, 0), "timeout": errors},
        "status": {},
        "latency": histogram_part(latency_ms, completed),
        "service": histogram_part(service_ms, completed),
    }
    result = {
        "type": "result",
        "model": "open",
        "rate": rate,
        "duration": SECONDS,
        "elapsed": SECONDS,
        "totals": totals,
        "cpu_samples": [(row or {}).get("cpu_percent", 5.0)] * SECONDS,
        "lag": histogram_part((row or {}).get("send_lag_p99_ms", 0.4), completed),
        "operations": [operation],
    }
    return RunOutput(rows=rows(**(row or {})), result=result)


BUSY = {"cpu_percent": 1.0, "send_lag_p99_ms": 40.0, "sched_wait_ms": 60.0, "run_queue": 8}
SATURATED = {"cpu_percent": 97.0, "send_lag_p99_ms": 60.0}


def stress(monkeypatch, steps: dict, *, throughput=1000.0, max_rate=100_000.0):
    """Run the stress mode over ``steps`` ({offered rate: engine output}) instead of engines."""
    target = TargetSpec(
        name="t",
        base_url="http://127.0.0.1:9",
        thresholds={"throughput_rps": throughput},
        max_rate=max_rate,
        max_duration=3600,
    )
    params = modes.clean_params(
        {
            "mode": "stress",
            "start_rate": 100,
            "step_factor": 2,
            "step_duration": SECONDS,
            "saturation": False,  # the ceiling search past the knee is another test's
        }
    )
    params["warmup"] = 0
    sent = []

    def fake_generate(plan, p, target, ctx, *, on_row=None, on_poll=None, **pattern):
        sent.append(pattern["rate"])
        return steps[pattern["rate"]]

    monkeypatch.setattr(modes, "_generate", fake_generate)
    ctx = LocalContext()
    thresholds = thresholds_for(target.thresholds)
    # No plan: fake_generate stands for the engine and never reads it.
    result = modes._stress(target, params, ctx, None, thresholds)  # type: ignore[arg-type]
    return result, sent, ctx


def capacity_measurement(result):
    (capacity,) = [m for m in result.measurements if m.name == "http.capacity"]
    return capacity


def verdict(result, slo="throughput_rps"):
    return next(v for v in result.summary["slo"] if v["slo"] == slo)


def test_a_target_that_breaks_gives_an_exact_knee(monkeypatch):
    steps = {
        100: engine_output(100, latency_ms=5, service_ms=5),
        200: engine_output(200, latency_ms=8, service_ms=8),
        400: engine_output(400, latency_ms=900, service_ms=880),
    }
    result, sent, _ = stress(monkeypatch, steps, throughput=150)
    summary = result.summary
    assert sent == [100, 200, 400]
    assert summary["capacity_rps"] == 200 and summary["capacity_bound"] == "exact"
    assert [s["limit"] for s in summary["steps"]] == [None, None, "target"]
    assert capacity_measurement(result).labels == {}
    assert verdict(result)["status"] == "passed"


def test_a_busy_machine_stores_the_knee_as_a_lower_bound(monkeypatch):
    # The issue's case: step 3 broke on latency while the machine held our sends up.
    steps = {
        100: engine_output(100, latency_ms=5, service_ms=5),
        200: engine_output(200, latency_ms=9, service_ms=6, row=BUSY),
        400: engine_output(400, latency_ms=700, service_ms=9, row=BUSY),
    }
    result, sent, ctx = stress(monkeypatch, steps)
    summary = result.summary
    assert sent == [100, 200, 400]
    # Step 2 was sustained although the machine was busy: it counts, with the caveat.
    assert summary["steps"][1]["sustainable"] and summary["steps"][1]["limited_by"] == "machine"
    assert summary["capacity_rps"] == 200
    assert summary["capacity_bound"] == "lower" and summary["capacity_limited_by"] == "machine"
    assert "machine limited" in summary["capacity_bound_reason"]
    measured = capacity_measurement(result)
    assert measured.value == 200 and measured.labels == {"bound": "lower", "limited_by": "machine"}
    # 200 req/s is below the 1000 req/s objective, but the knee may be higher: incomplete.
    throughput = verdict(result)
    assert throughput["status"] == "unknown" and "lower bound" in throughput["detail"]
    assert any("machine-limited" in message for _, message in ctx.logs)


def test_a_lower_bound_that_meets_the_objective_passes(monkeypatch):
    steps = {
        100: engine_output(100, latency_ms=5, service_ms=5),
        200: engine_output(200, latency_ms=6, service_ms=6),
        400: engine_output(400, latency_ms=700, service_ms=9, row=SATURATED),
    }
    result, _, _ = stress(monkeypatch, steps, throughput=150)
    assert result.summary["capacity_bound"] == "lower"
    assert result.summary["capacity_limited_by"] == "generator"
    assert verdict(result)["status"] == "passed"


def test_a_saturated_generator_on_the_first_step_still_bounds_the_knee(monkeypatch):
    # It could send only 60 % of the offered rate; what it sent was served within the SLOs.
    steps = {100: engine_output(100, latency_ms=4, service_ms=4, share=0.6, row=SATURATED)}
    result, sent, _ = stress(monkeypatch, steps)
    summary = result.summary
    assert sent == [100]
    assert summary["capacity_rps"] == pytest.approx(60.0)
    assert summary["capacity_bound"] == "lower"
    assert capacity_measurement(result).labels["bound"] == "lower"


def test_no_knee_when_our_side_limited_a_first_step_that_broke_on_latency(monkeypatch):
    steps = {100: engine_output(100, latency_ms=800, service_ms=5, row=BUSY)}
    result, _, _ = stress(monkeypatch, steps)
    summary = result.summary
    assert summary["capacity_rps"] is None
    assert not [m for m in result.measurements if m.name == "http.capacity"]
    # Not "no step was sustainable" (a fail): we could not tell — incomplete, with why.
    assert verdict(result)["status"] == "unknown"
    assert "machine limited" in verdict(result)["detail"]
    assert verdict(result, "p99_ms")["status"] == "unknown"
    assert result.verdict != "fail"


def test_a_target_that_breaks_on_the_first_step_still_fails(monkeypatch):
    # The machine is busy too, but the target's own service time breaks the objective.
    steps = {100: engine_output(100, latency_ms=900, service_ms=850, row=BUSY)}
    result, _, _ = stress(monkeypatch, steps)
    assert result.summary["capacity_rps"] is None
    assert result.summary["steps"][0]["limit"] == "target"
    assert verdict(result)["status"] == "failed"


def test_the_job_page_shows_the_bound_and_whose_limit_it_was(monkeypatch):
    from types import SimpleNamespace

    from django.template.loader import render_to_string

    steps = {
        100: engine_output(100, latency_ms=5, service_ms=5),
        200: engine_output(200, latency_ms=9, service_ms=6, row=BUSY),
        400: engine_output(400, latency_ms=700, service_ms=9, row=BUSY),
    }
    result, _, _ = stress(monkeypatch, steps)
    job = SimpleNamespace(pk=1, kind="benchmark", verdict="incomplete", run_id=1)
    html = render_to_string(
        "optimizations/jobs/results/benchmark.html", {"job": job, "summary": result.summary}
    )
    assert "Stress: capacity ≥ 200 req/s" in html
    assert 'id="capacity-bound"' in html and "machine limited the test" in html
    assert "machine-limited</span>" in html


def test_a_machine_limited_load_test_does_not_judge_throughput_and_says_why():
    summary = {
        "model": "open",
        "offered_rate": 2000.0,
        "rps": 1500.0,
        "error_rate": 0.0,
        "latency_ms": {"avg": 5.0, "p99": 20.0},
        "requests": {"completed": 100, "answered": 100},
        "validity": report.validity(
            OPEN, rows(cpu_percent=1.0, send_lag_p99_ms=30.0, sched_wait_ms=50.0)
        ),
    }
    throughput = next(
        v for v in judge_run(summary, thresholds_for({}), mode="load") if v.slo == "throughput_rps"
    )
    assert throughput.status == "unknown" and throughput.detail.startswith("machine-limited")
