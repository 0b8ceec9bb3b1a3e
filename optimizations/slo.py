"""The SLOs of DESIGN.md and the thresholds the analyses judge by, editable per target."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    key: str
    label: str
    unit: str
    default: float
    # "max": the measured value must stay at or below it; "min": at or above.
    direction: str
    help: str = ""
    is_slo: bool = True


THRESHOLDS = (
    Threshold("api_avg_ms", "API average latency", "ms", 100, "max"),
    Threshold("db_avg_ms", "DB query average", "ms", 50, "max"),
    Threshold("throughput_rps", "Throughput", "req/s", 1000, "min"),
    Threshold(
        "memory_reduction_pct",
        "Memory against the baseline",
        "% less",
        50,
        "min",
        "How much less memory than the pinned baseline run",
    ),
    Threshold("pool_use_pct", "Connection-pool use", "%", 80, "max"),
    Threshold("slow_query_rate_pct", "Slow-query rate", "%", 5, "max"),
    Threshold("error_rate_pct", "Error rate", "%", 1, "max"),
    Threshold("availability_pct", "Availability", "%", 99.9, "min"),
    Threshold("p99_ms", "p99 latency under stress", "ms", 500, "max", "Kaizen's own SLO"),
    Threshold(
        "slow_query_ms",
        "Slow query",
        "ms",
        1000,
        "max",
        "One execution at or above this is a slow query",
        is_slo=False,
    ),
    Threshold(
        "slow_family_mean_ms",
        "Slow statement family: mean",
        "ms",
        50,
        "max",
        "A family whose mean is at or above this…",
        is_slo=False,
    ),
    Threshold(
        "slow_family_min_calls",
        "Slow statement family: calls",
        "calls",
        50,
        "min",
        "…over at least this many calls",
        is_slo=False,
    ),
)
BY_KEY = {t.key: t for t in THRESHOLDS}


def defaults() -> dict[str, float]:
    return {t.key: t.default for t in THRESHOLDS}


def merged(overrides: dict | None) -> dict[str, float]:
    """The target's thresholds: its own values over the defaults."""
    values = defaults()
    for key, value in (overrides or {}).items():
        if key in BY_KEY and value is not None:
            values[key] = float(value)
    return values


def meets(key: str, value: float, threshold: float) -> bool:
    if BY_KEY[key].direction == "max":
        return value <= threshold
    return value >= threshold
