"""The log-linear histogram: bucket precision, percentiles, merging, serialisation."""

import random

import pytest

from optimizations.analyzers.loadgen.hdr import (
    MAX_VALUE_US,
    Histogram,
    bucket_bounds,
    bucket_index,
)

PRECISION = 2 ** -(10 - 1)  # the default sub_bits=10: 0.2 % of the value


def test_every_value_falls_inside_its_bucket_and_buckets_are_narrow():
    values = [*range(5000), *random.Random(1).sample(range(5000, MAX_VALUE_US), 5000)]
    for value in values:
        low, high = bucket_bounds(bucket_index(value))
        assert low <= value <= high
        assert high - low <= max(0, value * PRECISION)


def test_bucket_indexes_are_contiguous_and_increasing():
    previous_high = -1
    for index in range(20_000):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        previous_high = high


def test_percentiles_of_a_known_distribution_within_bucket_precision():
    histogram = Histogram()
    for value in range(1, 100_001):  # 1 µs .. 100 ms, uniform
        histogram.record(value)
    med, p90, p99, p999 = histogram.percentiles((0.5, 0.9, 0.99, 0.999))
    for got, true in ((med, 50_000), (p90, 90_000), (p99, 99_000), (p999, 99_900)):
        # Never below the true value, never above it by more than a bucket.
        assert true <= got <= true * (1 + PRECISION)
    assert histogram.value_at_quantile(0.5) == med
    assert histogram.min == 1 and histogram.max == 100_000
    assert histogram.mean() == pytest.approx(50_000.5)
    assert histogram.total == 100_000


def test_extremes_are_exact_and_percentiles_never_exceed_the_maximum():
    histogram = Histogram()
    for value in (1_000_003, 1_000_001, 1_000_002):
        histogram.record(value)
    assert histogram.value_at_quantile(0) == 1_000_001
    assert histogram.value_at_quantile(1) == 1_000_003
    assert histogram.value_at_quantile(0.99) == 1_000_003


def test_merging_equals_recording_everything_in_one():
    rng = random.Random(2)
    values = [int(rng.lognormvariate(8, 1.5)) for _ in range(20_000)]
    whole, left, right = Histogram(), Histogram(), Histogram()
    for position, value in enumerate(values):
        whole.record(value)
        (left if position % 3 else right).record(value)
    merged = Histogram.merged([left, right])
    assert merged.counts == whole.counts
    assert (merged.total, merged.sum, merged.min, merged.max) == (
        whole.total,
        whole.sum,
        whole.min,
        whole.max,
    )
    quantiles = (0.5, 0.9, 0.95, 0.99, 0.999)
    assert merged.percentiles(quantiles) == whole.percentiles(quantiles)


def test_serialisation_round_trips_and_checks_its_total():
    histogram = Histogram()
    for value in (5, 500, 50_000, 5_000_000):
        histogram.record(value, count=3)
    data = histogram.to_dict()
    again = Histogram.from_dict(data)
    assert again.counts == histogram.counts and again.total == 12 and again.max == 5_000_000
    data["total"] = 11
    with pytest.raises(ValueError, match="add up"):
        Histogram.from_dict(data)


def test_histograms_of_different_precision_do_not_merge():
    with pytest.raises(ValueError, match="precision"):
        Histogram(10).merge(Histogram(8))


def test_empty_histogram_answers_zero():
    histogram = Histogram()
    assert histogram.percentiles((0.5, 0.99)) == [0, 0]
    assert histogram.mean() == 0.0
    assert histogram.stdev() == 0.0
