"""A log-linear latency histogram in the manner of HdrHistogram, mergeable across workers.

Values are whole microseconds. Below ``2 ** sub_bits`` every value has its own
bucket; above, each power-of-two range is split into ``2 ** (sub_bits - 1)``
equal buckets, so any value is known to within ``2 ** -(sub_bits - 1)`` of
itself (sub_bits=10: 0.2 %). Two histograms with the same ``sub_bits`` merge by
adding their counts, which is what lets a benchmark split across processes or
machines report one set of percentiles. Serialised as a sparse list of
``[index, count]`` pairs so a run's histogram fits in a JSON summary.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any

DEFAULT_SUB_BITS = 10
# One hour in microseconds: anything slower is a hung request, recorded at the cap.
MAX_VALUE_US = 3_600_000_000


def bucket_index(value: int, sub_bits: int = DEFAULT_SUB_BITS) -> int:
    """The bucket of a non-negative integer value."""
    if value < (1 << sub_bits):
        return value
    shift = value.bit_length() - sub_bits
    return (shift << (sub_bits - 1)) + (value >> shift)


def bucket_bounds(index: int, sub_bits: int = DEFAULT_SUB_BITS) -> tuple[int, int]:
    """The lowest and highest value that fall into bucket ``index``."""
    sub_count = 1 << sub_bits
    if index < sub_count:
        return index, index
    half_bits = sub_bits - 1
    # Inverse of bucket_index: index = shift * half + mantissa, mantissa in [half, 2 * half).
    shift = (index >> half_bits) - 1
    mantissa = index - (shift << half_bits)
    low = mantissa << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of integer values (microseconds) in log-linear buckets."""

    __slots__ = ("counts", "max", "min", "sub_bits", "sum", "total")

    def __init__(self, sub_bits: int = DEFAULT_SUB_BITS):
        if not 2 <= sub_bits <= 20:
            raise ValueError("sub_bits must lie between 2 and 20")
        self.sub_bits = sub_bits
        self.counts: dict[int, int] = {}
        self.total = 0
        self.sum = 0
        self.min = 0
        self.max = 0

    # -- recording -----------------------------------------------------------------

    def record(self, value: int, count: int = 1) -> None:
        """Add ``count`` observations of ``value`` microseconds (negative counts as 0)."""
        value = min(max(int(value), 0), MAX_VALUE_US)
        index = bucket_index(value, self.sub_bits)
        self.counts[index] = self.counts.get(index, 0) + count
        if self.total == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += count
        self.sum += value * count

    def record_seconds(self, seconds: float) -> None:
        self.record(round(seconds * 1e6))

    def add_counts(self, counts: dict[int, int], total_sum: int, low: int, high: int) -> None:
        """Fold in raw bucket counts gathered elsewhere (the engine's hot path keeps these)."""
        if not counts:
            return
        mine = self.counts
        added = 0
        for index, count in counts.items():
            mine[index] = mine.get(index, 0) + count
            added += count
        if self.total == 0 or low < self.min:
            self.min = low
        self.max = max(self.max, high)
        self.total += added
        self.sum += total_sum

    def merge(self, other: Histogram) -> Histogram:
        """Add ``other``'s observations to this histogram; returns self."""
        if other.sub_bits != self.sub_bits:
            raise ValueError(
                f"cannot merge histograms of different precision "
                f"(sub_bits {self.sub_bits} and {other.sub_bits})"
            )
        self.add_counts(other.counts, other.sum, other.min, other.max)
        return self

    # -- reading -------------------------------------------------------------------

    def __len__(self) -> int:
        return self.total

    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def value_at_quantile(self, quantile: float) -> int:
        """The value below or at which ``quantile`` (0..1) of the observations lie.

        Like HdrHistogram, it answers the highest value of the bucket that holds
        the rank, clamped to the recorded extremes, so the answer is never below
        the true value by more than the bucket width.
        """
        if self.total == 0:
            return 0
        if quantile <= 0:
            return self.min
        if quantile >= 1:
            return self.max
        rank = max(1, math.ceil(quantile * self.total))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                high = bucket_bounds(index, self.sub_bits)[1]
                return max(self.min, min(high, self.max))
        return self.max

    def percentiles(self, quantiles: Iterable[float]) -> list[int]:
        """Several quantiles in one pass over the buckets."""
        wanted = sorted((q, position) for position, q in enumerate(quantiles))
        answers = [0] * len(wanted)
        if self.total == 0:
            return answers
        pending = iter(wanted)
        current = next(pending, None)
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            high = max(self.min, min(bucket_bounds(index, self.sub_bits)[1], self.max))
            while current is not None and seen >= max(1, math.ceil(current[0] * self.total)):
                answers[current[1]] = self.min if current[0] <= 0 else high
                current = next(pending, None)
            if current is None:
                break
        while current is not None:
            answers[current[1]] = self.max
            current = next(pending, None)
        return answers

    def stdev(self) -> float:
        """Standard deviation from bucket midpoints (good to the bucket precision)."""
        if self.total < 2:
            return 0.0
        mean = self.mean()
        square_sum = 0.0
        for index, count in self.counts.items():
            low, high = bucket_bounds(index, self.sub_bits)
            square_sum += count * ((low + high) / 2 - mean) ** 2
        return math.sqrt(square_sum / self.total)

    def count_above(self, value: int) -> int:
        """Observations whose bucket lies wholly above ``value``."""
        return sum(
            count
            for index, count in self.counts.items()
            if bucket_bounds(index, self.sub_bits)[0] > value
        )

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """(low, high, count) for each non-empty bucket, ascending."""
        for index in sorted(self.counts):
            low, high = bucket_bounds(index, self.sub_bits)
            yield low, high, self.counts[index]

    # -- serialisation -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "unit": "us",
            "sub_bits": self.sub_bits,
            "total": self.total,
            "sum": self.sum,
            "min": self.min,
            "max": self.max,
            "counts": [[index, self.counts[index]] for index in sorted(self.counts)],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        if data.get("unit", "us") != "us":
            raise ValueError(f"unsupported histogram unit {data.get('unit')!r}")
        histogram = cls(int(data.get("sub_bits", DEFAULT_SUB_BITS)))
        histogram.counts = {int(index): int(count) for index, count in data.get("counts", [])}
        histogram.total = sum(histogram.counts.values())
        if histogram.total != int(data.get("total", histogram.total)):
            raise ValueError("histogram counts do not add up to its total")
        histogram.sum = int(data.get("sum", 0))
        histogram.min = int(data.get("min", 0))
        histogram.max = int(data.get("max", 0))
        return histogram

    @classmethod
    def merged(cls, histograms: Iterable[Histogram], sub_bits: int | None = None) -> Histogram:
        """A new histogram holding all of ``histograms``."""
        histograms = list(histograms)
        result = cls(sub_bits or (histograms[0].sub_bits if histograms else DEFAULT_SUB_BITS))
        for histogram in histograms:
            result.merge(histogram)
        return result
