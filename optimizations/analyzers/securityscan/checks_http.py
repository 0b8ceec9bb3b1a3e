"""HTTP-level checks: security headers, CORS, compression, keep-alive, caching, banners,
rate limiting. They read the sampled GET responses and send a few requests of their own."""

from __future__ import annotations

import gzip
import re
from collections import Counter
from typing import Any

from ..base import CHECK_FAILED, CHECK_PASSED, CHECK_UNKNOWN, FindingData
from .client import Exchange
from .openapi import Operation, render_path
from .state import Scan

HOSTILE_ORIGIN = "https://kaizen-cors-probe.example"
HSTS_MIN_SECONDS = 15_552_000  # 180 days, the floor of OWASP's and MDN's advice
COMPRESSED_ENCODINGS = {"gzip", "x-gzip", "deflate", "br", "zstd"}
COMPRESSIBLE_TYPES = ("json", "text/", "javascript", "xml", "ndjson", "csv", "yaml")
WORTH_COMPRESSING = 0.2  # a saving below 20 % is not worth a finding
COMPRESSION_MEDIUM_BYTES = 10_000
KEEPALIVE_REQUESTS = 3
CACHE_HEADERS = ("cache-control", "etag", "last-modified", "expires")
RATE_LIMIT_HEADERS = (
    "ratelimit",
    "ratelimit-policy",
    "ratelimit-limit",
    "ratelimit-remaining",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
)
VERSION_LIKE = re.compile(r"\d+\.\d+")
# FastAPI's interactive docs: developer pages whose CSP would have to allow a CDN.
DOCS_PAGES = {"GET /docs", "GET /redoc", "GET /docs/oauth2-redirect"}
BANNER_HEADERS = ("x-powered-by", "x-aspnet-version", "x-aspnetmvc-version", "x-runtime-version")

OWASP_HEADERS = "https://cheatsheetseries.owasp.org/cheatsheets/HTTP_Headers_Cheat_Sheet.html"
OWASP_REST = "https://cheatsheetseries.owasp.org/cheatsheets/REST_Security_Cheat_Sheet.html"
MDN = "https://developer.mozilla.org/en-US/docs/Web/HTTP"
HEADER_RULES = {
    # key: (title, severity, doc, fix)
    "x-content-type-options": (
        "Responses lack X-Content-Type-Options: nosniff",
        "low",
        f"{MDN}/Headers/X-Content-Type-Options",
        "Send `X-Content-Type-Options: nosniff` on every response (a small ASGI middleware "
        "that sets it in `http.response.start`, or the reverse proxy).",
    ),
    "frame-protection": (
        "Responses can be framed by any site (no X-Frame-Options nor CSP frame-ancestors)",
        "low",
        f"{MDN}/Headers/X-Frame-Options",
        "Send `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'` "
        "(OWASP's REST advice for APIs).",
    ),
    "referrer-policy": (
        "Responses set no Referrer-Policy",
        "info",
        f"{MDN}/Headers/Referrer-Policy",
        "Send `Referrer-Policy: no-referrer` (or `strict-origin-when-cross-origin`).",
    ),
    "strict-transport-security": (
        "HTTPS responses lack Strict-Transport-Security (or its max-age is under 180 days)",
        "medium",
        f"{MDN}/Headers/Strict-Transport-Security",
        "Send `Strict-Transport-Security: max-age=31536000; includeSubDomains` on HTTPS.",
    ),
    "csp-html": (
        "HTML pages are served without a Content-Security-Policy",
        "low",
        f"{MDN}/Headers/Content-Security-Policy",
        "Give HTML responses a Content-Security-Policy; for FastAPI's /docs it must allow "
        "the Swagger UI assets (their CDN, or serve them yourself and use 'self').",
    ),
}


def _frame_protected(exchange: Exchange) -> bool:
    xfo = (exchange.header("x-frame-options") or "").strip().upper()
    csp = (exchange.header("content-security-policy") or "").lower()
    return xfo in {"DENY", "SAMEORIGIN"} or "frame-ancestors" in csp


def _hsts_ok(exchange: Exchange) -> bool:
    value = exchange.header("strict-transport-security") or ""
    match = re.search(r"max-age\s*=\s*\"?(\d+)", value, re.I)
    return match is not None and int(match[1]) >= HSTS_MIN_SECONDS


def check_headers(scan: Scan) -> None:
    samples = [e for e in scan.sample_reads() if e.status < 500]
    if not samples:
        scan.outcome("sec.headers", CHECK_UNKNOWN, _no_samples(scan))
        return
    missing: dict[str, list[Exchange]] = {key: [] for key in HEADER_RULES}
    for exchange in samples:
        html = "html" in exchange.content_type
        if (exchange.header("x-content-type-options") or "").strip().lower() != "nosniff":
            missing["x-content-type-options"].append(exchange)
        if not _frame_protected(exchange):
            missing["frame-protection"].append(exchange)
        if not exchange.header("referrer-policy"):
            missing["referrer-policy"].append(exchange)
        if scan.client.scheme == "https" and not _hsts_ok(exchange):
            missing["strict-transport-security"].append(exchange)
        if html and not exchange.header("content-security-policy"):
            missing["csp-html"].append(exchange)
    for key, lacking in missing.items():
        if not lacking:
            continue
        title, severity, doc, fix = HEADER_RULES[key]
        if key == "csp-html" and all(e.operation in DOCS_PAGES for e in lacking):
            # FastAPI's docs page loads Swagger UI from a CDN; a CSP there is a nicety.
            severity = "info"
        if key == "frame-protection" and any("html" in e.content_type for e in lacking):
            severity = "medium"
        first = lacking[0]
        scan.add(
            FindingData(
                rule_id="sec.headers",
                title=title,
                severity=severity,
                category="security",
                location=first.operation,
                key=f"sec.headers:{key}",
                evidence={
                    "missing_on": [e.operation for e in lacking][:20],
                    "responses_checked": len(samples),
                    "example": scan.evidence(first),
                },
                fix_hint=fix,
                doc_url=doc,
            )
        )
    failed = any(missing.values())
    detail = f"{len(samples)} responses checked"
    if scan.client.scheme != "https":
        detail += "; HSTS not applicable over plain HTTP"
    scan.outcome("sec.headers", CHECK_FAILED if failed else CHECK_PASSED, detail)


def check_cors(scan: Scan) -> None:
    targets = []
    unsafe = next((op for op in scan.operations if not op.safe), None)
    if unsafe is not None:
        targets.append((unsafe, "preflight"))
    read = next((e for e in scan.sample_reads() if e.status < 400 and e.method == "GET"), None)
    read_op = next((op for op in scan.operations if read and op.label == read.operation), None)
    if read_op is not None:
        targets.append((read_op, "simple"))
        if unsafe is None:
            targets.insert(0, (read_op, "preflight"))
    if not targets:
        scan.outcome("sec.cors", CHECK_UNKNOWN, "no operation to send a CORS request to")
        return
    answers = []
    for op, kind in targets:
        path = render_path(op.path, scan.doc.sample_request(op).path_values)
        if kind == "preflight":
            asked = ["content-type"]
            if scan.client.auth_header:
                asked.append(scan.client.auth_header[0].lower())
            exchange = scan.client.request(
                "OPTIONS",
                path,
                headers={
                    "Origin": HOSTILE_ORIGIN,
                    "Access-Control-Request-Method": op.method,
                    "Access-Control-Request-Headers": ", ".join(asked),
                },
                # A browser's preflight carries no credentials.
                auth=False,
                operation=f"OPTIONS {op.path}",
                note=f"CORS preflight from {HOSTILE_ORIGIN} for {op.method}",
            )
        else:
            case = scan.doc.sample_request(op)
            case.headers["Origin"] = HOSTILE_ORIGIN
            case.description = f"cross-origin GET from {HOSTILE_ORIGIN}"
            exchange = scan.send(op, case)
        answers.append(exchange)
    worst = None
    for exchange in answers:
        origin = (exchange.header("access-control-allow-origin") or "").strip()
        credentials = (exchange.header("access-control-allow-credentials") or "").strip().lower()
        with_credentials = credentials == "true"
        verdict = None
        if origin == HOSTILE_ORIGIN and with_credentials:
            verdict = ("any-origin-credentials", "high")
        elif origin == "*" and with_credentials:
            verdict = ("wildcard-credentials", "low")
        elif origin == HOSTILE_ORIGIN:
            verdict = ("any-origin", "low")
        rank = {"high": 2, "low": 1}
        if verdict and (worst is None or rank[verdict[1]] > rank[worst[0][1]]):
            worst = (verdict, exchange)
    if worst is None:
        scan.outcome(
            "sec.cors",
            CHECK_PASSED,
            f"{HOSTILE_ORIGIN} was not granted access ({len(answers)} requests)",
        )
        return
    (variant, severity), exchange = worst
    titles = {
        "any-origin-credentials": "CORS lets any origin make credentialed requests "
        "(Origin mirrored with Access-Control-Allow-Credentials: true)",
        "wildcard-credentials": "CORS sends Access-Control-Allow-Origin: * together with "
        "credentials",
        "any-origin": "CORS mirrors any Origin (without credentials)",
    }
    scan.add(
        FindingData(
            rule_id="sec.cors",
            title=titles[variant],
            severity=severity,
            category="security",
            location=exchange.operation,
            key=f"sec.cors:{variant}",
            evidence={
                "origin_sent": HOSTILE_ORIGIN,
                **scan.evidence(
                    exchange,
                    headers=[
                        "access-control-allow-origin",
                        "access-control-allow-credentials",
                        "access-control-allow-methods",
                        "access-control-allow-headers",
                        "vary",
                    ],
                ),
            },
            fix_hint=(
                "List the trusted origins explicitly in CORSMiddleware(allow_origins=[...]); "
                "with allow_origins=['*'] and allow_credentials=True Starlette echoes any "
                "Origin and allows cookies, so any website can act as the signed-in user. "
                "Keep allow_credentials=False unless the API really uses cookies."
            ),
            doc_url="https://www.starlette.io/middleware/#corsmiddleware",
        )
    )
    scan.outcome("sec.cors", CHECK_FAILED, f"{HOSTILE_ORIGIN} was granted access")


def _compressible(exchange: Exchange) -> bool:
    kind = exchange.content_type
    return any(token in kind for token in COMPRESSIBLE_TYPES)


def check_compression(scan: Scan) -> None:
    threshold = int(scan.params["compression_min_bytes"])
    # one entry per sampled response: its sizes (JSON for the summary and the finding)
    measured: list[dict[str, Any]] = []
    wasted: list[tuple[dict[str, Any], Exchange]] = []
    for exchange in scan.sample_reads():
        if not 200 <= exchange.status < 300 or not _compressible(exchange):
            continue
        size = len(exchange.body)
        encoding = exchange.content_encoding
        if encoding in COMPRESSED_ENCODINGS:
            if encoding in {"br", "zstd"}:
                # Not decodable here: the wire size is all that is known.
                measured.append(
                    {
                        "endpoint": exchange.operation,
                        "encoding": encoding,
                        "wire_bytes": exchange.wire_bytes,
                    }
                )
                continue
            gz = exchange.wire_bytes
        elif size >= threshold:
            gz = len(gzip.compress(exchange.body, compresslevel=6))
        else:
            continue
        if size < threshold:
            continue
        saving = round(100 * (1 - gz / size), 1) if size else 0.0
        entry: dict[str, Any] = {
            "endpoint": exchange.operation,
            "bytes": size,
            "gzip_bytes": gz,
            "saving_percent": saving,
            "compressed_by_server": encoding in COMPRESSED_ENCODINGS,
            "body_truncated": exchange.truncated,
        }
        measured.append(entry)
        labels = {"endpoint": exchange.operation}
        labels["compressed_by_server"] = "yes" if entry["compressed_by_server"] else "no"
        scan.measure("http.response_size.identity", size, "bytes", **labels)
        scan.measure("http.response_size.gzip", gz, "bytes", **labels)
        scan.measure("http.compression.saving", saving, "%", **labels)
        if not entry["compressed_by_server"] and saving >= 100 * WORTH_COMPRESSING:
            wasted.append((entry, exchange))
    scan.summary["compression"] = {
        "responses_measured": len(measured),
        "uncompressed": len(wasted),
        "bytes_uncompressed": sum(e["bytes"] for e, _ in wasted),
        "gzip_bytes": sum(e["gzip_bytes"] for e, _ in wasted),
    }
    if not measured:
        scan.outcome(
            "sec.compression",
            CHECK_UNKNOWN,
            f"no compressible 2xx response of {threshold} bytes or more was sampled",
        )
        return
    if not wasted:
        scan.outcome("sec.compression", CHECK_PASSED, f"{len(measured)} large responses compressed")
        return
    wasted.sort(key=lambda pair: pair[0]["bytes"], reverse=True)
    biggest, exchange = wasted[0]
    severity = "medium" if biggest["bytes"] >= COMPRESSION_MEDIUM_BYTES else "low"
    scan.add(
        FindingData(
            rule_id="sec.compression",
            title=(
                f"Large responses are sent uncompressed although the client accepts gzip "
                f"({biggest['bytes']:,} bytes, {biggest['saving_percent']:g} % smaller gzipped)"
            ),
            severity=severity,
            category="performance",
            location=biggest["endpoint"],
            key="sec.compression",
            evidence={
                "responses": [entry for entry, _ in wasted][:20],
                "example": scan.evidence(
                    exchange, headers=["content-type", "content-length", "content-encoding", "vary"]
                ),
            },
            fix_hint=(
                "Add `app.add_middleware(GZipMiddleware, minimum_size=1000)` (FastAPI/Starlette) "
                "or compress at the reverse proxy; keep streaming responses streamed."
            ),
            doc_url="https://fastapi.tiangolo.com/advanced/middleware/#gzipmiddleware",
        )
    )
    scan.outcome(
        "sec.compression", CHECK_FAILED, f"{len(wasted)} of {len(measured)} large responses"
    )


def _cheap_read(scan: Scan) -> Operation | None:
    """A documented GET that answered 2xx: the health endpoint when there is one."""
    ok = {e.operation for e in scan.sample_reads() if 200 <= e.status < 300}
    reads = [op for op in scan.operations if op.method == "GET" and op.label in ok]
    health = [op for op in reads if op.path == scan.target.health_path]
    chosen = health or reads
    return chosen[0] if chosen else None


def check_keepalive(scan: Scan) -> None:
    op = _cheap_read(scan)
    if op is None:
        scan.outcome("sec.keepalive", CHECK_UNKNOWN, _no_samples(scan))
        return
    answers = []
    for number in range(KEEPALIVE_REQUESTS):
        case = scan.doc.sample_request(op)
        case.description = f"keep-alive probe {number + 1} of {KEEPALIVE_REQUESTS}"
        answers.append(
            scan.client.request(
                op.method,
                render_path(op.path, case.path_values),
                operation=op.label,
                note=case.description,
                fresh_connection=number == 0,
            )
        )
    new_connections = sum(1 for e in answers if not e.reused_connection)
    scan.measure(
        "http.keepalive.new_connections", new_connections, "count", requests=str(len(answers))
    )
    if new_connections == 1:
        scan.outcome("sec.keepalive", CHECK_PASSED, f"{len(answers)} requests on one connection")
        return
    last = answers[-1]
    scan.add(
        FindingData(
            rule_id="sec.keepalive",
            title=(
                f"The server closes the connection after each response "
                f"({new_connections} connections for {len(answers)} requests)"
            ),
            severity="medium",
            category="performance",
            location=op.label,
            key="sec.keepalive",
            evidence={
                "requests": len(answers),
                "new_connections": new_connections,
                "example": scan.evidence(last, headers=["connection", "keep-alive"]),
            },
            fix_hint=(
                "Let clients reuse connections: don't send `Connection: close`, keep HTTP/1.1 "
                "keep-alive on in the server and the proxy (uvicorn's --timeout-keep-alive, "
                "nginx keepalive_timeout and upstream keepalive)."
            ),
            doc_url=f"{MDN}/Guides/Connection_management_in_HTTP_1.x",
        )
    )
    scan.outcome("sec.keepalive", CHECK_FAILED, f"{new_connections} connections")


def check_cache_headers(scan: Scan) -> None:
    reads = [
        e
        for e in scan.sample_reads()
        if e.method == "GET" and 200 <= e.status < 300 and not scan.is_operational(e)
    ]
    if not reads:
        scan.outcome("sec.cache_headers", CHECK_UNKNOWN, _no_samples(scan))
        return
    bare = [e for e in reads if not any(e.header(name) for name in CACHE_HEADERS)]
    if not bare:
        scan.outcome("sec.cache_headers", CHECK_PASSED, f"{len(reads)} reads declare caching")
        return
    scan.add(
        FindingData(
            rule_id="sec.cache_headers",
            title=f"{len(bare)} of {len(reads)} GET reads carry no caching headers",
            severity="low",
            category="performance",
            location=bare[0].operation,
            key="sec.cache_headers",
            evidence={
                "without_caching_headers": [e.operation for e in bare][:20],
                "looked_for": list(CACHE_HEADERS),
                "example": scan.evidence(bare[0], headers=["content-type", "vary", "date"]),
            },
            fix_hint=(
                "Say how long a read may be reused: `Cache-Control: private, max-age=…` or "
                "`public, max-age=…` for shared data, an ETag (answer If-None-Match with 304), "
                "or an explicit `Cache-Control: no-store` where it must not be cached."
            ),
            doc_url=f"{MDN}/Guides/Caching",
        )
    )
    scan.outcome("sec.cache_headers", CHECK_FAILED, f"{len(bare)} of {len(reads)} reads")


def check_banner(scan: Scan) -> None:
    seen = list(scan.client.exchanges)
    if not seen:
        scan.outcome("sec.banner", CHECK_UNKNOWN, "no response to read")
        return
    found = False
    servers = Counter(value for value in (e.header("server") for e in seen) if value)
    if servers:
        value, _count = servers.most_common(1)[0]
        versioned = bool(VERSION_LIKE.search(value))
        example = next(e for e in seen if e.header("server") == value)
        what = "software and its version" if versioned else "software"
        found = True
        scan.add(
            FindingData(
                rule_id="sec.banner",
                title=f"The Server header names the {what}: {value}",
                severity="low" if versioned else "info",
                category="security",
                location=example.operation or f"{example.method} {example.url}",
                key="sec.banner:server",
                evidence={"server": value, "example": scan.evidence(example, headers=["server"])},
                fix_hint=(
                    "Drop or blank the Server header: uvicorn `--no-server-header` "
                    "(`server_header=False`), gunicorn/nginx `server_tokens off`."
                ),
                doc_url=(
                    "https://owasp.org/www-project-web-security-testing-guide/latest/"
                    "4-Web_Application_Security_Testing/01-Information_Gathering/"
                    "02-Fingerprint_Web_Server"
                ),
            )
        )
    for name in BANNER_HEADERS:
        carrier = next((e for e in seen if e.header(name)), None)
        if carrier is None:
            continue
        found = True
        scan.add(
            FindingData(
                rule_id="sec.banner",
                title=f"{carrier.header(name)!r} disclosed in {name}",
                severity="low",
                category="security",
                location=carrier.operation or f"{carrier.method} {carrier.url}",
                key=f"sec.banner:{name}",
                evidence={
                    name: carrier.header(name),
                    "example": scan.evidence(carrier, headers=[name]),
                },
                fix_hint=f"Remove the {name} header (framework setting or the reverse proxy).",
                doc_url=f"{OWASP_HEADERS}#x-powered-by",
            )
        )
    scan.outcome(
        "sec.banner",
        CHECK_FAILED if found else CHECK_PASSED,
        f"{len(seen)} responses read",
    )


def check_rate_limiting(scan: Scan) -> None:
    burst = int(scan.params["burst_requests"])
    op = _cheap_read(scan)
    if burst <= 0 or op is None:
        why = "burst_requests is 0" if burst <= 0 else _no_samples(scan)
        scan.outcome("sec.rate_limiting", CHECK_UNKNOWN, why)
        return
    answers: list[Exchange] = []
    first_start = 0.0
    for number in range(burst):
        case = scan.doc.sample_request(op)
        case.description = f"burst request {number + 1} of {burst}"
        exchange = scan.send(op, case)
        first_start = first_start or scan.client.last_start
        answers.append(exchange)
        if exchange.status == 429:
            break
    # The rate between request starts: n requests span n - 1 intervals.
    elapsed = max(scan.client.last_start - first_start, 1e-6)
    statuses = Counter(str(e.status) for e in answers)
    limited = [
        e
        for e in answers
        if e.status == 429
        or (e.status == 503 and e.header("retry-after"))
        or any(e.header(name) for name in RATE_LIMIT_HEADERS)
    ]
    achieved = round((len(answers) - 1) / elapsed, 1) if len(answers) > 1 else 0.0
    scan.measure("security.burst.requests", len(answers), "count", endpoint=op.label)
    scan.measure("security.burst.rejected", statuses.get("429", 0), "count", endpoint=op.label)
    scan.measure("security.burst.rate", achieved, "req/s", endpoint=op.label)
    if limited:
        scan.outcome(
            "sec.rate_limiting",
            CHECK_PASSED,
            f"rate limiting seen after {len(answers)} requests ({dict(statuses)})",
        )
        return
    scan.add(
        FindingData(
            rule_id="sec.rate_limiting",
            title=f"No rate limiting observed: {len(answers)} requests in a burst all answered",
            severity="info",
            category="security",
            location=op.label,
            key="sec.rate_limiting",
            evidence={
                "requests": len(answers),
                "statuses": dict(statuses),
                "rate_per_second": achieved,
                "max_rate_allowed": round(1 / scan.client.interval, 3),
                "example": scan.evidence(answers[-1], headers=list(RATE_LIMIT_HEADERS)),
            },
            fix_hint=(
                "Limit requests per client (a gateway, the reverse proxy's limit_req, or an "
                "ASGI limiter) and answer 429 with Retry-After and RateLimit headers. This "
                "burst stayed within the target's own max_rate, so a limit above it is possible."
            ),
            doc_url=(
                "https://owasp.org/API-Security/editions/2023/en/"
                "0xa4-unrestricted-resource-consumption/"
            ),
        )
    )
    scan.outcome("sec.rate_limiting", CHECK_FAILED, f"{len(answers)} requests, none limited")


def _no_samples(scan: Scan) -> str:
    if scan.sample_failures:
        return "no documented GET answered: " + "; ".join(scan.sample_failures[:3])
    if not any(op.method == "GET" for op in scan.operations):
        return "the OpenAPI document lists no GET operation to sample"
    return "no documented GET answered with 2xx"
