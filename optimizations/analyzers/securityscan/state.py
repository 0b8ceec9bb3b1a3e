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

EXCERPT_CHARS = 600
BODY_EXCERPT_CHARS = 300
URL_CHARS = 240


@dataclass
class Scan:
    target: TargetSpec
    params: dict
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

    # -- results ------------------------------------------------------------------------------

    def add(self, finding: FindingData) -> None:
        self.findings.append(finding)

    def outcome(self, check_id: str, status: str, detail: str = "") -> None:
        self.checks.append(CheckOutcome(check_id, status, detail))

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
