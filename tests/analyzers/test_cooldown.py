"""The health check and cool-down before a job that loads a target (analyzers/cooldown.py)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from optimizations.analyzers import cooldown
from optimizations.analyzers.base import Cancelled, LocalContext, TargetSpec


class Health:
    """A target whose GET /health answers as told: ``answers`` is a list of
    (status, delay in s) used in turn, the last one repeating."""

    def __init__(self, answers, location=""):
        self.answers = list(answers)
        self.calls = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                status, delay = outer.answers[min(outer.calls, len(outer.answers) - 1)]
                outer.calls += 1
                time.sleep(delay)
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.spec = TargetSpec(name="t", base_url=f"http://127.0.0.1:{self.server.server_port}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def target():
    made = []

    def make(answers, location=""):
        made.append(Health(answers, location))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    monkeypatch.setattr(cooldown, "ROUND_PAUSE", 0.0)


def steps(seconds: float):
    """A clock that moves ``seconds`` each time it is read: waits measured in calls."""
    now = [0.0]

    def clock():
        now[0] += seconds
        return now[0]

    return clock


def wait(spec, ctx=None, **options):
    options.setdefault("factor", 2.0)
    options.setdefault("max_wait", 120.0)
    options.setdefault("clock", steps(1.0))
    return cooldown.wait(spec, ctx or LocalContext(), **options)


def test_a_healthy_target_with_no_reference_starts_at_once(target):
    server = target([(200, 0.0)])
    cooled = wait(server.spec, reference_ms=None)
    assert not cooled.still_slow and cooled.latency_ms > 0
    assert server.calls == cooldown.SAMPLES
    assert "no earlier reference" in cooled.describe()


def test_it_waits_until_the_health_check_is_within_twice_its_earlier_latency(target):
    # The first round is slow (the target still digests the last test), then it is fast.
    server = target([(200, 0.3)] * cooldown.SAMPLES + [(200, 0.0)])
    ctx = LocalContext()
    cooled = wait(server.spec, ctx, reference_ms=50.0, previous="stress test #7")
    assert not cooled.still_slow
    assert cooled.latency_ms <= 100.0
    assert server.calls == 2 * cooldown.SAMPLES
    assert any("Cooling down" in message and "stress test #7" in message for _, message in ctx.logs)
    assert "50.0 ms before stress test #7" in cooled.describe()


def test_a_target_that_stays_slow_is_started_anyway_after_the_longest_cool_down(target):
    server = target([(200, 0.05)])
    cooled = wait(server.spec, reference_ms=1.0, max_wait=20.0, clock=steps(5.0))
    assert cooled.still_slow
    assert "started anyway" in cooled.describe()
    assert server.calls >= 2 * cooldown.SAMPLES  # it did wait, several rounds


@pytest.mark.parametrize(
    ("answers", "why"),
    [([(503, 0.0)], "it answered 503"), ([(500, 0.0)], "it answered 500")],
)
def test_a_target_that_stays_unhealthy_ends_the_job_naming_that(target, answers, why):
    server = target(answers)
    with pytest.raises(cooldown.Unhealthy) as raised:
        wait(
            server.spec,
            reference_ms=5.0,
            max_wait=30.0,
            clock=steps(10.0),
            previous="load test #12",
        )
    message = str(raised.value)
    assert message.startswith("The target stayed unhealthy after load test #12")
    assert "GET /health" in message and why in message
    assert "did not start" in message


def test_a_target_that_is_down_is_unhealthy():
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    spec = TargetSpec(name="t", base_url=f"http://127.0.0.1:{port}")
    with pytest.raises(cooldown.Unhealthy, match="no answer"):
        wait(spec, reference_ms=None, max_wait=10.0, clock=steps(10.0))


def test_a_redirect_is_an_answer_and_is_not_followed(target):
    # Followed, it would reach a closed port and count as "no answer".
    server = target([(302, 0.0)], location="http://127.0.0.1:1/elsewhere")
    cooled = wait(server.spec, reference_ms=None, max_wait=10.0)
    assert not cooled.still_slow


def test_a_host_off_the_allow_list_is_refused(target):
    server = target([(200, 0.0)])
    spec = TargetSpec(name="t", base_url=server.spec.base_url, allowed_hosts=("10.0.0.0/8",))
    with pytest.raises(cooldown.Unhealthy, match="allow"):
        wait(spec, reference_ms=None)
    assert server.calls == 0


def test_a_cancel_stops_the_wait(target):
    server = target([(503, 0.0)])
    ctx = LocalContext()
    ctx.cancel()
    with pytest.raises(Cancelled):
        wait(server.spec, ctx, reference_ms=None)


def test_a_cancel_is_honoured_while_a_health_check_hangs(target, monkeypatch):
    release = threading.Event()
    server = target([(200, 0.0)])
    server.answers = [(200, 0.0)]
    # The target hangs until the test lets it go — after the cancel has been honoured.
    monkeypatch.setattr(cooldown, "REQUEST_TIMEOUT", 600.0)
    original = server.server.RequestHandlerClass.do_GET

    def hang(handler):
        release.wait(600)
        original(handler)

    monkeypatch.setattr(server.server.RequestHandlerClass, "do_GET", hang)
    try:
        with pytest.raises(Cancelled):
            wait(server.spec, LocalContext(cancel_after=0.3), reference_ms=None, max_wait=600.0)
        assert server.calls == 0  # it had not answered when the job stopped waiting
    finally:
        release.set()
