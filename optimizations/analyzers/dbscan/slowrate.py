"""The slow-query rate from aggregates: guaranteed bounds and an estimate.

pg_stat_statements keeps per family only n, Σx, Σx² (via mean and stddev),
min and max — not the executions. So how many executions were ≥ T (one second
by default) cannot be read; what *can* be proven, per family:

* none when max < T; all when min ≥ T;
* at most ⌊(Σx - n·min)/(T - min)⌋ (the rest sit at the minimum),
  and at most n·σ²/(σ² + (T - μ)²) when μ < T (Cantelli, exact for any
  distribution, the empirical one included);
* at least ⌈(Σx - n·T)/(max - T)⌉ (the rest just under T), at least
  n·(1 - σ²/(σ² + (μ - T)²)) when μ > T, and at least one when the window
  itself saw its maximum ≥ T.

The estimate fits a log-normal with the family's mean and variance,
truncated to [min, max], clamped into the bounds. Classifying whole families
by their mean - what pghero and pganalyze do - reports 0 % for a family of 97
calls of 1 ms and 3 of 2 s (mean 61 ms); these bounds say at most 6 %, and at
least 1 % when the 2 s maximum fell in the window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .snapshots import Family

EPS = 1e-9


@dataclass
class SlowCount:
    low: int
    high: int
    estimate: float


@dataclass
class SlowRate:
    """Executions ≥ threshold over the window, as a share of all executions (0..1)."""

    calls: int
    low: float
    high: float
    estimate: float
    exact: float | None = None
    exact_source: str = ""

    @property
    def best(self) -> float:
        return self.exact if self.exact is not None else self.estimate


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def family_slow_count(
    n: int,
    total: float,
    mean: float,
    stddev: float,
    min_ms: float,
    max_ms: float,
    threshold: float,
    max_in_window: bool = False,
) -> SlowCount:
    """Bounds and estimate of how many of ``n`` executions took ≥ ``threshold`` ms."""
    if n <= 0:
        return SlowCount(0, 0, 0.0)
    if max_ms < threshold:
        return SlowCount(0, 0, 0.0)
    if min_ms >= threshold:
        return SlowCount(n, n, float(n))
    var = stddev * stddev
    high = n
    if threshold > min_ms:
        high = min(high, math.floor((total - n * min_ms) / (threshold - min_ms) + EPS))
    if mean < threshold:
        high = min(high, math.floor(n * var / (var + (threshold - mean) ** 2) + EPS))
    low = 0
    if max_in_window:
        low = 1
    if max_ms > threshold:
        low = max(low, math.ceil((total - n * threshold) / (max_ms - threshold) - EPS))
    if mean > threshold:
        low = max(low, math.ceil(n * (1 - var / (var + (mean - threshold) ** 2)) - EPS))
    high = max(0, min(high, n))
    low = max(0, min(low, high))
    if low == high:
        return SlowCount(low, high, float(low))
    estimate = n * _lognormal_tail(mean, stddev, min_ms, max_ms, threshold)
    return SlowCount(low, high, min(max(estimate, float(low)), float(high)))


def _lognormal_tail(mean: float, stddev: float, lo: float, hi: float, threshold: float) -> float:
    if mean <= 0:
        return 0.0
    if stddev <= 0:
        return 1.0 if mean >= threshold else 0.0
    s2 = math.log(1.0 + (stddev / mean) ** 2)
    s = math.sqrt(s2)
    mu = math.log(mean) - s2 / 2.0

    def cdf(x: float) -> float:
        return 0.0 if x <= 0 else _phi((math.log(x) - mu) / s)

    a, b, t = cdf(max(lo, 0.0)), cdf(hi), cdf(threshold)
    if b - a <= EPS:
        return 1.0 - t
    return min(max((b - t) / (b - a), 0.0), 1.0)


def window_rate(
    families: Iterable[Family], threshold: float
) -> tuple[SlowRate, dict[int, SlowCount]]:
    """Combine the families of a window (``snapshots.Family``) into one rate."""
    calls, low, high, est = 0, 0, 0, 0.0
    per_family: dict[int, SlowCount] = {}
    for fam in families:
        count = family_slow_count(
            fam.calls,
            fam.total_ms,
            fam.mean_ms,
            fam.stddev_ms,
            fam.min_ms,
            fam.max_ms,
            threshold,
            fam.max_in_window,
        )
        per_family[fam.queryid] = count
        calls += fam.calls
        low += count.low
        high += count.high
        est += count.estimate
    if calls == 0:
        return SlowRate(0, 0.0, 0.0, 0.0), per_family
    return SlowRate(calls, low / calls, high / calls, est / calls), per_family


def exact_rate(durations_ms: Iterable[float], threshold: float) -> float | None:
    """The exact share of executions ≥ threshold from per-execution samples."""
    values = list(durations_ms)
    if not values:
        return None
    return sum(1 for v in values if v >= threshold) / len(values)
