"""``run``: the security scan's parameters, its order of checks, and its summary."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..base import (
    CHECK_FAILED,
    CHECK_UNKNOWN,
    SEVERITY_RANK,
    AnalysisError,
    AnalysisResult,
    Context,
    Param,
    TargetSpec,
    validate_params,
    verdict_from_checks,
)
from ..netguard import HostNotAllowed
from . import checks_api, checks_http, fuzz
from .client import HttpClient, Stop, TransportError
from .openapi import Document, OpenAPIError
from .state import Scan

# In the order they run: the cheap checks that read the sampled GETs first (so a scan cut
# short by its budget still has them); negative testing before error leakage, which reads
# every error response the scan has seen; the burst last.
CHECKS = (
    ("sec.headers", checks_http.check_headers, 10),
    ("sec.cors", checks_http.check_cors, 20),
    ("sec.compression", checks_http.check_compression, 25),
    ("sec.keepalive", checks_http.check_keepalive, 28),
    ("sec.cache_headers", checks_http.check_cache_headers, 32),
    ("sec.banner", checks_http.check_banner, 33),
    ("sec.unauthenticated_writes", checks_api.check_unauthenticated_writes, 35),
    ("sec.input_bounds", checks_api.check_input_bounds, 38),
    # Generated cases (schemathesis) judged by its checks; it does the negative testing's
    # work too, so the hand-written cases below run only when asked for without it.
    ("sec.fuzzing", fuzz.check_fuzzing, 39),
    ("sec.negative_testing", checks_api.check_negative_testing, 70),
    ("sec.error_leakage", checks_api.check_error_leakage, 82),
    ("sec.rate_limiting", checks_http.check_rate_limiting, 90),
)
CHECK_IDS = tuple(check_id for check_id, _, _ in CHECKS)
# The checks a verdict needs: one of them unknown (not run, nothing seen) makes
# the scan incomplete with its reason, never pass.
VERDICT_CHECKS = (
    "sec.headers",
    "sec.cors",
    "sec.unauthenticated_writes",
    "sec.error_leakage",
    "sec.rate_limiting",
)

PARAMS: list[Param] = [
    Param("checks", "list", [], "run only these checks (empty: all)", "Checks", choices=CHECK_IDS),
    Param(
        "max_rate",
        "float",
        0.0,
        "requests per second, at most the target's own max_rate (0: the target's)",
        "Max rate (req/s)",
        min=0,
    ),
    Param(
        "request_timeout",
        "float",
        10.0,
        "seconds to wait for each answer",
        "Request timeout (s)",
        min=0.05,
        max=120,
    ),
    Param(
        "max_requests", "int", 2_000, "requests the whole scan may send", "Max requests", 1, 50_000
    ),
    Param(
        "max_operations",
        "int",
        60,
        "documented operations probed (sampling, negative testing, error leakage)",
        "Max operations",
        min=1,
        max=2_000,
    ),
    Param(
        "max_sample_reads",
        "int",
        30,
        "documented GETs sampled for the header, compression and caching checks",
        "Sampled reads",
        min=1,
        max=500,
    ),
    Param(
        "negative_cases",
        "int",
        12,
        "invalid or unexpected requests per operation in negative testing",
        "Cases per operation",
        min=1,
        max=200,
    ),
    Param(
        "fuzz_cases",
        "int",
        10,
        "generated requests per operation in fuzzing (half valid, half breaking the schema)",
        "Fuzzing cases per operation",
        min=1,
        max=200,
    ),
    Param(
        "fuzz_seconds",
        "float",
        60.0,
        "seconds fuzzing may take at most (within the target's duration limit)",
        "Fuzzing time (s)",
        min=1,
        max=3_600,
    ),
    Param(
        "allow_writes",
        "bool",
        False,
        "set by the portal from the target's 'allows writes' setting: fuzzing sends "
        "POST, PUT, PATCH and DELETE too (else safe methods only)",
        "Writes allowed",
    ),
    Param("seed", "int", 0, "seed of the case selection (same seed, same requests)", "Seed"),
    Param(
        "burst_requests",
        "int",
        20,
        "requests in the rate-limiting burst (sent at no more than the max rate)",
        "Burst size",
        min=0,
        max=500,
    ),
    Param(
        "compression_min_bytes",
        "int",
        1_024,
        "responses at least this large should be compressed",
        "Compression threshold (bytes)",
        min=1,
    ),
    Param(
        "max_body_bytes",
        "int",
        2_000_000,
        "bytes of each response body read at most",
        "Max body (bytes)",
        min=1_024,
        max=100_000_000,
    ),
    Param(
        "html_paths",
        "list",
        ["/docs"],
        "HTML pages of the service to check too, beside the documented operations",
        "HTML pages",
    ),
    Param("verify_tls", "bool", True, "verify the target's TLS certificate", "Verify TLS"),
]


def run(target: TargetSpec, params: Mapping[str, Any], ctx: Context) -> AnalysisResult:
    """Scan ``target``'s running HTTP API; see the package docstring."""
    try:
        params = validate_params(PARAMS, params or {})
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    if not target.base_url:
        raise AnalysisError(f"Target {target.name!r} has no base URL to scan.")
    if target.max_rate <= 0 or target.max_duration <= 0:
        raise AnalysisError(
            f"Target {target.name!r} allows no load (max_rate {target.max_rate:g} req/s, "
            f"max_duration {target.max_duration:g} s); raise them to scan it."
        )
    rate = target.max_rate
    if params["max_rate"] > 0:
        rate = min(rate, params["max_rate"])
    wanted = set(params["checks"]) or set(CHECK_IDS)
    started = time.monotonic()
    ctx.progress(1, "connecting")
    try:
        client = HttpClient(
            target.base_url,
            ctx,
            allowed_hosts=target.allowed_hosts,
            rate=rate,
            deadline=started + target.max_duration,
            timeout=params["request_timeout"],
            max_requests=params["max_requests"],
            max_body_bytes=params["max_body_bytes"],
            auth_header=target.auth_header,
            verify_tls=params["verify_tls"],
        )
    except HostNotAllowed as exc:
        raise AnalysisError(str(exc)) from None
    except ValueError as exc:
        raise AnalysisError(f"Target {target.name!r}: {exc}") from None
    try:
        doc = _load_document(client, target, ctx)
        every = doc.operations()
        scan = Scan(
            target=target,
            params=params,
            ctx=ctx,
            client=client,
            doc=doc,
            doc_operations=every,
            operations=every[: params["max_operations"]],
            wanted=wanted,
        )
        ctx.log(
            f"OpenAPI {doc.version} '{doc.title}': {len(every)} operations; "
            f"at most {rate:g} req/s for {target.max_duration:g} s"
        )
        stopped = _run_checks(scan, wanted)
    finally:
        client.close()
    elapsed = time.monotonic() - started
    return _result(scan, rate, elapsed, stopped)


def _load_document(client: HttpClient, target: TargetSpec, ctx: Context) -> Document:
    ctx.progress(2, "reading the OpenAPI document")
    path = target.openapi_path or "/openapi.json"
    url = client.origin + client.url_for(path)
    try:
        exchange = client.request("GET", path, operation=f"GET {path}", note="OpenAPI document")
    except TransportError as exc:
        raise AnalysisError(f"Cannot scan {target.name!r}: {exc}") from None
    except Stop as exc:
        raise AnalysisError(f"Cannot scan {target.name!r}: {exc}.") from None
    if exchange.status == 404:
        raise AnalysisError(
            f"No OpenAPI document at {url} (404). Set the target's OpenAPI path to where the "
            "service serves it (FastAPI: /openapi.json unless openapi_url was changed)."
        )
    if exchange.status in {401, 403}:
        raise AnalysisError(
            f"{url} answered {exchange.status}: the OpenAPI document needs credentials. "
            "Set the target's auth header."
        )
    if not 200 <= exchange.status < 300:
        raise AnalysisError(
            f"{url} answered {exchange.status} {exchange.reason} instead of the OpenAPI document."
        )
    if exchange.truncated:
        raise AnalysisError(
            f"The OpenAPI document at {url} is larger than max_body_bytes "
            f"({client.max_body_bytes:,} bytes); raise that parameter."
        )
    try:
        doc = Document.parse(exchange.body, url)
    except OpenAPIError as exc:
        raise AnalysisError(f"Cannot scan {target.name!r}: {exc}") from None
    # A service behind a path prefix (FastAPI's root_path) names it in `servers`; only a
    # relative prefix is followed, never another host.
    servers = doc.raw.get("servers")
    if isinstance(servers, list) and servers and isinstance(servers[0], dict):
        prefix = str(servers[0].get("url", "")).rstrip("/")
        if prefix.startswith("/") and not client.base_path.endswith(prefix):
            client.base_path += prefix
        elif prefix and not prefix.startswith("/") and urlsplit(prefix).path not in {"", "/"}:
            ctx.log(f"the document names the server {prefix!r}; paths are sent to the base URL")
    return doc


def _run_checks(scan: Scan, wanted: set[str]) -> str:
    """Run the wanted checks in order; return why the scan stopped early, if it did."""
    stopped = ""
    for check_id, check, percent in CHECKS:
        if check_id not in wanted or check_id in scan.covered:
            continue
        if check_id == "sec.fuzzing" and not fuzz.available():
            scan.outcome(
                check_id,
                CHECK_UNKNOWN,
                "schemathesis is not installed in this worker (pip install schemathesis); the "
                "hand-written negative testing ran instead",
            )
            continue
        if stopped:
            scan.outcome(check_id, CHECK_UNKNOWN, f"not run: {stopped}")
            continue
        scan.ctx.progress(percent, check_id)
        before = len(scan.findings)
        try:
            check(scan)
        except Stop as exc:
            stopped = str(exc)
            # Findings made before the stop are real; a pass would need the whole check.
            status = CHECK_FAILED if len(scan.findings) > before else CHECK_UNKNOWN
            scan.outcome(check_id, status, f"stopped early: {stopped}")
            scan.ctx.log(f"{check_id}: stopped early ({stopped})", "warning")
            continue
        except TransportError as exc:
            scan.outcome(check_id, CHECK_UNKNOWN, f"could not run: {exc}")
        outcome = scan.checks[-1]
        level = "warning" if outcome.status == CHECK_UNKNOWN else "info"
        scan.ctx.log(f"{check_id}: {outcome.status} ({outcome.detail})", level)
    return stopped


def _result(scan: Scan, rate: float, elapsed: float, stopped: str) -> AnalysisResult:
    client = scan.client
    by_severity: dict[str, int] = {}
    for finding in scan.findings:
        by_severity[finding.severity] = by_severity.get(finding.severity, 0) + 1
    scan.summary.update(
        {
            "base_url": client.origin + client.base_path,
            "openapi": {
                "url": scan.doc.source,
                "version": scan.doc.version,
                "title": scan.doc.title,
                "operations": len(scan.doc_operations),
                "probed": len(scan.operations),
            },
            "requests": client.stats.requests,
            "connections": client.stats.connections,
            "statuses": dict(sorted(client.stats.by_status.items())),
            "max_rate": rate,
            "duration_s": round(elapsed, 3),
            "stopped": stopped or None,
            "checks": {c.check_id: c.status for c in scan.checks},
            "findings": len(scan.findings),
            "findings_by_severity": by_severity,
        }
    )
    scan.measure("security.scan.requests", client.stats.requests, "count")
    scan.measure("security.scan.duration", round(elapsed, 3), "s")
    worst = max((SEVERITY_RANK[f.severity] for f in scan.findings), default=-1)
    wanted = {c.check_id for c in scan.checks}
    verdict, reason = verdict_from_checks(
        scan.checks,
        failed=worst >= SEVERITY_RANK["high"],
        required=[c for c in VERDICT_CHECKS if c in wanted],
    )
    scan.ctx.progress(100, "done")
    return AnalysisResult(
        summary=scan.summary,
        findings=scan.findings,
        measurements=scan.measurements,
        checks=scan.checks,
        verdict=verdict,
        verdict_reason=reason,
    )
