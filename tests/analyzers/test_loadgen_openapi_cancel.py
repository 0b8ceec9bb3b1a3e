"""A load test reading a silent server's OpenAPI document stops soon after a cancel."""

from __future__ import annotations

import socket
import time

import pytest

from optimizations.analyzers.base import Cancelled
from optimizations.analyzers.loadgen import scenario


@pytest.fixture
def silent_server():
    """Accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_the_openapi_fetch_of_a_load_test_honours_cancel(silent_server):
    asked = time.monotonic() + 0.3

    def cancel():
        if time.monotonic() >= asked:
            raise Cancelled()

    with pytest.raises(Cancelled):
        scenario.fetch_json(
            silent_server + "/openapi.json",
            allowed=["127.0.0.0/8"],
            timeout=60,
            cancel=cancel,
        )
    # Polled every 0.1 s: well within the second; a generous bound for a busy CI.
    assert time.monotonic() - asked < 5


def test_without_cancel_it_still_times_out(silent_server):
    with pytest.raises(scenario.AnalysisError, match="failed"):
        scenario.fetch_json(silent_server + "/openapi.json", allowed=["127.0.0.0/8"], timeout=0.5)
