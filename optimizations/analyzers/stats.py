"""Statistics for honest before/after claims: Mann-Whitney U, bootstrap intervals, trends.

The comparison rule (ANALYSIS.md §3): a change between a baseline and a
candidate set of benchmark runs is real only when each side has at least 5
runs, the runs were interleaved, Mann-Whitney U gives p < 0.05, and the
median moved by more than max(10 %, 2 x the runs' coefficient of variation).
Medians carry seeded (so repeatable) bootstrap 95 % intervals. A
comparability guard flags runs whose target version, data size,
configuration or engine version differ.

Plain Python: the samples are a handful of runs, and the exact Mann-Whitney
distribution is a small dynamic programme over rank sums, so numpy and scipy
would add two heavy dependencies for microseconds.
"""

from __future__ import annotations

import itertools
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from operator import add
from typing import Any

MIN_RUNS = 5
ALPHA = 0.05
MIN_CHANGE = 0.10
CV_FACTOR = 2.0
BOOTSTRAP_RESAMPLES = 2000
# Up to this many observations in all, p comes from the exact permutation
# distribution of the rank sum (ties included); beyond, from the normal
# approximation with tie and continuity corrections.
EXACT_LIMIT = 60
COMPARABILITY_KEYS = ("target_version", "data_size", "config", "engine_version")


# -- descriptive -------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    middle = n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n - 1)."""
    n = len(values)
    if n < 2:
        return 0.0
    centre = mean(values)
    return math.sqrt(math.fsum((v - centre) ** 2 for v in values) / (n - 1))


def coefficient_of_variation(values: Sequence[float]) -> float:
    """Sample standard deviation over the mean (0 when the mean is 0)."""
    centre = mean(values)
    return stdev(values) / abs(centre) if centre else 0.0


def rank(values: Sequence[float]) -> list[float]:
    """Ranks from 1, tied values sharing the mean of their ranks (midranks)."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    position = 0
    while position < len(order):
        end = position
        while end + 1 < len(order) and values[order[end + 1]] == values[order[position]]:
            end += 1
        shared = (position + end) / 2 + 1
        for k in range(position, end + 1):
            ranks[order[k]] = shared
        position = end + 1
    return ranks


# -- Mann-Whitney U ----------------------------------------------------------------


@dataclass
class MannWhitney:
    """U of the first sample (U1 + U2 = n1 x n2), two-sided p, and how p was found."""

    u1: float
    u2: float
    p_value: float
    method: str  # "exact" or "normal"


def _normal_sf(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


def _rank_sum_counts(doubled_ranks: list[int], n1: int) -> list[int]:
    """How many subsets of size n1 reach each sum of doubled ranks (index = sum).

    A knapsack over the observations: ``counts[k][s]`` is the number of ways to
    pick k of the observations seen so far with doubled rank sum s. Doubling
    makes midranks (x.5) integers, so ties are exact, not approximated.
    """
    total = sum(doubled_ranks)
    counts = [[0] * (total + 1) for _ in range(n1 + 1)]
    counts[0][0] = 1
    n = len(doubled_ranks)
    for seen, r in enumerate(doubled_ranks, 1):
        # Subsets that can no longer reach size n1 with what is left are not needed.
        for k in range(min(seen, n1), max(0, n1 - (n - seen) - 1), -1):
            row, previous = counts[k], counts[k - 1]
            # row[s + r] += previous[s] for every s, done by slices in C.
            row[r:] = map(add, row[r:], previous[: total + 1 - r])
    return counts[n1]


def mann_whitney_u(x: Sequence[float], y: Sequence[float]) -> MannWhitney:
    """Two-sided Mann-Whitney U test of ``x`` against ``y``.

    Exact (the permutation distribution of the rank sum, conditional on the
    ties) when there are at most EXACT_LIMIT observations; otherwise the
    normal approximation with tie correction and continuity correction.
    """
    n1, n2 = len(x), len(y)
    if n1 == 0 or n2 == 0:
        raise ValueError("each sample needs at least one value")
    ranks = rank(list(x) + list(y))
    r1 = math.fsum(ranks[:n1])
    u1 = r1 - n1 * (n1 + 1) / 2
    u2 = n1 * n2 - u1
    n = n1 + n2
    if n <= EXACT_LIMIT:
        doubled = [round(2 * r) for r in ranks]
        counts = _rank_sum_counts(doubled, n1)
        observed = round(2 * r1)
        ways = math.comb(n, n1)
        lower = sum(counts[: observed + 1])
        upper = sum(counts[observed:])
        p = min(1.0, 2 * min(lower, upper) / ways)
        return MannWhitney(u1, u2, p, "exact")
    tie_term = 0.0
    for value in set(ranks):
        t = ranks.count(value)
        if t > 1:
            tie_term += t**3 - t
    variance = n1 * n2 / 12 * ((n + 1) - tie_term / (n * (n - 1)))
    if variance <= 0:
        return MannWhitney(u1, u2, 1.0, "normal")
    mu = n1 * n2 / 2
    z = (abs(u1 - mu) - 0.5) / math.sqrt(variance)
    return MannWhitney(u1, u2, min(1.0, 2 * _normal_sf(max(z, 0.0))), "normal")


# -- bootstrap ---------------------------------------------------------------------


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[Sequence[float]], float] = median,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic``; the same seed gives the same interval."""
    if not values:
        raise ValueError("bootstrap of no values")
    rng = random.Random(seed)
    n = len(values)
    estimates = sorted(statistic(rng.choices(values, k=n)) for _ in range(resamples))
    return _percentile_interval(estimates, confidence)


def bootstrap_ratio_ci(
    numerator: Sequence[float],
    denominator: Sequence[float],
    statistic: Callable[[Sequence[float]], float] = median,
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Interval of statistic(numerator) / statistic(denominator), both sides resampled."""
    rng = random.Random(seed)
    estimates = []
    for _ in range(resamples):
        top = statistic(rng.choices(numerator, k=len(numerator)))
        bottom = statistic(rng.choices(denominator, k=len(denominator)))
        estimates.append(top / bottom if bottom else math.inf)
    estimates.sort()
    return _percentile_interval(estimates, confidence)


def _percentile_interval(ordered: list[float], confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    last = len(ordered) - 1
    return ordered[round(tail * last)], ordered[round((1 - tail) * last)]


# -- comparability and interleaving ------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def comparability(
    baseline: Sequence[dict],
    candidate: Sequence[dict],
    *,
    keys: Sequence[str] = COMPARABILITY_KEYS,
    intended: Sequence[str] = (),
) -> list[dict]:
    """Flags for runs that should not be compared as they are.

    Each run is described by a plain dict (``target_version``, ``data_size``,
    ``config``, ``engine_version``...). Runs of one side must agree on every
    key; the two sides must agree on every key except those in ``intended``
    (the change under test, e.g. ``config`` when comparing slow and fast mode).
    A missing key is a value like any other, so a run that does not say is
    flagged when the others do.
    """
    flags = []
    for side, runs in (("baseline", baseline), ("candidate", candidate)):
        for key in keys:
            values = list(dict.fromkeys(_canonical(run.get(key)) for run in runs))
            if len(values) > 1:
                flags.append({"key": key, "where": side, "values": [json.loads(v) for v in values]})
    if baseline and candidate:
        for key in keys:
            if key in intended:
                continue
            left = {_canonical(run.get(key)) for run in baseline}
            right = {_canonical(run.get(key)) for run in candidate}
            if left != right:
                flags.append(
                    {
                        "key": key,
                        "where": "between",
                        "values": [json.loads(v) for v in sorted(left | right)],
                    }
                )
    return flags


def interleaved(order: Sequence[str]) -> bool:
    """Whether runs labelled ``"a"``/``"b"`` in time order were interleaved.

    Interleaved means drift over the session hits both sides: the sequence
    switches side at least as often as the smaller side has runs (ABABAB,
    AABBAABB... pass; AAAABBBB does not).
    """
    sides = [label for label in order if label in ("a", "b")]
    fewer = min(sides.count("a"), sides.count("b"))
    switches = sum(1 for first, second in itertools.pairwise(sides) if first != second)
    return fewer > 0 and switches >= fewer


def order_from_times(baseline_times: Sequence[Any], candidate_times: Sequence[Any]) -> list[str]:
    """The ``"a"``/``"b"`` time order of runs from their start times (any comparable values)."""
    labelled = [(t, "a") for t in baseline_times] + [(t, "b") for t in candidate_times]
    return [label for _, label in sorted(labelled, key=lambda pair: pair[0])]


def interleaved_order(runs_per_side: int) -> list[str]:
    """The order to run a comparison in: a, b, a, b, ..."""
    return ["a", "b"] * runs_per_side


# -- the comparison rule -----------------------------------------------------------


@dataclass
class Comparison:
    """The outcome of the comparison rule on one metric."""

    metric: str
    lower_is_better: bool
    n_baseline: int
    n_candidate: int
    median_baseline: float
    median_candidate: float
    ci_baseline: tuple[float, float]
    ci_candidate: tuple[float, float]
    change: float  # (candidate - baseline) / baseline, on the medians
    change_ci: tuple[float, float]
    speedup: float  # > 1 means better: baseline/candidate when lower is better
    speedup_ci: tuple[float, float]
    cv_baseline: float
    cv_candidate: float
    threshold: float  # max(10 %, 2 x the larger CV)
    u: float
    p_value: float
    p_method: str
    significant: bool
    beyond_noise: bool
    interleaved: bool | None
    flags: list[dict] = field(default_factory=list)
    verdict: str = "inconclusive"  # improved, regressed, no change, inconclusive
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def compare(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    metric: str = "",
    lower_is_better: bool = True,
    order: Sequence[str] | None = None,
    baseline_meta: Sequence[dict] | None = None,
    candidate_meta: Sequence[dict] | None = None,
    intended: Sequence[str] = (),
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Comparison:
    """Apply the comparison rule to one metric (one value per run on each side).

    ``order`` is the time order of the runs as ``"a"`` (baseline) / ``"b"``
    (candidate) labels, when known; ``*_meta`` describe each run for the
    comparability guard, ``intended`` names the keys that are meant to differ.
    """
    baseline, candidate = [float(v) for v in baseline], [float(v) for v in candidate]
    if not baseline or not candidate:
        raise ValueError("each side needs at least one run")
    med_a, med_b = median(baseline), median(candidate)
    cv_a, cv_b = coefficient_of_variation(baseline), coefficient_of_variation(candidate)
    threshold = max(MIN_CHANGE, CV_FACTOR * max(cv_a, cv_b))
    test = mann_whitney_u(baseline, candidate)
    change = (med_b - med_a) / med_a if med_a else math.inf
    # Seeds differ per statistic so the intervals are not drawn from one stream.
    change_ci = tuple(
        r - 1 for r in bootstrap_ratio_ci(candidate, baseline, seed=seed, resamples=resamples)
    )
    if lower_is_better:
        speedup = med_a / med_b if med_b else math.inf
        speedup_ci = bootstrap_ratio_ci(baseline, candidate, seed=seed + 1, resamples=resamples)
    else:
        speedup = med_b / med_a if med_a else math.inf
        speedup_ci = bootstrap_ratio_ci(candidate, baseline, seed=seed + 1, resamples=resamples)
    flags = comparability(baseline_meta or [], candidate_meta or [], intended=intended)
    was_interleaved = interleaved(order) if order is not None else None
    result = Comparison(
        metric=metric,
        lower_is_better=lower_is_better,
        n_baseline=len(baseline),
        n_candidate=len(candidate),
        median_baseline=med_a,
        median_candidate=med_b,
        ci_baseline=bootstrap_ci(baseline, seed=seed + 2, resamples=resamples),
        ci_candidate=bootstrap_ci(candidate, seed=seed + 3, resamples=resamples),
        change=change,
        change_ci=change_ci,
        speedup=speedup,
        speedup_ci=speedup_ci,
        cv_baseline=cv_a,
        cv_candidate=cv_b,
        threshold=threshold,
        u=test.u1,
        p_value=test.p_value,
        p_method=test.method,
        significant=test.p_value < ALPHA,
        beyond_noise=abs(change) > threshold,
        interleaved=was_interleaved,
        flags=flags,
    )
    result.verdict, result.reasons = _judge(result)
    return result


def _judge(c: Comparison) -> tuple[str, list[str]]:
    blockers = []
    if min(c.n_baseline, c.n_candidate) < MIN_RUNS:
        blockers.append(
            f"needs at least {MIN_RUNS} runs per side (has {c.n_baseline} and {c.n_candidate}); "
            "with fewer, Mann-Whitney U cannot reach p < 0.05"
        )
    if c.interleaved is False:
        blockers.append("the runs were not interleaved, so drift could pass for a change")
    for flag in c.flags:
        where = "between the sides" if flag["where"] == "between" else "within the " + flag["where"]
        values = ", ".join(map(str, flag["values"]))
        blockers.append(f"{flag['key']} differs {where}: {values}")
    if blockers:
        return "inconclusive", blockers
    reasons = []
    if c.interleaved is None:
        reasons.append("interleaving not known")
    if not c.significant:
        reasons.append(f"Mann-Whitney U p = {c.p_value:.3g} ≥ {ALPHA}")
    if not c.beyond_noise:
        reasons.append(
            f"median change {c.change:+.1%} within the noise threshold ±{c.threshold:.1%}"
        )
    if not c.significant or not c.beyond_noise:
        return "no change", reasons
    better = (c.change < 0) == c.lower_is_better
    reasons.append(
        f"median {c.change:+.1%} (p = {c.p_value:.3g}, threshold ±{c.threshold:.1%}), "
        f"speed-up x{c.speedup:.2f} [{c.speedup_ci[0]:.2f}, {c.speedup_ci[1]:.2f}]"
    )
    return ("improved" if better else "regressed"), reasons


# -- trends ------------------------------------------------------------------------


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    """Slope and intercept of the Theil-Sen line: the median of pairwise slopes.

    Robust to the odd garbage-collection spike in a memory series, where a
    least-squares line would tilt.
    """
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("need at least two points")
    slopes = [
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(len(xs))
        for j in range(i + 1, len(xs))
        if xs[j] != xs[i]
    ]
    slope = median(slopes) if slopes else 0.0
    intercept = median([y - slope * x for x, y in zip(xs, ys, strict=True)])
    return slope, intercept


def mann_kendall(values: Sequence[float]) -> tuple[int, float]:
    """Mann-Kendall trend test: S and the two-sided p (normal approximation, ties corrected)."""
    n = len(values)
    if n < 3:
        return 0, 1.0
    s = 0
    for i in range(n - 1):
        for j in range(i + 1, n):
            s += (values[j] > values[i]) - (values[j] < values[i])
    ties: dict[float, int] = {}
    for value in values:
        ties[value] = ties.get(value, 0) + 1
    variance = (
        n * (n - 1) * (2 * n + 5) - sum(t * (t - 1) * (2 * t + 5) for t in ties.values())
    ) / 18
    if variance <= 0 or s == 0:
        return s, 1.0
    z = (s - 1 if s > 0 else s + 1) / math.sqrt(variance)
    return s, min(1.0, 2 * _normal_sf(abs(z)))
