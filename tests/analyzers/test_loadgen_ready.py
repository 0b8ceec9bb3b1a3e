"""A benchmark waits for a target still busy with the previous test, then starts or says why not."""

import http.server
import threading

import pytest

from optimizations.analyzers.base import AnalysisError, LocalContext, TargetSpec
from optimizations.analyzers.loadgen.modes import wait_until_ready


class Busy(http.server.BaseHTTPRequestHandler):
    """/health answers 503 for the first ``busy_for`` calls, then 200."""

    calls = 0
    busy_for = 0

    def do_GET(self):
        type(self).calls += 1
        status = 503 if type(self).calls <= type(self).busy_for else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def busy_target():
    def start(busy_for):
        handler = type("Handler", (Busy,), {"calls": 0, "busy_for": busy_for})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        return TargetSpec(name="shop", base_url=url, max_rate=100, max_duration=60), handler

    servers = []
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_busy_target_is_waited_for(busy_target):
    target, handler = busy_target(busy_for=2)
    ctx = LocalContext()
    wait_until_ready(target, {"timeout": 2.0}, ctx, wait=10)
    assert handler.calls == 3
    assert any("the target is busy (GET /health: 503" in message for _, message in ctx.logs)


def test_a_target_that_stays_busy_fails_with_the_reason(busy_target):
    target, handler = busy_target(busy_for=1000)
    with pytest.raises(AnalysisError, match=r"did not answer GET /health within 1.5 s \(503"):
        wait_until_ready(target, {"timeout": 2.0}, LocalContext(), wait=1.5)
    assert handler.calls >= 2


def test_a_ready_target_costs_one_request(busy_target):
    target, handler = busy_target(busy_for=0)
    ctx = LocalContext()
    wait_until_ready(target, {"timeout": 2.0}, ctx)
    assert handler.calls == 1 and ctx.logs == []
