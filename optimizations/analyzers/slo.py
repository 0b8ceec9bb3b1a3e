"""The one table of SLOs and analysis thresholds, with units; Django-free.

Every analyzer, page and gate that judges an SLO reads its value from here,
merged with the target's own overrides (``TargetService.slo``, handed to the
analyzers as ``TargetSpec.thresholds``). There is no second copy of a default
anywhere else.

Units, one convention for the whole table:

- durations in milliseconds (``_ms``),
- shares in percent, 0–100 (``_pct``): 1 means 1 %, never 100 %; an analyzer
  that compares with a ratio it measured (0–1) converts with :func:`ratio`,
- rates in requests per second (``_rps``),
- counts as plain numbers (``calls``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MS, PCT, RPS, CALLS = "ms", "%", "req/s", "calls"


@dataclass(frozen=True)
class Threshold:
    key: str
    label: str
    unit: str  # one of MS, PCT, RPS, CALLS
    default: float
    # "max": the measured value must stay at or below it; "min": at or above.
    direction: str
    help: str = ""
    is_slo: bool = True
    # Which analyzers judge it (for the target form's help and the tests).
    judged_by: tuple[str, ...] = ()

    @property
    def upper_bound(self) -> float | None:
        """The largest value that makes sense (a share cannot pass 100 %)."""
        return 100.0 if self.unit == PCT else None


THRESHOLDS = (
    Threshold("api_avg_ms", "API average latency", MS, 100, "max", judged_by=("benchmark",)),
    Threshold("db_avg_ms", "DB query average", MS, 50, "max", judged_by=("db_scan",)),
    Threshold("throughput_rps", "Throughput", RPS, 1000, "min", judged_by=("benchmark",)),
    Threshold(
        "memory_reduction_pct",
        "Memory against the baseline",
        PCT,
        50,
        "min",
        "How much less memory (in %) than the pinned baseline run: 50 means half of it",
        judged_by=("benchmark",),
    ),
    Threshold("pool_use_pct", "Connection-pool use", PCT, 80, "max", judged_by=("db_scan",)),
    Threshold("slow_query_rate_pct", "Slow-query rate", PCT, 5, "max", judged_by=("db_scan",)),
    Threshold("error_rate_pct", "Error rate", PCT, 1, "max", judged_by=("benchmark",)),
    Threshold("availability_pct", "Availability", PCT, 99.9, "min", judged_by=("availability",)),
    Threshold(
        "p99_ms",
        "p99 latency under stress",
        MS,
        500,
        "max",
        "Kaizen's own SLO",
        judged_by=("benchmark",),
    ),
    Threshold(
        "slow_query_ms",
        "Slow query",
        MS,
        1000,
        "max",
        "One execution at or above this is a slow query",
        is_slo=False,
        judged_by=("db_scan",),
    ),
    Threshold(
        "slow_family_mean_ms",
        "Slow statement family: mean",
        MS,
        50,
        "max",
        "A family whose mean is at or above this…",
        is_slo=False,
        judged_by=("db_scan",),
    ),
    Threshold(
        "slow_family_min_calls",
        "Slow statement family: calls",
        CALLS,
        50,
        "min",
        "…over at least this many calls",
        is_slo=False,
        judged_by=("db_scan",),
    ),
)
BY_KEY = {t.key: t for t in THRESHOLDS}


def defaults() -> dict[str, float]:
    return {t.key: float(t.default) for t in THRESHOLDS}


def merged(overrides: Mapping[str, Any] | None) -> dict[str, float]:
    """The target's thresholds: its own values over the defaults (unknown keys ignored)."""
    values = defaults()
    for key, value in (overrides or {}).items():
        if key in BY_KEY and value is not None and value != "":
            values[key] = float(value)
    return values


def ratio(values: dict[str, float], key: str) -> float:
    """A percent threshold as a ratio 0–1, for comparing with a measured ratio."""
    if BY_KEY[key].unit != PCT:
        raise ValueError(f"{key} is in {BY_KEY[key].unit}, not in percent")
    return values[key] / 100.0


def meets(key: str, value: float, threshold: float) -> bool:
    if BY_KEY[key].direction == "max":
        return value <= threshold
    return value >= threshold
