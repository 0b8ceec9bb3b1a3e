"""The comparison rule's statistics on samples with known answers.

Reference p-values: the textbook example is the one in SciPy's documentation of
``mannwhitneyu`` (Conover's); the others were computed with SciPy 1.17
(``mannwhitneyu(method="exact")`` without ties, ``permutation_test`` of U with
ties — the exact conditional distribution, which is what we compute — and
``method="asymptotic"`` for the normal approximation).
"""

import math

import pytest

from optimizations.analyzers import stats


def test_median_mean_stdev_and_cv():
    assert stats.median([3, 1, 2]) == 2
    assert stats.median([4, 1, 3, 2]) == 2.5
    assert stats.mean([1, 2, 3, 4]) == 2.5
    assert stats.stdev([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx(2.138089935)
    assert stats.coefficient_of_variation([10, 10, 10]) == 0.0
    assert stats.coefficient_of_variation([9, 10, 11]) == pytest.approx(0.1)


def test_ranks_share_the_mean_rank_when_tied():
    assert stats.rank([10, 20, 20, 30, 20]) == [1.0, 3.0, 3.0, 5.0, 3.0]


def test_mann_whitney_textbook_example():
    males = [19, 22, 16, 29, 24]
    females = [20, 11, 17, 12]
    result = stats.mann_whitney_u(males, females)
    assert (result.u1, result.u2) == (17.0, 3.0)
    assert result.p_value == pytest.approx(0.11111111111111, rel=1e-9)
    assert result.method == "exact"


@pytest.mark.parametrize(
    ("x", "y", "u1", "p"),
    [
        # Complete separation, 5 against 5: 2 / C(10, 5) = 2 / 252.
        ([19.1, 20.3, 21.0, 18.7, 19.9], [15.2, 16.1, 14.9, 15.8, 16.4], 25.0, 2 / 252),
        # 3 against 3 can never go below p = 0.1: why the rule asks for 5 runs.
        ([1, 2, 3], [4, 5, 6], 0.0, 0.1),
        (
            [1.83, 0.50, 1.62, 2.48, 1.68, 1.88],
            [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06],
            31.0,
            0.16783216783216784,
        ),
        # Ties: the exact distribution conditional on them.
        ([3, 4, 4, 5, 6], [4, 5, 5, 6, 7], 6.5, 0.2857142857142857),
        ([1, 1, 2, 2, 2, 3, 3, 4], [2, 3, 3, 4, 4, 4], 10.0, 0.10256410256410256),
    ],
)
def test_mann_whitney_exact_matches_scipy(x, y, u1, p):
    result = stats.mann_whitney_u(x, y)
    assert result.method == "exact"
    assert result.u1 == u1
    assert result.p_value == pytest.approx(p, rel=1e-9)
    # The test is symmetric in its samples.
    assert stats.mann_whitney_u(y, x).p_value == pytest.approx(p, rel=1e-9)


def test_mann_whitney_normal_approximation_for_large_samples(monkeypatch):
    x, y = [3, 4, 4, 5, 6], [4, 5, 5, 6, 7]
    monkeypatch.setattr(stats, "EXACT_LIMIT", 0)
    result = stats.mann_whitney_u(x, y)
    assert result.method == "normal"
    # SciPy: mannwhitneyu(x, y, method="asymptotic", use_continuity=True)
    assert result.p_value == pytest.approx(0.23736860507756152, rel=1e-9)
    complete = stats.mann_whitney_u([19.1, 20.3, 21.0, 18.7, 19.9], [15.2, 16.1, 14.9, 15.8, 16.4])
    assert complete.p_value == pytest.approx(0.012185780355344813, rel=1e-9)


def test_all_equal_samples_give_p_one():
    assert stats.mann_whitney_u([5, 5, 5], [5, 5, 5]).p_value == 1.0


def test_bootstrap_interval_is_seeded_and_brackets_the_median():
    values = [10.2, 9.8, 10.5, 10.1, 9.9, 10.4, 10.0]
    first = stats.bootstrap_ci(values, seed=4)
    assert first == stats.bootstrap_ci(values, seed=4)
    low, high = first
    assert min(values) <= low <= stats.median(values) <= high <= max(values)
    assert stats.bootstrap_ci([3.0] * 6) == (3.0, 3.0)


def test_bootstrap_ratio_interval_of_a_clean_halving():
    low, high = stats.bootstrap_ratio_ci(
        [20.0, 20.2, 19.8, 20.1, 19.9], [10.0, 10.1, 9.9, 10.05, 9.95]
    )
    assert 1.9 < low <= 2.0 <= high < 2.1


def interleaved_runs():
    return ["a", "b"] * 5


def test_a_clear_speedup_is_called_improved_with_its_interval():
    baseline = [102.0, 98.0, 101.0, 99.5, 100.5]  # ms
    candidate = [49.0, 51.0, 50.5, 49.5, 50.0]
    result = stats.compare(baseline, candidate, metric="p95", order=interleaved_runs())
    assert result.verdict == "improved"
    assert result.p_value == pytest.approx(2 / 252)
    assert result.median_baseline == 100.5 and result.median_candidate == 50.0
    assert result.speedup == pytest.approx(2.01)
    low, high = result.speedup_ci
    assert low <= result.speedup <= high
    assert result.change == pytest.approx(-0.5024875621890548)
    assert result.change_ci[0] <= result.change <= result.change_ci[1]
    assert result.threshold == 0.10
    assert result.interleaved is True and result.flags == []


def test_throughput_is_better_when_higher():
    result = stats.compare(
        [1000, 1010, 990, 1005, 995], [1500, 1490, 1510, 1505, 1495], lower_is_better=False
    )
    assert result.verdict == "improved" and result.speedup == pytest.approx(1.5)
    assert "interleaving not known" in result.reasons
    regressed = stats.compare([50, 51, 49, 50.5, 49.5], [80, 81, 79, 80.5, 79.5])
    assert regressed.verdict == "regressed"


def test_three_runs_a_side_are_never_enough():
    result = stats.compare([100, 101, 99], [50, 51, 49])
    assert result.verdict == "inconclusive"
    assert result.p_value == pytest.approx(0.1)
    assert "at least 5 runs" in result.reasons[0]


def test_a_significant_change_within_ten_percent_is_no_change():
    baseline = [100.0, 100.2, 99.8, 100.1, 99.9]
    candidate = [95.0, 95.2, 94.8, 95.1, 94.9]  # -5 %: significant, yet below 10 %
    result = stats.compare(baseline, candidate)
    assert result.significant and not result.beyond_noise
    assert result.verdict == "no change"


def test_noisy_runs_raise_the_threshold_to_twice_their_cv():
    baseline = [100, 130, 70, 115, 85, 100]
    candidate = [75, 100, 50, 85, 65, 75]
    result = stats.compare(baseline, candidate)
    cv = max(stats.coefficient_of_variation(baseline), stats.coefficient_of_variation(candidate))
    assert result.threshold == pytest.approx(2 * cv) and result.threshold > 0.3
    assert result.verdict == "no change"


def test_runs_that_were_not_interleaved_are_inconclusive():
    result = stats.compare([100, 101, 99, 100, 102], [50, 51, 49, 50, 52], order="aaaaabbbbb")
    assert result.interleaved is False and result.verdict == "inconclusive"
    assert stats.interleaved("aabbaabbab") and not stats.interleaved("aaaabbbb")
    assert stats.interleaved_order(3) == ["a", "b", "a", "b", "a", "b"]
    assert stats.order_from_times([1, 3, 5], [2, 4, 6]) == ["a", "b", "a", "b", "a", "b"]


def test_comparability_guard_flags_unintended_differences():
    base = [{"target_version": "1.0", "data_size": 1000, "config": {"mode": "slow"}}] * 5
    cand = [{"target_version": "1.0", "data_size": 1000, "config": {"mode": "fast"}}] * 4
    cand = [*cand, {"target_version": "1.0", "data_size": 2000, "config": {"mode": "fast"}}]
    flags = stats.comparability(base, cand, intended=("config",))
    assert {"key": "data_size", "where": "candidate", "values": [1000, 2000]} in flags
    assert {"key": "data_size", "where": "between", "values": [1000, 2000]} in flags
    assert not any(flag["key"] == "config" for flag in flags)
    flagged = stats.compare(
        [100, 101, 99, 100, 102],
        [50, 51, 49, 50, 52],
        baseline_meta=base,
        candidate_meta=cand,
        intended=("config",),
    )
    assert flagged.verdict == "inconclusive"
    assert any("data_size differs" in reason for reason in flagged.reasons)
    same = stats.comparability(base, base)
    assert same == []


def test_comparison_is_deterministic_and_serialisable():
    args = ([10, 11, 12, 10.5, 11.5], [5, 5.5, 6, 5.2, 5.8])
    first, second = stats.compare(*args, seed=3), stats.compare(*args, seed=3)
    assert first.to_dict() == second.to_dict()
    assert isinstance(first.to_dict()["speedup_ci"], tuple)


def test_theil_sen_recovers_a_line_despite_an_outlier():
    xs = list(range(10))
    ys = [2 * x + 1 for x in xs]
    ys[4] = 100  # one garbage-collection spike
    slope, intercept = stats.theil_sen(xs, ys)
    assert slope == pytest.approx(2.0) and intercept == pytest.approx(1.0)


def test_mann_kendall_sees_a_rising_series_and_not_a_flat_one():
    s, p = stats.mann_kendall([1, 2, 3, 4, 5, 6, 7, 8])
    assert s == 28 and p < 0.01
    s, p = stats.mann_kendall([5, 3, 5, 3, 5, 3, 5, 3])
    assert p > 0.5
    assert stats.mann_kendall([1, 1, 1, 1]) == (0, 1.0)
    assert math.isclose(stats.mann_kendall([1, 2])[1], 1.0)
