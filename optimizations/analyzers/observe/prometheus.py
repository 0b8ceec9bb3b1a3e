"""A client of the Prometheus HTTP API: instant and range queries.

Requests go through ``safehttp`` (the host allow-list, checked on the resolved
address, every redirect hop too) and can be cancelled within 0.1 s by a job's
``check_cancel``. Queries are POSTed form-encoded (long PromQL does not meet
URL length limits) with Prometheus's own ``timeout`` parameter set a little
below the client's, so a slow query ends as Prometheus's readable timeout
rather than as a dropped connection.

Every failure is a :class:`PrometheusError` whose message says what went wrong
and what to do: a PromQL syntax error with Prometheus's own words, a query that
timed out, a server that is not reachable, a URL that is not a Prometheus API.

    client = Prometheus("http://127.0.0.1:9090", cancel=ctx.check_cancel)
    client.value('sum(rate(http_requests_total{status=~"5.."}[5m]))')  # float or None
    client.query_range("up", start, end, step=timedelta(minutes=1))  # [Series]
"""

from __future__ import annotations

import http.client
import json
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from .. import jsondoc, safehttp
from ..netguard import DEFAULT_ALLOWED, TARGET_SETTING, AllowList, HostNotAllowed

MAX_BODY = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 10.0  # seconds, for the query on the server and for the exchange
# Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000


class PrometheusError(Exception):
    """A query could not be answered; the message says why and what to do.

    ``kind`` is Prometheus's ``errorType`` (bad_data, timeout, execution,
    canceled, …) or one of Kaizen's: unreachable, not_allowed, not_prometheus.
    """

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Sample:
    """One value of an instant query: a series' labels, when and what."""

    labels: dict[str, str]
    timestamp: float  # Unix seconds
    value: float  # NaN and ±Inf as Prometheus writes them


@dataclass(frozen=True)
class Series:
    """One series of a range query."""

    labels: dict[str, str]
    points: tuple[tuple[float, float], ...]  # (Unix seconds, value), oldest first


@dataclass(frozen=True)
class InstantResult:
    """What an instant query returned."""

    result_type: str  # vector, scalar, string or matrix
    samples: list[Sample]
    warnings: list[str] = field(default_factory=list)


class Prometheus:
    """The HTTP API of one Prometheus server (``base_url`` may carry a path prefix)."""

    def __init__(
        self,
        base_url: str,
        *,
        allowed: AllowList = DEFAULT_ALLOWED,
        timeout: float = DEFAULT_TIMEOUT,
        headers: dict[str, str] | None = None,
        cancel: Callable[[], None] | None = None,
        tls: ssl.SSLContext | None = None,
        setting: str = TARGET_SETTING,
    ) -> None:
        scheme = urlsplit(base_url).scheme.lower()
        if scheme not in ("http", "https"):
            raise PrometheusError(
                f"a Prometheus URL starts with http:// or https://, not {base_url!r}",
                "not_prometheus",
            )
        if timeout <= 0:
            raise ValueError("the timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.allowed = allowed
        self.timeout = timeout
        # Headers such as Authorization are credentials: never sent to another origin.
        self.headers = dict(headers or {})
        self.cancel = cancel
        self.tls = tls
        self.setting = setting

    def query(self, expr: str, at: datetime | None = None) -> InstantResult:
        """An instant query, evaluated at ``at`` (default: the server's now)."""
        form = {"query": expr}
        if at is not None:
            form["time"] = _timestamp(at)
        data, warnings = self._call("query", form, expr)
        result_type = _field(data, "resultType", str)
        result = data.get("result")
        if result_type in ("scalar", "string"):
            samples = [Sample({}, *_point(result))]
        elif result_type == "vector":
            samples = [
                Sample(_labels(item), *_point(_field(item, "value", list)))
                for item in _items(result)
            ]
        elif result_type == "matrix":  # a range selector queried as it is: last point each
            samples = [
                Sample(_labels(item), *_point(_field(item, "values", list)[-1]))
                for item in _items(result)
                if item.get("values")
            ]
        else:
            raise _not_prometheus(self.base_url, f"an unknown resultType {result_type!r}")
        return InstantResult(result_type, samples, warnings)

    def value(self, expr: str, at: datetime | None = None) -> float | None:
        """The one number ``expr`` gives; None when it matches no series.

        An expression that yields several series is an error: aggregate it
        (``sum(...)``, ``max(...)``) so the figure means one thing.
        """
        result = self.query(expr, at)
        if not result.samples:
            return None
        if len(result.samples) > 1:
            raise PrometheusError(
                f"{expr!r} yields {len(result.samples)} series, not one number: "
                "aggregate it (sum, max, avg ... by nothing)",
                "bad_data",
            )
        return result.samples[0].value

    def query_range(
        self, expr: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        """A range query from ``start`` to ``end``, one point every ``step``."""
        seconds = step.total_seconds()
        if seconds <= 0:
            raise ValueError("the step must be positive")
        if end < start:
            raise ValueError("the range ends before it starts")
        points = (end - start).total_seconds() / seconds
        if points > MAX_POINTS:
            raise PrometheusError(
                f"{points:.0f} points per series is more than Prometheus answers "
                f"({MAX_POINTS}): use a step of at least "
                f"{math.ceil((end - start).total_seconds() / MAX_POINTS)} s",
                "bad_data",
            )
        form = {
            "query": expr,
            "start": _timestamp(start),
            "end": _timestamp(end),
            "step": f"{seconds:g}",
        }
        data, _warnings = self._call("query_range", form, expr)
        if _field(data, "resultType", str) != "matrix":
            raise _not_prometheus(self.base_url, "a range query that did not return a matrix")
        return [
            Series(
                _labels(item),
                tuple(_point(point) for point in _field(item, "values", list)),
            )
            for item in _items(data.get("result"))
        ]

    def _call(
        self, endpoint: str, form: dict[str, str], expr: str
    ) -> tuple[dict[str, Any], list[str]]:
        # The server gives up a second before the client does, and says so in its answer.
        form = {**form, "timeout": f"{max(self.timeout - 1, self.timeout / 2):.3f}"}  # seconds
        url = f"{self.base_url}/api/v1/{endpoint}"
        headers = {
            **self.headers,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        try:
            answer = safehttp.fetch(
                url,
                allowed=self.allowed,
                method="POST",
                headers=headers,
                body=urlencode(form).encode(),
                timeout=self.timeout,
                max_body=MAX_BODY + 1,
                tls=self.tls,
                setting=self.setting,
                cancel=self.cancel,
            )
        except HostNotAllowed as error:
            raise PrometheusError(
                f"Prometheus at {self.base_url}: {error}", "not_allowed"
            ) from None
        except TimeoutError:
            raise PrometheusError(
                f"Prometheus at {self.base_url} did not answer within {self.timeout:g} s",
                "timeout",
            ) from None
        except (OSError, http.client.HTTPException) as error:
            raise PrometheusError(
                f"cannot reach Prometheus at {self.base_url}: {error or type(error).__name__}",
                "unreachable",
            ) from None
        return _payload(answer, self.base_url, expr)


def _payload(
    answer: safehttp.Response, base_url: str, expr: str
) -> tuple[dict[str, Any], list[str]]:
    if len(answer.body) > MAX_BODY:
        raise PrometheusError(
            f"the answer to {expr!r} is larger than {MAX_BODY // 1024 // 1024} MiB: "
            "narrow the query (fewer series, a longer step)",
            "bad_data",
        )
    try:
        document = jsondoc.loads(answer.body, "Prometheus's answer", max_bytes=MAX_BODY)
    except (ValueError, UnicodeDecodeError):
        document = None
    if not isinstance(document, dict) or document.get("status") not in ("success", "error"):
        raise _not_prometheus(base_url, f"HTTP {answer.status} {answer.reason}".strip())
    warnings = [str(w) for w in document.get("warnings") or []]
    if document["status"] == "error":
        kind = str(document.get("errorType") or "error")
        said = str(document.get("error") or "no reason given")
        if kind == "bad_data":
            raise PrometheusError(f"PromQL error in {expr!r}: {said}", kind)
        if kind == "timeout":
            raise PrometheusError(
                f"{expr!r} timed out on Prometheus ({said}): narrow the query or raise the timeout",
                kind,
            )
        raise PrometheusError(f"Prometheus could not evaluate {expr!r} ({kind}): {said}", kind)
    data = document.get("data")
    if not isinstance(data, dict):
        raise _not_prometheus(base_url, "an answer without data")
    return data, warnings


def _not_prometheus(base_url: str, what: str) -> PrometheusError:
    return PrometheusError(
        f"{base_url} answered {what}, not the Prometheus HTTP API: is it the server's base URL "
        "(the one whose /api/v1/query answers)?",
        "not_prometheus",
    )


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("query times must be aware datetimes (UTC)")
    return f"{moment.timestamp():.3f}"


def _items(result: Any) -> list[dict[str, Any]]:
    if not isinstance(result, list) or not all(isinstance(item, dict) for item in result):
        raise PrometheusError(
            "Prometheus answered a result that is not a list of series", "not_prometheus"
        )
    return result


def _labels(item: dict[str, Any]) -> dict[str, str]:
    metric = item.get("metric") or {}
    if not isinstance(metric, dict):
        raise PrometheusError("Prometheus answered a series without labels", "not_prometheus")
    return {str(key): str(value) for key, value in metric.items()}


def _point(pair: Any) -> tuple[float, float]:
    # [1700000000.123, "0.25"]; values are strings so that NaN and ±Inf survive JSON.
    try:
        timestamp, value = pair
        return float(timestamp), float(value)
    except (TypeError, ValueError):
        raise PrometheusError(
            f"Prometheus answered a point that is not [time, value]: {json.dumps(pair)[:80]}",
            "not_prometheus",
        ) from None


def _field(item: dict[str, Any], name: str, kind: type) -> Any:
    value = item.get(name)
    if not isinstance(value, kind):
        raise PrometheusError(f"Prometheus answered without a valid {name}", "not_prometheus")
    return value
