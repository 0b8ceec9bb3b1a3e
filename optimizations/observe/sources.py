"""Prometheus as a source: a target's PromQL read each minute into Measurements.

A target may name a Prometheus server (``ObserveSettings.prometheus_url``, held to
the target's own allow-list, KAIZEN_ALLOWED_TARGET_HOSTS) and a PromQL expression per
figure. The maintenance queue reads them every minute (``read_all``, from beat) and
stores each answer as a Measurement labelled ``{"source": "prometheus"}``:

- SLO figures (``prometheus.<slo key>``) the SLO board shows beside the benchmark's —
  gates and ROI stay on benchmark evidence;
- a minute's events (``events.requests``, ``events.errors``, ``events.slow``) that the
  error budgets and burn-rate alerts count (optimizations.observe.budgets).

The defaults fit the demo shop's metric names (``http_requests_total``,
``http_request_duration_seconds``, ``db_pool_*``, ``shop_cache_*``), scraped by
``./kaizen up --observability`` under a job named after the target's slug.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from optimizations.analyzers.observe.prometheus import Prometheus, PrometheusError
from optimizations.models import Measurement, ObserveSettings, TargetService

logger = logging.getLogger(__name__)

SOURCE = "prometheus"
TIMEOUT = 5.0  # seconds per query: twelve of them fit in the minute


@dataclass(frozen=True)
class Query:
    key: str
    label: Any  # a lazy translation (gettext_lazy)
    unit: str
    default: str  # a format string: {job} is the target's slug, {le} the latency bound in s
    name: str  # the Measurement's name
    slo: str = ""  # the SLO row it stands beside on the board


QUERIES = (
    Query(
        "p99_ms",
        _("p99 latency (from the request histogram)"),
        "ms",
        "1000 * histogram_quantile(0.99, sum by (le) "
        '(rate(http_request_duration_seconds_bucket{{job="{job}"}}[5m])))',
        "prometheus.p99_ms",
        "p99_ms",
    ),
    Query(
        "error_rate_pct",
        _("Error rate (5xx share of requests)"),
        "%",
        '100 * sum(rate(http_requests_total{{job="{job}",status=~"5.."}}[5m])) '
        '/ sum(rate(http_requests_total{{job="{job}"}}[5m]))',
        "prometheus.error_rate_pct",
        "error_rate_pct",
    ),
    Query(
        "pool_use_pct",
        _("Connection-pool use"),
        "%",
        '100 * max(db_pool_checked_out{{job="{job}"}}) / (max(db_pool_size{{job="{job}"}}) '
        '+ max(db_pool_max_overflow{{job="{job}"}}))',
        "prometheus.pool_use_pct",
        "pool_use_pct",
    ),
    Query(
        "cache_hit_pct",
        _("Cache hit ratio"),
        "%",
        '100 * sum(rate(shop_cache_hits_total{{job="{job}"}}[5m])) / '
        '(sum(rate(shop_cache_hits_total{{job="{job}"}}[5m])) '
        '+ sum(rate(shop_cache_misses_total{{job="{job}"}}[5m])))',
        "prometheus.cache_hit_pct",
    ),
    Query(
        "requests_1m",
        _("Requests in the last minute (budget events)"),
        "count",
        'sum(increase(http_requests_total{{job="{job}"}}[1m]))',
        "events.requests",
    ),
    Query(
        "errors_1m",
        _("Failed requests (5xx) in the last minute (budget events)"),
        "count",
        'sum(increase(http_requests_total{{job="{job}",status=~"5.."}}[1m])) or vector(0)',
        "events.errors",
    ),
    Query(
        "slow_1m",
        _("Requests slower than the latency objective in the last minute (budget events)"),
        "count",
        'sum(increase(http_request_duration_seconds_count{{job="{job}"}}[1m])) - '
        'sum(increase(http_request_duration_seconds_bucket{{job="{job}",le="{le}"}}[1m]))',
        "events.slow",
    ),
)
BY_KEY = {query.key: query for query in QUERIES}
NAMES = tuple(query.name for query in QUERIES)
SLO_NAMES = {query.slo: query.name for query in QUERIES if query.slo}


def defaults(target: TargetService) -> dict[str, str]:
    """The demo's expressions for this target (its slug as the scrape job's name)."""
    bound = f"{target.thresholds()['p99_ms'] / 1000:g}"
    return {query.key: query.default.format(job=target.slug, le=bound) for query in QUERIES}


def settings_of(target: TargetService) -> ObserveSettings:
    """The target's observability settings, made empty on first use."""
    found, _created = ObserveSettings.objects.get_or_create(target=target)
    return found


def read_settings(target: TargetService) -> ObserveSettings:
    """The target's settings for a page (one query; unsaved and empty when there are none)."""
    return ObserveSettings.objects.filter(target=target).first() or ObserveSettings(target=target)


def client(observe: ObserveSettings, cancel=None) -> Prometheus:
    return Prometheus(
        observe.prometheus_url,
        allowed=tuple(settings.KAIZEN_ALLOWED_TARGET_HOSTS),
        timeout=TIMEOUT,
        cancel=cancel,
    )


def read_target(observe: ObserveSettings, now=None) -> dict:
    """Ask the target's Prometheus each expression, store the answers; what was read and
    what failed (each failure in Prometheus's or the client's words)."""
    now = now or timezone.now()
    target = observe.target
    if not observe.prometheus_url:
        return {"read": 0, "errors": []}
    prometheus = client(observe)
    rows, errors = [], []
    for key, expr in observe.queries.items():
        query = BY_KEY.get(key)
        if query is None or not str(expr).strip():
            continue
        try:
            # Every expression at the same instant: a minute's requests and its errors agree.
            value = prometheus.value(str(expr), at=now)
        except PrometheusError as error:
            errors.append(f"{key}: {error}")
            if error.kind in ("unreachable", "not_allowed", "not_prometheus"):
                break  # the server itself is the problem: the next expressions would say so too
            continue
        if value is None or value != value or value in (float("inf"), float("-inf")):
            continue  # no series (or no traffic: 0/0) — nothing measured this minute
        rows.append(
            Measurement(
                target=target,
                name=query.name,
                value=max(value, 0.0) if query.name.startswith("events.") else value,
                unit=query.unit,
                labels={"source": SOURCE, "query": key},
                measured_at=now,
            )
        )
    Measurement.objects.bulk_create(rows)
    ObserveSettings.objects.filter(pk=observe.pk).update(
        prometheus_read_at=now,
        prometheus_series=F("prometheus_series") + len(rows),
        prometheus_error="\n".join(errors)[:2000],
    )
    return {"read": len(rows), "errors": errors}


def read_all(now=None) -> int:
    """Every target with a Prometheus server: how many answers were stored."""
    now = now or timezone.now()
    stored = 0
    for observe in ObserveSettings.objects.exclude(prometheus_url="").select_related("target"):
        try:
            stored += read_target(observe, now)["read"]
        except Exception:  # one broken target must not stop the others' reads
            logger.exception("Prometheus read of %s failed", observe.target.slug)
    return stored
