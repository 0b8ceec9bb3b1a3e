"""A target's traces in the portal: the ingestion token, per-endpoint figures over a
window, the slowest requests and one request's waterfall (issue 16).

The traces come in through ``optimizations.targets.traces`` (OTLP/HTTP); the figures are
``optimizations.analyzers.observe.traces``'s, computed from the stored spans of the window
(at most ``MAX_TRACES`` of them, newest first, said on the page when more came in).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from optimizations.analyzers.observe import otlp, traces
from optimizations.analyzers.secrets import mask_credentials
from optimizations.models import Trace
from optimizations.reports import charts
from optimizations.targets.traces import do_issue_token
from portal import access
from portal.http import HtmxHttpRequest

WINDOWS = {
    "1h": (datetime.timedelta(hours=1), gettext_lazy("last hour")),
    "24h": (datetime.timedelta(hours=24), gettext_lazy("last 24 hours")),
    "7d": (datetime.timedelta(days=7), gettext_lazy("last 7 days")),
}
DEFAULT_WINDOW = "24h"
# The traces a page analyses at most: the newest of the window.
MAX_TRACES = 1000
SLOWEST = 10
# The spans a waterfall draws at most (a trace may keep 5 000): the first in its order.
MAX_ROWS = 300
# Statements longer than this are cut in the waterfall's labels (the table has them whole).
LABEL_CHARS = 60


def endpoint_url(request, slug: str) -> str:
    """The URL an OpenTelemetry exporter posts this target's traces to."""
    return request.build_absolute_uri(reverse("otlp_traces", args=[slug]))


def masked_sql(text: str) -> str:
    """A statement as findings show it: its values taken out (the statement family) and
    any credential masked."""
    return mask_credentials(traces.statement_family(text)) if text else ""


@dataclass
class Window:
    key: str
    since: datetime.datetime
    label: str


def _window(request, now) -> Window:
    key = request.GET.get("window", DEFAULT_WINDOW)
    if key not in WINDOWS:
        key = DEFAULT_WINDOW
    span, label = WINDOWS[key]
    return Window(key, now - span, str(label))


def _figures(target, window: Window) -> dict:
    """The window's figures: endpoints, the slowest requests and the counts."""
    in_window = Trace.objects.filter(target=target, received_at__gte=window.since)
    received = in_window.count()
    rows = list(
        in_window.order_by("-received_at", "-pk").values_list("spans", flat=True)[:MAX_TRACES]
    )
    spans = [otlp.Span(**data) for row in rows for data in row]
    found = traces.requests(spans)
    endpoints = traces.endpoints(found.requests)
    labels = {"db": _("database"), "app": _("app"), "outbound": _("outbound")}
    figure = charts.endpoint_time_split(
        [
            {
                "endpoint": e.endpoint,
                "db_ms": e.db_ms,
                "app_ms": e.app_ms,
                "outbound_ms": e.outbound_ms,
                "labels": labels,
            }
            for e in endpoints
        ]
    )
    slowest = list(
        in_window.filter(duration_ms__isnull=False)
        .order_by("-duration_ms", "pk")
        .only(
            "trace_id",
            "endpoint",
            "duration_ms",
            "error",
            "statements",
            "span_count",
            "started_at",
            "target_id",
        )[:SLOWEST]
    )
    return {
        "window": window,
        "windows": [(key, str(label)) for key, (_, label) in WINDOWS.items()],
        "received": received,
        "analysed": len(rows),
        "truncated": received > len(rows),
        "requests": len(found.requests),
        "orphans": found.orphans,
        "endpoints": endpoints,
        "time_split": charts.to_json(figure) if figure else None,
        "slowest": slowest,
    }


def _token(request, target, new_key: str = "") -> dict:
    return {
        "target": target,
        "endpoint": endpoint_url(request, target.slug),
        "new_key": new_key,
        "can_issue": access.can_edit_targets(request.user),
    }


@require_GET
def target_traces(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """A target's Traces page; an htmx request for another window gets its figures only."""
    target = access.get_target_for_user(request, slug)
    figures = _figures(target, _window(request, timezone.now()))
    if request.htmx and request.htmx.target == "trace-figures":
        return render(
            request, "optimizations/observe/traces.html#figures", {"target": target, **figures}
        )
    total = Trace.objects.filter(target=target).aggregate(n=Count("pk"))["n"]
    return render(
        request,
        "optimizations/observe/traces.html",
        {**_token(request, target), **figures, "total": total},
    )


@require_POST
def otlp_token_issue(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    """A new ingestion token (the previous one stops working), shown this once."""
    target = access.get_target_for_user(request, slug, write=True)
    key = do_issue_token(request.user, target)
    context = _token(request, target, key)
    if request.htmx:
        return render(request, "optimizations/observe/traces.html#token", context)
    figures = _figures(target, _window(request, timezone.now()))
    total = Trace.objects.filter(target=target).count()
    return render(
        request, "optimizations/observe/traces.html", {**context, **figures, "total": total}
    )


@require_GET
def trace_waterfall(request: HtmxHttpRequest, slug: str, trace_id: str) -> HttpResponse:
    """One request of a trace as a waterfall: its spans as bars with their offsets and
    depths, SQL masked as findings show it, and the same rows as a table."""
    trace = access.get_trace_for_user(request, slug, trace_id)
    spans = [otlp.Span(**data) for data in trace.spans]
    found = traces.requests(spans)
    chosen = request.GET.get("span") or None
    rows = traces.waterfall(spans, trace.trace_id, chosen)
    if not rows and chosen:
        rows = traces.waterfall(spans, trace.trace_id)
    request_of = next((r for r in found.requests if rows and r.span_id == rows[0].span_id), None)
    categories = {"db": _("database"), "app": _("app"), "outbound": _("outbound")}
    shown = []
    for row in rows[:MAX_ROWS]:
        detail = masked_sql(row.detail) if row.category == traces.DB else row.detail
        shown.append(
            {
                "row": row,
                "detail": detail,
                "key": row.span_id,
                "label": "· " * row.depth
                + _short(detail if row.category == traces.DB else row.name),
                "offset_ms": row.offset_ms,
                "duration_ms": row.duration_ms,
                "category": row.category,
                "category_label": categories[row.category],
                "hover": _short(detail or row.name, 120),
            }
        )
    figure = charts.trace_waterfall(shown)
    families = request_of.families().most_common() if request_of else []
    return render(
        request,
        "optimizations/observe/waterfall.html",
        {
            "trace": trace,
            "target": trace.target,
            "rows": shown,
            "span_total": len(rows),
            "request_of": request_of,
            "others": [
                r for r in found.requests if request_of is None or r.span_id != request_of.span_id
            ],
            "figure": charts.to_json(figure) if figure else None,
            "split": {
                "db": request_of.db_ns / 1e6,
                "app": request_of.app_ns / 1e6,
                "outbound": request_of.outbound_ns / 1e6,
                "statements": len(request_of.statements),
            }
            if request_of
            else None,
            "repeated": [
                (masked_sql(family), count)
                for family, count in families
                if count >= traces.N_PLUS_ONE_THRESHOLD
            ],
        },
    )


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
