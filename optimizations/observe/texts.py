"""Stored English of continuous observation, in the page's language at render time.

The burn-rate analyzer (optimizations.analyzers.observe.burnrate) is Django-free and
explains its judgement in English; the minute's evaluation stores those sentences
(ObserveSettings.evaluation, .budgets), and an incident stores the summary its alert
opened it with (Incident.detail), so the status command, the JSON and the webhooks read
the English. A page in Japanese shows each sentence Kaizen writes in a known shape in
Japanese, its figures kept: the shapes are listed here, matched whole, and anything else
(a person's note, an Alertmanager summary, a renamed rule) is shown as it was stored.
tests/optimizations/test_observe_texts.py writes each shape with the code that stores it.
"""

from __future__ import annotations

import re

from django.utils.translation import gettext, gettext_noop, pgettext

from optimizations.analyzers.observe import burnrate
from optimizations.models import Delivery
from optimizations.observe import budgets

# A window as burnrate._span writes it: "5 min", "1 h", "3 d", "90 s".
_SPAN = r"\d+ (?:d|h|min|s)"
_SPAN_UNITS = {
    "d": gettext_noop("%(n)s d"),
    "h": gettext_noop("%(n)s h"),
    "min": gettext_noop("%(n)s min"),
    "s": gettext_noop("%(n)s s"),
}
_NUMBER = r"-?[\d.,]+"

# The default rules' names (a rule someone named is data, shown as written).
RULE_NAMES = {
    "fast burn": gettext_noop("fast burn"),
    "slow burn": gettext_noop("slow burn"),
    "steady burn": gettext_noop("steady burn"),
}
KINDS = {burnrate.PAGE: gettext_noop("page"), burnrate.TICKET: gettext_noop("ticket")}
SOURCES = {
    budgets.MINUTE_CHECK: gettext_noop("minute checks"),
    budgets.PROMETHEUS: gettext_noop("Prometheus"),
    budgets.TRACES: gettext_noop("traces"),
    "metrics": gettext_noop("/metrics"),
}
OBJECTIVE_LABELS = {
    "Availability": gettext_noop("Availability"),
    "Error rate": gettext_noop("Error rate"),
    "Latency": gettext_noop("Latency"),
}


def _span(text: str) -> str:
    number, unit = text.split(" ")
    return gettext(_SPAN_UNITS[unit]) % {"n": number}


def _rule(name: str) -> str:
    return gettext(RULE_NAMES[name]) if name in RULE_NAMES else name


# (pattern matched whole, msgid, how each named group is put into the language)
_SENTENCES: list[tuple[re.Pattern[str], str, dict]] = [
    (
        re.compile(
            rf"burn rate (?P<long_rate>{_NUMBER})× over (?P<long>{_SPAN}), "
            rf"(?P<short_rate>{_NUMBER})× over (?P<short>{_SPAN}) "
            rf"\(threshold (?P<threshold>{_NUMBER})×\)"
        ),
        gettext_noop(
            "burn rate %(long_rate)s× over %(long)s, %(short_rate)s× over %(short)s "
            "(threshold %(threshold)s×)"
        ),
        {"long": _span, "short": _span},
    ),
    (
        re.compile(
            rf"no events in the last (?P<window>{_SPAN}): " + re.escape(burnrate.ENABLE_EVENTS)
        ),
        gettext_noop(
            "no events in the last %(window)s: give the target a health path for minute "
            "checks, send its traces (OTLP), or name a Prometheus expression for this SLO"
        ),
        {"window": _span},
    ),
    (
        re.compile(rf"(?P<pct>{_NUMBER}) % of minute checks up"),
        gettext_noop("%(pct)s %% of minute checks up"),
        {},
    ),
    (
        re.compile(rf"(?P<pct>{_NUMBER}) % of requests without a 5xx"),
        gettext_noop("%(pct)s %% of requests without a 5xx"),
        {},
    ),
    (
        re.compile(rf"(?P<pct>{_NUMBER}) % of requests ≤ (?P<ms>{_NUMBER}) ms"),
        gettext_noop("%(pct)s %% of requests ≤ %(ms)s ms"),
        {},
    ),
    # The minute check's incidents (optimizations.jobs.availability).
    (
        re.compile(rf"Connection-pool use (?P<value>{_NUMBER}) % > (?P<limit>{_NUMBER}) %"),
        gettext_noop("Connection-pool use %(value)s %% > %(limit)s %%"),
        {},
    ),
    (
        re.compile(rf"Error rate (?P<value>{_NUMBER}) % > (?P<limit>{_NUMBER}) %"),
        gettext_noop("Error rate %(value)s %% > %(limit)s %%"),
        {},
    ),
    (
        re.compile(r"(?P<target>.+) is down: (?P<detail>.*)", re.DOTALL),
        gettext_noop("%(target)s is down: %(detail)s"),
        {},
    ),
    # What an incident's timeline says (optimizations.observe.incidents).
    (
        re.compile(r"The (?P<source>[\w-]+) alert (?P<key>\S+) cleared\."),
        gettext_noop("The %(source)s alert %(key)s cleared."),
        {},
    ),
    (
        re.compile(r"Nobody acknowledged it within (?P<minutes>\d+) minutes\."),
        gettext_noop("Nobody acknowledged it within %(minutes)s minutes."),
        {},
    ),
    (
        re.compile(re.escape("Escalated to the department's managers.")),
        gettext_noop("Escalated to the department's managers."),
        {},
    ),
    (re.compile(re.escape("Resolved by hand.")), gettext_noop("Resolved by hand."), {}),
    (
        re.compile(r"Postmortem written; (?P<n>\d+) task\(s\) in “(?P<initiative>.+)”\."),
        gettext_noop("Postmortem written; %(n)s task(s) in “%(initiative)s”."),
        {},
    ),
    (
        re.compile(r"Postmortem revised; (?P<n>\d+) task\(s\) in “(?P<initiative>.+)”\."),
        gettext_noop("Postmortem revised; %(n)s task(s) in “%(initiative)s”."),
        {},
    ),
    (
        re.compile(
            r"Postmortem written; (?P<n>\d+) follow-up\(s\) on the incident "
            r"\(no open initiative\)\."
        ),
        gettext_noop(
            "Postmortem written; %(n)s follow-up(s) on the incident (no open initiative)."
        ),
        {},
    ),
    (
        re.compile(
            r"Postmortem revised; (?P<n>\d+) follow-up\(s\) on the incident "
            r"\(no open initiative\)\."
        ),
        gettext_noop(
            "Postmortem revised; %(n)s follow-up(s) on the incident (no open initiative)."
        ),
        {},
    ),
]

# Where an incident's messages went (incidents._notified): "email ×2, inbox ×3".
_CHANNELS = dict(Delivery.CHANNELS)
_SENT = re.compile(r"(?P<channel>\w+) ×(?P<count>\d+)")

# A burn-rate incident's summary (optimizations.observe.alerting._open_and_resolve).
_BURNING = re.compile(
    r"(?P<target>.+): (?P<label>Availability|Error rate|Latency) budget burning "
    r"\((?P<objective>[^()]+)\) — (?P<why>.+)",
    re.DOTALL,
)
_RULE_REASON = re.compile(r"(?P<rule>[^;:]+): (?P<reason>[^;]+)")


def stored(text: str) -> str:
    """``text`` in the active language when Kaizen wrote it in a known shape, else as is."""
    if not text:
        return text
    burning = _BURNING.fullmatch(text)
    if burning:
        reasons = [_RULE_REASON.fullmatch(part) for part in burning["why"].split("; ")]
        if all(reasons):
            why = pgettext("between sentences", "; ").join(
                gettext("%(rule)s: %(reason)s")
                % {"rule": _rule(m["rule"]), "reason": stored(m["reason"])}
                for m in reasons
                if m is not None
            )
            return gettext("%(target)s: %(label)s budget burning (%(objective)s) — %(why)s") % {
                "target": burning["target"],
                "label": gettext(OBJECTIVE_LABELS[burning["label"]]),
                "objective": stored(burning["objective"]),
                "why": why,
            }
    sent = [_SENT.fullmatch(part) for part in text.split(", ")]
    if all(m is not None and m["channel"] in _CHANNELS for m in sent):
        return ", ".join(f"{_CHANNELS[m['channel']]} ×{m['count']}" for m in sent if m is not None)
    for pattern, msgid, put in _SENTENCES:
        found = pattern.fullmatch(text)
        if found:
            values = {
                name: put[name](value) if name in put else value
                for name, value in found.groupdict().items()
            }
            return gettext(msgid) % values
    return text


def rule_name(name: str) -> str:
    return _rule(name)


def kind(value: str) -> str:
    return gettext(KINDS[value]) if value in KINDS else value


def source(value: str) -> str:
    return gettext(SOURCES[value]) if value in SOURCES else value


def objective_label(key: str) -> str:
    labels = {objective.key: objective.label for objective in budgets.OBJECTIVES}
    return str(labels[key]) if key in labels else key
