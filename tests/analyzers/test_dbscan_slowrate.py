"""The slow-query rate from aggregates: the bounds always hold (no database needed)."""

import random
import statistics

from optimizations.analyzers.dbscan.slowrate import exact_rate, family_slow_count


def count(values, threshold, max_in_window=False):
    return family_slow_count(
        len(values),
        sum(values),
        statistics.fmean(values),
        statistics.pstdev(values),
        min(values),
        max(values),
        threshold,
        max_in_window,
    )


def test_mean_classification_misses_what_the_bounds_catch():
    values = [1.0] * 97 + [2000.0] * 3
    result = count(values, 1000, max_in_window=True)
    assert 1 <= result.low <= 3 <= result.high <= 6
    assert result.low <= result.estimate <= result.high


def test_bounds_hold_for_random_families():
    rng = random.Random(42)
    for _ in range(300):
        n = rng.randint(1, 200)
        values = [rng.lognormvariate(rng.uniform(0, 6), rng.uniform(0.1, 2)) for _ in range(n)]
        threshold = rng.choice([50.0, 200.0, 1000.0])
        truth = sum(v >= threshold for v in values)
        result = count(values, threshold, max_in_window=True)
        assert result.low <= truth <= result.high


def test_all_fast_or_all_slow_is_exact():
    assert count([5.0, 6.0], 1000).high == 0
    assert count([1500.0, 2000.0], 1000).low == 2
    assert exact_rate([5, 1500, 5, 5], 1000) == 0.25
    assert exact_rate([], 1000) is None
