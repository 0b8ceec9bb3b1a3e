"""The demo target started as ``serve`` starts it, with tracing on, and an OTLP/HTTP receiver
on loopback that decodes each export as Kaizen does (tests/shop_api/test_tracing.py and the
ingestion test against Kaizen's own endpoint)."""

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from examples.shop_api.common import tracing
from examples.shop_api.common.config import REPOSITORY_ROOT
from optimizations.analyzers.observe import otlp


class Receiver:
    """An OTLP/HTTP receiver on loopback: decodes each export as Kaizen does and keeps the spans."""

    def __init__(self) -> None:
        self.spans: list[otlp.Span] = []
        self.requests: list[tuple[str, str, str | None]] = []  # (path, type, encoding)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                content_type = self.headers.get("Content-Type")
                encoding = self.headers.get("Content-Encoding")
                try:
                    export = otlp.decode(body, content_type, encoding)
                except otlp.OTLPRefused as refused:
                    self.send_error(refused.status, str(refused))
                    return
                with outer.lock:
                    outer.requests.append((self.path, content_type, encoding))
                    outer.spans.extend(export.spans)
                answer, answer_type = otlp.response(export, content_type)
                self.send_response(200)
                self.send_header("Content-Type", answer_type)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def received(self) -> list[otlp.Span]:
        with self.lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_traced(
    mode: str, database_url: str, endpoint: str, log: Path, env: dict | None = None
) -> tuple:
    """The demo in ``mode`` as ``serve`` runs it, exporting its traces to ``endpoint``."""
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "examples.shop_api",
        "serve",
        "--mode",
        mode,
        "--port",
        str(port),
        "--database-url",
        database_url,
        "--no-seed",
        "--otlp-endpoint",
        endpoint,
    ]
    env = {**os.environ, "OTEL_BSP_SCHEDULE_DELAY": "100", "SHOP_API_KEY": "k", **(env or {})}
    env.pop(tracing.ENDPOINT_VARIABLE, None)
    output = log.open("wb")
    process = subprocess.Popen(
        command, cwd=REPOSITORY_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base, output
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            output.close()
            raise RuntimeError(f"the traced {mode} demo did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen, output) -> None:
    process.terminate()  # uvicorn shuts down gracefully: the lifespan flushes the last spans
    try:
        process.wait(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
        output.close()
