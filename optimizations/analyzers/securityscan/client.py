"""The security scan's HTTP client: allow-listed, paced, bounded, cancellable, redacting.

Standard library only (``http.client``), so the worker needs no extra package and
the scan sees the raw exchange: the status line, every header as sent, whether the
connection was reused, the body as it came over the wire.

Safety rules kept here, for every request the scan sends:

* the host is checked against the allow-list once, on its resolved address, and
  the connection goes to that checked address (safehttp's pinned connections: a
  name that re-resolves elsewhere later changes nothing); redirects are never
  followed;
* requests start no closer together than ``1 / rate`` seconds, none starts after
  the deadline (the target's ``max_duration``) or beyond the request budget;
* each request has a timeout; it runs in a helper thread while the caller's
  thread polls the cancel check every 0.1 s and, on cancel, shuts the socket so
  the scan stops within about a second even against a server that never answers;
* the auth header's value never leaves this module unredacted.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import http.client
import re
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode, urlsplit

from ..base import Cancelled, Context
from ..netguard import AllowList, check_host
from ..safehttp import PinnedHTTPConnection as _PinnedHTTPConnection
from ..safehttp import PinnedHTTPSConnection as _PinnedHTTPSConnection

USER_AGENT = "Kaizen-securityscan/1"
POLL_SECONDS = 0.1
REDACTED = "[redacted]"
# Request and response headers whose values are credentials wherever they appear.
SECRET_HEADERS = {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:)[^@\s/\"']+@", re.I)
_KEY_VALUE_SECRET = re.compile(
    r"(?P<head>\b(?:password|passwd|pwd|secret|token|api[_-]?key)\b[\"']?\s*[:=]\s*[\"']?)"
    r"[^\s\"'&,;}]+",
    re.I,
)


class TransportError(Exception):
    """A request got no HTTP answer; ``kind`` is timeout, refused, tls, protocol, network."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


class Stop(Exception):
    """The scan must stop sending: its time (``max_duration``) or request budget is spent."""


@dataclass
class Exchange:
    """One request and what came back, as the checks read it (secrets already redacted)."""

    method: str
    url: str  # path and query as sent
    request_headers: dict[str, str]
    request_body: bytes | None
    status: int
    reason: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes  # decoded when the server compressed it with gzip or deflate
    wire_bytes: int  # body bytes as they came over the wire
    truncated: bool
    reused_connection: bool
    server_closed: bool
    operation: str = ""  # "GET /items/{item_id}" when the request was made for one
    note: str = ""  # what the request was for, e.g. "wrong type for limit"

    def header(self, name: str) -> str | None:
        """The value of header ``name`` (several values joined by ", "), or None."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";", 1)[0].strip().lower()

    @property
    def content_encoding(self) -> str:
        return (self.header("content-encoding") or "").strip().lower()

    def text(self, limit: int = 200_000) -> str:
        return self.body[:limit].decode("utf-8", "replace")


@dataclass
class ClientStats:
    requests: int = 0
    connections: int = 0
    by_status: dict[str, int] = field(default_factory=dict)


class Redactor:
    """Removes the target's credentials and anything that looks like one from evidence."""

    def __init__(self, secrets: list[str]):
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        value = _URL_PASSWORD.sub(lambda m: m["head"] + REDACTED + "@", value)
        return _KEY_VALUE_SECRET.sub(lambda m: m["head"] + REDACTED, value)

    def headers(
        self, pairs: Iterable[tuple[str, str]], extra_secret_names: AbstractSet[str] = frozenset()
    ) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, value in pairs:
            lowered = name.lower()
            if lowered in SECRET_HEADERS or lowered in extra_secret_names:
                value = REDACTED
            else:
                value = self.text(value)
            out[lowered] = f"{out[lowered]}, {value}" if lowered in out else value
        return out


# (status, reason, HTTP version, headers, body, truncated, server closes the connection)
type _Answer = tuple[int, str, str, list[tuple[str, str]], bytes, bool, bool]


class HttpClient:
    """Sends the scan's requests to one base URL within the target's limits."""

    def __init__(
        self,
        base_url: str,
        ctx: Context,
        *,
        allowed_hosts: AllowList,
        rate: float,
        deadline: float,
        timeout: float,
        max_requests: int,
        max_body_bytes: int,
        auth_header: tuple[str, str] | None = None,
        verify_tls: bool = True,
    ):
        parts = urlsplit(base_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http(s) URL with a host")
        self.scheme = parts.scheme
        self.host = parts.hostname
        try:
            self.port = parts.port or (443 if self.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"{base_url!r} has an invalid port") from None
        self.base_path = parts.path.rstrip("/")
        self.origin = f"{self.scheme}://{parts.netloc.rsplit('@', 1)[-1]}"
        self.ctx = ctx
        self.interval = 1.0 / rate
        self.deadline = deadline
        self.timeout = timeout
        self.max_requests = max_requests
        self.max_body_bytes = max_body_bytes
        self.auth_header = auth_header
        self.redactor = Redactor([auth_header[1]] if auth_header else [])
        self.secret_header_names = {auth_header[0].lower()} if auth_header else set()
        self.stats = ClientStats()
        self.exchanges: list[Exchange] = []  # every exchange, success bodies dropped
        # Netguard before any request: every resolved address must be allowed.
        addresses = check_host(self.host, tuple(allowed_hosts), self.port)
        self.address = next((a for a in addresses if ":" not in a), addresses[0])
        self._tls = None
        if self.scheme == "https":
            self._tls = ssl.create_default_context()
            if not verify_tls:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._conn: _PinnedHTTPConnection | None = None
        self._live_socket: socket.socket | None = None
        self._last_start: float | None = None

    # -- public -----------------------------------------------------------------------------

    def url_for(self, path: str, query: list[tuple[str, str]] | None = None) -> str:
        url = self.base_path + path
        if query:
            url += "?" + urlencode(query, doseq=False)
        return url

    def request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        auth: bool = True,
        fresh_connection: bool = False,
        operation: str = "",
        note: str = "",
    ) -> Exchange:
        """Send one request and return the exchange; raises TransportError, Stop, Cancelled."""
        url = self.url_for(path, query)
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json, */*;q=0.5"}
        sent["Accept-Encoding"] = "gzip"
        if body is not None:
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        if auth and self.auth_header:
            sent[self.auth_header[0]] = self.auth_header[1]
        if fresh_connection:
            self._drop_connection()
        reused = self._conn is not None and self._conn.sock is not None
        try:
            exchange = self._send(method, url, sent, body, reused)
        except _StaleConnection:
            # The server closed an idle keep-alive connection between two requests; the
            # request never reached it, so it is sent once more on a new connection.
            self._drop_connection()
            exchange = self._send(method, url, sent, body, False)
        exchange.operation = operation
        exchange.note = note
        # The history keeps error bodies (error leakage reads them) but not every success
        # body: a scan of a large API would otherwise hold megabytes per request.
        kept = exchange if exchange.status >= 400 else replace(exchange, body=b"")
        self.exchanges.append(kept)
        status = f"{exchange.status // 100}xx"
        self.stats.by_status[status] = self.stats.by_status.get(status, 0) + 1
        return exchange

    @property
    def last_start(self) -> float:
        """When the latest request was let through the pacer (monotonic seconds)."""
        return self._last_start or 0.0

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def close(self) -> None:
        self._drop_connection()

    # -- internals ----------------------------------------------------------------------------

    def _pace(self) -> None:
        if self.stats.requests >= self.max_requests:
            raise Stop(f"the request budget ({self.max_requests} requests) is spent")
        while True:
            self.ctx.check_cancel()
            now = time.monotonic()
            if now >= self.deadline:
                raise Stop("the target's max_duration ran out")
            start_at = now if self._last_start is None else self._last_start + self.interval
            if now >= start_at:
                self._last_start = now
                return
            if start_at >= self.deadline:
                raise Stop("the target's max_duration ran out")
            time.sleep(min(POLL_SECONDS, start_at - now))

    def _connection(self, timeout: float) -> _PinnedHTTPConnection:
        if self._conn is None:
            if self._tls is not None:
                self._conn = _PinnedHTTPSConnection(
                    self.host, self.port, self.address, timeout, self._register, self._tls
                )
            else:
                self._conn = _PinnedHTTPConnection(
                    self.host, self.port, self.address, timeout, self._register
                )
        self._conn.timeout = timeout
        if self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
        return self._conn

    def _register(self, sock: socket.socket) -> None:
        self._live_socket = sock
        self.stats.connections += 1 if not isinstance(sock, ssl.SSLSocket) else 0

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None
        self._live_socket = None

    def _abort(self) -> None:
        """Unblock the helper thread: shut the socket it reads from or connects with."""
        sock = self._live_socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._conn = None
        self._live_socket = None

    def _send(
        self, method: str, url: str, sent: dict[str, str], body: bytes | None, reused: bool
    ) -> Exchange:
        self._pace()
        timeout = min(self.timeout, max(self.remaining(), 0.001))
        conn = self._connection(timeout)
        self.stats.requests += 1
        answers: list[_Answer] = []
        failures: list[BaseException] = []

        def work() -> None:
            try:
                answers.append(self._roundtrip(conn, method, url, sent, body))
            except BaseException as exc:  # handed to the caller's thread
                failures.append(exc)
                # Closed here, by the thread that used it, also when the caller gave up on it.
                conn.close()

        worker = threading.Thread(target=work, name="securityscan-request", daemon=True)
        worker.start()
        while worker.is_alive():
            worker.join(POLL_SECONDS)
            if not worker.is_alive():
                break
            try:
                self.ctx.check_cancel()
            except Cancelled:
                self._abort()
                raise
            if time.monotonic() > self.deadline + POLL_SECONDS:
                self._abort()
                raise Stop("the target's max_duration ran out during a request")
        if failures:
            error = failures[0]
            self._drop_connection()
            if reused and isinstance(
                error, (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
            ):
                raise _StaleConnection from error
            raise self._translate(error, timeout) from None
        status, reason, version, headers, raw, truncated, will_close = answers[0]
        if truncated or will_close:
            self._drop_connection()
        decoded = self._decode(raw, headers, truncated)
        return Exchange(
            method=method,
            url=url,
            request_headers=self.redactor.headers(sent.items(), self.secret_header_names),
            request_body=body,
            status=status,
            reason=reason,
            version=version,
            headers=headers,
            body=decoded,
            wire_bytes=len(raw),
            truncated=truncated,
            reused_connection=reused,
            server_closed=will_close,
        )

    def _roundtrip(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        url: str,
        sent: dict[str, str],
        body: bytes | None,
    ) -> _Answer:
        conn.request(method, url, body=body, headers=sent)
        response = conn.getresponse()
        raw = response.read(self.max_body_bytes + 1) if method != "HEAD" else b""
        truncated = len(raw) > self.max_body_bytes
        version = {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(response.version, "HTTP/?")
        return (
            response.status,
            response.reason,
            version,
            list(response.getheaders()),
            raw[: self.max_body_bytes],
            truncated,
            bool(response.will_close),
        )

    def _decode(self, raw: bytes, headers: list[tuple[str, str]], truncated: bool) -> bytes:
        encoding = ", ".join(v for k, v in headers if k.lower() == "content-encoding").lower()
        if encoding not in {"gzip", "x-gzip", "deflate"} or not raw:
            return raw
        # A bounded inflate: a compressed bomb stops at max_body_bytes.
        wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding else zlib.MAX_WBITS
        try:
            inflater = zlib.decompressobj(wbits)
            return inflater.decompress(raw, self.max_body_bytes)
        except zlib.error:
            if truncated:
                return b""
            try:
                return gzip.decompress(raw)[: self.max_body_bytes]
            except (OSError, EOFError, zlib.error):
                return b""

    def _translate(self, error: BaseException, timeout: float) -> TransportError:
        where = f"{self.host}:{self.port}"
        if isinstance(error, (TimeoutError, socket.timeout)):
            return TransportError(
                "timeout", f"{self.origin} did not answer within {timeout:g} s (request timeout)."
            )
        if isinstance(error, ConnectionRefusedError):
            return TransportError(
                "refused",
                f"Connection to {where} refused: nothing listens there. Is the service "
                "running, and is the target's base URL (host and port) right?",
            )
        if isinstance(error, ssl.SSLError | ssl.CertificateError):
            reason = getattr(error, "reason", None) or str(error)
            hint = ""
            if "WRONG_VERSION_NUMBER" in str(reason).upper() or "wrong version" in str(error):
                hint = " The port seems to speak plain HTTP: use an http:// base URL."
            elif isinstance(error, ssl.SSLCertVerificationError):
                hint = " The certificate is not trusted for this host name."
            return TransportError("tls", f"TLS handshake with {where} failed: {reason}.{hint}")
        if isinstance(error, http.client.RemoteDisconnected):
            return TransportError(
                "protocol", f"{where} closed the connection without an HTTP answer."
            )
        if isinstance(error, http.client.HTTPException):
            return TransportError(
                "protocol",
                f"{where} did not answer with HTTP ({type(error).__name__}: "
                f"{self.redactor.text(str(error)).strip()[:120]!r}). "
                "Is this the service's HTTP port?",
            )
        if isinstance(error, OSError):
            if error.errno in {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EHOSTDOWN}:
                return TransportError(
                    "unreachable", f"{where} cannot be reached from this worker ({error.strerror})."
                )
            if isinstance(error, ConnectionResetError):
                return TransportError(
                    "protocol", f"{where} reset the connection without an HTTP answer."
                )
            return TransportError("network", f"Network error talking to {where}: {error}.")
        return TransportError("network", f"Request to {where} failed: {error!r}.")


class _StaleConnection(Exception):
    """A reused keep-alive connection turned out closed before the request reached the app."""
