"""The security scan's failures and limits: targets that cannot be scanned end with a
message a person can act on; rate, duration, budget, cancel and credentials are kept."""

import threading

import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse

from optimizations.analyzers import securityscan
from optimizations.analyzers.base import (
    CHECK_UNKNOWN,
    AnalysisError,
    Cancelled,
    LocalContext,
    TargetSpec,
)
from tests.analyzers.securityscan_servers import (
    API_KEY,
    Problems,
    free_port,
    make_app,
    raw_server,
    self_signed_certificate,
    serve_app,
)


def target(base_url, **fields):
    fields.setdefault("max_rate", 1_000)
    fields.setdefault("max_duration", 60)
    return TargetSpec(name="demo", base_url=base_url, **fields)


def run(spec, ctx=None, **params):
    params.setdefault("html_paths", [])
    return securityscan.run(spec, params, ctx or LocalContext())


def serve_openapi(body, status=200, kind="application/json"):
    """An app whose /openapi.json answers ``body`` as is."""
    app = FastAPI(openapi_url=None)

    @app.get("/openapi.json")
    async def document():
        if kind == "application/json" and not isinstance(body, str):
            return JSONResponse(body, status_code=status)
        return PlainTextResponse(body, status_code=status, media_type=kind)

    return serve_app(app)


# -- targets that cannot be scanned --------------------------------------------------------


def test_a_refused_connection_says_nothing_listens():
    with pytest.raises(AnalysisError, match="refused: nothing listens there"):
        run(target(f"http://127.0.0.1:{free_port()}"))


def test_a_host_off_the_allow_list_is_never_contacted():
    with pytest.raises(AnalysisError, match="not in KAIZEN_ALLOWED_TARGET_HOSTS"):
        run(target("http://192.0.2.10:8080"))


def test_an_unreachable_host_names_it():
    spec = target("http://192.0.2.10:9", allowed_hosts=("192.0.2.0/24",))
    with pytest.raises(AnalysisError, match=r"192\.0\.2\.10"):
        run(spec, request_timeout=0.2)


def test_a_garbage_answer_is_not_http():
    with (
        raw_server("garbage") as (url, _),
        pytest.raises(AnalysisError, match="not answer with HTTP"),
    ):
        run(target(url))


def test_a_hanging_server_times_out_with_the_timeout_named():
    with raw_server("silent") as (url, _), pytest.raises(AnalysisError, match=r"within 0\.2 s"):
        run(target(url), request_timeout=0.2)


def test_https_to_a_plain_http_port_is_a_tls_error_with_a_hint():
    app, _ = make_app()
    with serve_app(app) as running:
        https = running.base_url.replace("http://", "https://")
        with pytest.raises(AnalysisError, match=r"TLS handshake .* plain HTTP"):
            run(target(https))


def test_an_untrusted_certificate_fails_unless_verification_is_off(tmp_path):
    cert, key = self_signed_certificate(tmp_path)
    app, _ = make_app(Problems())
    with serve_app(app, ssl_certfile=cert, ssl_keyfile=key) as running:
        https = running.base_url.replace("http://", "https://")
        with pytest.raises(AnalysisError, match="certificate"):
            run(target(https))
        result = run(target(https), checks=["sec.headers"], verify_tls=False)
    # Over HTTPS a missing Strict-Transport-Security header is a finding.
    [finding] = result.findings
    assert finding.key == "sec.headers:strict-transport-security"
    assert finding.severity == "medium"


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        ("<html>not json</html>", 200, "text/html", "not valid JSON"),
        ({"openapi": "3.1.0", "info": {}}, 200, "application/json", "no 'paths'"),
        ({"swagger": "2.0", "paths": {}}, 200, "application/json", "Swagger 2.0"),
        (["a", "list"], 200, "application/json", "not a JSON object"),
        ({"detail": "Not Found"}, 404, "application/json", r"No OpenAPI document .*\(404\)"),
        ({"detail": "who are you"}, 401, "application/json", "needs credentials"),
        ({"detail": "boom"}, 500, "application/json", "answered 500"),
    ],
)
def test_a_missing_or_malformed_openapi_document_is_explained(body, status, kind, message):
    with serve_openapi(body, status, kind) as running, pytest.raises(AnalysisError, match=message):
        run(target(running.base_url))


def test_invalid_parameters_and_targets_are_explained():
    with pytest.raises(AnalysisError, match="unknown parameter"):
        run(target("http://127.0.0.1:1"), colour="blue")
    with pytest.raises(AnalysisError, match="no base URL"):
        run(target(""))
    with pytest.raises(AnalysisError, match="allows no load"):
        run(target("http://127.0.0.1:1", max_rate=0))


# -- limits kept ---------------------------------------------------------------------------


def test_the_rate_and_duration_limits_hold_counted_on_the_server():
    app, seen = make_app(Problems(gzip=False, security_headers=False))
    with serve_app(app, seen=seen) as running:
        result = run(target(running.base_url, max_rate=20, max_duration=1.0))
    # At 20 req/s for 1 s, at most 21 requests can start (one at t=0, one each 50 ms).
    assert 1 < seen.total <= 21
    assert result.summary["requests"] == seen.total
    assert "max_duration" in result.summary["stopped"]
    assert any(c.status == CHECK_UNKNOWN and "max_duration" in c.detail for c in result.checks)


def test_a_lower_max_rate_parameter_applies_but_never_a_higher_one():
    app, seen = make_app()
    with serve_app(app, seen=seen) as running:
        lower = run(target(running.base_url, max_rate=50, max_duration=1.0), max_rate=10)
        higher = run(target(running.base_url, max_rate=10, max_duration=1.0), max_rate=500)
    assert lower.summary["max_rate"] == 10 and higher.summary["max_rate"] == 10
    assert lower.summary["requests"] <= 11 and higher.summary["requests"] <= 11


def test_the_request_budget_holds():
    app, seen = make_app()
    with serve_app(app, seen=seen) as running:
        result = run(target(running.base_url), max_requests=5)
    assert seen.total == 5
    assert "request budget" in result.summary["stopped"]


def test_cancel_stops_a_request_the_server_never_answers():
    ctx = LocalContext()
    with raw_server("silent") as (url, accepted):
        canceller = threading.Thread(target=lambda: accepted.wait(10) and ctx.cancel())
        canceller.start()
        # With a 60 s timeout an unbroken wait would end in AnalysisError, not Cancelled.
        with pytest.raises(Cancelled):
            run(target(url, max_duration=120), ctx, request_timeout=60)
        canceller.join()


def test_cancel_stops_the_wait_between_requests():
    ctx = LocalContext()
    app, seen = make_app()
    arrived = threading.Event()

    def cancel_after_the_first_request():
        while seen.total < 1:
            arrived.wait(0.01)
        ctx.cancel()

    with serve_app(app, seen=seen) as running:
        canceller = threading.Thread(target=cancel_after_the_first_request)
        canceller.start()
        # 0.2 req/s: the second request would wait 5 s; the cancel ends that wait.
        with pytest.raises(Cancelled):
            run(target(running.base_url, max_rate=0.2), ctx)
        canceller.join()
    assert seen.total == 1


def test_the_auth_header_is_sent_but_never_logged_nor_shown():
    problems = Problems(
        secured_writes=True, leaky_errors=True, crash_on_bad_cursor=True, bounded_inputs=False
    )
    app, seen = make_app(problems)
    ctx = LocalContext()
    with serve_app(app, seen=seen) as running:
        result = run(target(running.base_url, auth_header=("X-API-Key", API_KEY)), ctx)
    assert seen.auth_values.count(API_KEY) > 10
    shown = repr((result.summary, result.findings, result.measurements, result.checks, ctx.logs))
    assert API_KEY not in shown
    assert "[redacted]" in shown
