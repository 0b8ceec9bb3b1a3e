"""Error budgets: the good and bad events of the three SLOs that count events.

Decided in issue 16: a budget needs good/bad events, so only these SLOs have one —

- availability: each minute check is an event, good when the target answered its health
  path (objective: the availability SLO, 99.9 % by default);
- error rate: each request, bad when it failed with a 5xx (objective: 100 % minus the
  error-rate SLO, 99 % by default);
- latency: each request, good when it was served within the p99 SLO's bound (500 ms by
  default) — the p99 SLO restated as "99 % of requests ≤ 500 ms".

Requests are counted from Prometheus where the target names expressions for a minute's
events, else from its traces, else (error rate) from the minute check's counters of its
/metrics. DESIGN's average-based SLOs have no budget.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from optimizations.analyzers.observe import burnrate
from optimizations.models import Measurement, TargetService, Trace

MINUTE = datetime.timedelta(minutes=1)
LATENCY_SHARE = 0.99
PROMETHEUS, TRACES, MINUTE_CHECK = "prometheus", "traces", "minute-check"


@dataclass(frozen=True)
class Objective:
    key: str  # the SLO it belongs to
    label: object


OBJECTIVES = (
    Objective("availability_pct", _("Availability")),
    Objective("error_rate_pct", _("Error rate")),
    Objective("p99_ms", _("Latency")),
)


def objective_of(target: TargetService, key: str) -> float:
    """The share of good events the SLO asks for."""
    thresholds = target.thresholds()
    if key == "availability_pct":
        return thresholds["availability_pct"] / 100
    if key == "error_rate_pct":
        return 1 - thresholds["error_rate_pct"] / 100
    return LATENCY_SHARE


def describe(target: TargetService, key: str) -> str:
    thresholds = target.thresholds()
    if key == "availability_pct":
        return f"{thresholds['availability_pct']:g} % of minute checks up"
    if key == "error_rate_pct":
        return f"{100 - thresholds['error_rate_pct']:g} % of requests without a 5xx"
    return f"{LATENCY_SHARE * 100:g} % of requests ≤ {thresholds['p99_ms']:g} ms"


def _prometheus_buckets(target, since, now, bad_name) -> list[burnrate.Bucket]:
    rows = Measurement.objects.filter(
        target=target, name__in=("events.requests", bad_name), measured_at__gte=since
    ).values_list("name", "value", "measured_at")
    minutes: dict[datetime.datetime, dict[str, float]] = {}
    for name, value, at in rows:
        # An answer at 12:01 counts the minute that began at 12:00.
        minutes.setdefault(at - MINUTE, {})[name] = value
    # A minute counts only with both answers: requests alone say nothing of the bad ones.
    return [
        burnrate.Bucket(start, max(round(total - bad), 0), round(min(bad, total)))
        for start, found in sorted(minutes.items())
        if len(found) == 2
        for total, bad in [(found["events.requests"], found[bad_name])]
        if total > 0
    ]


def _trace_buckets(target, since, key) -> list[burnrate.Bucket]:
    bound = target.thresholds()["p99_ms"]
    rows = Trace.objects.filter(
        target=target, started_at__gte=since, duration_ms__isnull=False
    ).values_list("started_at", "duration_ms", "error")
    events: list[tuple[datetime.datetime, bool]] = []
    for at, ms, error in rows:
        if at is not None and ms is not None:  # both filtered in SQL; for the type checker
            events.append((at, not error) if key == "error_rate_pct" else (at, ms <= bound))
    return burnrate.bucketize(events)


def _counter_buckets(target, since) -> list[burnrate.Bucket]:
    """Deltas of the minute check's request and error counters (a restart resets them)."""
    rows = Measurement.objects.filter(
        target=target,
        name__in=("metrics.requests_total", "metrics.errors_total"),
        measured_at__gte=since - 2 * MINUTE,
    ).values_list("measured_at", "name", "value")
    checks: dict[datetime.datetime, dict[str, float]] = {}
    for at, name, value in rows:
        checks.setdefault(at, {})[name] = value
    buckets, previous = [], None
    for at in sorted(checks):
        now_counts = checks[at]
        if len(now_counts) == 2 and previous is not None and at >= since:
            total = now_counts["metrics.requests_total"] - previous["metrics.requests_total"]
            bad = now_counts["metrics.errors_total"] - previous["metrics.errors_total"]
            if total > 0 and bad >= 0:
                buckets.append(burnrate.Bucket(at - MINUTE, round(total - bad), round(bad)))
        if len(now_counts) == 2:
            previous = now_counts
    return buckets


def events(target: TargetService, key: str, since, now) -> tuple[list[burnrate.Bucket], str]:
    """The objective's events from ``since`` on, minute buckets oldest first, and their
    source ("" when the target has none)."""
    if key == "availability_pct":
        rows = Measurement.objects.filter(
            target=target, name="availability.up", measured_at__gte=since, measured_at__lt=now
        ).values_list("measured_at", "value")
        buckets = burnrate.bucketize((at, value >= 1) for at, value in rows)
        return buckets, MINUTE_CHECK if buckets else ""
    bad_name = "events.errors" if key == "error_rate_pct" else "events.slow"
    buckets = _prometheus_buckets(target, since, now, bad_name)
    if buckets:
        return buckets, PROMETHEUS
    buckets = _trace_buckets(target, since, key)
    if buckets:
        return buckets, TRACES
    if key == "error_rate_pct":
        buckets = _counter_buckets(target, since)
        if buckets:
            return buckets, MINUTE_CHECK
    return [], ""


def month_start(now: datetime.datetime) -> datetime.datetime:
    return now.astimezone(datetime.UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def times_spent(remaining_pct: float | None) -> float | None:
    """How many budgets were spent, once past the budget (None before): a budget left of
    -14 185.7 % reads as 142.9× the budget spent."""
    return (
        None if remaining_pct is None or remaining_pct >= 0 else round(1 - remaining_pct / 100, 1)
    )


@dataclass
class BudgetRow:
    key: str
    label: object
    objective: str
    source: str
    budget: burnrate.Budget

    @property
    def remaining_pct(self) -> float | None:
        left = self.budget.remaining
        return None if left is None else round(100 * left, 1)

    @property
    def spent_times(self) -> float | None:
        return times_spent(self.remaining_pct)

    def as_dict(self) -> dict:
        return {
            "slo": self.key,
            "objective": self.objective,
            "source": self.source,
            "good": self.budget.good,
            "bad": self.budget.bad,
            "remaining_pct": self.remaining_pct,
            "verdict": self.budget.verdict,
        }


def budgets(target: TargetService, now=None) -> list[BudgetRow]:
    """The budget left this month (UTC) of each SLO that counts events."""
    now = now or timezone.now()
    rows = []
    for objective in OBJECTIVES:
        buckets, source = events(target, objective.key, month_start(now), now)
        spent = burnrate.budget(buckets, objective_of(target, objective.key), clock=lambda: now)
        rows.append(
            BudgetRow(
                objective.key, objective.label, describe(target, objective.key), source, spent
            )
        )
    return rows
