"""A loopback stand-in for PyPI's JSON API, serving the recorded responses of
fixtures/pypi_advisories.json (404 for any other package), for the dependency audit's
tests: pip-audit's own PyPI service reads it, over real HTTP, never the network."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RECORDED = json.loads((Path(__file__).parent / "fixtures" / "pypi_advisories.json").read_text())
PORTS = range(18810, 18830)  # this work's own loopback ports


class _Handler(BaseHTTPRequestHandler):
    requests_seen: list[str] = []

    def do_GET(self):
        self.requests_seen.append(self.path)
        parts = self.path.strip("/").split("/")
        # /pypi/<name>/<version>/json
        key = f"{parts[1]}/{parts[2]}" if len(parts) == 4 and parts[0] == "pypi" else ""
        body = RECORDED.get(key)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@contextmanager
def recorded_pypi():
    """(base URL, list of request paths seen) of a running stand-in."""
    last_error = None
    for port in PORTS:
        try:
            server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
            break
        except OSError as exc:
            last_error = exc
    else:
        raise RuntimeError(f"no free port in {PORTS}: {last_error}")
    seen: list[str] = []
    _Handler.requests_seen = seen
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/pypi", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port of ours where nothing listens (the advisory source unreachable)."""
    import socket

    for port in reversed(PORTS):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError("every port of ours is in use")
