"""From the engines' merged result to what the portal stores.

The summary uses k6's names (avg, min, med, p90, p95, p99, max; req/s as
``rps``; ``error_rate``), keeps the serialised HDR histograms, a
per-operation breakdown, and the validity guard: a run whose generator CPU
stayed above 80 % or whose send lag stayed high was limited by our side — the
generator itself, or the busy machine it ran on (``validity`` tells which) —
and its rate is never presented as the target's limit. Latency is counted from
the intended send time (``latency_ms``); service time, from the actual write,
sits beside it (``service_ms``).
"""

from __future__ import annotations

from typing import Any

from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CheckOutcome,
    FindingData,
    MeasurementData,
)
from optimizations.analyzers.loadgen.engine import ERROR_CLASSES
from optimizations.analyzers.loadgen.hdr import DEFAULT_SUB_BITS, Histogram
from optimizations.analyzers.loadgen.runner import histogram_of, merge_results
from optimizations.analyzers.stats import median

GENERATOR_CPU_LIMIT = 80.0  # percent of one core, per engine process
SEND_LAG_LIMIT_MS = 10.0
# "Stayed" high: in at least this share of the run's whole seconds, and in at
# least STAYED_SECONDS of them, so one hiccup of a busy machine does not count.
STAYED_SHARE = 0.5
STAYED_SECONDS = 2
# Signs, in one second, that the machine held the generator up (machine.py):
# it waited this long for a CPU, more processes were runnable than there are
# cores while nearly every core was busy, or the hypervisor stole this much.
SCHED_WAIT_LIMIT_MS = 10.0
STEAL_LIMIT_PCT = 10.0
MACHINE_BUSY_LIMIT_PCT = 90.0
# A bottleneck operation: p95 at least this many times the median operation's, and above...
BOTTLENECK_FACTOR = 2.0
BOTTLENECK_MIN_MS = 10.0
MIN_OPERATION_REQUESTS = 20
LATENCY_KEYS = ("avg", "min", "med", "p90", "p95", "p99", "p999", "max")


def latency_stats(histogram: Histogram) -> dict[str, float]:
    """k6's latency figures (and p99.9) in milliseconds."""
    if not histogram.total:
        return dict.fromkeys(LATENCY_KEYS, 0.0)
    med, p90, p95, p99, p999 = histogram.percentiles((0.5, 0.9, 0.95, 0.99, 0.999))
    values = {
        "avg": histogram.mean(),
        "min": histogram.min,
        "med": med,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "p999": p999,
        "max": histogram.max,
    }
    return {key: round(value / 1000.0, 3) for key, value in values.items()}


def machine_signs(row: dict[str, Any]) -> list[str]:
    """Why the machine, not the generator, held this second's sends up (empty: it did not)."""
    signs = []
    wait = row.get("sched_wait_ms")
    if wait is not None and wait >= SCHED_WAIT_LIMIT_MS:
        signs.append(f"the generator waited {wait:.0f} ms for a CPU")
    running, cores = row.get("run_queue"), row.get("cores")
    busy = row.get("machine_busy_pct")
    if running is not None and cores and running > cores and (busy or 0) >= MACHINE_BUSY_LIMIT_PCT:
        signs.append(f"{running} processes runnable on {cores} cores, {busy:.0f} % busy")
    steal = row.get("steal_pct")
    if steal is not None and steal >= STEAL_LIMIT_PCT:
        signs.append(f"{steal:.0f} % of the CPU stolen by the hypervisor")
    return signs


def validity(result: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The validity guard: did our side — the generator or the machine it ran on — set the limit?

    Each whole second is judged on its own row: the generator's CPU above
    GENERATOR_CPU_LIMIT is a saturated **generator**; a send lag above
    SEND_LAG_LIMIT_MS with the generator's CPU below that is a busy **machine**
    when the second shows a sign of it (``machine_signs``), else the
    generator's own event loop (a **generator** limit too). Seconds whose sends
    left on time are not ours to explain: when the target cannot keep up, its
    latency and errors rise while the send lag stays low. The run is limited
    when such seconds stayed (STAYED_*); ``limited_by`` names the side that
    held most of them. ``generator_limited`` is True for either side: the
    rates measured are then not the target's limit (a stress knee is a lower
    bound).
    """
    whole = [row for row in rows if row.get("interval", 1.0) >= 0.9]
    cpu = [float(value) for value in result.get("cpu_samples", [])]
    open_model = result.get("model") == "open"
    rows_have_cpu = any("cpu_percent" in row for row in whole)
    generator = own_loop = machine = 0
    for row in whole:
        cpu_high = rows_have_cpu and row.get("cpu_percent", 0.0) > GENERATOR_CPU_LIMIT
        lag_high = open_model and row.get("send_lag_p99_ms", 0.0) > SEND_LAG_LIMIT_MS
        if cpu_high:
            generator += 1
        elif lag_high:
            if machine_signs(row):
                machine += 1
            else:
                own_loop += 1
    stayed = max(STAYED_SECONDS, STAYED_SHARE * len(whole))
    cpu_avg = round(sum(cpu) / len(cpu), 1) if cpu else 0.0
    reasons = []
    if not rows_have_cpu:
        # Older results without per-second CPU: the engine's own samples.
        cpu_high = sum(1 for value in cpu if value > GENERATOR_CPU_LIMIT)
        if cpu and cpu_high >= max(STAYED_SECONDS, STAYED_SHARE * len(cpu)):
            reasons.append(
                f"generator CPU above {GENERATOR_CPU_LIMIT:g} % in {cpu_high} of {len(cpu)} seconds"
            )
            generator = max(generator, cpu_high)
    elif generator:
        reasons.append(
            f"generator CPU above {GENERATOR_CPU_LIMIT:g} % in {generator} of {len(whole)} seconds"
        )
    if own_loop:
        reasons.append(
            f"send lag p99 above {SEND_LAG_LIMIT_MS:g} ms in {own_loop} of {len(whole)} seconds "
            f"with the generator at {cpu_avg:g} % CPU on average and no sign of a busy machine "
            "(the generator's own event loop held the sends up)"
        )
    if machine:
        examples = _machine_examples(whole)
        reasons.append(
            f"send lag p99 above {SEND_LAG_LIMIT_MS:g} ms in {machine} of {len(whole)} seconds "
            f"while the machine was busy ({examples}); the generator, at {cpu_avg:g} % CPU on "
            "average, was waiting for a CPU, not saturated"
        )
    ours = generator + own_loop + machine
    limited = bool(reasons) and (ours >= stayed or (not rows_have_cpu and generator > 0))
    limited_by = None
    if limited:
        limited_by = "machine" if machine > generator + own_loop else "generator"
    lag = histogram_of(result.get("lag", {}), result.get("sub_bits", DEFAULT_SUB_BITS))
    lag_p99 = lag.value_at_quantile(0.99) / 1000.0 if lag.total else 0.0
    return {
        "generator_limited": limited,
        "limited_by": limited_by,
        "reasons": reasons if limited else [],
        "seconds": {
            "whole": len(whole),
            "generator_cpu": generator,
            "generator_loop": own_loop,
            "machine_busy": machine,
        },
        "machine": _machine_summary(whole),
        "cpu_avg": cpu_avg,
        "cpu_max": round(max(cpu), 1) if cpu else 0.0,
        "send_lag_p99_ms": round(lag_p99, 3),
        "send_lag_max_ms": round(lag.max / 1000.0, 3),
    }


def _machine_examples(rows: list[dict[str, Any]]) -> str:
    """The machine's worst second in words, e.g. "the generator waited 40 ms for a CPU"."""
    worst = max(rows, key=lambda row: (len(machine_signs(row)), row.get("sched_wait_ms") or 0))
    return "; ".join(machine_signs(worst))


def _machine_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine over the run: cores, average busy %, worst steal, run queue and CPU wait."""
    out: dict[str, Any] = {}
    for key, how, name in (
        ("cores", max, "cores"),
        ("machine_busy_pct", "avg", "busy_pct_avg"),
        ("steal_pct", max, "steal_pct_max"),
        ("run_queue", max, "run_queue_max"),
        ("sched_wait_ms", "avg", "cpu_wait_ms_per_s_avg"),
    ):
        values = [float(row[key]) for row in rows if row.get(key) is not None]
        if values:
            value = sum(values) / len(values) if isinstance(how, str) else how(values)
            out[name] = round(value, 1)
    return out


def summarize(
    result: dict[str, Any],
    rows: list[dict[str, Any]],
    *,
    mode: str,
    offered_rate: float | None = None,
    arrival: str = "constant",
    capped: bool = False,
) -> dict[str, Any]:
    """The run summary the portal stores (JSON-serialisable)."""
    sub_bits = result.get("sub_bits", DEFAULT_SUB_BITS)
    totals = result.get("totals", {})
    elapsed = max(float(result.get("elapsed", 0.0)), 1e-9)
    latency, service = Histogram(sub_bits), Histogram(sub_bits)
    operations = []
    status_codes: dict[str, int] = {}
    for op in result.get("operations", []):
        op_latency = histogram_of(op["latency"], sub_bits)
        op_service = histogram_of(op["service"], sub_bits)
        latency.merge(op_latency)
        service.merge(op_service)
        errors = sum(op["errors"].values())
        completed = op["ok"] + op["errors"].get("non_2xx", 0)
        for code, count in op.get("status", {}).items():
            status_codes[code] = status_codes.get(code, 0) + count
        operations.append(
            {
                "name": op["name"],
                "requests": op["ok"] + errors,
                "completed": completed,
                "rps": round(completed / elapsed, 2),
                "ok": op["ok"],
                "errors": dict(op["errors"]),
                "error_rate": round(errors / (op["ok"] + errors), 6) if op["ok"] + errors else 0.0,
                "status": dict(op.get("status", {})),
                "latency_ms": latency_stats(op_latency),
                "service_ms": latency_stats(op_service),
            }
        )
    errors = sum(totals.get(name, 0) for name in ERROR_CLASSES)
    completed = totals.get("ok", 0) + totals.get("non_2xx", 0)
    answered = totals.get("ok", 0) + errors
    lag = histogram_of(result.get("lag", {}), sub_bits)
    return {
        "mode": mode,
        "model": result.get("model"),
        "arrival": arrival if result.get("model") == "open" else None,
        "engine_version": result.get("engine_version"),
        "loop": result.get("loop"),
        "workers": result.get("workers", 1),
        "offered_rate": offered_rate,
        "duration_s": round(elapsed, 3),
        "cancelled": bool(result.get("cancelled")),
        "requests": {
            "offered": totals.get("offered", 0),
            "sent": totals.get("sent", 0),
            "completed": completed,
            "answered": answered,
            "ok": totals.get("ok", 0),
            "errors": errors,
            **{name: totals.get(name, 0) for name in ERROR_CLASSES},
            "late": totals.get("late", 0),
            "dropped": totals.get("dropped", 0),
            "cancelled_in_flight": result.get("cancelled_in_flight", 0),
        },
        "rps": round(completed / elapsed, 2),
        "error_rate": round(errors / answered, 6) if answered else 0.0,
        "latency_ms": latency_stats(latency),
        "service_ms": latency_stats(service),
        "send_lag_ms": latency_stats(lag),
        "status_codes": status_codes,
        "operations": operations,
        "validity": validity(result, rows),
        "capped_by_target_limit": capped,
        "connections_opened": result.get("connections_opened", 0),
        "error_samples": result.get("error_samples", []),
        "hdr": {"latency": latency.to_dict(), "service": service.to_dict()},
        **_journeys(result, sub_bits, elapsed),
        "engine": result,
    }


def _journeys(result: dict[str, Any], sub_bits: int, elapsed: float) -> dict[str, Any]:
    """A scripted scenario's journeys: how many started, completed, failed (and why),
    were cut by the end of the test, and how long a completed one took (from its
    first step's intended time to its last answer, think times included)."""
    if not result.get("journeys"):
        return {}
    journeys = []
    for journey in result["journeys"]:
        ended = journey["completed"] + journey["failed"]
        journeys.append(
            {
                **{key: journey[key] for key in ("name", "weight", "steps", "started")},
                **{key: journey[key] for key in ("completed", "failed", "unfinished")},
                "failure_rate": round(journey["failed"] / ended, 6) if ended else 0.0,
                "failures": journey["failures"],
                "per_second": round(journey["completed"] / elapsed, 3),
                "duration_ms": latency_stats(histogram_of(journey["duration"], sub_bits)),
            }
        )
    return {"journey_rate": result.get("journey_rate"), "journeys": journeys}


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One summary from the summaries of the parts of a split benchmark.

    Each part (a worker on another machine, say) ran the same scenario for the
    same time at its share of the rate; their engine results merge bucket by
    bucket, so the percentiles are those of all requests, not an average of
    percentiles.
    """
    if not summaries:
        raise ValueError("nothing to merge")
    first = summaries[0]
    merged = merge_results([summary["engine"] for summary in summaries])
    merged["workers"] = sum(summary["engine"].get("workers", 1) for summary in summaries)
    offered = [s["offered_rate"] for s in summaries if s.get("offered_rate") is not None]
    return summarize(
        merged,
        [],
        mode=first["mode"],
        offered_rate=sum(offered) if len(offered) == len(summaries) else None,
        arrival=first.get("arrival") or "constant",
        capped=any(s.get("capped_by_target_limit") for s in summaries),
    )


def measurements(
    summary: dict[str, Any], labels: dict[str, str] | None = None
) -> list[MeasurementData]:
    """Every number of the summary the portal keeps as a Measurement."""
    labels = dict(labels or {})
    out = []
    for key in ("avg", "med", "p90", "p95", "p99", "max"):
        out.append(MeasurementData(f"http.latency.{key}", summary["latency_ms"][key], "ms", labels))
    for key in ("avg", "med", "p90", "p95", "p99", "max"):
        out.append(
            MeasurementData(f"http.service_time.{key}", summary["service_ms"][key], "ms", labels)
        )
    out.append(MeasurementData("http.throughput", summary["rps"], "req/s", labels))
    if summary.get("offered_rate") is not None:
        out.append(MeasurementData("http.offered_rate", summary["offered_rate"], "req/s", labels))
    requests = summary["requests"]
    out.append(MeasurementData("http.reqs", requests["completed"], "count", labels))
    out.append(MeasurementData("http.error_rate", summary["error_rate"], "ratio", labels))
    for name in ERROR_CLASSES:
        out.append(
            MeasurementData("http.errors", requests[name], "count", {**labels, "class": name})
        )
    out.append(MeasurementData("http.late", requests["late"], "count", labels))
    out.append(MeasurementData("http.dropped", requests["dropped"], "count", labels))
    out.append(MeasurementData("generator.cpu.avg", summary["validity"]["cpu_avg"], "%", labels))
    for op in summary["operations"]:
        op_labels = {**labels, "operation": op["name"]}
        for key in ("avg", "med", "p95", "p99"):
            out.append(
                MeasurementData(f"http.latency.{key}", op["latency_ms"][key], "ms", op_labels)
            )
        out.append(MeasurementData("http.throughput", op["rps"], "req/s", op_labels))
        out.append(MeasurementData("http.error_rate", op["error_rate"], "ratio", op_labels))
    return out


def operation_findings(
    summary: dict[str, Any], thresholds: dict[str, float], target_name: str
) -> tuple[list[CheckOutcome], list[FindingData]]:
    """Bottleneck, slow and failing operations, from the per-operation breakdown."""
    findings = []
    measured = [op for op in summary["operations"] if op["completed"] >= MIN_OPERATION_REQUESTS]
    if len(measured) >= 2:
        typical = median([op["latency_ms"]["p95"] for op in measured])
        slowest = max(measured, key=lambda op: op["latency_ms"]["p95"])
        p95 = slowest["latency_ms"]["p95"]
        if p95 >= BOTTLENECK_MIN_MS and p95 >= BOTTLENECK_FACTOR * typical:
            findings.append(
                FindingData(
                    rule_id="benchmark.bottleneck",
                    title=f"Bottleneck: {slowest['name']} (p95 {p95:g} ms, "
                    f"{p95 / typical if typical else float('inf'):.1f}x the typical operation)",
                    severity="medium",
                    category="performance",
                    location=slowest["name"],
                    key=f"{target_name}:{slowest['name']}",
                    evidence={"operation": slowest, "typical_p95_ms": typical},
                    fix_hint="Profile this operation first: its queries (DB scan: slow "
                    "families, missing indexes) and its code findings (N+1, blocking calls).",
                )
            )
    for op in measured:
        if op["latency_ms"]["avg"] > thresholds["api_avg_ms"]:
            findings.append(
                FindingData(
                    rule_id="benchmark.slow_operation",
                    title=f"{op['name']} averages {op['latency_ms']['avg']:g} ms "
                    f"(objective {thresholds['api_avg_ms']:g} ms)",
                    severity="medium",
                    category="performance",
                    location=op["name"],
                    key=f"{target_name}:{op['name']}",
                    evidence={"latency_ms": op["latency_ms"], "rps": op["rps"]},
                    fix_hint="Set a per-operation goal (e.g. p95 of this operation) as a phase "
                    "task and follow it run after run.",
                )
            )
    for op in summary["operations"]:
        if op["requests"] and op["error_rate"] > thresholds["error_rate_pct"] / 100:
            findings.append(
                FindingData(
                    rule_id="benchmark.operation_errors",
                    title=f"{op['name']} fails {op['error_rate']:.1%} of requests",
                    severity="high",
                    category="reliability",
                    location=op["name"],
                    key=f"{target_name}:{op['name']}",
                    evidence={"errors": op["errors"], "status": op["status"]},
                    fix_hint="Status codes and error classes are in the evidence; the target's "
                    "own logs hold the stack traces.",
                )
            )
    for journey in summary.get("journeys", []):
        if journey["failure_rate"] > thresholds["error_rate_pct"] / 100:
            reasons = "; ".join(f"{why} ×{n}" for why, n in list(journey["failures"].items())[:3])
            findings.append(
                FindingData(
                    rule_id="benchmark.journey_failures",
                    title=f"Journey {journey['name']} fails {journey['failure_rate']:.1%} of the "
                    f"time ({reasons})",
                    severity="high",
                    category="reliability",
                    location=journey["name"],
                    key=f"{target_name}:journey:{journey['name']}",
                    evidence={
                        k: journey[k] for k in ("started", "completed", "failed", "failures")
                    },
                    fix_hint="A journey stops at its first step answered with another status "
                    "than it expects, or whose value to extract is missing; the reasons name "
                    "the step. Check that step alone, then the steps it depends on.",
                )
            )
    checks = []
    rules = ["benchmark.bottleneck", "benchmark.slow_operation", "benchmark.operation_errors"]
    if "journeys" in summary:
        rules.append("benchmark.journey_failures")
    for rule in rules:
        hits = [f.location for f in findings if f.rule_id == rule]
        status = CHECK_FAILED if hits else CHECK_PASSED
        checks.append(CheckOutcome(rule, status, ", ".join(hits)))
    return checks, findings
