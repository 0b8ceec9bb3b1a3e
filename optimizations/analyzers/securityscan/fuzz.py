"""``sec.fuzzing``: property-based API fuzzing with schemathesis, sent through the scan's client.

schemathesis is used as a library for what it is good at — generating requests
from the OpenAPI document (valid ones, and ones that break the schema), and
judging the answers — while every request still goes through this scan's
``HttpClient``: the allow-listed pinned address, the target's rate, the
request budget, the time limit, the sub-second cancel and the redaction of
credentials all stay as they are. Cases are drawn with a fixed seed, so the same
scan sends the same requests.

Each answer is judged by schemathesis's checks:

* a 5xx (``not_a_server_error``) — filed under ``sec.negative_testing``, the
  hand-written check this one replaces by default, so a finding keeps its
  identity from scans before;
* invalid input accepted (``negative_data_rejection``): a 2xx to a request
  that breaks the documented schema (``sec.fuzzing:accepts_invalid:<operation>``);
* response conformance: an undocumented status code, a content type or a
  body that does not match the document (``sec.fuzzing:conformance:<operation>``).

Safe methods only (GET, HEAD, OPTIONS), unless the target allows writes (the
job's ``allow_writes``, which the portal fills from the target's setting).
Each failure carries a curl command that reproduces it, credentials masked.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..base import CHECK_FAILED, CHECK_PASSED, CHECK_UNKNOWN, FindingData
from .client import REDACTED, Exchange, TransportError
from .state import Scan

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Headers schemathesis adds for its own transport; ours sends its own.
TRANSPORT_HEADERS = {
    "user-agent",
    "accept-encoding",
    "accept",
    "connection",
    "x-schemathesis-testcaseid",
}
EXAMPLES_PER_FINDING = 3
PLACEHOLDER_ORIGIN = "http://fuzz.invalid"

# (finding rule, title, severity, category, fix) per kind of failure.
KINDS: dict[str, tuple[str, str, str, str, str]] = {
    "server_error": (
        "sec.negative_testing",
        "answered {statuses} to generated input",
        "medium",
        "security",
        "Declare the constraints in the signature so FastAPI rejects bad input with a 4xx "
        "before your code runs (types, `Query(ge=…, le=…, max_length=…)`, `Field(...)`), and "
        "turn the remaining expected errors into HTTPException with a 4xx.",
    ),
    "accepts_invalid": (
        "sec.fuzzing",
        "accepted input that breaks its documented schema",
        "low",
        "correctness",
        "Validate what the document promises (FastAPI does for declared types; a handler that "
        "reads the raw request or a model with `extra='allow'` does not), or correct the "
        "document so clients know what is accepted.",
    ),
    "conformance": (
        "sec.fuzzing",
        "answers do not match the OpenAPI document",
        "low",
        "correctness",
        "Document every status the operation returns (FastAPI: `responses={404: …}` on the "
        "route) and give its answers the declared content type and shape (`response_model`).",
    ),
}


@dataclass
class _Tally:
    operations: int = 0
    cases: int = 0
    server_errors: int = 0
    no_answer: int = 0
    failures: int = 0
    unjudged: int = 0
    skipped_writes: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def available() -> bool:
    """Whether schemathesis can be imported in this worker."""
    try:
        import schemathesis  # noqa: F401
    except ImportError:
        return False
    return True


def _kind(failure: Any) -> str:
    name = type(failure).__name__
    checks = " ".join(getattr(failure, "checks", ()) or ())
    if name == "ServerError" or "not_a_server_error" in checks:
        return "server_error"
    if "negative_data_rejection" in checks or name == "AcceptedNegativeData":
        return "accepts_invalid"
    return "conformance"


def _draw(operation: Any, count: int, seed: int) -> tuple[list[Any], list[str]]:
    """Up to ``count`` cases of ``operation`` (half valid, half breaking the schema), and
    why a mode drew none where it could not."""
    from schemathesis.generation import GenerationMode

    cases: list[Any] = []
    problems: list[str] = []
    for mode, share in (
        (GenerationMode.POSITIVE, (count + 1) // 2),
        (GenerationMode.NEGATIVE, count // 2),
    ):
        if share > 0:
            drawn, problem = _draw_mode(operation.as_strategy(generation_mode=mode), share, seed)
            cases.extend(drawn)
            if problem:
                problems.append(f"{mode.value}: {problem}")
    return cases, problems


def _draw_mode(strategy: Any, share: int, seed: int) -> tuple[list[Any], str]:
    import hypothesis
    from hypothesis.errors import Unsatisfiable

    drawn: list[Any] = []

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=share * 3,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(strategy)
    def collect(case: Any) -> None:
        if len(drawn) < share:
            drawn.append(case)

    try:
        collect()
    except Unsatisfiable:
        return drawn, ""  # nothing to vary: an operation without parameters has no invalid form
    except Exception as exc:  # a schema the generator cannot serve: said in the summary
        return drawn, f"{type(exc).__name__}: {str(exc)[:200]}"
    return drawn, ""


def _request(case: Any) -> tuple[str, str, list[tuple[str, str]], dict[str, str], bytes | None]:
    """(method, path, query, headers, body) of a case; ValueError when it cannot be sent."""
    kwargs = case.as_transport_kwargs(base_url=PLACEHOLDER_ORIGIN)
    parts = urlsplit(str(kwargs["url"]))
    query: list[tuple[str, str]] = []
    for name, value in (kwargs.get("params") or {}).items():
        for item in value if isinstance(value, list) else [value]:
            query.append((str(name), _text(item)))
    headers = {
        str(name): str(value)
        for name, value in (kwargs.get("headers") or {}).items()
        if str(name).lower() not in TRANSPORT_HEADERS
    }
    body: bytes | None = None
    if "json" in kwargs:
        body = json.dumps(kwargs["json"]).encode()
    elif kwargs.get("data") is not None:
        data = kwargs["data"]
        if isinstance(data, bytes):
            body = data
        elif isinstance(data, str):
            body = data.encode()
        else:
            raise ValueError("a form body")  # only JSON and raw bodies are sent
    for name, value in headers.items():
        if any(ch in f"{name}{value}" for ch in "\r\n") or not f"{name}{value}".isascii():
            raise ValueError("a header this client cannot send")
    return str(kwargs["method"]).upper(), parts.path, query, headers, body


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _response(scan: Scan, exchange: Exchange, method: str, headers: dict[str, str]) -> Any:
    """The exchange as schemathesis's Response, for its checks."""
    import requests
    from schemathesis.core.transport import Response

    prepared = requests.Request(
        method,
        scan.client.origin + exchange.url,
        headers=headers,
        data=exchange.request_body,
    ).prepare()
    received: dict[str, list[str]] = {}
    for name, value in exchange.headers:
        received.setdefault(name.lower(), []).append(value)
    return Response(
        exchange.status,
        received,
        exchange.body,
        prepared,
        0.0,
        True,
        message=exchange.reason,
        http_version="1.1",
    )


def _curl(scan: Scan, case: Any) -> str:
    """A curl command that sends this case again, credentials masked."""
    masked = {scan.client.auth_header[0]: REDACTED} if scan.client.auth_header else {}
    command = str(
        case.as_curl_command(headers=masked, base_url=scan.client.origin + scan.client.base_path)
    )
    return scan.client.redactor.text(command.split("\n\n", 1)[0])


def check_fuzzing(scan: Scan) -> None:
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import Failure, FailureGroup
    from schemathesis.core.result import Err
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        negative_data_rejection,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        not_a_server_error,
        negative_data_rejection,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    per_operation = int(scan.params["fuzz_cases"])
    seed = int(scan.params["seed"])
    limit = float(scan.params["fuzz_seconds"])
    # The job's parameter (filled by the portal from the target) and the target's own
    # setting: both must allow writes.
    writes = bool(scan.params.get("allow_writes")) and scan.target.allows_writes
    tally = _Tally()
    scan.summary["fuzzing"] = {"writes": writes}
    try:
        api = schemathesis.openapi.from_dict(scan.doc.raw)
        api.config.generation.update(codec="ascii", allow_x00=False, with_security_parameters=False)
    except Exception as exc:  # a document schemathesis cannot load
        scan.outcome("sec.fuzzing", CHECK_UNKNOWN, f"schemathesis cannot read the document: {exc}")
        return
    probed = {op.label for op in scan.operations}
    started = time.monotonic()
    stopped = ""
    silent = 0
    failures: dict[tuple[str, str], list[dict[str, Any]]] = {}
    cases_of: dict[str, int] = {}
    for index, result in enumerate(api.get_all_operations()):
        if isinstance(result, Err):  # one operation schemathesis cannot read
            tally.unreadable.append(str(result.err())[:200])
            continue
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label not in probed:
            continue
        if operation.method.upper() not in SAFE_METHODS and not writes:
            tally.skipped_writes.append(label)
            continue
        if time.monotonic() - started > limit:
            stopped = f"stopped after {limit:g} s (fuzz_seconds)"
            break
        scan.ctx.progress(40 + 30 * index / max(len(probed), 1), f"fuzzing {label}")
        tally.operations += 1
        cases, problems = _draw(operation, per_operation, seed)
        tally.unreadable.extend(f"{label} {problem}" for problem in problems)
        for case in cases:
            try:
                method, path, query, headers, body = _request(case)
            except ValueError:
                continue
            tally.cases += 1
            cases_of[label] = cases_of.get(label, 0) + 1
            try:
                exchange = scan.client.request(
                    method,
                    path,
                    query=query,
                    headers=headers,
                    body=body,
                    operation=label,
                    note="generated (schemathesis)",
                )
            except TransportError as exc:
                tally.no_answer += 1
                silent += 1
                failures.setdefault((label, "server_error"), []).append(
                    {"no_answer": str(exc), "curl": _curl(scan, case)}
                )
                if silent >= 3:
                    stopped = f"stopped after {silent} requests in a row got no answer: {exc}"
                    break
                continue
            silent = 0
            if exchange.status >= 500:
                tally.server_errors += 1
            found: list[Any] = []
            try:
                case.validate_response(_response(scan, exchange, method, headers), checks=checks)
            except FailureGroup as group:
                found = list(group.exceptions)
            except Failure as one:
                found = [one]
            except Exception:  # a check that could not judge this answer: said, never a pass
                tally.unjudged += 1
            for failure in found:
                tally.failures += 1
                failures.setdefault((label, _kind(failure)), []).append(
                    {
                        "problem": f"{failure.title}: {str(failure.message)[:300]}",
                        **scan.evidence(exchange, body=exchange.text(1_000)),
                        "curl": _curl(scan, case),
                    }
                )
        if stopped:
            break
    for (label, kind), examples in failures.items():
        _finding(scan, label, kind, examples, cases_of.get(label, 0))
    _report(scan, tally, stopped, failures)


def _finding(scan: Scan, label: str, kind: str, examples: list[dict[str, Any]], sent: int) -> None:
    rule, title, severity, category, fix = KINDS[kind]
    statuses = sorted({e["status"].split()[1] for e in examples if "status" in e}) or ["no answer"]
    scan.add(
        FindingData(
            rule_id=rule,
            title=f"{label} {title.format(statuses=', '.join(statuses))} "
            f"({len(examples)} of {sent} cases)",
            severity=severity,
            category=category,
            location=label,
            # 5xx keep the key of the negative testing they replace (the same finding as
            # in scans before); the others are one finding per operation and kind.
            key=f"{rule}:{label}" if kind == "server_error" else f"{rule}:{kind}:{label}",
            evidence={"failures": examples[:EXAMPLES_PER_FINDING], "cases_sent": sent},
            fix_hint=fix,
            doc_url="https://schemathesis.readthedocs.io/en/stable/reference/checks/",
        )
    )


def _report(
    scan: Scan, tally: _Tally, stopped: str, failures: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    scan.summary["fuzzing"].update(
        operations=tally.operations,
        cases=tally.cases,
        server_errors=tally.server_errors,
        no_answer=tally.no_answer,
        failures=tally.failures,
        unjudged=tally.unjudged,
        unreadable=tally.unreadable[:5],
        skipped_writes=tally.skipped_writes,
        stopped=stopped or None,
    )
    scan.measure("security.fuzz.cases", tally.cases, "count")
    scan.measure("security.fuzz.failures", tally.failures, "count")
    # What the hand-written negative testing measured, now from the generated cases.
    scan.summary["negative_testing"] = {
        "operations": tally.operations,
        "cases": tally.cases,
        "server_errors": tally.server_errors,
        "no_answer": tally.no_answer,
        "by": "sec.fuzzing",
    }
    scan.measure("security.negative.cases", tally.cases, "count")
    scan.measure("security.negative.server_errors", tally.server_errors, "count")
    scan.measure("security.negative.no_answer", tally.no_answer, "count")
    skipped = ""
    if tally.skipped_writes:
        skipped = (
            f"; {len(tally.skipped_writes)} write operations not fuzzed (the target does not "
            "allow writes)"
        )
    if not tally.cases:
        why = "no operation could be fuzzed" + skipped
        scan.outcome("sec.fuzzing", CHECK_UNKNOWN, why)
        scan.covered_outcome("sec.negative_testing", CHECK_UNKNOWN, why)
        return
    crashed = tally.server_errors + tally.no_answer
    kinds = {kind for _, kind in failures}
    detail = (
        f"{tally.cases} generated cases on {tally.operations} operations: {tally.server_errors} "
        f"answered 5xx, {tally.no_answer} got no answer, {tally.failures} check failures"
        + (f"; {tally.unjudged} answers the checks could not judge" if tally.unjudged else "")
        + (f"; {stopped}" if stopped else "")
        + skipped
    )
    scan.outcome("sec.fuzzing", CHECK_FAILED if kinds else CHECK_PASSED, detail)
    scan.covered_outcome(
        "sec.negative_testing",
        CHECK_FAILED if crashed else CHECK_PASSED,
        f"covered by sec.fuzzing: {tally.cases} generated cases, {tally.server_errors} answered "
        f"5xx, {tally.no_answer} got no answer",
    )
