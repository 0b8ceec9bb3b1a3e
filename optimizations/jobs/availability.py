"""The minute check: each target's health endpoint and /metrics, uptime and incidents.

Every minute beat asks each target for its health (up or down, and how fast)
and, where it has one, its /metrics (pool use, error rate). Each answer is a
Measurement, so uptime over 24 h / 7 d / 30 d and the SLO board read the
same rows. Three bad minutes in a row open an incident (optimizations.observe.incidents:
the owners and HR hear of it); the first good one resolves it.
"""

from __future__ import annotations

import datetime
import logging

from django.db.models import Avg, Q
from django.utils import timezone

from departments.models import Membership
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.netguard import HostNotAllowed
from optimizations.analyzers.probe import Client, parse_prometheus, pool_use_percent, request_counts
from optimizations.jobs.runner import target_spec
from optimizations.models import Incident, Measurement, TargetService
from optimizations.observe import incidents
from optimizations.targets.crypto import CredentialUnreadable

logger = logging.getLogger(__name__)

BREACH_MINUTES = 3
SOURCE = "minute-check"
WINDOWS = {
    "24 h": datetime.timedelta(hours=24),
    "7 d": datetime.timedelta(days=7),
    "30 d": datetime.timedelta(days=30),
}


def check_all(now=None) -> int:
    now = now or timezone.now()
    checked = 0
    for target in TargetService.objects.all():
        try:
            check_target(target, now)
            checked += 1
        except Exception:  # one broken target must not stop the others' checks
            logger.exception("availability check of %s failed", target.slug)
    return checked


def check_target(target: TargetService, now=None) -> dict:
    now = now or timezone.now()
    rows: list[tuple[str, float, str]] = []
    detail = ""
    try:
        client = Client(target_spec(target, with_database=False), timeout=5.0)
        health = client.get(target.health_path)
        up = 200 <= health.status < 300
        detail = f"health answered {health.status}"
        rows.append(("availability.health_ms", health.elapsed_ms, "ms"))
    except (AnalysisError, HostNotAllowed, CredentialUnreadable) as error:
        up, client = False, None
        detail = str(error)
    rows.append(("availability.up", 1.0 if up else 0.0, "bool"))
    pool = error_rate = None
    if up and client and target.metrics_path:
        pool, error_rate, counter_rows = _read_metrics(client, target)
        rows.extend(counter_rows)
    Measurement.objects.bulk_create(
        Measurement(target=target, name=name, value=value, unit=unit, measured_at=now)
        for name, value, unit in rows
    )
    thresholds = target.thresholds()
    _track(target, Incident.DOWN, "", not up, now, f"{target.name} is down: {detail}")
    if pool is not None:
        _track(
            target,
            Incident.SLO,
            "pool_use_pct",
            pool > thresholds["pool_use_pct"],
            now,
            f"Connection-pool use {pool:.0f} % > {thresholds['pool_use_pct']:g} %",
        )
    if error_rate is not None:
        _track(
            target,
            Incident.SLO,
            "error_rate_pct",
            error_rate > thresholds["error_rate_pct"],
            now,
            f"Error rate {error_rate:.1f} % > {thresholds['error_rate_pct']:g} %",
        )
    return {"up": up, "pool_use_pct": pool, "error_rate_pct": error_rate, "detail": detail}


def _read_metrics(client, target):
    rows = []
    try:
        answer = client.get(target.metrics_path)
    except AnalysisError:
        return None, None, rows
    if answer.status >= 400:
        return None, None, rows
    metrics = parse_prometheus(answer.body.decode("utf-8", "replace"))
    pool = pool_use_percent(metrics)
    if pool is not None:
        rows.append(("metrics.pool_use", pool, "%"))
    error_rate = None
    counts = request_counts(metrics)
    if counts:
        total, errors = counts
        rows.append(("metrics.requests_total", total, "count"))
        rows.append(("metrics.errors_total", errors, "count"))
        previous = _last(target, "metrics.requests_total"), _last(target, "metrics.errors_total")
        if previous[0] is not None and previous[1] is not None and total > previous[0]:
            error_rate = 100.0 * max(0.0, errors - previous[1]) / (total - previous[0])
            rows.append(("metrics.error_rate", error_rate, "%"))
    return pool, error_rate, rows


def _last(target, name):
    return (
        Measurement.objects.filter(target=target, name=name)
        .order_by("-measured_at")
        .values_list("value", flat=True)
        .first()
    )


def _recent_breaches(target, kind, slo_key) -> int:
    """How many of the last minutes in a row were bad (the current one included)."""
    name = {
        "": "availability.up",
        "pool_use_pct": "metrics.pool_use",
        "error_rate_pct": "metrics.error_rate",
    }[slo_key]
    threshold = target.thresholds().get(slo_key)
    values = Measurement.objects.filter(target=target, name=name).order_by("-measured_at")
    run = 0
    for value in values.values_list("value", flat=True)[:BREACH_MINUTES]:
        bad = value < 1 if name == "availability.up" else value > threshold
        if not bad:
            break
        run += 1
    return run


def _track(target, kind, slo_key, bad: bool, now, message: str) -> None:
    """Open an incident after BREACH_MINUTES bad minutes, resolve it at the first good one
    (through the same functions every alert uses: optimizations.observe.incidents)."""
    key = f"slo:{slo_key}" if slo_key else "down"
    if bad:
        if _recent_breaches(target, kind, slo_key) >= BREACH_MINUTES:
            incidents.open_from_alert(
                target,
                SOURCE,
                key,
                message,
                "critical" if kind == Incident.DOWN else "high",
                kind=kind,
                slo_key=slo_key,
                started_at=now - datetime.timedelta(minutes=BREACH_MINUTES - 1),
                now=now,
            )
    else:
        incidents.resolve_from_alert(target, SOURCE, key, now=now)


def owners(target: TargetService):
    """The managers and engineers of the target's owning department."""
    return [
        membership.user
        for membership in Membership.objects.filter(
            department=target.owner_department_id,
            role__in=(Membership.MANAGER, Membership.ENGINEER),
        ).select_related("user")
    ]


def uptime(target: TargetService, now=None) -> dict[str, float | None]:
    """Share of minute checks that found the target up, per window (None: no checks).

    One pass over the longest window, each window an AVG … FILTER; on PostgreSQL
    the covering index (target, name, measured_at) INCLUDE (value) answers it
    without reading the table.
    """
    now = now or timezone.now()
    longest = max(WINDOWS.values())
    # Aliases may not hold spaces: window_0, window_1, … in WINDOWS order.
    averages = Measurement.objects.filter(
        target=target, name="availability.up", measured_at__gte=now - longest
    ).aggregate(
        **{
            f"window_{index}": Avg("value", filter=Q(measured_at__gte=now - span))
            for index, span in enumerate(WINDOWS.values())
        }
    )
    result = {}
    for index, label in enumerate(WINDOWS):
        value = averages[f"window_{index}"]
        result[label] = None if value is None else round(100.0 * value, 3)
    return result
