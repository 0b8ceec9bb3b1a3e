"""Error budgets and multiwindow, multi-burn-rate alerts (the SRE workbook, chapter 5).

An SLO with a budget counts events: each is good or bad (a minute check up or
down, a request served without error within the latency objective or not).
With an objective of 99.9 % the budget is the 0.1 % of events allowed to be
bad; the *burn rate* over a window is the bad share in it divided by that
allowance (1× spends exactly the budget over the SLO period).

An alert rule fires when the burn rate is at or above its threshold over both
a long window (the budget really is going) and a short one (it is still going
now, so an alert stops soon after the cause is gone). The workbook's rules for
a 30-day budget: 14.4× over 1 h and 5 min (2 % of the budget in an hour) and
6× over 6 h and 30 min (5 % in six hours) page; 1× over 3 days and 6 h (10 %
in three days) opens a ticket.

Events come in time buckets (:class:`Bucket`, one a minute by default,
:func:`bucketize`). A bucket counts in a window ``(now − window, now]`` when
it starts within it: at ``now`` = 12:00 with minute buckets the 5-minute
window holds the buckets of 11:55 to 11:59. ``now`` comes from an injected
clock so windows can be tested to the minute.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ..base import FAIL, INCOMPLETE, PASS

Clock = Callable[[], datetime]
MINUTE = timedelta(minutes=1)
PAGE, TICKET = "page", "ticket"
SEVERITIES = (PAGE, TICKET)
ENABLE_EVENTS = (
    "give the target a health path for minute checks, send its traces "
    "(OTLP), or name a Prometheus expression for this SLO"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Bucket:
    """Good and bad events of one time bucket starting at ``start`` (aware)."""

    start: datetime
    good: int
    bad: int


@dataclass(frozen=True)
class AlertRule:
    """Fire when the burn rate is ≥ ``burn_rate`` over both windows."""

    name: str
    severity: str  # PAGE or TICKET
    burn_rate: float
    long_window: timedelta
    short_window: timedelta

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.name}: severity must be page or ticket, not {self.severity!r}")
        if not (self.burn_rate > 0 and math.isfinite(self.burn_rate)):
            raise ValueError(f"{self.name}: the burn rate must be a positive number")
        if not timedelta(0) < self.short_window < self.long_window:
            raise ValueError(f"{self.name}: the short window must be shorter than the long one")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for storing edited rules (windows in seconds)."""
        return {
            "name": self.name,
            "severity": self.severity,
            "burn_rate": self.burn_rate,
            "long_window_s": int(self.long_window.total_seconds()),
            "short_window_s": int(self.short_window.total_seconds()),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertRule:
        """The rule of :meth:`as_dict`; ValueError naming what is wrong or missing."""
        try:
            name, severity = str(data["name"]), str(data["severity"])
            numbers = [float(data[key]) for key in ("burn_rate", "long_window_s", "short_window_s")]
        except KeyError as missing:
            raise ValueError(f"an alert rule needs {missing.args[0]}") from None
        except (TypeError, ValueError):
            raise ValueError(
                "an alert rule's burn_rate, long_window_s and short_window_s are numbers"
            ) from None
        burn_rate, long_s, short_s = numbers
        return cls(name, severity, burn_rate, timedelta(seconds=long_s), timedelta(seconds=short_s))


DEFAULT_RULES = (
    AlertRule("fast burn", PAGE, 14.4, timedelta(hours=1), timedelta(minutes=5)),
    AlertRule("slow burn", PAGE, 6.0, timedelta(hours=6), timedelta(minutes=30)),
    AlertRule("steady burn", TICKET, 1.0, timedelta(days=3), timedelta(hours=6)),
)


@dataclass(frozen=True)
class WindowRate:
    """Events over one window and their burn rate (None: no events, nothing to judge)."""

    window: timedelta
    good: int
    bad: int
    burn_rate: float | None

    @property
    def total(self) -> int:
        return self.good + self.bad


@dataclass(frozen=True)
class AlertState:
    """One rule judged now: fail = firing, pass = quiet, incomplete = a window saw nothing."""

    rule: AlertRule
    long: WindowRate
    short: WindowRate
    verdict: str
    reason: str

    @property
    def firing(self) -> bool:
        return self.verdict == FAIL


@dataclass(frozen=True)
class Budget:
    """The error budget of the calendar month (UTC) so far."""

    objective: float
    period_start: datetime
    period_end: datetime
    good: int
    bad: int

    @property
    def total(self) -> int:
        return self.good + self.bad

    @property
    def allowed_bad(self) -> float:
        """Bad events the objective allows among the events so far."""
        return (1 - self.objective) * self.total

    @property
    def consumed(self) -> float | None:
        """Share of the budget spent (1.0: all of it; above: overspent); None without events."""
        return self.bad / self.allowed_bad if self.total else None

    @property
    def remaining(self) -> float | None:
        """Share of the budget left; negative when overspent; None without events."""
        consumed = self.consumed
        return None if consumed is None else 1 - consumed

    @property
    def verdict(self) -> str:
        remaining = self.remaining
        if remaining is None:
            return INCOMPLETE
        return PASS if remaining > 0 else FAIL


def _check_objective(objective: float) -> None:
    if not 0 < objective < 1:
        raise ValueError(
            f"an objective with a budget lies strictly between 0 and 1, not {objective}"
        )


def _now(clock: Clock) -> datetime:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the clock must give an aware datetime (UTC)")
    return now


def window_rate(
    buckets: Iterable[Bucket], objective: float, window: timedelta, now: datetime
) -> WindowRate:
    """Events of the buckets that start in ``(now − window, now]`` and their burn rate."""
    _check_objective(objective)
    since = now - window
    good = bad = 0
    for bucket in buckets:
        if since <= bucket.start < now:
            good += bucket.good
            bad += bucket.bad
    total = good + bad
    rate = (bad / total) / (1 - objective) if total else None
    return WindowRate(window, good, bad, rate)


def evaluate(
    buckets: Sequence[Bucket],
    objective: float,
    rules: Sequence[AlertRule] = DEFAULT_RULES,
    *,
    clock: Clock = utc_now,
) -> list[AlertState]:
    """Every rule judged at ``clock()``."""
    now = _now(clock)
    states = []
    for rule in rules:
        long = window_rate(buckets, objective, rule.long_window, now)
        short = window_rate(buckets, objective, rule.short_window, now)
        states.append(_judge(rule, long, short))
    return states


def _judge(rule: AlertRule, long: WindowRate, short: WindowRate) -> AlertState:
    if long.burn_rate is None or short.burn_rate is None:
        empty = long if long.burn_rate is None else short
        reason = f"no events in the last {_span(empty.window)}: {ENABLE_EVENTS}"
        return AlertState(rule, long, short, INCOMPLETE, reason)
    figures = (
        f"burn rate {long.burn_rate:.1f}× over {_span(rule.long_window)}, "
        f"{short.burn_rate:.1f}× over {_span(rule.short_window)} "
        f"(threshold {rule.burn_rate:g}×)"
    )
    if long.burn_rate >= rule.burn_rate and short.burn_rate >= rule.burn_rate:
        return AlertState(rule, long, short, FAIL, figures)
    return AlertState(rule, long, short, PASS, figures)


def budget(buckets: Iterable[Bucket], objective: float, *, clock: Clock = utc_now) -> Budget:
    """The budget of the current calendar month (UTC), from the events so far."""
    _check_objective(objective)
    now = _now(clock).astimezone(UTC)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    good = bad = 0
    for bucket in buckets:
        if start <= bucket.start < min(now, end):
            good += bucket.good
            bad += bucket.bad
    return Budget(objective, start, end, good, bad)


def bucketize(events: Iterable[tuple[datetime, bool]], width: timedelta = MINUTE) -> list[Bucket]:
    """(time, good) events into buckets of ``width`` aligned on the Unix epoch, oldest first."""
    step = int(width.total_seconds() * 1_000_000)
    if step <= 0:
        raise ValueError("a bucket must be longer than zero")
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for moment, good in events:
        if moment.tzinfo is None:
            raise ValueError("event times must be aware datetimes (UTC)")
        offset = (moment - epoch) // timedelta(microseconds=1)
        counts[offset - offset % step][0 if good else 1] += 1
    return [
        Bucket(epoch + timedelta(microseconds=start), good, bad)
        for start, (good, bad) in sorted(counts.items())
    ]


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
