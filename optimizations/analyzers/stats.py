"""Statistics for honest before/after claims: the comparison rule, Mann-Whitney U, trends.

The comparison rule (ANALYSIS.md §3), the only one in Kaizen: each side is a
set of runs, one value per run (never per-second samples: neighbouring seconds
are autocorrelated). Latencies and throughput are judged on the ratio scale,
on ln(value): the Hodges-Lehmann shift of ln(after) - ln(before) (the median
of the n x m pairwise differences) with its exact Mann-Whitney (Moses)
confidence interval, whose ends are order statistics of those differences
chosen from the exact distribution of U (for 5 v 5: the 3rd and the 23rd of
25, 96.8 %). With the margin delta = ln 1.10:

- improved / regressed: the interval excludes 0 and the estimate is beyond
  +-delta (in the better / worse direction);
- no change: the whole interval lies within +-delta (an equivalence test);
- inconclusive otherwise: "interval x a-x b, add runs".

Rates (error rate, unavailability) are judged the same way on their
difference in percentage points, with the margin max(0.1 pp, 10 % of the
baseline's median). The p value comes from the same exact distribution of U
as the interval (ties between the sides count against the change), so the
interval excludes 0 exactly when p is at most 1 - its confidence: verdict, p
and interval never disagree. Fewer than 5 runs a side, or runs that the
comparability guard flags, are inconclusive, saying why.

Plain Python: the samples are a handful of runs, and the exact distribution
of U is a small polynomial (a Gaussian binomial coefficient), so numpy and
scipy would add two heavy dependencies for microseconds.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from operator import add
from typing import Any, TypedDict

MIN_RUNS = 5
# The interval's confidence is the largest the exact distribution offers at or
# above 1 - ALPHA (96.8 % for 5 v 5).
ALPHA = 0.05
# Ratio scale: a change within x/ 1.10 is no change worth a claim.
DELTA = math.log(1.10)
# Rates: the margin in percentage points, at least this, else this share of the baseline.
RATE_MARGIN_PP = 0.1
RATE_MARGIN_RELATIVE = 0.10
# Up to this many runs in all, U's distribution is exact; beyond, the normal
# approximation with a continuity correction.
EXACT_LIMIT = 60
# The comparability guard: what each run was asked to do and by what. The
# target's version is the one meant to differ between the sides of a claim.
# "tracing": whether the target exported traces during the run (issue 16: an
# instrumented service is a different service to time).
COMPARABILITY_KEYS = (
    "scenario",
    "mode",
    "rate",
    "duration",
    "connections",
    "engine_version",
    "data_size",
    "tracing",
    "target_version",
)
RATIO, POINTS = "ratio", "points"
IMPROVED, REGRESSED, NO_CHANGE, INCONCLUSIVE = "improved", "regressed", "no change", "inconclusive"
# Evidence levels (ANALYSIS.md §3): interleaved A/B sets, sequential sets of at
# least MIN_RUNS runs that pass the comparability guard, point estimates.
VERIFIED, MEASURED, ESTIMATED = "verified", "measured", "estimated"


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


# -- comparability and interleaving ------------------------------------------------


# An interval's two ends; None where too few runs give no interval.
type Interval = tuple[float | None, float | None]


class ComparabilityFlag(TypedDict):
    """One key on which runs disagree: ``where`` is a side or ``"between"``."""

    key: str
    where: str
    values: list[Any]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def comparability(
    baseline: Sequence[Mapping[str, Any]],
    candidate: Sequence[Mapping[str, Any]],
    *,
    keys: Sequence[str] = COMPARABILITY_KEYS,
    intended: Sequence[str] = (),
) -> list[ComparabilityFlag]:
    """Flags for runs that should not be compared as they are.

    Each run is described by a plain dict (COMPARABILITY_KEYS: ``scenario``,
    ``rate``, ``duration``...; optimizations.jobs.baselines.run_meta builds it).
    Runs of one side must agree on every key; the two sides must agree on every
    key except those in ``intended`` (the change under test: the target's
    version).
    A missing key is a value like any other, so a run that does not say is
    flagged when the others do.
    """
    flags: list[ComparabilityFlag] = []
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


# -- the exact distribution of U ---------------------------------------------------


@functools.lru_cache(maxsize=512)
def u_distribution(n: int, m: int) -> tuple[int, ...]:
    """How many of the C(n + m, n) orderings of two samples without ties give each U.

    The coefficients of the Gaussian binomial [n + m choose n] in q: the product
    over i = 1..n of (1 - q^(m+i)) / (1 - q^i), computed as power series
    truncated beyond q^(n m), which is the polynomial's degree.
    """
    size = n * m + 1
    poly = [1] + [0] * (size - 1)
    for i in range(1, n + 1):
        step = m + i
        for k in range(size - 1, step - 1, -1):
            poly[k] -= poly[k - step]
        for k in range(i, size):
            poly[k] += poly[k - i]
    return tuple(poly)


def u_cdf(u: float, n: int, m: int) -> float:
    """P(U <= u) under no difference: exact up to EXACT_LIMIT runs, else normal."""
    if u < 0:
        return 0.0
    if n + m <= EXACT_LIMIT:
        counts = u_distribution(n, m)
        return sum(counts[: min(len(counts), math.floor(u) + 1)]) / math.comb(n + m, n)
    sd = math.sqrt(n * m * (n + m + 1) / 12)
    return 1 - _normal_sf((math.floor(u) + 0.5 - n * m / 2) / sd)


def interval_rank(n: int, m: int, alpha: float = ALPHA) -> tuple[int, float]:
    """(k, confidence): the Moses interval is the k-th smallest and the k-th largest
    of the n m pairwise differences; k = 0 when no interval reaches 1 - alpha."""
    k = 0
    while k < n * m // 2 and u_cdf(k, n, m) <= alpha / 2:
        k += 1
    return k, (1 - 2 * u_cdf(k - 1, n, m)) if k else 0.0


# -- the comparison rule -----------------------------------------------------------


@dataclass
class Comparison:
    """The comparison rule on one metric: one value per run on each side."""

    metric: str
    lower_is_better: bool
    scale: str  # "ratio" (ln of the values) or "points" (a rate in percentage points)
    n_baseline: int
    n_candidate: int
    median_baseline: float
    median_candidate: float
    # The Hodges-Lehmann shift of candidate - baseline on the scale (ln, or pp) and
    # its Moses interval (None ends: too few runs for any interval at 1 - ALPHA).
    shift: float
    shift_ci: tuple[float | None, float | None]
    confidence: float
    margin: float  # delta on the scale: ln 1.10, or the rate margin in pp
    # Ratio scale: candidate / baseline (exp of the shift); points: the shift itself.
    ratio: float | None
    ratio_ci: tuple[float | None, float | None]
    speedup: float | None  # > 1 is better: 1 / ratio when lower is better
    speedup_ci: tuple[float | None, float | None]
    u: float
    p_value: float
    significant: bool  # the interval excludes 0 (exactly when p <= 1 - confidence)
    interleaved: bool | None
    evidence: str = ESTIMATED
    flags: list[ComparabilityFlag] = field(default_factory=list)
    verdict: str = INCONCLUSIVE
    reasons: list[str] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """The relative change candidate / baseline - 1 (ratio scale), or the pp shift."""
        if self.scale == POINTS:
            return self.shift
        return None if self.ratio is None else self.ratio - 1

    @property
    def interval_text(self) -> str:
        """The interval as people read it: "x0.021-x0.026" or "-38.8 to -35.0 pp"."""
        low, high = self.shift_ci
        if low is None or high is None:
            return "no interval (too few runs)"
        if self.scale == POINTS:
            return f"{low:+.2f} to {high:+.2f} pp"
        return f"×{_short(math.exp(low))}–×{_short(math.exp(high))}"

    @property
    def estimate_text(self) -> str:
        if self.scale == POINTS:
            return f"{self.shift:+.2f} pp"
        return f"×{_short(self.ratio)}" if self.ratio is not None else "—"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            change=self.change, interval_text=self.interval_text, estimate_text=self.estimate_text
        )
        return data


def _short(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "∞"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    if value >= 0.1:
        return f"{value:.2f}"
    return f"{value:.2g}"


def rate_margin(baseline_median_pp: float) -> float:
    """The margin of a rate in percentage points: max(0.1 pp, 10 % of the baseline)."""
    return max(RATE_MARGIN_PP, RATE_MARGIN_RELATIVE * abs(baseline_median_pp))


def compare(
    baseline: Sequence[float],
    candidate: Sequence[float],
    *,
    metric: str = "",
    lower_is_better: bool = True,
    scale: str = RATIO,
    order: Sequence[str] | None = None,
    baseline_meta: Sequence[Mapping[str, Any]] | None = None,
    candidate_meta: Sequence[Mapping[str, Any]] | None = None,
    intended: Sequence[str] = (),
) -> Comparison:
    """Apply the comparison rule to one metric (one value per run on each side).

    ``scale`` is RATIO for latencies and throughput (positive values) and POINTS
    for rates given in percent. ``order`` is the time order of the runs as
    ``"a"`` (baseline) / ``"b"`` (candidate) labels, when known: interleaved
    sets are verified evidence, sequential ones measured. ``*_meta`` describe
    each run for the comparability guard, ``intended`` names the keys that are
    meant to differ (the target's version, by default of the callers).
    """
    if scale not in (RATIO, POINTS):
        raise ValueError(f"unknown scale {scale!r}")
    before, after = [float(v) for v in baseline], [float(v) for v in candidate]
    if not before or not after:
        raise ValueError("each side needs at least one run")
    n, m = len(before), len(after)
    positive = all(v > 0 for v in before + after)
    if scale == RATIO and positive:
        x, y = [math.log(v) for v in before], [math.log(v) for v in after]
    else:
        x, y = before, after
    differences = sorted(b - a for b in y for a in x)
    shift = median(differences)
    k, confidence = interval_rank(n, m)
    ci: Interval = (differences[k - 1], differences[n * m - k]) if k else (None, None)
    # U counted conservatively: a tie between the sides counts against the change,
    # so "the interval excludes 0" and "p <= 1 - confidence" are the same event.
    below = sum(1 for d in differences if d <= 0)
    above = sum(1 for d in differences if d >= 0)
    p = min(1.0, 2 * u_cdf(min(below, above), n, m))
    significant = ci[0] is not None and ci[1] is not None and (ci[0] > 0 or ci[1] < 0)
    med_a, med_b = median(before), median(after)
    margin = DELTA if scale == RATIO else rate_margin(med_a)
    ratio: float | None = None
    speedup: float | None = None
    ratio_ci: Interval | None = None
    speedup_ci: Interval | None = None
    if scale == RATIO and positive:
        ratio = math.exp(shift)
        ratio_ci = (_map_end(math.exp, ci[0]), _map_end(math.exp, ci[1]))
        if lower_is_better:
            speedup = 1 / ratio
            speedup_ci = (_map_end(_inverse, ratio_ci[1]), _map_end(_inverse, ratio_ci[0]))
        else:
            speedup, speedup_ci = ratio, ratio_ci
    flags = comparability(baseline_meta or [], candidate_meta or [], intended=intended)
    result = Comparison(
        metric=metric,
        lower_is_better=lower_is_better,
        scale=scale,
        n_baseline=n,
        n_candidate=m,
        median_baseline=med_a,
        median_candidate=med_b,
        shift=shift,
        shift_ci=ci,
        confidence=confidence,
        margin=margin,
        ratio=ratio,
        ratio_ci=ratio_ci or (None, None),
        speedup=speedup,
        speedup_ci=speedup_ci or (None, None),
        u=float(sum(1 for d in differences if d > 0) + 0.5 * (above + below - n * m)),
        p_value=p,
        significant=significant,
        interleaved=interleaved(order) if order is not None else None,
        flags=flags,
    )
    result.verdict, result.reasons = _judge(result, positive)
    result.evidence = _evidence(result)
    return result


def _map_end(function: Callable[[float], float], end: float | None) -> float | None:
    return None if end is None else function(end)


def _inverse(value: float) -> float:
    return 1 / value


def _judge(c: Comparison, positive: bool) -> tuple[str, list[str]]:
    blockers = []
    if min(c.n_baseline, c.n_candidate) < MIN_RUNS:
        blockers.append(
            f"needs at least {MIN_RUNS} runs per side (has {c.n_baseline} and {c.n_candidate}); "
            "with fewer, no interval of the shift reaches 95 %"
        )
    if c.scale == RATIO and not positive:
        blockers.append("a run measured 0 or less, and the ratio scale needs positive values")
    for flag in c.flags:
        where = "between the sides" if flag["where"] == "between" else "within the " + flag["where"]
        values = ", ".join(map(str, flag["values"]))
        blockers.append(f"{flag['key']} differs {where}: {values}")
    if blockers:
        return INCONCLUSIVE, blockers
    low, high = c.shift_ci
    bound = f"±{c.margin:.2f} pp" if c.scale == POINTS else f"×{1 / math.exp(c.margin):.3g}–×1.10"
    stated = (
        f"{c.estimate_text}, {c.confidence:.1%} interval {c.interval_text}, "
        f"p = {c.p_value:.3g} (exact Mann–Whitney)"
        if c.n_baseline + c.n_candidate <= EXACT_LIMIT
        else f"{c.estimate_text}, {c.confidence:.1%} interval {c.interval_text}, "
        f"p = {c.p_value:.3g} (Mann–Whitney, normal approximation)"
    )
    if c.significant and abs(c.shift) > c.margin:
        better = (c.shift < 0) == c.lower_is_better
        return (IMPROVED if better else REGRESSED), [f"{stated}; beyond {bound}"]
    if low is not None and high is not None and -c.margin <= low and high <= c.margin:
        return NO_CHANGE, [f"{stated}: the whole interval lies within {bound}"]
    return INCONCLUSIVE, [f"interval {c.interval_text}, add runs ({stated}; margin {bound})"]


def _evidence(c: Comparison) -> str:
    """Interleaved sets that pass the guard are verified, sequential ones measured."""
    if min(c.n_baseline, c.n_candidate) < MIN_RUNS or c.flags:
        return ESTIMATED
    return VERIFIED if c.interleaved else MEASURED


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
