"""The comparison rule's words in the page's language.

The rule (optimizations.analyzers.stats) is Django-free and explains its verdict
in English (``Comparison.reasons``, ``interval_text``), which the CLI, JSON and
CSV keep. The pages rebuild the same sentences from the comparison's own fields
as ``Phrase`` (English ``str`` that remember their msgid), so ``|translated``
shows them in Japanese; tests/optimizations/test_report_texts.py holds the
English of each to the rule's own words.
"""

from __future__ import annotations

import math

from django.utils.translation import gettext_noop

from optimizations.analyzers import stats
from portal.i18n import Parts, Phrase

# An evidence level as a word in a sentence.
EVIDENCE = {
    stats.VERIFIED: Phrase(gettext_noop("verified")),
    stats.MEASURED: Phrase(gettext_noop("measured")),
    stats.ESTIMATED: Phrase(gettext_noop("estimated")),
}


def evidence(level: str) -> str:
    return EVIDENCE.get(level, level)


def interval_text(c) -> str:
    """``Comparison.interval_text``, with its one sentence marked."""
    low, high = c.shift_ci
    if low is None or high is None:
        return Phrase(gettext_noop("no interval (too few runs)"))
    if c.scale == stats.POINTS:
        return Phrase(gettext_noop("%(low)+.2f to %(high)+.2f pp"), low=low, high=high)
    return c.interval_text


def _stated(c) -> Phrase:
    common = {
        "estimate": c.estimate_text,
        "confidence": f"{c.confidence:.1%}",
        "interval": interval_text(c),
        "p": f"{c.p_value:.3g}",
    }
    if c.n_baseline + c.n_candidate <= stats.EXACT_LIMIT:
        msgid = gettext_noop(
            "%(estimate)s, %(confidence)s interval %(interval)s, p = %(p)s (exact Mann–Whitney)"
        )
    else:
        msgid = gettext_noop(
            "%(estimate)s, %(confidence)s interval %(interval)s, p = %(p)s "
            "(Mann–Whitney, normal approximation)"
        )
    return Phrase(msgid, **common)


def reasons(c) -> Parts:
    """``Comparison.reasons`` (stats._judge) as Phrases, joined with "; "."""
    if not c.reasons:
        return Parts()
    blockers: list[str] = []
    if min(c.n_baseline, c.n_candidate) < stats.MIN_RUNS:
        blockers.append(
            Phrase(
                gettext_noop(
                    "needs at least %(min)s runs per side (has %(n)s and %(m)s); "
                    "with fewer, no interval of the shift reaches 95 %%"
                ),
                min=stats.MIN_RUNS,
                n=c.n_baseline,
                m=c.n_candidate,
            )
        )
    positive = c.scale != stats.RATIO or c.ratio is not None
    if c.scale == stats.RATIO and not positive:
        blockers.append(
            Phrase(
                gettext_noop("a run measured 0 or less, and the ratio scale needs positive values")
            )
        )
    for flag in c.flags:
        values = ", ".join(map(str, flag["values"]))
        if flag["where"] == "between":
            msgid = gettext_noop("%(key)s differs between the sides: %(values)s")
        else:
            msgid = gettext_noop("%(key)s differs within the %(where)s: %(values)s")
        blockers.append(Phrase(msgid, key=flag["key"], where=flag["where"], values=values))
    if blockers:
        return _checked(c, Parts(blockers))
    bound = (
        f"±{c.margin:.2f} pp" if c.scale == stats.POINTS else f"×{1 / math.exp(c.margin):.3g}–×1.10"
    )
    stated = _stated(c)
    if c.verdict in (stats.IMPROVED, stats.REGRESSED):
        said = Phrase(gettext_noop("%(stated)s; beyond %(bound)s"), stated=stated, bound=bound)
    elif c.verdict == stats.NO_CHANGE:
        said = Phrase(
            gettext_noop("%(stated)s: the whole interval lies within %(bound)s"),
            stated=stated,
            bound=bound,
        )
    else:
        said = Phrase(
            gettext_noop("interval %(interval)s, add runs (%(stated)s; margin %(bound)s)"),
            interval=interval_text(c),
            stated=stated,
            bound=bound,
        )
    return _checked(c, Parts([said]))


def _checked(c, rebuilt: Parts) -> Parts:
    """The rebuilt words, or the rule's own when they differ (a sentence the rule
    gained that this module does not know yet stays English rather than wrong)."""
    if [str(part) for part in rebuilt] != list(c.reasons):
        return Parts(c.reasons)
    return rebuilt
