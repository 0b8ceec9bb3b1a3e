"""Each security-scan check against a live test app: with the problem it reports it,
without the problem it passes."""

import json

from optimizations.analyzers import securityscan
from optimizations.analyzers.base import (
    CATEGORIES,
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    LocalContext,
    TargetSpec,
)
from tests.analyzers.securityscan_servers import API_KEY, Problems, make_app, serve_app


def scan(running, checks, *, auth=None, **params):
    target = TargetSpec(
        name="test app",
        base_url=running.base_url,
        max_rate=1_000,
        max_duration=60,
        auth_header=auth,
    )
    params = {"checks": checks, "html_paths": [], **params}
    return securityscan.run(target, params, LocalContext())


def run_on(problems, checks, *, server_header=False, **kwargs):
    app, seen = make_app(problems)
    with serve_app(app, server_header=server_header, seen=seen) as running:
        result = scan(running, checks, **kwargs)
    return result, seen


def status_of(result, check_id):
    [outcome] = [c for c in result.checks if c.check_id == check_id]
    return outcome.status


def keys(result, rule_id=None):
    return {f.key for f in result.findings if rule_id is None or f.rule_id == rule_id}


def only(result, key):
    [finding] = [f for f in result.findings if f.key == key]
    return finding


def test_every_finding_is_well_formed_and_json_serialisable():
    problems = Problems(
        cors="wildcard_credentials",
        gzip=False,
        security_headers=False,
        leaky_errors=True,
        crash_on_bad_cursor=True,
        secured_writes=False,
        cache_headers=False,
        powered_by="Express 4.18.2",
        bounded_inputs=False,
        html_csp=False,
    )
    result, _ = run_on(problems, [], server_header=True)
    assert {c.check_id for c in result.checks} == set(securityscan.CHECK_IDS)
    assert result.findings
    for finding in result.findings:
        assert finding.rule_id in securityscan.CHECK_IDS
        assert finding.category in CATEGORIES
        assert finding.key.startswith(finding.rule_id)
        assert finding.location and finding.doc_url.startswith("https://")
        assert finding.fix_hint and finding.evidence["why"]
        json.dumps(finding.evidence)
    assert len({f.fingerprint("security") for f in result.findings}) == len(result.findings)
    assert result.verdict == "fail"
    json.dumps(result.summary)


# -- sec.headers ----------------------------------------------------------------------------


def test_missing_security_headers_are_reported_one_finding_per_header():
    result, _ = run_on(Problems(security_headers=False), ["sec.headers"])
    assert status_of(result, "sec.headers") == CHECK_FAILED
    assert keys(result) == {
        "sec.headers:x-content-type-options",
        "sec.headers:frame-protection",
        "sec.headers:referrer-policy",
    }
    # The HTML page has no frame protection either: framing an HTML page is worse.
    assert only(result, "sec.headers:frame-protection").severity == "medium"
    assert only(result, "sec.headers:referrer-policy").severity == "info"


def test_present_security_headers_pass():
    result, _ = run_on(Problems(), ["sec.headers"])
    assert status_of(result, "sec.headers") == CHECK_PASSED
    assert not result.findings


def test_html_without_csp_is_reported_and_only_info_on_the_docs_page():
    result, _ = run_on(Problems(html_csp=False), ["sec.headers"])
    assert only(result, "sec.headers:csp-html").severity == "low"
    assert only(result, "sec.headers:csp-html").location == "GET /page"

    app, seen = make_app(Problems())
    with serve_app(app, seen=seen) as running:
        result = scan(running, ["sec.headers"], html_paths=["/docs"])
    # FastAPI's own /docs page has no CSP: a nicety there, nothing more.
    assert only(result, "sec.headers:csp-html").severity == "info"


# -- sec.cors -------------------------------------------------------------------------------


def test_wildcard_origins_with_credentials_are_high():
    result, _ = run_on(Problems(cors="wildcard_credentials"), ["sec.cors"])
    finding = only(result, "sec.cors:any-origin-credentials")
    assert finding.severity == "high"
    assert finding.location == "OPTIONS /widgets"
    headers = finding.evidence["response_headers"]
    assert headers["access-control-allow-origin"] == "https://kaizen-cors-probe.example"
    assert headers["access-control-allow-credentials"] == "true"


def test_any_origin_without_credentials_is_low():
    result, _ = run_on(Problems(cors="any_origin"), ["sec.cors"])
    assert only(result, "sec.cors:any-origin").severity == "low"


def test_explicit_origins_or_no_cors_pass():
    for cors in ("strict", "none"):
        result, _ = run_on(Problems(cors=cors), ["sec.cors"])
        assert status_of(result, "sec.cors") == CHECK_PASSED, cors
        assert not result.findings


def test_the_preflight_carries_no_credentials():
    _, seen = run_on(
        Problems(cors="wildcard_credentials"), ["sec.cors"], auth=("X-API-Key", API_KEY)
    )
    options = [a for line, a in zip(seen.lines, seen.auth_values, strict=True) if "OPTIONS" in line]
    assert options == [None]


# -- sec.compression ------------------------------------------------------------------------


def test_large_uncompressed_json_is_reported_with_the_measured_saving():
    result, _ = run_on(Problems(gzip=False), ["sec.compression"])
    finding = only(result, "sec.compression")
    assert finding.severity == "medium" and finding.category == "performance"
    assert finding.location == "GET /widgets"
    [entry] = [e for e in finding.evidence["responses"] if e["endpoint"] == "GET /widgets"]
    assert entry["bytes"] > 10_000 and entry["gzip_bytes"] < entry["bytes"] / 2
    sizes = {
        (m.name, m.labels["endpoint"]): m.value
        for m in result.measurements
        if m.name.startswith("http.")
    }
    assert sizes[("http.response_size.identity", "GET /widgets")] == entry["bytes"]
    assert sizes[("http.response_size.gzip", "GET /widgets")] == entry["gzip_bytes"]
    assert sizes[("http.compression.saving", "GET /widgets")] == entry["saving_percent"]


def test_compressed_responses_pass_and_are_still_measured():
    result, _ = run_on(Problems(gzip=True), ["sec.compression"])
    assert status_of(result, "sec.compression") == CHECK_PASSED
    measured = [m for m in result.measurements if m.name == "http.compression.saving"]
    assert measured and all(m.labels["compressed_by_server"] == "yes" for m in measured)


def test_compression_is_unknown_when_nothing_large_was_sampled():
    result, _ = run_on(Problems(gzip=False), ["sec.compression"], compression_min_bytes=10**7)
    assert status_of(result, "sec.compression") == CHECK_UNKNOWN


# -- sec.keepalive --------------------------------------------------------------------------


def test_connection_close_on_every_response_is_reported():
    result, _ = run_on(Problems(close_connections=True), ["sec.keepalive"])
    finding = only(result, "sec.keepalive")
    assert finding.evidence["new_connections"] == 3
    [measure] = [m for m in result.measurements if m.name == "http.keepalive.new_connections"]
    assert measure.value == 3


def test_reused_connections_pass():
    result, _ = run_on(Problems(), ["sec.keepalive"])
    assert status_of(result, "sec.keepalive") == CHECK_PASSED


# -- sec.cache_headers ----------------------------------------------------------------------


def test_reads_without_caching_headers_are_reported_except_operational_ones():
    result, _ = run_on(Problems(cache_headers=False), ["sec.cache_headers"])
    finding = only(result, "sec.cache_headers")
    assert "GET /widgets" in finding.evidence["without_caching_headers"]
    assert "GET /health" not in finding.evidence["without_caching_headers"]
    assert finding.severity == "low" and finding.category == "performance"


def test_reads_with_cache_control_pass():
    result, _ = run_on(Problems(cache_headers=True), ["sec.cache_headers"])
    assert status_of(result, "sec.cache_headers") == CHECK_PASSED


# -- sec.unauthenticated_writes -------------------------------------------------------------


def test_an_open_write_is_confirmed_with_a_request_that_cannot_write():
    result, seen = run_on(
        Problems(secured_writes=False),
        ["sec.unauthenticated_writes"],
        auth=("X-API-Key", API_KEY),
    )
    finding = only(result, "sec.unauthenticated_writes:POST /widgets")
    assert finding.severity == "high"
    assert finding.evidence["probe"]["request_body"] == "{}"
    assert "x-api-key" not in finding.evidence["probe"].get("request_headers", {})
    posts = [a for line, a in zip(seen.lines, seen.auth_values, strict=True) if "POST" in line]
    assert posts == [None]
    assert seen.statuses[("POST", "/widgets", 422)] == 1


def test_declared_security_passes():
    result, seen = run_on(Problems(secured_writes=True), ["sec.unauthenticated_writes"])
    assert status_of(result, "sec.unauthenticated_writes") == CHECK_PASSED
    assert seen.by_method["POST"] == 0


def test_enforced_but_undeclared_security_is_low():
    result, _ = run_on(
        Problems(secured_writes=False, undeclared_auth=True), ["sec.unauthenticated_writes"]
    )
    assert only(result, "sec.unauthenticated_writes:POST /widgets").severity == "low"


# -- sec.input_bounds -----------------------------------------------------------------------


def test_unbounded_page_size_and_batch_are_reported():
    result, _ = run_on(Problems(bounded_inputs=False), ["sec.input_bounds"])
    assert keys(result) == {"sec.input_bounds:GET /widgets", "sec.input_bounds:POST /widgets"}
    batch = only(result, "sec.input_bounds:POST /widgets")
    assert batch.severity == "medium"
    assert any("no maxItems" in item for item in batch.evidence["unbounded"])


def test_bounded_inputs_pass():
    result, _ = run_on(Problems(bounded_inputs=True), ["sec.input_bounds"])
    assert status_of(result, "sec.input_bounds") == CHECK_PASSED


# -- sec.negative_testing -------------------------------------------------------------------


def test_a_5xx_on_unexpected_input_is_a_finding_at_the_operation():
    result, _ = run_on(
        Problems(crash_on_bad_cursor=True, bounded_inputs=False), ["sec.negative_testing"]
    )
    finding = only(result, "sec.negative_testing:GET /widgets")
    failure = finding.evidence["failures"][0]
    assert failure["status"].startswith("HTTP/1.1 500")
    assert "cursor" in failure["case"]
    counts = {m.name: m.value for m in result.measurements}
    assert counts["security.negative.server_errors"] >= 1
    assert counts["security.negative.cases"] > counts["security.negative.server_errors"]


def test_validated_input_passes_and_writes_get_only_invalid_requests():
    result, seen = run_on(
        Problems(secured_writes=False, bounded_inputs=False),
        ["sec.negative_testing"],
        negative_cases=50,
    )
    assert status_of(result, "sec.negative_testing") == CHECK_PASSED
    assert seen.by_method["POST"] > 3
    # Every request to the write was invalid by its schema: nothing was created.
    assert not [k for k in seen.statuses if k[0] == "POST" and k[2] < 300]


def test_negative_testing_is_deterministic_for_a_seed():
    runs = []
    for seed in (1, 1, 2):
        _, seen = run_on(
            Problems(bounded_inputs=False), ["sec.negative_testing"], negative_cases=2, seed=seed
        )
        runs.append(seen.lines)
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


# -- sec.error_leakage ----------------------------------------------------------------------


def test_a_stack_trace_in_an_error_body_is_high():
    result, _ = run_on(
        Problems(crash_on_bad_cursor=True, leaky_errors=True, bounded_inputs=False),
        ["sec.error_leakage"],
    )
    finding = only(result, "sec.error_leakage:GET /widgets")
    assert finding.severity == "high"
    assert "stack trace" in finding.evidence["found"]
    assert "Traceback" in finding.evidence["response_body"]


def test_a_quiet_500_is_no_leak():
    result, _ = run_on(
        Problems(crash_on_bad_cursor=True, leaky_errors=False, bounded_inputs=False),
        ["sec.error_leakage"],
    )
    assert status_of(result, "sec.error_leakage") == CHECK_PASSED
    assert not result.findings


# -- sec.banner -----------------------------------------------------------------------------


def test_server_and_powered_by_banners_are_reported():
    result, _ = run_on(Problems(powered_by="Express 4.18.2"), ["sec.banner"], server_header=True)
    assert only(result, "sec.banner:server").severity == "info"  # "uvicorn", no version
    assert only(result, "sec.banner:x-powered-by").severity == "low"


def test_no_banner_passes():
    result, _ = run_on(Problems(), ["sec.banner"], server_header=False)
    assert status_of(result, "sec.banner") == CHECK_PASSED


# -- sec.rate_limiting ----------------------------------------------------------------------


def test_no_429_in_a_burst_is_information():
    result, _ = run_on(Problems(), ["sec.rate_limiting"], burst_requests=8)
    finding = only(result, "sec.rate_limiting")
    assert finding.severity == "info" and finding.evidence["requests"] == 8


def test_a_429_during_the_burst_passes_and_stops_the_burst():
    result, seen = run_on(Problems(rate_limit=8), ["sec.rate_limiting"], burst_requests=50)
    assert status_of(result, "sec.rate_limiting") == CHECK_PASSED
    assert seen.total < 50
    [rejected] = [m for m in result.measurements if m.name == "security.burst.rejected"]
    assert rejected.value == 1


# -- the scan's verdict ---------------------------------------------------------------------


def test_error_leakage_on_zero_error_responses_is_unknown_and_the_scan_incomplete():
    """A target that answers 200 to everything shows no error body to inspect: the scan
    cannot say errors do not leak, so its verdict is incomplete, never pass."""
    import http.server
    import threading

    document = {
        "openapi": "3.1.0",
        "info": {"title": "always ok", "version": "1"},
        "paths": {"/items": {"get": {"responses": {"200": {"description": "ok"}}}}},
    }

    class AlwaysOk(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(document if self.path == "/openapi.json" else {"ok": True})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AlwaysOk)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        running = type("Running", (), {"base_url": f"http://127.0.0.1:{server.server_port}"})
        result = scan(running, ["sec.error_leakage"])
    finally:
        server.shutdown()
        server.server_close()
    assert status_of(result, "sec.error_leakage") == CHECK_UNKNOWN
    assert result.verdict == "incomplete"
    assert "no error response to inspect" in result.verdict_reason
