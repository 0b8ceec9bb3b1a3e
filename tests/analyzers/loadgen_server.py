"""A small HTTP/1.1 server with known behaviour, for the load engine's tests.

Run as its own process (``python tests/analyzers/loadgen_server.py``) so a
test can freeze it with SIGSTOP and find it by its listening port. It prints
``PORT <n>`` once listening. Paths:

* ``/ok`` — 200 at once; ``/delay/<ms>`` — 200 after that many milliseconds;
* ``/status/<code>`` — that status; ``/malformed`` — an unparsable status line;
* ``/reset`` — the connection reset (RST) without an answer; ``/hang`` — no answer;
* ``/close`` — 200 with ``Connection: close``;
* ``/grow`` — 200 after keeping 64 KiB more memory (an endurance test's leak);
* ``/items`` and ``/items/<id>`` — a list and its items; ``/openapi.json`` — their description;
* ``/metrics`` — Prometheus text with the process's resident memory;
* ``/__stats`` — what the server counted, ``/__reset`` — zero the counts (both uncounted).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
from typing import Any

COUNTS: dict[str, Any] = {"requests": 0, "responses": 0, "by_path": {}, "by_status": {}}
LEAK: list[bytes] = []
ITEMS = [{"id": 11, "name": "eleven"}, {"id": 12, "name": "twelve"}, {"id": 13, "name": "13"}]

OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "test", "version": "1"},
    "paths": {
        "/items": {"get": {"operationId": "list_items"}, "post": {"operationId": "create"}},
        "/items/{item_id}": {
            "get": {
                "operationId": "get_item",
                "parameters": [
                    {
                        "name": "item_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    }
                ],
            }
        },
        "/ok": {"get": {}},
        "/status/{code}": {
            "get": {
                "parameters": [
                    {"name": "code", "in": "path", "required": True, "example": 404},
                ]
            }
        },
        "/search": {
            "get": {
                "parameters": [
                    {"name": "q", "in": "query", "required": True, "schema": {"example": "ab"}},
                    {"name": "limit", "in": "query", "schema": {"default": 10}},
                ]
            }
        },
        "/secret/{token}": {
            "get": {"parameters": [{"name": "token", "in": "path", "required": True}]}
        },
    },
}


def _response(status: int, body: bytes, close: bool = False, kind="application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
    if close:
        head += "Connection: close\r\n"
    return head.encode() + b"\r\n" + body


def _memory() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Handler(asyncio.Protocol):
    def __init__(self):
        self.buffer = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            head, rest = self.buffer.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            path = head.split(b" ", 2)[1].decode()
            self.handle(path)

    def handle(self, path: str) -> None:
        if path == "/__stats":
            self.transport.write(_response(200, json.dumps(COUNTS).encode()))
            return
        if path == "/__reset":
            COUNTS.update(requests=0, responses=0, by_path={}, by_status={})
            LEAK.clear()
            self.transport.write(_response(200, b"{}"))
            return
        COUNTS["requests"] += 1
        COUNTS["by_path"][path] = COUNTS["by_path"].get(path, 0) + 1
        if path.startswith("/delay/"):
            delay = int(path.rsplit("/", 1)[1]) / 1000
            asyncio.get_running_loop().call_later(delay, self.answer, 200, b'{"ok":true}')
        elif path.startswith("/status/"):
            self.answer(int(path.rsplit("/", 1)[1]), b'{"detail":"as asked"}')
        elif path == "/malformed":
            self.transport.write(b"HTTP/1.1 2x0 Nope\r\n\r\n")
        elif path == "/reset":
            sock = self.transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.transport.abort()
        elif path == "/hang":
            pass
        elif path == "/close":
            self.answer(200, b"{}", close=True)
        elif path == "/grow":
            LEAK.append(os.urandom(64 * 1024))
            self.answer(200, b"{}")
        elif path.split("?")[0] == "/items":
            self.answer(200, json.dumps(ITEMS).encode())
        elif path.startswith("/items/"):
            self.answer(200, json.dumps({"id": path.rsplit("/", 1)[1]}).encode())
        elif path == "/openapi.json":
            self.answer(200, json.dumps(OPENAPI).encode())
        elif path == "/metrics":
            text = "# TYPE process_resident_memory_bytes gauge\n"
            text += f"process_resident_memory_bytes {_memory()}\n"
            self.answer(200, text.encode(), kind="text/plain")
        else:
            self.answer(200 if path.startswith(("/ok", "/search")) else 404, b'{"ok":true}')

    def answer(self, status: int, body: bytes, close: bool = False, kind="application/json"):
        if self.transport is None or self.transport.is_closing():
            return
        COUNTS["responses"] += 1
        COUNTS["by_status"][str(status)] = COUNTS["by_status"].get(str(status), 0) + 1
        self.transport.write(_response(status, body, close, kind))
        if close:
            self.transport.close()

    def connection_lost(self, exc):
        self.transport = None


class LoadgenServer:
    """This server started as a subprocess, for a test module's fixture."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, __file__], stdout=subprocess.PIPE, text=True
        )
        self.port = int(self.process.stdout.readline().split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stats(self) -> dict:
        with urllib.request.urlopen(self.url + "/__stats", timeout=5) as response:
            return json.loads(response.read())

    def reset(self) -> None:
        urllib.request.urlopen(self.url + "/__reset", timeout=5).close()

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
