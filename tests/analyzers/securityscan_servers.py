"""Local servers for the security scan's tests: a small FastAPI app with each HTTP problem
switchable on and off, and raw TCP servers that misbehave (garbage, silence).

Everything listens on a free loopback port in a thread of the test process; the app
counts the requests it receives so a test can check limits on the server's side.
"""

import contextlib
import datetime
import ipaddress
import socket
import threading
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import MutableHeaders

API_KEY = "s3cr3t-test-key-0123"
ROWS = [{"id": n, "name": f"widget number {n}", "colour": "blue" * 5} for n in range(400)]


@dataclass
class Problems:
    """Which problems the test app has; the defaults are a well-behaved app."""

    cors: str = "strict"  # "strict", "wildcard_credentials", "any_origin", "none"
    gzip: bool = True
    security_headers: bool = True
    leaky_errors: bool = False  # 500 bodies carry the traceback
    crash_on_bad_cursor: bool = False  # int(cursor) without validation
    secured_writes: bool = True
    undeclared_auth: bool = False  # writes check a key the document does not declare
    cache_headers: bool = True
    powered_by: str = ""  # an X-Powered-By value
    close_connections: bool = False
    rate_limit: int = 0  # answer 429 after this many requests (0: never)
    bounded_inputs: bool = True
    html_csp: bool = True


@dataclass
class Received:
    """What the app saw, counted on the server's side."""

    total: int = 0
    by_path: Counter = field(default_factory=Counter)
    by_method: Counter = field(default_factory=Counter)
    auth_values: list[str | None] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    arrivals: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class WidgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(max_length=50)]
    size: Annotated[int, Field(ge=0, le=1000)]


class WidgetBatch(BaseModel):
    widgets: Annotated[list[WidgetIn], Field(max_length=100)]


class LooseWidgetIn(BaseModel):
    name: str
    size: int


class LooseBatch(BaseModel):
    widgets: list[LooseWidgetIn]


def make_app(problems: Problems | None = None) -> tuple[FastAPI, Received]:
    """The test app with ``problems``, and the counter of what it received."""
    p = problems or Problems()
    seen = Received()
    app = FastAPI(title="securityscan test app")
    key_header = APIKeyHeader(name="X-API-Key", auto_error=False)

    async def require_key(key: Annotated[str | None, Depends(key_header)]) -> None:
        if key != API_KEY:
            raise HTTPException(401, "missing or wrong key", headers={"WWW-Authenticate": "ApiKey"})

    async def require_key_undeclared(request: Request) -> None:
        if request.headers.get("x-api-key") != API_KEY:
            raise HTTPException(401, "missing or wrong key")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    def page_of(limit: int, cursor: str | None) -> list[dict]:
        if cursor is not None and not cursor.isdigit() and not p.crash_on_bad_cursor:
            raise HTTPException(400, "invalid cursor")
        start = int(cursor or 0)  # ValueError (a 500) on a bad cursor when crash_on_bad_cursor
        return ROWS[start : start + limit]

    if p.bounded_inputs:

        @app.get("/widgets")
        async def list_widgets(
            limit: Annotated[int, Query(ge=1, le=500)] = 400,
            cursor: Annotated[str | None, Query(max_length=40)] = None,
        ) -> list[dict]:
            return page_of(limit, cursor)

    else:

        @app.get("/widgets")
        async def list_widgets_loose(limit: int = 400, cursor: str | None = None) -> list[dict]:
            return page_of(limit, cursor)

    @app.get("/widgets/{widget_id}")
    async def get_widget(widget_id: int) -> dict:
        if not 0 <= widget_id < len(ROWS):
            raise HTTPException(404, "no such widget")
        return ROWS[widget_id]

    if p.secured_writes:
        writes = [Depends(require_key)]
    elif p.undeclared_auth:
        writes = [Depends(require_key_undeclared)]
    else:
        writes = []
    batch_model = WidgetBatch if p.bounded_inputs else LooseBatch

    @app.post("/widgets", status_code=201, dependencies=writes)
    async def create_widgets(batch: batch_model) -> dict:  # type: ignore[valid-type]  # FastAPI reads the model chosen above
        return {"created": len(batch.widgets)}  # type: ignore[attr-defined]  # (as above)

    @app.get("/page", response_class=PlainTextResponse)
    async def page() -> PlainTextResponse:
        headers = {"Content-Security-Policy": "default-src 'self'"} if p.html_csp else {}
        return PlainTextResponse(
            "<!doctype html><title>page</title><p>hello</p>",
            media_type="text/html",
            headers=headers,
        )

    async def leaky(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": type(exc).__name__, "traceback": traceback.format_exception(exc)},
            status_code=500,
        )

    async def quiet(_request: Request, _exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)

    app.add_exception_handler(Exception, leaky if p.leaky_errors else quiet)
    if p.gzip:
        app.add_middleware(GZipMiddleware, minimum_size=500)
    if p.cors == "strict":
        app.add_middleware(
            CORSMiddleware, allow_origins=["https://app.example"], allow_methods=["GET", "POST"]
        )
    elif p.cors == "wildcard_credentials":
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    elif p.cors == "any_origin":
        app.add_middleware(
            CORSMiddleware, allow_origin_regex=".*", allow_methods=["*"], allow_headers=["*"]
        )
    app.add_middleware(_Outer, problems=p, seen=seen)
    return app, seen


class _Outer:
    """Counts requests, answers 429 past the limit, and adds the switchable headers."""

    def __init__(self, app, problems: Problems, seen: Received):
        self.app = app
        self.p = problems
        self.seen = seen

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        with self.seen.lock:
            self.seen.total += 1
            self.seen.by_path[scope["path"]] += 1
            self.seen.by_method[scope["method"]] += 1
            key = headers.get(b"x-api-key")
            self.seen.auth_values.append(key.decode() if key else None)
            self.seen.arrivals.append(time.monotonic())
            query = scope["query_string"].decode("latin-1")
            self.seen.lines.append(f"{scope['method']} {scope['path']}?{query}")
            count = self.seen.total
        if self.p.rate_limit and count > self.p.rate_limit:
            response = JSONResponse(
                {"detail": "slow down"}, status_code=429, headers={"Retry-After": "1"}
            )
            await response(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                with self.seen.lock:
                    self.seen.statuses[(scope["method"], scope["path"], message["status"])] += 1
                out = MutableHeaders(scope=message)
                if self.p.security_headers:
                    out.setdefault("X-Content-Type-Options", "nosniff")
                    out.setdefault("X-Frame-Options", "DENY")
                    out.setdefault("Referrer-Policy", "no-referrer")
                if self.p.cache_headers and scope["method"] == "GET":
                    out.setdefault("Cache-Control", "private, max-age=30")
                if self.p.powered_by:
                    out["X-Powered-By"] = self.p.powered_by
                if self.p.close_connections:
                    out["Connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_with_headers)


@dataclass
class Running:
    base_url: str
    port: int
    seen: Received | None = None


@contextlib.contextmanager
def serve_app(app, *, server_header: bool = False, seen: Received | None = None, **config):
    """Run ``app`` under uvicorn on a free loopback port for the duration of the block."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_level="critical",
            lifespan="off",
            server_header=server_header,
            access_log=False,
            **config,
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("the test app did not start")
        time.sleep(0.01)
    try:
        yield Running(f"http://127.0.0.1:{port}", port, seen)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@contextlib.contextmanager
def raw_server(behaviour: str):
    """A TCP server that misbehaves: ``garbage`` (answers non-HTTP bytes) or ``silent``
    (accepts and never answers). ``accepted`` is set once a connection arrives."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    port = listener.getsockname()[1]
    stop = threading.Event()
    accepted = threading.Event()
    held: list[socket.socket] = []

    def loop():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.set()
            held.append(conn)
            if behaviour == "garbage":
                with contextlib.suppress(OSError):
                    conn.settimeout(1)
                    conn.recv(65536)
                    conn.sendall(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
                    conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def self_signed_certificate(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 signed by itself, and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path = f"{directory}/cert.pem"
    key_path = f"{directory}/key.pem"
    with open(cert_path, "wb") as out:
        out.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path
