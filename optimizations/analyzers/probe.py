"""The target probe: is the service there, healthy, described and observable?

Checks reachability, the health endpoint, the OpenAPI document (its
operations), times a few sequential requests to each GET operation that
needs no parameters, and reads ``/metrics`` (Prometheus text) when there is
one. A malformed or missing OpenAPI document, a timeout, a refused
connection, a TLS error or a non-JSON answer ends the probe with a message a
person understands.
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import quote, urljoin, urlsplit

from optimizations.analyzers import jsondoc, safehttp
from optimizations.analyzers.base import (
    CHECK_FAILED,
    CHECK_PASSED,
    AnalysisError,
    AnalysisResult,
    CheckOutcome,
    Context,
    FindingData,
    MeasurementData,
    Param,
    TargetSpec,
)
from optimizations.analyzers.cleantext import clean_text
from optimizations.analyzers.netguard import check_url

PARAMS = [
    Param(
        "requests_per_operation",
        "int",
        5,
        "Sequential requests timed per GET operation without parameters",
        min=1,
        max=50,
    ),
    Param("timeout", "float", 5.0, "Seconds to wait for each answer", min=0.5, max=60),
    Param("max_operations", "int", 30, "Most operations to time", min=1, max=200),
]

USER_AGENT = "Kaizen-probe/1"
URL_SAFE = "/?&=%:@!$'()*+,;~[]{}"
MAX_BODY = 5 * 1024 * 1024
OPENAPI_DOC = "https://fastapi.tiangolo.com/tutorial/metadata/"
HEALTH_DOC = "https://fastapi.tiangolo.com/advanced/events/"
METRICS_DOC = "https://prometheus.io/docs/instrumenting/exposition_formats/"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed_ms: float


class Client:
    """Sequential HTTP requests with the target's auth header and a timeout."""

    def __init__(
        self, target: TargetSpec, timeout: float, cancel: Callable[[], None] | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        # The job's check_cancel: polled every 0.1 s while a request waits (a silent
        # server, a slow name lookup), so a cancel stops the probe within a second.
        self.cancel = cancel
        self.requests = 0

    def url(self, path: str) -> str:
        # Paths come from the target's OpenAPI document: control characters, spaces and
        # non-ASCII are percent-encoded (as a browser would) instead of failing the request.
        path = quote(clean_text(path), safe=URL_SAFE)
        return urljoin(self.target.base_url.rstrip("/") + "/", path.lstrip("/"))

    def get(self, path: str) -> Answer:
        url = self.url(path)
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json, */*"}
        secret: tuple[str, ...] = ()
        if self.target.auth_header:
            headers[self.target.auth_header[0]] = self.target.auth_header[1]
            secret = (self.target.auth_header[0],)
        self.requests += 1
        try:
            # Allow-list checked on the resolved address of the URL and of every
            # redirect hop; the auth header never follows a change of host.
            answer = safehttp.fetch(
                url,
                allowed=self.target.allowed_hosts,
                headers=headers,
                secret_headers=secret,
                timeout=self.timeout,
                max_body=MAX_BODY + 1,  # one byte more: "larger than" can be told apart
                cancel=self.cancel,
            )
        except TimeoutError:
            raise AnalysisError(
                f"{url} did not answer within {self.timeout:g} s. The service may be hanging "
                "or overloaded."
            ) from None
        except http.client.HTTPException as error:
            raise AnalysisError(
                f"{urlsplit(url).netloc} did not answer with HTTP ({type(error).__name__})."
            ) from None
        except OSError as error:
            raise AnalysisError(_explain(url, error, self.timeout)) from None
        return Answer(answer.status, answer.headers, answer.body, answer.elapsed_ms)


def _explain(url: str, reason: OSError, timeout: float) -> str:
    host = urlsplit(url).netloc
    if isinstance(reason, ConnectionRefusedError):
        return f"Nothing listens at {host}: the connection was refused. Is the service running?"
    if isinstance(reason, ssl.SSLError):
        return f"The TLS handshake with {host} failed ({reason}). Check its certificate and URL."
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return f"{url} did not answer within {timeout:g} s. The service may be hanging."
    if isinstance(reason, socket.gaierror):
        return f"The host name of {url} cannot be resolved."
    return f"{url} could not be reached: {reason}"


# Prometheus samples by metric name: [(labels, value), …].
type Metrics = dict[str, list[tuple[dict[str, str], float]]]


class Operation(TypedDict):
    """One operation of the target's OpenAPI document, as the probe times it."""

    method: str
    path: str
    operation_id: Any
    summary: Any
    required_params: list[Any]
    has_body: bool
    secured: bool


def parse_prometheus(text: str) -> Metrics:
    """Prometheus text format → {metric name: [(labels, value), …]}."""
    metrics: Metrics = {}
    line_re = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)")
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = line_re.match(line)
        if not match:
            continue
        try:
            value = float(match.group(3))
        except ValueError:
            continue
        labels = dict(label_re.findall(match.group(2) or ""))
        metrics.setdefault(match.group(1), []).append((labels, value))
    return metrics


def metric_total(metrics: Metrics, name: str, **match: str) -> float | None:
    rows = [
        value
        for labels, value in metrics.get(name, [])
        if all(labels.get(k) == v for k, v in match.items())
    ]
    return sum(rows) if rows else None


def pool_use_percent(metrics: Metrics) -> float | None:
    """Checked-out connections against what the pool may hand out (size + overflow)."""
    size = metric_total(metrics, "db_pool_size")
    checked_out = metric_total(metrics, "db_pool_checked_out")
    if size is None or checked_out is None:
        return None
    overflow = metric_total(metrics, "db_pool_max_overflow") or 0.0
    capacity = size + max(overflow, 0.0)
    return 100.0 * checked_out / capacity if capacity > 0 else None


def request_counts(metrics: Metrics) -> tuple[float, float] | None:
    """(all requests, 5xx answers) from the target's own request counter."""
    for name in ("http_requests_total", "http_server_requests_total"):
        rows = metrics.get(name)
        if rows:
            total = sum(value for _, value in rows)
            errors = sum(
                value
                for labels, value in rows
                if str(labels.get("status", labels.get("code", ""))).startswith("5")
            )
            return total, errors
    return None


def operations(document: dict[str, Any]) -> list[Operation]:
    """The operations of an OpenAPI document (arbitrary JSON from the target)."""
    ops: list[Operation] = []
    for path, item in (document.get("paths") or {}).items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method, op in item.items():
            if method.lower() not in {"get", "post", "put", "patch", "delete", "head", "options"}:
                continue
            if not isinstance(op, dict):
                continue
            params = [p for p in [*shared, *(op.get("parameters") or [])] if isinstance(p, dict)]
            required = [p.get("name") for p in params if p.get("required")]
            ops.append(
                {
                    "method": method.upper(),
                    "path": path,
                    "operation_id": op.get("operationId", ""),
                    "summary": op.get("summary", ""),
                    "required_params": required,
                    "has_body": "requestBody" in op,
                    "secured": bool(op.get("security") or document.get("security")),
                }
            )
    return ops


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, math.ceil(share * len(ordered)) - 1)
    return ordered[index]


def run(target: TargetSpec, params: Mapping[str, Any], ctx: Context) -> AnalysisResult:
    client = Client(target, float(params["timeout"]), cancel=ctx.check_cancel)
    result = AnalysisResult()
    findings, measurements, checks = result.findings, result.measurements, result.checks

    ctx.progress(2, "checking the host is allowed")
    check_url(target.base_url, target.allowed_hosts)

    ctx.progress(5, "reaching the service")
    root = client.get("/")
    ctx.log(f"GET / answered {root.status} in {root.elapsed_ms:.1f} ms")
    measurements.append(MeasurementData("probe.reach_ms", root.elapsed_ms, "ms"))
    ctx.check_cancel()

    ctx.progress(15, "health endpoint")
    health = client.get(target.health_path)
    ctx.log(f"GET {target.health_path} answered {health.status} in {health.elapsed_ms:.1f} ms")
    measurements.append(MeasurementData("probe.health_ms", health.elapsed_ms, "ms"))
    if health.status == 404:
        findings.append(
            FindingData(
                "probe.no_health",
                f"No health endpoint at {target.health_path}",
                "medium",
                "monitoring",
                location=f"GET {target.health_path}",
                evidence={"status": health.status},
                fix_hint="Add a cheap GET /health route (checking the database connection) so "
                "load balancers and Kaizen's availability check can tell the service is up.",
                doc_url=HEALTH_DOC,
            )
        )
        checks.append(CheckOutcome("probe.no_health", CHECK_FAILED, "404"))
    else:
        checks.append(CheckOutcome("probe.no_health", CHECK_PASSED))
    if health.status >= 500:
        findings.append(
            FindingData(
                "probe.health_failing",
                f"The health endpoint answers {health.status}",
                "high",
                "reliability",
                location=f"GET {target.health_path}",
                evidence={
                    "status": health.status,
                    "body": health.body[:500].decode("utf-8", "replace"),
                },
                fix_hint="The service reports itself unhealthy: read its logs and its database.",
            )
        )
        checks.append(CheckOutcome("probe.health_failing", CHECK_FAILED))
    else:
        checks.append(CheckOutcome("probe.health_failing", CHECK_PASSED))
    ctx.check_cancel()

    ctx.progress(25, "reading the OpenAPI document")
    document = _openapi(client, target)
    ops = operations(document)
    ctx.log(f"OpenAPI {document.get('openapi', '?')}: {len(ops)} operations")
    for op in ops:
        ctx.log(f"  {op['method']:<6} {op['path']}  {op['summary']}")
    measurements.append(MeasurementData("probe.operations", len(ops), "count"))

    timeable = [op for op in ops if op["method"] == "GET" and not op["required_params"]][
        : int(params["max_operations"])
    ]
    per_op = int(params["requests_per_operation"])
    timings: dict[str, dict[str, Any]] = {}
    failing: set[str] = set()
    slow: set[str] = set()
    for index, op in enumerate(timeable):
        name = f"GET {op['path']}"
        ctx.progress(30 + 55 * index / max(1, len(timeable)), f"timing {name}")
        latencies, statuses = [], []
        for _ in range(per_op):
            ctx.check_cancel()
            try:
                answer = client.get(op["path"])
            except AnalysisError as error:
                # One slow or broken operation is a finding, not the end of the probe.
                slow.add(name)
                ctx.log(f"{name}: {error}", "warning")
                findings.append(
                    FindingData(
                        "probe.operation_timeout",
                        f"{name} did not answer within {client.timeout:g} s",
                        "medium",
                        "performance",
                        location=name,
                        evidence={"error": str(error), "timeout_s": client.timeout},
                        fix_hint="A GET without parameters should answer quickly; bound its "
                        "result (pagination) or stream it.",
                    )
                )
                break
            latencies.append(answer.elapsed_ms)
            statuses.append(answer.status)
            if answer.status >= 500:
                failing.add(name)
                _server_error(findings, name, answer)
                break
        if not latencies:
            continue
        timings[name] = {
            "requests": len(latencies),
            "avg_ms": sum(latencies) / len(latencies),
            "p50_ms": _percentile(latencies, 0.5),
            "max_ms": max(latencies),
            "statuses": sorted(set(statuses)),
        }
        labels = {"operation": name}
        measurements.append(
            MeasurementData("probe.latency.avg", timings[name]["avg_ms"], "ms", labels)
        )
        measurements.append(
            MeasurementData("probe.latency.max", timings[name]["max_ms"], "ms", labels)
        )
        seen = ", ".join(map(str, timings[name]["statuses"]))
        ctx.log(
            f"{name}: {len(latencies)} requests, avg {timings[name]['avg_ms']:.1f} ms, "
            f"max {timings[name]['max_ms']:.1f} ms, status {seen}"
        )
    checks.append(CheckOutcome("probe.operation_5xx", CHECK_FAILED if failing else CHECK_PASSED))

    ctx.progress(88, "reading /metrics")
    metrics_summary = _metrics(client, target, findings, measurements, checks, ctx)

    result.summary = {
        "base_url": target.base_url,
        "health": {"status": health.status, "ms": round(health.elapsed_ms, 2)},
        "openapi": {
            "version": document.get("openapi", ""),
            "title": (document.get("info") or {}).get("title", ""),
            "operations": ops,
        },
        "timed": timings,
        "metrics": metrics_summary,
        "requests_sent": client.requests,
    }
    healthy = 200 <= health.status < 300
    result.verdict = "pass" if healthy and not failing else "fail"
    ctx.progress(100, "done")
    return result


def _openapi(client: Client, target: TargetSpec) -> dict[str, Any]:
    answer = client.get(target.openapi_path)
    where = client.url(target.openapi_path)
    if answer.status == 404:
        raise AnalysisError(
            f"There is no OpenAPI document at {where} (404). FastAPI serves one at "
            "/openapi.json unless openapi_url=None; set the right path on the target's page."
        )
    if answer.status >= 400:
        raise AnalysisError(f"The OpenAPI document at {where} answered {answer.status}.")
    try:
        document = jsondoc.loads(
            answer.body, f"The OpenAPI document at {where}", max_bytes=MAX_BODY
        )
    except jsondoc.DocumentRefused as error:
        raise AnalysisError(str(error)) from None
    except (ValueError, UnicodeDecodeError):
        start = answer.body[:80].decode("utf-8", "replace")
        raise AnalysisError(
            f"The OpenAPI document at {where} is not JSON (it starts with {start!r})."
        ) from None
    if not isinstance(document, dict) or "paths" not in document:
        raise AnalysisError(
            f"The document at {where} is JSON but not an OpenAPI description (no 'paths')."
        )
    if not str(document.get("openapi", document.get("swagger", ""))).strip():
        raise AnalysisError(f"The document at {where} does not say which OpenAPI version it is.")
    return document


def _server_error(findings: list[FindingData], name: str, answer: Answer) -> None:
    findings.append(
        FindingData(
            "probe.operation_5xx",
            f"{name} answers {answer.status}",
            "high",
            "reliability",
            location=name,
            evidence={
                "status": answer.status,
                "body": answer.body[:500].decode("utf-8", "replace"),
            },
            fix_hint="A GET without parameters should not fail: read the service's log "
            "for this route's exception.",
        )
    )


def _metrics(
    client: Client,
    target: TargetSpec,
    findings: list[FindingData],
    measurements: list[MeasurementData],
    checks: list[CheckOutcome],
    ctx: Context,
) -> dict[str, Any]:
    if not target.metrics_path:
        checks.append(CheckOutcome("probe.no_metrics", CHECK_FAILED, "no metrics path set"))
        return {"available": False}
    answer = client.get(target.metrics_path)
    if answer.status >= 400:
        findings.append(
            FindingData(
                "probe.no_metrics",
                f"No metrics endpoint at {target.metrics_path}",
                "medium",
                "monitoring",
                location=f"GET {target.metrics_path}",
                evidence={"status": answer.status},
                fix_hint="Expose request counts and latencies by route and status, and the "
                "SQLAlchemy pool's size / checked-out / overflow, in the Prometheus format.",
                doc_url=METRICS_DOC,
            )
        )
        checks.append(CheckOutcome("probe.no_metrics", CHECK_FAILED))
        return {"available": False, "status": answer.status}
    checks.append(CheckOutcome("probe.no_metrics", CHECK_PASSED))
    metrics = parse_prometheus(answer.body.decode("utf-8", "replace"))
    summary: dict[str, Any] = {"available": True, "series": sum(len(v) for v in metrics.values())}
    pool = pool_use_percent(metrics)
    if pool is not None:
        summary["pool_use_pct"] = round(pool, 2)
        measurements.append(MeasurementData("probe.pool_use", pool, "%"))
    counts = request_counts(metrics)
    if counts:
        summary["requests_total"], summary["errors_total"] = counts
    ctx.log(
        f"/metrics: {summary['series']} series"
        + (f", pool use {pool:.1f} %" if pool is not None else "")
    )
    return summary
