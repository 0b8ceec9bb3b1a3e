"""The figures of continuous observation, the same for the pages and the status command.

Per target: which sources are configured (minute checks, /metrics, Prometheus, traces),
how many traces came in and Prometheus answers were stored, the latest continuous figure
beside each SLO (labelled with its source), the budget left this month and the alerts
firing now.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from optimizations.models import Measurement, ObserveSettings, TargetService, Trace
from optimizations.observe import alerting, budgets, sources


def continuous(target: TargetService) -> dict[str, dict]:
    """The latest Prometheus figure of each expression: {SLO key or query key: {value, unit,
    at, source, label, slo}} — one query, a LIMIT 1 per expression glued by UNION ALL."""
    shown = [query for query in sources.QUERIES if not query.name.startswith("events.")]
    latest_first = (
        Measurement.objects.filter(target=target).order_by("-measured_at", "-pk").values("pk")
    )
    fields = Measurement.objects.order_by().values_list("name", "value", "unit", "measured_at")
    parts = [fields.filter(pk__in=latest_first.filter(name=query.name)[:1]) for query in shown]
    by_name = {query.name: query for query in shown}
    figures = {}
    for name, value, unit, at in parts[0].union(*parts[1:], all=True).order_by():
        query = by_name[name]
        figures[query.slo or query.key] = {
            "key": query.key,
            "label": str(query.label),
            "slo": query.slo,
            "value": value,
            "unit": unit,
            "at": at,
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


def stored_budgets(observe: ObserveSettings) -> dict[str, dict]:
    """The budgets the minute's evaluation stored, by SLO key, with their labels."""
    labels = {objective.key: objective.label for objective in budgets.OBJECTIVES}
    return {
        row["slo"]: {
            **row,
            "label": labels.get(row["slo"], row["slo"]),
            "spent_times": budgets.times_spent(row.get("remaining_pct")),
        }
        for row in observe.budgets or []
    }


def status(target: TargetService) -> dict:
    """Everything ``manage.py observability status`` prints for one target: the figures
    the pages show (budgets and alerts as the latest minute's evaluation left them)."""
    observe = sources.read_settings(target)
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
        "budgets": list(observe.budgets or []),
        "open_alerts": [
            {key: entry[key] for key in ("slo", "rule", "route", "reason", "since")}
            for entry in alerting.firing(observe)
        ],
        "evaluated_at": observe.evaluated_at.isoformat() if observe.evaluated_at else None,
    }


def board(target: TargetService) -> dict:
    """What the SLO board adds: continuous figures, budgets by SLO, alerts (two queries)."""
    observe = sources.read_settings(target)
    return {
        "observe": observe,
        "continuous": continuous(target),
        "budgets": stored_budgets(observe),
        "alerts": sorted(
            (observe.evaluation or {}).values(), key=lambda entry: (entry["slo"], entry["rule"])
        ),
        "firing": alerting.firing(observe),
    }
