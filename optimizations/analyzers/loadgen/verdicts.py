"""SLO verdicts of a benchmark run, stored together with the thresholds they used.

Thresholds come from the target (``TargetSpec.thresholds``) over the one SLO
table (``optimizations.analyzers.slo``: percent thresholds in %, converted here
to the ratios the run measures). Each SLO yields a check — passed, failed, or unknown with the
reason — so a later run that passes can mark the breach finding fixed and one
that could not judge fixes nothing. A generator-limited run never judges the
target's throughput or capacity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from optimizations.analyzers import slo
from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    FAIL,
    INCOMPLETE,
    PASS,
    CheckOutcome,
    FindingData,
)


def thresholds_for(given: dict[str, Any] | None) -> dict[str, float]:
    """The target's thresholds over the defaults of the one SLO table (its keys and units)."""
    return slo.merged(given)


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _judge(
    slo: str,
    metric: str,
    comparison: str,
    threshold: float,
    value: float | None,
    unit: str,
    detail: str = "",
) -> SloVerdict:
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
    summary: dict[str, Any],
    thresholds: dict[str, float],
    *,
    mode: str,
    capacity: float | None = None,
    capacity_reached: bool = True,
    capacity_bound: str | None = None,
    memory: dict[str, Any] | None = None,
    baseline_memory: float | None = None,
) -> list[SloVerdict]:
    """The SLO verdicts that apply to a run of ``mode`` (load, closed, stress, endurance).

    ``summary`` is a run summary (see report.summarize). For stress,
    ``capacity`` is the knee in req/s (``capacity_reached`` False when the
    steps stopped at the target's rate limit before anything broke), and
    ``capacity_bound`` says why it is only a lower bound (empty: it is the
    knee): a bound that already meets the objective passes, one below it is
    unknown with that reason — as is no knee at all when our side (generator
    or machine) stopped the steps. For
    endurance, ``memory`` is the memory report and ``baseline_memory`` the
    pinned baseline's mean PSS in bytes, when there is one.
    """
    verdicts = []
    limited = summary.get("validity", {}).get("generator_limited", False)
    latency = summary.get("latency_ms", {})
    completed = summary.get("requests", {}).get("completed", 0)
    ours = mode == "stress" and bool(capacity_bound) and capacity is None
    if completed and ours:
        # No step sustained, and the one shown was held up on our side: its
        # latency from the intended send time includes our own send lag.
        verdicts.append(
            _judge(
                "api_avg_ms",
                "http.latency.avg",
                "<=",
                thresholds["api_avg_ms"],
                None,
                "ms",
                f"not the target's alone: {capacity_bound}",
            )
        )
    elif completed:
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
            slo.ratio(thresholds, "error_rate_pct"),
            summary.get("error_rate") if answered else None,
            "ratio",
            "" if answered else "no request finished",
        )
    )
    throughput = thresholds["throughput_rps"]
    if mode == "stress":
        value, detail = capacity, ""
        if capacity_bound is not None:
            limited = False  # the caller said exactly what bounds the knee
        if capacity_bound and capacity is None:
            value = None
            detail = f"no capacity measured: {capacity_bound}"
        elif capacity_bound and capacity is not None and capacity < throughput:
            value = None
            detail = (
                f"capacity ≥ {capacity:g} req/s, a lower bound below the objective: "
                f"{capacity_bound}"
            )
        elif capacity_bound:
            detail = f"capacity ≥ {capacity:g} req/s, a lower bound that meets the objective"
        elif limited and (capacity is None or capacity < throughput):
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
        p99, p99_detail = latency.get("p99") if completed else None, ""
        if ours:
            p99, p99_detail = None, f"not the target's alone: {capacity_bound}"
        verdicts.append(
            _judge("p99_ms", "http.latency.p99", "<=", thresholds["p99_ms"], p99, "ms", p99_detail)
        )
    else:
        offered = summary.get("offered_rate") or 0.0
        achieved = summary.get("rps", 0.0)
        value, detail = achieved, ""
        if limited:
            if summary.get("validity", {}).get("limited_by") == "machine":
                value = None
                detail = "machine-limited: the generator waited for a CPU, not the target's rate"
            else:
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
        status = {"flat": CHECK_PASSED, "growing": CHECK_FAILED}.get(str(trend), CHECK_UNKNOWN)
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
            goal = slo.ratio(thresholds, "memory_reduction_pct")
            allowed = baseline_memory * (1 - goal)
            verdicts.append(
                _judge(
                    "memory_reduction",
                    "memory.pss.mean",
                    "<=",
                    allowed,
                    mean_memory,
                    "bytes",
                    f"{mean_memory / baseline_memory - 1:+.1%} against the baseline's "
                    f"{baseline_memory:.0f} bytes (goal -{goal:.0%})",
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


# The SLOs a run of each mode must have judged for a verdict; one of them unknown
# makes it incomplete (with its reason). A load test at a rate below the
# throughput objective does not judge throughput (a stress test measures it),
# and the memory reduction needs a pinned baseline: neither is required.
REQUIRED = {
    "stress": ("api_avg_ms", "error_rate", "throughput_rps", "p99_ms"),
    "endurance": ("api_avg_ms", "error_rate", "memory_trend"),
}
REQUIRED_STEADY = ("api_avg_ms", "error_rate")


def judge(verdicts: list[SloVerdict], mode: str = "load") -> tuple[str, str]:
    """(verdict, reason): fail when any SLO failed; incomplete when an SLO the mode
    needs could not be judged (its reason); pass otherwise."""
    statuses = {verdict.status for verdict in verdicts}
    if CHECK_FAILED in statuses:
        broken = [v.slo for v in verdicts if v.status == CHECK_FAILED]
        return FAIL, "SLO not met: " + ", ".join(broken)
    required = REQUIRED.get(mode, REQUIRED_STEADY)
    by_slo = {v.slo: v for v in verdicts}
    missing = [
        f"{slo_key}: {by_slo[slo_key].detail or 'not measured'}"
        if slo_key in by_slo
        else f"{slo_key}: not measured"
        for slo_key in required
        if slo_key not in by_slo or by_slo[slo_key].status != CHECK_PASSED
    ]
    if missing:
        return INCOMPLETE, "; ".join(missing)
    return PASS, ""


def overall(verdicts: list[SloVerdict], mode: str = "load") -> str:
    return judge(verdicts, mode)[0]


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
