"""The probe against hostile targets: huge or endlessly nested documents, a silent server.

Each ends with a verdict a person can read: a deeply nested OpenAPI document
used to end as "internal error (RecursionError)", and a probe waiting on a
silent server ignored cancel for 58 s.
"""

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from optimizations.analyzers import probe
from optimizations.jobs import runner
from optimizations.models import Job, JobLog, Run

pytestmark = pytest.mark.django_db(transaction=True)


class DocumentTarget:
    """Healthy, with the OpenAPI document given."""

    def __init__(self, document: bytes):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = document if self.path == "/openapi.json" else b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def run_probe(target, url, **params):
    target.base_url = url
    target.save()
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="probe", target=target, params=params)
    outcome = runner.execute(job.pk, "test-worker")
    job.refresh_from_db()
    return job, outcome


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (
            b'{"openapi": "3.1.0", "paths": {"/a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",
            "nests deeper than 64 levels.",
        ),
        (
            b'{"openapi": "3.1.0", "paths": {"/a": ' + b"[" * 500 + b"]" * 500 + b"}}",
            "nests deeper than 64 levels.",
        ),
        (
            b'{"openapi": "3.1.0", "paths": {}, "x": "' + b"x" * probe.MAX_BODY + b'"}',
            "is larger than 5 MB.",
        ),
    ],
    ids=["50000-levels", "500-levels", "over-5-MB"],
)
def test_an_unreadable_document_fails_the_probe_with_a_readable_error(target, document, says):
    server = DocumentTarget(document)
    try:
        job, outcome = run_probe(target, server.url)
    finally:
        server.close()
    assert (outcome, job.status) == ("failed", Job.FAILED)
    assert job.error == f"The OpenAPI document at {server.url}/openapi.json {says}"
    assert "internal error" not in job.error
    assert JobLog.objects.filter(job=job, message=job.error, level="error").exists()


@pytest.fixture
def silent_server():
    """Accepts connections (the kernel completes the handshake) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()


def test_a_probe_waiting_on_a_silent_server_stops_soon_after_cancel(target, silent_server):
    asked = {}

    def cancel_soon():
        # The probe waits up to 60 s for an answer; ask it to stop once it waits.
        deadline = time.monotonic() + 10
        while not Job.objects.filter(status=Job.RUNNING).exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        Job.objects.filter(status=Job.RUNNING).update(cancel_requested=True)
        asked["at"] = time.monotonic()
        connection.close()

    thread = threading.Thread(target=cancel_soon)
    thread.start()
    job, outcome = run_probe(target, silent_server, timeout=60)
    ended = time.monotonic()
    thread.join()
    assert (outcome, job.status) == ("cancelled", Job.CANCELLED)
    # Within about a second (the cancel flag is read every 0.5 s, the wait polls it
    # every 0.1 s); a generous bound keeps a loaded machine from failing the test.
    assert ended - asked["at"] < 5
