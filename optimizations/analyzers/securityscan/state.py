"""What the security scan's checks share: the client, the document, results, evidence."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..base import (
    CheckOutcome,
    Context,
    FindingData,
    MeasurementData,
    TargetSpec,
)
from .client import Exchange, HttpClient, TransportError
from .openapi import Case, Document, Operation, query_pairs, render_path

# Why each check matters, for the person who reads the finding (beside its doc link).
WHY = {
    "sec.headers": (
        "Browsers apply these headers as defences: without nosniff a response can be "
        "sniffed into script, without frame protection a page can be framed for clickjacking, "
        "without HSTS the first request can be downgraded to plain HTTP, and without a CSP "
        "injected markup runs unhindered."
    ),
    "sec.cors": (
        "A browser lets a page of another origin read the API's responses only when CORS "
        "allows it; granting any origin together with credentials lets every website act with "
        "the visitor's cookies. Starlette mirrors the request's Origin when allow_origins=['*'] "
        "is combined with allow_credentials=True."
    ),
    "sec.compression": (
        "JSON typically shrinks by 70-90 % with gzip; sending it uncompressed to a client that "
        "accepts gzip costs bandwidth and transfer time on every request."
    ),
    "sec.keepalive": (
        "A new TCP (and TLS) connection per request adds at least a round trip of latency and "
        "CPU on both sides; HTTP/1.1 keeps connections open by default."
    ),
    "sec.cache_headers": (
        "Without Cache-Control, ETag or Last-Modified, clients and proxies cannot tell whether "
        "they may reuse a response, so every read reaches the application and its database."
    ),
    "sec.banner": (
        "Server and version banners tell an attacker which software and release to look up "
        "known vulnerabilities for; they help nobody else."
    ),
    "sec.error_leakage": (
        "Stack traces, SQL and file paths in error responses reveal the code, the schema and "
        "the deployment to anyone who sends a malformed request."
    ),
    "sec.unauthenticated_writes": (
        "An operation that changes state without authentication can be called by anyone who "
        "reaches the API; the OpenAPI document is also how clients and gateways learn what is "
        "protected."
    ),
    "sec.input_bounds": (
        "Without upper bounds one request can ask for or send arbitrarily much (a page of a "
        "million rows, a batch of a million items), exhausting memory, CPU and database time."
    ),
    "sec.negative_testing": (
        "A 5xx on invalid input means it reached code that did not expect it: the client "
        "learns nothing useful, the request may hold a worker or a database connection, and "
        "crash paths are where bugs and leaks hide."
    ),
    "sec.fuzzing": (
        "The OpenAPI document is the contract clients and gateways rely on: input it forbids "
        "but the service accepts is acted on unchecked, and a status, content type or shape it "
        "does not declare breaks generated clients at run time, where nobody is looking."
    ),
    "sec.rate_limiting": (
        "Without a per-client limit one client can take the whole capacity of the service, by "
        "accident or on purpose. Information only: a limit may sit above the rate Kaizen was "
        "allowed to send."
    ),
}
EXCERPT_CHARS = 600
BODY_EXCERPT_CHARS = 300
URL_CHARS = 240


@dataclass
class Scan:
    target: TargetSpec
    params: dict[str, Any]
    ctx: Context
    client: HttpClient
    doc: Document
    doc_operations: list[Operation]  # every documented operation
    operations: list[Operation]  # the ones probed (at most max_operations)
    findings: list[FindingData] = field(default_factory=list)
    measurements: list[MeasurementData] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    samples: list[Exchange] | None = None
    sample_failures: list[str] = field(default_factory=list)
    # The checks this scan runs, and those another check did the work of (sec.fuzzing
    # covers sec.negative_testing): a covered check is not run again.
    wanted: set[str] = field(default_factory=set)
    covered: set[str] = field(default_factory=set)

    # -- results ------------------------------------------------------------------------------

    def add(self, finding: FindingData) -> None:
        finding.evidence = {"why": WHY[finding.rule_id], **finding.evidence}
        self.findings.append(finding)

    def outcome(self, check_id: str, status: str, detail: str = "") -> None:
        self.checks.append(CheckOutcome(check_id, status, detail))

    def covered_outcome(self, check_id: str, status: str, detail: str) -> None:
        """The outcome of ``check_id``, established by another check, when it is wanted."""
        if check_id in self.wanted:
            self.covered.add(check_id)
            self.outcome(check_id, status, detail)

    def measure(self, name: str, value: float, unit: str, **labels: str) -> None:
        self.measurements.append(MeasurementData(name, value, unit, labels))

    # -- requests -----------------------------------------------------------------------------

    def send(self, op: Operation, case: Case, *, auth: bool = True) -> Exchange:
        """Send ``case`` for ``op``; the exchange is tagged with the operation and case."""
        headers = {name: _header_value(value) for name, value in case.headers.items()}
        return self.client.request(
            op.method,
            render_path(op.path, case.path_values),
            query=query_pairs(case.query),
            headers=headers,
            body=case.body,
            auth=auth,
            operation=op.label,
            note=case.description,
        )

    def sample_reads(self) -> list[Exchange]:
        """One request per documented GET with sample values, shared by the header checks.

        Made once; what could not be fetched is remembered in ``sample_failures``.
        """
        if self.samples is not None:
            return self.samples
        self.samples = []
        reads = [op for op in self.operations if op.method == "GET"]
        limit = int(self.params["max_sample_reads"])
        for op in reads[:limit]:
            try:
                self.samples.append(self.send(op, self.doc.sample_request(op)))
            except TransportError as exc:
                self.sample_failures.append(f"{op.label}: {exc}")
        for page in self.params["html_paths"]:
            if any(op.path == page for op in reads):
                continue
            try:
                exchange = self.client.request("GET", page, operation=f"GET {page}")
                exchange.note = "HTML page"
                self.samples.append(exchange)
            except TransportError as exc:
                self.sample_failures.append(f"GET {page}: {exc}")
        return self.samples

    def is_operational(self, exchange: Exchange) -> bool:
        """Health, metrics, the OpenAPI document and the docs page: not the API's data."""
        path = exchange.operation.split(" ", 1)[-1]
        own = {
            self.target.health_path,
            self.target.metrics_path,
            self.target.openapi_path,
            *self.params["html_paths"],
        }
        return path in own

    # -- evidence -----------------------------------------------------------------------------

    def evidence(
        self,
        exchange: Exchange,
        *,
        headers: list[str] | None = None,
        body: str | None = None,
    ) -> dict[str, Any]:
        """The request and the relevant part of its response, with secrets redacted."""
        redact = self.client.redactor
        out: dict[str, Any] = {
            "request": f"{exchange.method} {_cut(redact.text(exchange.url), URL_CHARS)}",
        }
        sent = {
            k: v
            for k, v in exchange.request_headers.items()
            if k not in {"user-agent", "accept", "accept-encoding"}
        }
        if sent:
            out["request_headers"] = sent
        if exchange.request_body is not None:
            text = exchange.request_body.decode("utf-8", "replace")
            out["request_body"] = _cut(redact.text(text), BODY_EXCERPT_CHARS)
        if exchange.note:
            out["case"] = exchange.note
        out["status"] = f"{exchange.version} {exchange.status} {exchange.reason}".strip()
        received = redact.headers(exchange.headers, self.client.secret_header_names)
        if headers is not None:
            received = {k: v for k, v in received.items() if k in headers}
        out["response_headers"] = received
        if body is not None:
            out["response_body"] = _cut(redact.text(body), EXCERPT_CHARS)
        return out


def _header_value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    # http.client refuses control characters in header values; the case keeps its meaning.
    return "".join(ch if " " <= ch <= "~" else "?" for ch in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"
