"""Tiny loopback servers for the allow-list tests: they record what reaches them.

``Recorder`` answers every HTTP request with what its ``routes`` say (a
redirect, a body) and keeps each request's path and headers, so a test can
tell whether a request — and which credentials — reached a host that should
never have been contacted. ``Listener`` is a bare TCP socket that counts
connections (a PostgreSQL client reaching it is enough to prove a bypass).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ALLOWED = "127.0.0.2"  # on the test allow-list (127.0.0.2/32)
REFUSED = "127.0.0.1"  # loopback, yet off that list


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class Recorder:
    """An HTTP server on ``host`` that answers from ``routes`` and records every request."""

    def __init__(self, host: str, routes: dict | None = None):
        self.routes = routes or {}
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.seen.append(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
                status, headers, body = outer.routes.get(self.path, (200, {}, b"ok"))
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        self.routes[path] = (status, {"Location": location}, b"")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """A TCP socket on ``host`` that accepts and closes connections, counting them."""

    def __init__(self, host: str):
        self.sock = socket.socket()
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self.thread.join()
        self.sock.close()
