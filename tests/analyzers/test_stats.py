"""The comparison rule's statistics on samples with known answers.

Reference p-values: the textbook example is the one in SciPy's documentation of
``mannwhitneyu`` (Conover's); the others were computed with SciPy 1.17
(``mannwhitneyu(method="exact")`` without ties, ``permutation_test`` of U with
ties — the exact conditional distribution, which is what we compute — and
``method="asymptotic"`` for the normal approximation).
"""

import json
import math
import random

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


def interleaved_runs():
    return ["a", "b"] * 5


# The shapes of issue 13: the slow demo against its fixed twin, 5 interleaved runs a side.
SLOW_MEDIAN_MS = [120.0, 397.0, 900.0, 2500.0, 250.0]  # a noisy "before" (CV > 100 %)
FAST_MEDIAN_MS = [8.8, 9.1, 8.5, 12.0, 8.0]


def test_u_distribution_is_exact_and_gives_the_5_v_5_interval_ranks():
    counts = stats.u_distribution(5, 5)
    assert sum(counts) == math.comb(10, 5) == 252
    assert counts[:4] == (1, 1, 2, 3) and counts == tuple(reversed(counts))
    # P(U <= 2) = 4/252 <= 2.5 % < P(U <= 3) = 7/252: the 3rd and 23rd of 25 differences.
    assert stats.interval_rank(5, 5) == (3, pytest.approx(1 - 8 / 252))
    assert stats.interval_rank(5, 5)[1] == pytest.approx(0.968, abs=5e-4)
    # 3 v 3: even U = 0 has probability 1/20 > 2.5 %, so no interval at all.
    assert stats.interval_rank(3, 3) == (0, 0.0)
    # Beyond the exact limit the normal approximation still covers about 95 %.
    k, confidence = stats.interval_rank(40, 40)
    assert 0.95 <= confidence < 0.96 and 560 < k < 620


def test_the_5_v_5_interval_is_the_3rd_and_23rd_pairwise_difference():
    before = [10.0, 11.0, 12.0, 13.0, 14.0]
    after = [20.0, 23.0, 26.0, 29.0, 32.0]
    differences = sorted(math.log(b) - math.log(a) for b in after for a in before)
    result = stats.compare(before, after)
    assert result.shift_ci == (differences[2], differences[22])
    assert result.shift == pytest.approx(differences[12])


def test_a_noisy_45_fold_speed_up_is_improved():
    result = stats.compare(
        SLOW_MEDIAN_MS, FAST_MEDIAN_MS, metric="latency_med", order=interleaved_runs()
    )
    assert result.verdict == "improved"
    assert result.p_value == pytest.approx(2 / 252)  # every run after faster than every before
    assert result.speedup == pytest.approx(45, rel=0.05)
    low, high = result.speedup_ci
    assert 1.10 < low < result.speedup < high
    assert result.evidence == "verified"
    assert "×0.022" in result.reasons[0] and "96.8%" in result.reasons[0]


def test_its_mirror_is_regressed():
    result = stats.compare(FAST_MEDIAN_MS, SLOW_MEDIAN_MS)
    assert result.verdict == "regressed"
    assert result.ratio == pytest.approx(45, rel=0.05)
    assert result.evidence == "measured"  # sequential (order unknown), 5 a side, comparable


def test_error_rate_from_38_75_percent_to_none_is_improved_in_points():
    result = stats.compare([35.0, 38.75, 42.0, 40.0, 37.5], [0.0] * 5, scale=stats.POINTS)
    assert result.verdict == "improved"
    assert result.shift == pytest.approx(-38.75)
    assert result.margin == pytest.approx(3.875)  # 10 % of the baseline's 38.75 pp
    assert result.shift_ci == (-42.0, -35.0)
    assert result.ratio is None and result.speedup is None


def test_rate_margin_is_at_least_a_tenth_of_a_point():
    assert stats.rate_margin(0.0) == 0.1 and stats.rate_margin(5.0) == 0.5
    # 0.02 % → 0.05 % errors: significant, yet within 0.1 pp: no change.
    result = stats.compare([0.02] * 5, [0.05, 0.05, 0.06, 0.04, 0.05], scale=stats.POINTS)
    assert result.significant and result.verdict == "no change"
    worse = stats.compare([0.0] * 5, [2.0, 2.5, 3.0, 2.2, 2.8], scale=stats.POINTS)
    assert worse.verdict == "regressed"


def test_two_draws_of_one_noisy_distribution_are_neither_improved_nor_regressed():
    rng = random.Random(13)
    before = [rng.lognormvariate(5.0, 0.8) for _ in range(5)]
    after = [rng.lognormvariate(5.0, 0.8) for _ in range(5)]
    result = stats.compare(before, after)
    assert result.verdict == "inconclusive", result.reasons
    assert result.reasons[0].startswith("interval ×") and "add runs" in result.reasons[0]


def test_false_claims_between_draws_of_one_distribution_stay_below_the_intervals_error():
    rng = random.Random(21)
    claims = 0
    for _ in range(400):
        before = [rng.lognormvariate(5.0, 0.8) for _ in range(5)]
        after = [rng.lognormvariate(5.0, 0.8) for _ in range(5)]
        claims += stats.compare(before, after).verdict in ("improved", "regressed")
    # At most 1 - 96.8 % of such pairs may be called a change; with sampling slack, 5 %.
    assert claims <= 0.05 * 400


def test_a_tight_equal_pair_is_no_change_by_equivalence():
    before = [100.0, 101.0, 99.0, 100.5, 99.5, 100.2]
    after = [100.3, 99.7, 100.8, 99.2, 100.1, 100.6]
    result = stats.compare(before, after)
    assert not result.significant and result.verdict == "no change"
    assert "within ×0.909–×1.10" in result.reasons[0]


def test_a_significant_change_within_ten_percent_is_not_a_claim():
    before = [100.0, 100.2, 99.8, 100.1, 99.9]
    after = [95.0, 95.2, 94.8, 95.1, 94.9]  # -5 %: significant, inside the margin
    result = stats.compare(before, after)
    assert result.significant and result.verdict == "no change"


def test_throughput_is_better_when_higher_and_monotonic():
    before = [1000.0, 1010.0, 990.0, 1005.0, 995.0]
    result = stats.compare(before, [1500, 1490, 1510, 1505, 1495], lower_is_better=False)
    assert result.verdict == "improved" and result.speedup == pytest.approx(1.5, rel=1e-3)
    assert stats.compare(before, [500, 490, 510, 505, 495], lower_is_better=False).verdict == (
        "regressed"
    )
    # The larger the gain, the larger the estimate (monotonic in the candidate's level).
    speedups = [
        stats.compare(before, [v * f for v in before], lower_is_better=False).speedup
        for f in (1.2, 1.5, 2.0, 4.0)
    ]
    assert speedups == sorted(speedups)


def test_verdict_p_and_interval_never_disagree():
    rng = random.Random(5)
    for _ in range(200):
        n, m = rng.randint(5, 9), rng.randint(5, 9)
        shift = rng.choice([0.0, 0.1, 0.3, 1.0])
        before = [rng.lognormvariate(3.0, 0.4) for _ in range(n)]
        after = [rng.lognormvariate(3.0 + shift, 0.4) for _ in range(m)]
        result = stats.compare(before, after)
        assert result.significant == (result.p_value <= 1 - result.confidence + 1e-12)
        low, high = result.shift_ci
        assert low <= result.shift <= high
        if result.verdict in ("improved", "regressed"):
            assert result.significant and abs(result.shift) > stats.DELTA


def test_fewer_than_five_runs_a_side_are_inconclusive_with_why():
    result = stats.compare([100, 101, 99], [50, 51, 49])
    assert result.verdict == "inconclusive" and result.evidence == "estimated"
    assert "at least 5 runs" in result.reasons[0]
    assert result.shift_ci == (None, None) and result.interval_text.startswith("no interval")


def test_a_run_of_zero_cannot_be_judged_on_the_ratio_scale():
    result = stats.compare([0.0, 5.0, 6.0, 5.5, 6.5], [5.0, 5.2, 5.1, 4.9, 5.3])
    assert result.verdict == "inconclusive"
    assert any("positive values" in reason for reason in result.reasons)


def test_interleaving_decides_the_evidence_level_not_the_verdict():
    result = stats.compare([100, 101, 99, 100, 102], [50, 51, 49, 50, 52], order="aaaaabbbbb")
    assert result.interleaved is False and result.verdict == "improved"
    assert result.evidence == "measured"
    assert stats.interleaved("aabbaabbab") and not stats.interleaved("aaaabbbb")
    assert stats.interleaved_order(3) == ["a", "b", "a", "b", "a", "b"]
    assert stats.order_from_times([1, 3, 5], [2, 4, 6]) == ["a", "b", "a", "b", "a", "b"]


def test_comparability_guard_flags_unintended_differences():
    base = [{"target_version": "slow", "data_size": 1000, "rate": 20.0}] * 5
    cand = [{"target_version": "fast", "data_size": 1000, "rate": 20.0}] * 4
    cand = [*cand, {"target_version": "fast", "data_size": 2000, "rate": 20.0}]
    flags = stats.comparability(base, cand, intended=("target_version",))
    assert {"key": "data_size", "where": "candidate", "values": [1000, 2000]} in flags
    assert {"key": "data_size", "where": "between", "values": [1000, 2000]} in flags
    assert not any(flag["key"] == "target_version" for flag in flags)
    flagged = stats.compare(
        [100, 101, 99, 100, 102],
        [50, 51, 49, 50, 52],
        baseline_meta=base,
        candidate_meta=cand,
        intended=("target_version",),
    )
    assert flagged.verdict == "inconclusive" and flagged.evidence == "estimated"
    assert any("data_size differs" in reason for reason in flagged.reasons)
    assert stats.comparability(base, base) == []


def test_comparison_is_deterministic_and_serialisable():
    args = ([10, 11, 12, 10.5, 11.5], [5, 5.5, 6, 5.2, 5.8])
    first, second = stats.compare(*args), stats.compare(*args)
    assert first.to_dict() == second.to_dict()
    data = json.loads(json.dumps(first.to_dict()))
    assert data["verdict"] == "improved" and data["interval_text"].startswith("×")


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
