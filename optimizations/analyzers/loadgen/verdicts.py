"""SLO verdicts of a benchmark run, stored together with the thresholds they used.

Thresholds come from the target (``TargetSpec.thresholds``) over DESIGN.md's
defaults. Each SLO yields a check — passed, failed, or unknown with the
reason — so a later run that passes can mark the breach finding fixed and one
that could not judge fixes nothing. A generator-limited run never judges the
target's throughput or capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    CheckOutcome,
    FindingData,
)

# DESIGN.md's defaults; keys of TargetSpec.thresholds.
DEFAULT_THRESHOLDS = {
    "api_avg_ms": 100.0,  # API average latency <=
    "throughput_rps": 1000.0,  # throughput >=
    "error_rate": 0.01,  # error rate <= (a fraction: 0.01 is 1 %)
    "p99_ms": 500.0,  # p99 latency <= (Kaizen's own, for stress tests)
    "memory_reduction": 0.5,  # memory at most (1 - this) x the baseline's
}
# Other spellings the portal or an engineer might use for the same thresholds.
ALIASES = {
    "avg_latency_ms": "api_avg_ms",
    "api_avg_latency_ms": "api_avg_ms",
    "throughput": "throughput_rps",
    "min_throughput_rps": "throughput_rps",
    "max_error_rate": "error_rate",
    "p99_latency_ms": "p99_ms",
    "stress_p99_ms": "p99_ms",
    "memory_reduction_pct": "memory_reduction",
}


def thresholds_for(given: dict | None) -> dict[str, float]:
    """DESIGN.md's defaults overlaid with the target's own thresholds."""
    merged = dict(DEFAULT_THRESHOLDS)
    for key, value in (given or {}).items():
        if value is None:
            continue
        name = ALIASES.get(key, key)
        value = float(value)
        if name == "memory_reduction" and value > 1:
            value /= 100  # given in percent
        if name == "error_rate" and key.endswith("_pct"):
            value /= 100
        merged[name] = value
    return merged


@dataclass
class SloVerdict:
    """One SLO judged on one run."""

    slo: str  # api_avg_ms, throughput_rps, error_rate, p99_ms, memory_reduction, memory_trend
    metric: str  # the measurement it reads, e.g. http.latency.avg
    comparison: str  # "<=" or ">="
    threshold: float
    value: float | None
    unit: str
    status: str  # passed, failed, unknown
    detail: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _judge(slo, metric, comparison, threshold, value, unit, detail="") -> SloVerdict:
    if value is None:
        return SloVerdict(slo, metric, comparison, threshold, None, unit, CHECK_UNKNOWN, detail)
    ok = value <= threshold if comparison == "<=" else value >= threshold
    return SloVerdict(
        slo,
        metric,
        comparison,
        threshold,
        round(value, 6),
        unit,
        CHECK_PASSED if ok else CHECK_FAILED,
        detail or f"{value:.4g} {unit} {'meets' if ok else 'breaks'} {comparison} {threshold:g}",
    )


def judge_run(
    summary: dict,
    thresholds: dict[str, float],
    *,
    mode: str,
    capacity: float | None = None,
    capacity_reached: bool = True,
    memory: dict | None = None,
    baseline_memory: float | None = None,
) -> list[SloVerdict]:
    """The SLO verdicts that apply to a run of ``mode`` (load, closed, stress, endurance).

    ``summary`` is a run summary (see report.summarize). For stress,
    ``capacity`` is the knee in req/s (``capacity_reached`` False when the
    steps stopped at the target's rate limit before anything broke). For
    endurance, ``memory`` is the memory report and ``baseline_memory`` the
    pinned baseline's mean PSS in bytes, when there is one.
    """
    verdicts = []
    limited = summary.get("validity", {}).get("generator_limited", False)
    latency = summary.get("latency_ms", {})
    completed = summary.get("requests", {}).get("completed", 0)
    if completed:
        verdicts.append(
            _judge(
                "api_avg_ms",
                "http.latency.avg",
                "<=",
                thresholds["api_avg_ms"],
                latency.get("avg"),
                "ms",
            )
        )
    else:
        verdicts.append(
            _judge(
                "api_avg_ms",
                "http.latency.avg",
                "<=",
                thresholds["api_avg_ms"],
                None,
                "ms",
                "no request was answered",
            )
        )
    answered = summary.get("requests", {}).get("answered", 0)
    verdicts.append(
        _judge(
            "error_rate",
            "http.error_rate",
            "<=",
            thresholds["error_rate"],
            summary.get("error_rate") if answered else None,
            "ratio",
            "" if answered else "no request finished",
        )
    )
    throughput = thresholds["throughput_rps"]
    if mode == "stress":
        value, detail = capacity, ""
        if limited and (capacity is None or capacity < throughput):
            value = None
            detail = "generator-limited before the target broke: its capacity may be higher"
        elif capacity is None:
            detail = "no step was sustainable"
            value = 0.0
        elif not capacity_reached and capacity < throughput:
            value = None
            detail = (
                f"sustained {capacity:g} req/s up to the target's rate limit without a breach; "
                "raise the limit to measure the capacity"
            )
        verdicts.append(
            _judge("throughput_rps", "http.capacity", ">=", throughput, value, "req/s", detail)
        )
        verdicts.append(
            _judge(
                "p99_ms",
                "http.latency.p99",
                "<=",
                thresholds["p99_ms"],
                latency.get("p99") if completed else None,
                "ms",
            )
        )
    else:
        offered = summary.get("offered_rate") or 0.0
        achieved = summary.get("rps", 0.0)
        value, detail = achieved, ""
        if limited:
            value, detail = None, "generator-limited: the rate reached is the generator's"
        elif summary.get("model") == "open" and offered < throughput * 0.999:
            value = None
            detail = (
                f"offered {offered:g} req/s, below the {throughput:g} req/s objective: "
                "a stress test measures the capacity"
            )
        elif summary.get("capped_by_target_limit") and achieved < throughput:
            value = None
            detail = "held to the target's own rate limit, below the objective"
        verdicts.append(
            _judge("throughput_rps", "http.throughput", ">=", throughput, value, "req/s", detail)
        )
    if mode == "endurance" and memory is not None:
        trend = memory.get("trend")
        status = {"flat": CHECK_PASSED, "growing": CHECK_FAILED}.get(trend, CHECK_UNKNOWN)
        verdicts.append(
            SloVerdict(
                "memory_trend",
                "memory.growth",
                "flat",
                memory.get("growth_threshold", 0.05),
                memory.get("growth"),
                "ratio",
                status,
                memory.get("detail", ""),
            )
        )
        mean_memory = memory.get("mean_bytes")
        if baseline_memory and mean_memory:
            allowed = baseline_memory * (1 - thresholds["memory_reduction"])
            verdicts.append(
                _judge(
                    "memory_reduction",
                    "memory.pss.mean",
                    "<=",
                    allowed,
                    mean_memory,
                    "bytes",
                    f"{mean_memory / baseline_memory - 1:+.1%} against the baseline's "
                    f"{baseline_memory:.0f} bytes (goal -{thresholds['memory_reduction']:.0%})",
                )
            )
        else:
            verdicts.append(
                SloVerdict(
                    "memory_reduction",
                    "memory.pss.mean",
                    "<=",
                    0.0,
                    mean_memory,
                    "bytes",
                    CHECK_UNKNOWN,
                    "no baseline memory to compare with (pin a baseline endurance run)"
                    if mean_memory
                    else "the target's memory could not be read",
                )
            )
    return verdicts


def overall(verdicts: list[SloVerdict]) -> str | None:
    """fail when any SLO failed; pass when at least one passed and none failed."""
    statuses = {verdict.status for verdict in verdicts}
    if CHECK_FAILED in statuses:
        return "fail"
    if CHECK_PASSED in statuses:
        return "pass"
    return None


def checks_and_findings(
    verdicts: list[SloVerdict], *, target_name: str, mode: str
) -> tuple[list[CheckOutcome], list[FindingData]]:
    """A check per SLO, and a finding per breach (same fingerprint run after run)."""
    checks, findings = [], []
    for verdict in verdicts:
        rule = f"benchmark.slo.{verdict.slo}"
        checks.append(CheckOutcome(rule, verdict.status, verdict.detail))
        if verdict.status != CHECK_FAILED:
            continue
        memory = verdict.slo.startswith("memory")
        findings.append(
            FindingData(
                rule_id=rule,
                title=f"SLO breached: {_TITLES[verdict.slo]} ({mode} test)",
                severity="high",
                category="reliability" if memory else "performance",
                location=target_name,
                key=f"{target_name}:{verdict.slo}",
                evidence=verdict.to_dict(),
                fix_hint=_HINTS[verdict.slo],
            )
        )
    return checks, findings


_TITLES = {
    "api_avg_ms": "average latency above its objective",
    "throughput_rps": "throughput below its objective",
    "error_rate": "error rate above its objective",
    "p99_ms": "p99 latency above its objective",
    "memory_trend": "memory keeps growing under steady load",
    "memory_reduction": "memory not reduced enough against the baseline",
}
_HINTS = {
    "api_avg_ms": "Look at the per-operation breakdown for the slowest operations, then at "
    "their queries (DB scan) and code findings (N+1, blocking calls).",
    "throughput_rps": "Find the knee with a stress test; check pool sizes, worker count and "
    "blocking calls in async routes.",
    "error_rate": "The error classes and status codes in the summary say where the errors "
    "come from: refused/reset point at the server, 5xx at the application.",
    "p99_ms": "Tail latency: look for pool checkout waits, lock waits and garbage collection "
    "pauses at the rate of the knee.",
    "memory_trend": "Memory that grows at a steady rate is a leak or an unbounded cache: bound "
    "caches (size and TTL) and stream large answers.",
    "memory_reduction": "Compare the memory breakdown of the baseline and this run.",
}
