"""The figures of continuous observation, the same for the pages and the status command.

Per target: which sources are configured (minute checks, /metrics, Prometheus, traces),
how many traces came in and Prometheus answers were stored, the latest continuous figure
beside each SLO (labelled with its source), the budget left this month and the alerts
firing now.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from optimizations.models import Measurement, ObserveSettings, TargetService, Trace
from optimizations.observe import alerting, budgets, sources


def continuous(target: TargetService) -> dict[str, dict]:
    """The latest Prometheus figure of each expression: {query key: {value, unit, at,
    source, label, slo}} (one indexed LIMIT 1 per expression)."""
    figures = {}
    for query in sources.QUERIES:
        if query.name.startswith("events."):
            continue
        row = (
            Measurement.objects.filter(target=target, name=query.name)
            .order_by("-measured_at", "-pk")
            .values("value", "unit", "measured_at")
            .first()
        )
        if row is None:
            continue
        figures[query.slo or query.key] = {
            "key": query.key,
            "label": str(query.label),
            "slo": query.slo,
            "value": row["value"],
            "unit": row["unit"],
            "at": row["measured_at"],
            "source": _("Prometheus"),
        }
    return figures


def configured(target: TargetService, observe: ObserveSettings) -> list[str]:
    """The continuous sources this target has."""
    found = []
    if target.health_path:
        found.append("minute-check")
    if target.metrics_path:
        found.append("metrics")
    if observe.prometheus_url:
        found.append("prometheus")
    if target.otlp_token_hash:
        found.append("traces")
    return found


def status(target: TargetService, now=None) -> dict:
    """Everything ``manage.py observability status`` prints for one target."""
    now = now or timezone.now()
    observe = sources.settings_of(target)
    return {
        "target": target.slug,
        "sources": configured(target, observe),
        "prometheus_url": observe.prometheus_url,
        "prometheus_series_read": observe.prometheus_series,
        "prometheus_read_at": observe.prometheus_read_at.isoformat()
        if observe.prometheus_read_at
        else None,
        "prometheus_error": observe.prometheus_error,
        "traces_received": Trace.objects.filter(target=target).count(),
        "budgets": [row.as_dict() for row in budgets.budgets(target, now)],
        "open_alerts": [
            {key: entry[key] for key in ("slo", "rule", "route", "reason", "since")}
            for entry in alerting.firing(observe)
        ],
        "evaluated_at": observe.evaluated_at.isoformat() if observe.evaluated_at else None,
    }


def board(target: TargetService, now=None) -> dict:
    """What the SLO board adds: continuous figures, budgets by SLO, alerts."""
    observe = sources.settings_of(target)
    return {
        "observe": observe,
        "continuous": continuous(target),
        "budgets": {row.key: row for row in budgets.budgets(target, now)},
        "alerts": sorted(
            (observe.evaluation or {}).values(), key=lambda entry: (entry["slo"], entry["rule"])
        ),
        "firing": alerting.firing(observe),
    }
