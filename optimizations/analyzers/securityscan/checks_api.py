"""API-level checks driven by the OpenAPI document: unauthenticated writes, input bounds,
negative testing and error leakage."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from .. import jsondoc
from ..base import CHECK_FAILED, CHECK_PASSED, CHECK_UNKNOWN, SEVERITY_RANK, FindingData
from .client import Exchange, TransportError
from .openapi import Case, Operation, query_pairs, render_path
from .state import Scan

PAGE_SIZE_NAMES = {"limit", "size", "page_size", "pagesize", "per_page", "count", "top", "take"}
# Consecutive requests without an answer after which negative testing stops: the target is
# down or hanging, and more requests only add load.
MAX_SILENT_CASES = 3
LEAK_PROBES_PER_OPERATION = 2
LEAK_PROBE_KINDS = ("unexpected", "body", "wrong_format", "wrong_type", "oversized")
UNKNOWN_PATH = "/kaizen-probe-404/..%2f"
OWASP_ERRORS = (
    "https://owasp.org/www-project-web-security-testing-guide/latest/"
    "4-Web_Application_Security_Testing/08-Testing_for_Error_Handling/"
    "01-Testing_For_Improper_Error_Handling"
)
LEAKS = (
    (
        "stack trace",
        "high",
        re.compile(
            r"Traceback \(most recent call last\)|File \"[^\"\n]+\", line \d+"
            r"|\n\s*at [\w$.<>]+\([\w$]+\.(?:java|kt|cs|js|ts):\d+\)"
        ),
    ),
    (
        "SQL text or database error",
        "high",
        re.compile(
            r"\bSELECT\b[^\n]{0,200}?\bFROM\b|\bINSERT INTO\b|\bUPDATE\s+\S+\s+SET\b"
            r"|\bDELETE FROM\b|sqlalchemy\.exc\.|\bpsycopg2?\.|asyncpg\.exceptions"
            r"|sqlite3\.\w*Error|SQLSTATE|syntax error at or near|\bORA-\d{5}\b"
        ),
    ),
    (
        "server file path",
        "medium",
        re.compile(
            r"/(?:home|usr|opt|srv|app|var/www|site-packages)/[\w.\-/]+\.(?:py|java|rb|php|js|go)\b"
            r"|[A-Z]:\\(?:[\w .-]+\\)+[\w .-]+\.(?:py|cs|java)\b"
        ),
    ),
    (
        "exception name",
        "low",
        re.compile(
            r"\b(?:ValueError|TypeError|KeyError|AttributeError|IndexError|RuntimeError"
            r"|ZeroDivisionError|IntegrityError|OperationalError|ProgrammingError"
            r"|DataError|OverflowError|NullPointerException)\b"
        ),
    ),
)


def token_endpoints(raw: object) -> set[str]:
    """Paths of the token URLs of the document's OAuth2 flows (password, client credentials).

    A token endpoint takes credentials in its body and must be callable without a token: it
    is a login, not an unauthenticated write. A relative ``tokenUrl`` is taken from the root.
    """
    components = raw.get("components") if isinstance(raw, dict) else None
    schemes = components.get("securitySchemes") if isinstance(components, dict) else None
    found = set()
    for scheme in schemes.values() if isinstance(schemes, dict) else ():
        flows = scheme.get("flows") if isinstance(scheme, dict) else None
        for flow in flows.values() if isinstance(flows, dict) else ():
            url = flow.get("tokenUrl") if isinstance(flow, dict) else None
            if isinstance(url, str) and url and "://" not in url:
                found.add("/" + url.split("?")[0].lstrip("/"))
    return found


def check_unauthenticated_writes(scan: Scan) -> None:
    logins = token_endpoints(scan.doc.raw)
    writes = [
        op
        for op in scan.doc_operations
        if not op.safe and not (op.method == "POST" and op.path in logins)
    ]
    if not writes:
        detail = "the document has no state-changing operation"
        scan.outcome("sec.unauthenticated_writes", CHECK_PASSED, detail)
        return
    open_writes = [op for op in writes if not op.secured]
    for op in open_writes:
        confirmed, exchange = _probe_without_credentials(scan, op)
        if confirmed == "challenged":
            severity, title = (
                "low",
                f"{op.label} asks for credentials the OpenAPI document does not declare",
            )
        elif confirmed == "reached" and exchange is not None:
            severity, title = (
                "high",
                f"{op.label} changes state without authentication "
                f"(answered {exchange.status} to a request without credentials)",
            )
        else:
            severity, title = (
                "medium",
                f"{op.label} changes state and declares no security requirement",
            )
        evidence: dict[str, Any] = {"declared_security": op.security}
        if exchange is not None:
            evidence["probe"] = scan.evidence(exchange, body=exchange.text(2_000))
        else:
            evidence["probe"] = (
                "not sent: only a request the schema rejects is sent without credentials, "
                "and this operation has no required body fields to leave out"
            )
        scan.add(
            FindingData(
                rule_id="sec.unauthenticated_writes",
                title=title,
                severity=severity,
                category="security",
                location=op.label,
                key=f"sec.unauthenticated_writes:{op.label}",
                evidence=evidence,
                fix_hint=(
                    "Protect the operation with a security dependency (FastAPI `Security(...)`/"
                    "`Depends(...)` on an APIKeyHeader, OAuth2 or HTTP bearer scheme) so the "
                    "document lists it under `security` and the server answers 401 without "
                    "credentials."
                ),
                doc_url="https://fastapi.tiangolo.com/tutorial/security/",
            )
        )
    status = CHECK_FAILED if open_writes else CHECK_PASSED
    scan.outcome(
        "sec.unauthenticated_writes",
        status,
        f"{len(open_writes)} of {len(writes)} state-changing operations declare no security",
    )


def _probe_without_credentials(scan: Scan, op: Operation) -> tuple[str, Exchange | None]:
    """Confirm on the server with a request that cannot change anything: an empty JSON
    object for a body with required fields, sent without credentials."""
    schema = scan.doc.schema_of(op.body_schema) if op.body_schema is not None else {}
    if scan.doc.type_of(schema) != "object" or not schema.get("required"):
        return "", None
    case = scan.doc.sample_request(op)
    case.body = b"{}"
    case.description = "empty body (required fields missing), no credentials"
    exchange = scan.send(op, case, auth=False)
    if exchange.status in {401, 403, 407}:
        return "challenged", exchange
    if exchange.status in {400, 422} or 200 <= exchange.status < 300 or exchange.status >= 500:
        return "reached", exchange
    return "", exchange


def check_input_bounds(scan: Scan) -> None:
    flagged = 0
    for op in scan.doc_operations:
        loose = []
        for param in op.parameters:
            schema = scan.doc.schema_of(param.schema)
            kind = scan.doc.type_of(schema)
            if (
                param.location == "query"
                and param.name.lower() in PAGE_SIZE_NAMES
                and kind in {"integer", "number"}
                and "maximum" not in schema
                and "exclusiveMaximum" not in schema
            ):
                loose.append(f"query parameter {param.name!r}: page size with no maximum")
        if op.body_schema is not None:
            loose.extend(item for item in scan.doc.unbounded_inputs(op) if item.startswith("body"))
        if not loose:
            continue
        flagged += 1
        heavy = any("page size" in item or "no maxItems" in item for item in loose)
        scan.add(
            FindingData(
                rule_id="sec.input_bounds",
                title=f"{op.label} accepts input without an upper bound ({len(loose)} inputs)",
                severity="medium" if heavy else "low",
                category="security",
                location=op.label,
                key=f"sec.input_bounds:{op.label}",
                evidence={"unbounded": loose[:30]},
                fix_hint=(
                    "Bound what a client may send: `Query(le=…)` on page sizes, "
                    "`Field(max_length=…)` on strings and lists, `le=` on numbers, "
                    "`extra='forbid'`; the document then shows the bounds and FastAPI answers 422."
                ),
                doc_url=(
                    "https://owasp.org/API-Security/editions/2023/en/"
                    "0xa4-unrestricted-resource-consumption/"
                ),
            )
        )
    scan.outcome(
        "sec.input_bounds",
        CHECK_FAILED if flagged else CHECK_PASSED,
        f"{flagged} of {len(scan.doc_operations)} operations with unbounded input",
    )


def check_negative_testing(scan: Scan) -> None:
    seed = int(scan.params["seed"])
    limit = int(scan.params["negative_cases"])
    totals = {"operations": 0, "cases": 0, "server_errors": 0, "no_answer": 0}
    scan.summary["negative_testing"] = totals
    silent = 0
    stopped = ""
    ops = scan.operations
    for index, op in enumerate(ops):
        cases = scan.doc.negative_cases(op, seed, limit)
        if not cases:
            continue
        scan.ctx.progress(40 + 40 * index / max(len(ops), 1), f"negative testing {op.label}")
        totals["operations"] += 1
        failures: list[dict[str, Any]] = []
        for case in cases:
            totals["cases"] += 1
            try:
                exchange = scan.send(op, case)
            except TransportError as exc:
                totals["no_answer"] += 1
                silent += 1
                failures.append({"case": case.description, "no_answer": str(exc)})
                if silent >= MAX_SILENT_CASES:
                    stopped = f"stopped after {silent} requests in a row got no answer: {exc}"
                    break
                continue
            silent = 0
            if exchange.status >= 500:
                totals["server_errors"] += 1
                failures.append(scan.evidence(exchange, body=exchange.text(4_000)))
        if failures:
            _negative_finding(scan, op, cases, failures)
        if stopped:
            break
    scan.measure("security.negative.cases", totals["cases"], "count")
    scan.measure("security.negative.server_errors", totals["server_errors"], "count")
    scan.measure("security.negative.no_answer", totals["no_answer"], "count")
    if not totals["cases"]:
        scan.outcome(
            "sec.negative_testing",
            CHECK_UNKNOWN,
            "the OpenAPI document declares no parameter or body to vary",
        )
        return
    failed = totals["server_errors"] + totals["no_answer"]
    detail = (
        f"{totals['cases']} cases on {totals['operations']} operations: "
        f"{totals['server_errors']} answered 5xx, {totals['no_answer']} got no answer"
    )
    if stopped:
        detail += f"; {stopped}"
    scan.outcome("sec.negative_testing", CHECK_FAILED if failed else CHECK_PASSED, detail)


def _negative_finding(
    scan: Scan, op: Operation, cases: list[Case], failures: list[dict[str, Any]]
) -> None:
    statuses = sorted({f["status"].split()[1] for f in failures if "status" in f})
    what = f"answered {', '.join(statuses)}" if statuses else "got no answer"
    scan.add(
        FindingData(
            rule_id="sec.negative_testing",
            title=f"{op.label} {what} to invalid or unexpected input "
            f"({len(failures)} of {len(cases)} cases)",
            severity="medium",
            category="security",
            location=op.label,
            key=f"sec.negative_testing:{op.label}",
            evidence={"failures": failures[:3], "cases_sent": len(cases)},
            fix_hint=(
                "Declare the constraints in the signature so FastAPI rejects bad input with a "
                "4xx before your code runs (types, `Query(ge=…, le=…, max_length=…)`, "
                "`Field(...)`), and turn the remaining expected errors into HTTPException with "
                "a 4xx instead of letting them escape as 500."
            ),
            doc_url="https://fastapi.tiangolo.com/tutorial/handling-errors/",
        )
    )


def _flatten(exchange: Exchange) -> str:
    """The body as text; a JSON body's strings joined so escaped newlines read as lines."""
    text = exchange.text()
    if "json" not in exchange.content_type:
        return text
    try:
        # Bounded: ``walk`` below recurses, and a target may nest without end.
        value = jsondoc.loads(text, "the answer")
    except ValueError:  # not JSON, or jsondoc.DocumentRefused
        return text
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, dict):
            for key, item in node.items():
                parts.append(str(key))
                walk(item)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif node is not None:
            parts.append(str(node))

    walk(value)
    return "\n".join(parts)


def leaks_in(exchange: Exchange) -> list[tuple[str, str, re.Match[str], str]]:
    """(kind, severity, match, text) for each kind of internal detail the body shows."""
    text = _flatten(exchange)
    found: list[tuple[str, str, re.Match[str], str]] = []
    for kind, severity, pattern in LEAKS:
        match = pattern.search(text)
        if match:
            found.append((kind, severity, match, text))
    return found


def check_error_leakage(scan: Scan) -> None:
    sent = {(e.method, e.url, e.request_body) for e in scan.client.exchanges}
    probes = 0
    for op in scan.operations:
        cases = scan.doc.negative_cases(op, int(scan.params["seed"]), 1_000)
        chosen: list[Case] = []
        for kind in LEAK_PROBE_KINDS:
            chosen.extend(c for c in cases if c.kind == kind and c not in chosen)
        for case in chosen[:LEAK_PROBES_PER_OPERATION]:
            path = render_path(op.path, case.path_values)
            url = scan.client.url_for(path, query_pairs(case.query))
            if (op.method, url, case.body) in sent:
                continue
            probes += 1
            try:
                scan.send(op, case)
            except TransportError:
                continue
    try:
        scan.client.request("GET", UNKNOWN_PATH, operation="GET (unknown path)", note="404 probe")
        probes += 1
    except TransportError:
        pass
    errors = [
        e
        for e in scan.client.exchanges
        if e.status >= 400 and e.operation and not e.operation.startswith("OPTIONS")
    ]
    by_operation: dict[str, list[tuple[str, str, re.Match[str], str, Exchange]]] = defaultdict(list)
    for exchange in errors:
        for kind, severity, match, text in leaks_in(exchange):
            by_operation[exchange.operation].append((kind, severity, match, text, exchange))
    for label, hits in by_operation.items():
        # The worst kind first, then the shortest request: the clearest example to show.
        hits.sort(key=lambda hit: (-SEVERITY_RANK[hit[1]], len(hit[4].url)))
        kind, severity, match, text, exchange = hits[0]
        kinds = sorted({hit[0] for hit in hits})
        start = max(match.start() - 150, 0)
        scan.add(
            FindingData(
                rule_id="sec.error_leakage",
                title=f"{label} error responses reveal internals: {', '.join(kinds)}",
                severity=severity,
                category="security",
                location=label,
                key=f"sec.error_leakage:{label}",
                evidence={
                    "found": kinds,
                    "responses_with_leaks": len({id(hit[4]) for hit in hits}),
                    **scan.evidence(exchange, body=text[start : match.end() + 300]),
                },
                fix_hint=(
                    "Never return exception text or tracebacks to the client: an exception "
                    "handler that logs the error with a request id and answers "
                    '`{"detail": "Internal Server Error", "request_id": …}`; turn expected '
                    "errors into HTTPException with a 4xx. Run without debug mode."
                ),
                doc_url=OWASP_ERRORS,
            )
        )
    if not errors:
        # Nothing inspected is nothing known: never a pass on 0 error responses.
        scan.outcome(
            "sec.error_leakage",
            CHECK_UNKNOWN,
            f"no error response to inspect ({probes} probe(s) sent, none answered 4xx/5xx) — "
            "fix: give the scan an OpenAPI document whose operations take parameters or a "
            "body, or run it when the target answers unknown paths with 404",
        )
        return
    scan.outcome(
        "sec.error_leakage",
        CHECK_FAILED if by_operation else CHECK_PASSED,
        f"{len(errors)} error responses inspected",
    )
