"""Connection use: server-side client backends against max_connections, and the
target's own client-side pool figures from its Prometheus ``/metrics``.

With the pool fully checked out, the server sees those connections as *idle*
or *idle in transaction*, not active: server state alone cannot measure pool
saturation, so both views are reported.
"""

from __future__ import annotations

import http.client
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .. import safehttp
from ..base import FindingData
from ..netguard import HostNotAllowed
from .common import DOCS, ScanState

# Metric names we understand, by role; the first present wins. The demo target
# and common SQLAlchemy exporters use one of these.
POOL_METRICS = {
    "size": ("db_pool_size", "sqlalchemy_pool_size", "db_pool_max_size"),
    "overflow_max": ("db_pool_max_overflow", "sqlalchemy_pool_max_overflow"),
    "checked_out": (
        "db_pool_checked_out",
        "db_pool_checkedout",
        "sqlalchemy_pool_checked_out",
        "sqlalchemy_pool_checkedout",
        "db_pool_in_use",
    ),
    "overflow": ("db_pool_overflow", "sqlalchemy_pool_overflow"),
    "timeouts": (
        "db_pool_checkout_timeouts_total",
        "db_pool_timeouts_total",
        "sqlalchemy_pool_checkout_timeouts_total",
        "db_pool_checkout_timeouts",
    ),
    "waiting": ("db_pool_waiting", "db_pool_checkout_waiting"),
}
QUERY_HISTOGRAMS = (
    "db_query_duration_seconds",
    "sqlalchemy_query_duration_seconds",
    "db_statement_duration_seconds",
)
_LINE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)"
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
METRICS_MAX_BYTES = 2 * 1024 * 1024


# Prometheus samples by metric name: [(labels, value), …].
type Metrics = dict[str, list[tuple[dict[str, str], float]]]


def parse_prometheus(text: str) -> Metrics:
    """Prometheus text exposition → {name: [(labels, value), ...]}."""
    metrics: Metrics = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line.strip())
        if not match:
            continue
        try:
            value = float(match.group("value"))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match.group("labels") or ""))
        metrics.setdefault(match.group("name"), []).append((labels, value))
    return metrics


def _total(metrics: Metrics, names: Iterable[str]) -> float | None:
    for name in names:
        if name in metrics:
            return sum(v for _, v in metrics[name])
    return None


@dataclass
class PoolSample:
    size: float | None
    overflow_max: float | None
    checked_out: float | None
    overflow: float | None
    timeouts: float | None
    waiting: float | None

    @property
    def capacity(self) -> float | None:
        if self.size is None:
            return None
        return self.size + max(self.overflow_max or 0.0, 0.0)

    @property
    def use_pct(self) -> float | None:
        if self.capacity is None or self.checked_out is None or self.capacity <= 0:
            return None
        return 100.0 * self.checked_out / self.capacity


def pool_sample(metrics: Metrics) -> PoolSample:
    return PoolSample(**{role: _total(metrics, names) for role, names in POOL_METRICS.items()})


def slow_count_from_histogram(metrics: Metrics, threshold_ms: float) -> tuple[float, float] | None:
    """(executions ≥ threshold, all executions) from a query-duration histogram whose
    buckets include the threshold exactly; None otherwise."""
    le = threshold_ms / 1000.0
    for name in QUERY_HISTOGRAMS:
        buckets = metrics.get(f"{name}_bucket")
        if not buckets:
            continue
        below = total = None
        for labels, value in buckets:
            bound = labels.get("le")
            if bound == "+Inf":
                total = (total or 0.0) + value
            elif bound is not None and math.isclose(float(bound), le, rel_tol=1e-9):
                below = (below or 0.0) + value
        if below is not None and total is not None:
            return total - below, total
    return None


@dataclass
class MetricsWatcher:
    """Scrapes the target's /metrics a few times during the scan window."""

    url: str
    allowed_hosts: tuple[str, ...]
    samples: list[PoolSample] = field(default_factory=list)
    first: Metrics | None = None
    last: Metrics | None = None
    error: str = ""

    def scrape(self) -> None:
        if self.error and not self.samples:
            return
        try:
            # Only http(s), the allow-list checked on the resolved address of the URL
            # and of every redirect hop (safehttp refuses file:// and the like).
            answer = safehttp.fetch(
                self.url, allowed=self.allowed_hosts, timeout=2, max_body=METRICS_MAX_BYTES
            )
        except (HostNotAllowed, OSError, http.client.HTTPException) as exc:
            self.error = str(exc) or type(exc).__name__
            return
        if answer.status >= 400:
            self.error = f"the metrics endpoint answered {answer.status}"
            return
        text = answer.body.decode("utf-8", "replace")
        metrics = parse_prometheus(text)
        if self.first is None:
            self.first = metrics
        self.last = metrics
        self.samples.append(pool_sample(metrics))


def connection_usage(state: ScanState) -> dict[str, Any]:
    """One sample of client backends by application_name and state (ours excluded)."""
    s = state.session
    rows = s.rows(
        "SELECT coalesce(nullif(application_name, ''), '(none)') AS app, "
        "coalesce(state, 'hidden') AS state, count(*) AS n FROM pg_stat_activity "
        "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
        "GROUP BY 1, 2 ORDER BY 3 DESC",
        limit=200,
    )
    return {"rows": rows, "total": sum(int(r["n"]) for r in rows)}


def conn_headroom(state: ScanState) -> None:
    t = state.thresholds
    s = state.session
    cfg = {
        r["name"]: int(r["setting"])
        for r in s.rows(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('max_connections', 'superuser_reserved_connections', 'reserved_connections')"
        )
    }
    available = (
        cfg["max_connections"]
        - cfg.get("superuser_reserved_connections", 0)
        - cfg.get("reserved_connections", 0)
    )
    samples = state.facts.get("conn_samples") or []
    samples = [*samples, connection_usage(state)]
    peak = max(samples, key=lambda x: x["total"])
    use = 100.0 * peak["total"] / max(available, 1)
    breakdown = [
        {"application_name": r["app"], "state": r["state"], "connections": int(r["n"])}
        for r in peak["rows"]
    ]
    state.summary["connections"] = {
        "max_connections": cfg["max_connections"],
        "available": available,
        "peak_client_backends": peak["total"],
        "use_pct": round(use, 1),
        "by_application_state": breakdown,
        "samples": len(samples),
    }
    state.measure("db.connections.used", peak["total"], "count")
    state.measure("db.connections.use", round(use, 2), "%")
    for row in breakdown:
        state.measure(
            "db.connections.by_app_state",
            row["connections"],
            "count",
            application_name=row["application_name"],
            state=row["state"],
        )
    detail = f"{peak['total']} of {available} connection slots ({use:.0f}%)"
    if use <= t.pool_use_pct:
        state.passed("db.conn_headroom", detail)
        return
    state.add(
        FindingData(
            rule_id="db.conn_headroom",
            title=f"Client connections use {use:.0f}% of max_connections' usable slots",
            severity="high",
            category="architecture",
            location=state.caps.database,
            key=f"conn_headroom:{state.caps.database}",
            evidence=state.summary["connections"],
            fix_hint=(
                "Size the application pools so pool_size + max_overflow times the number of "
                "worker processes stays below max_connections minus reserved slots, or put "
                "PgBouncer in front; check the idle connections listed per application."
            ),
            doc_url=DOCS + "runtime-config-connection.html#GUC-MAX-CONNECTIONS",
        )
    )
    state.failed("db.conn_headroom", detail)


def pool_usage(state: ScanState, watcher: MetricsWatcher | None) -> None:
    t = state.thresholds
    fix = (
        "Expose the SQLAlchemy pool on the target's /metrics: engine.pool.size(), "
        "checkedout(), overflow() and the configured max_overflow as gauges db_pool_size, "
        "db_pool_checked_out, db_pool_overflow, db_pool_max_overflow, and checkout timeouts "
        "as the counter db_pool_checkout_timeouts_total; then give Kaizen the target's base URL."
    )
    if watcher is None:
        state.unknown(
            "db.pool_usage", "no metrics URL for the target (client-side pool unseen)", fix
        )
        return
    usable = [x for x in watcher.samples if x.use_pct is not None]
    if not usable:
        why = (
            f"reading {watcher.url} failed: {watcher.error}"
            if watcher.error
            else f"{watcher.url} exposes no pool size / checked-out gauges"
        )
        state.unknown("db.pool_usage", why, fix)
        return
    peak = max(usable, key=lambda x: x.use_pct or 0.0)
    mean = sum(x.use_pct or 0.0 for x in usable) / len(usable)
    timeouts = None
    first, last = watcher.samples[0].timeouts, watcher.samples[-1].timeouts
    if first is not None and last is not None:
        timeouts = max(last - first, 0.0)
    state.summary["pool"] = {
        "metrics_url": watcher.url,
        "samples": len(usable),
        "size": peak.size,
        "max_overflow": peak.overflow_max,
        "peak_checked_out": peak.checked_out,
        "peak_use_pct": round(peak.use_pct or 0.0, 1),
        "mean_use_pct": round(mean, 1),
        "checkout_timeouts": timeouts,
    }
    state.measure("db.pool.use", round(peak.use_pct or 0.0, 2), "%", stat="peak")
    state.measure("db.pool.use_mean", round(mean, 2), "%")
    if timeouts is not None:
        state.measure("db.pool.checkout_timeouts", timeouts, "count")
    over = (peak.use_pct or 0.0) > t.pool_use_pct
    if not over and not timeouts:
        state.passed("db.pool_usage", f"peak {peak.use_pct:.0f}% of the pool")
        return
    title = f"Application pool peaked at {peak.use_pct:.0f}% (SLO ≤ {t.pool_use_pct:g}%)"
    if timeouts:
        title += f", {timeouts:.0f} checkout timeout(s)"
    state.add(
        FindingData(
            rule_id="db.pool_usage",
            title=title,
            severity="high",
            category="architecture",
            location=watcher.url,
            key=f"pool_usage:{watcher.url}",
            evidence=state.summary["pool"],
            fix_hint=(
                "First shorten how long requests hold a connection (slow families below, no "
                "external calls inside a session); then raise pool_size/max_overflow within "
                "the server's connection headroom."
            ),
            doc_url="https://docs.sqlalchemy.org/en/20/core/pooling.html",
        )
    )
    state.failed("db.pool_usage", title)
