"""One way to send an HTTP request to a host Kaizen was told it may reach.

``fetch`` resolves the URL's host, checks every resolved address against the
allow-list (``netguard``), then connects to the *checked* address — not to
the name again, so a name that resolves elsewhere a moment later (DNS
rebinding) changes nothing — with the original Host header and TLS server
name. It follows redirects itself, a bounded number of hops, and checks each
hop the same way before connecting; credentials (``Authorization``,
``Cookie``, ``Proxy-Authorization`` and any header the caller names as
secret) are dropped for good the first time a redirect changes the origin
(scheme, host and port).

Standard library only and free of Django, like every analyzer module.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from .netguard import DEFAULT_ALLOWED, TARGET_SETTING, AllowList, HostNotAllowed, check_host

# Called with each socket as it is opened (so that a canceller can shut it).
type SocketHook = Callable[[socket.socket], None]

REDIRECT_STATUSES = {301, 302, 303, 307, 308}
MAX_REDIRECTS = 5
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
DEFAULT_PORTS = {"http": 80, "https": 443}
POLL_SECONDS = 0.1  # how often a cancellable fetch asks whether to stop


class RedirectError(OSError):
    """A redirect could not be followed (too many hops, no usable Location)."""


@dataclass
class Response:
    """The final answer, after any redirects that were followed."""

    status: int
    reason: str
    headers: dict[str, str]  # names lower-cased; repeated headers joined by ", "
    body: bytes  # at most ``max_body`` bytes
    elapsed_ms: float  # the whole exchange, redirects included
    url: str  # where the final answer came from
    redirects: list[str] = field(default_factory=list)  # every Location followed
    credentials_dropped: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` (already checked) while speaking to ``host`` (Host header)."""

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        timeout: float,
        on_socket: SocketHook | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address
        self._on_socket = on_socket

    def _open_socket(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        # Handed over before connect() so that a canceller can shut it while it connects.
        if self._on_socket is not None:
            self._on_socket(sock)
        sock.settimeout(self.timeout)
        try:
            sock.connect((self._address, self.port))
        except BaseException:
            sock.close()
            raise
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def connect(self) -> None:
        self.sock = self._open_socket()


class PinnedHTTPSConnection(PinnedHTTPConnection):
    """The same over TLS: the certificate is checked against ``host`` (SNI too)."""

    default_port = 443

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        timeout: float,
        on_socket: SocketHook | None = None,
        context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host, port, address, timeout, on_socket)
        self._context = context or ssl.create_default_context()

    def connect(self) -> None:
        sock = self._open_socket()
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        if self._on_socket is not None:
            self._on_socket(self.sock)


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL: what a credential is bound to."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
    except ValueError:
        raise HostNotAllowed("the URL has an invalid port") from None
    return scheme, (parts.hostname or "").lower().rstrip("."), port


def _target_of(url: str) -> str:
    """Path and query as sent on the request line."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def _connection(
    url: str,
    allowed: AllowList,
    timeout: float,
    on_socket: SocketHook | None,
    tls: ssl.SSLContext | None,
    setting: str,
) -> tuple[list[str], Callable[[str], PinnedHTTPConnection]]:
    scheme, host, port = origin(url)
    if scheme not in DEFAULT_PORTS:
        raise HostNotAllowed(f"only http and https URLs are fetched, not {scheme or 'no'} scheme")
    if not host:
        raise HostNotAllowed("the URL names no host")
    addresses = check_host(host, allowed, port, setting=setting)
    # IPv4 first: a loopback name such as localhost also has ::1, which a server
    # listening on 127.0.0.1 does not answer.
    addresses = sorted(addresses, key=lambda address: ":" in address)

    def make(address: str) -> PinnedHTTPConnection:
        if scheme == "https":
            return PinnedHTTPSConnection(host, port, address, timeout, on_socket, tls)
        return PinnedHTTPConnection(host, port, address, timeout, on_socket)

    return addresses, make


def _exchange(
    url: str,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    allowed: AllowList,
    timeout: float,
    max_body: int,
    on_socket: SocketHook | None,
    tls: ssl.SSLContext | None,
    setting: str,
) -> tuple[int, str, dict[str, str], bytes]:
    addresses, make = _connection(url, allowed, timeout, on_socket, tls, setting)
    last_error: OSError | None = None
    for address in addresses:
        conn = make(address)
        try:
            conn.request(method, _target_of(url), body=body, headers=headers)
            response = conn.getresponse()
            data = response.read(max_body) if method != "HEAD" else b""
            joined: dict[str, str] = {}
            for name, value in response.getheaders():
                lowered = name.lower()
                joined[lowered] = f"{joined[lowered]}, {value}" if lowered in joined else value
            return response.status, response.reason, joined, data
        except ConnectionRefusedError as error:
            # Another checked address of the same name may answer (as create_connection does).
            last_error = error
        finally:
            conn.close()
    assert last_error is not None
    raise last_error


def fetch(
    url: str,
    *,
    allowed: AllowList = DEFAULT_ALLOWED,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    secret_headers: tuple[str, ...] | set[str] = (),
    timeout: float = 5.0,
    max_body: int = 5 * 1024 * 1024,
    max_redirects: int = MAX_REDIRECTS,
    on_socket: SocketHook | None = None,
    tls: ssl.SSLContext | None = None,
    setting: str = TARGET_SETTING,
    cancel: Callable[[], None] | None = None,
) -> Response:
    """Send one request (following redirects on the allow-list) and return the final answer.

    Raises HostNotAllowed when the URL or any redirect hop leads off the
    allow-list (nothing is sent there), RedirectError after ``max_redirects``
    hops, and OSError / ssl.SSLError / http.client.HTTPException for the
    network's own failures. ``max_redirects=0`` returns a 3xx answer as it is.

    With ``cancel`` (a job's ``check_cancel``), the exchange — name lookups
    included — runs in a helper thread while this one calls ``cancel`` every
    0.1 s; when it raises, the sockets in use are shut and its exception is
    raised here, so a silent server or a slow lookup never holds a cancel up.
    """
    request = functools.partial(
        _fetch,
        url,
        allowed=allowed,
        method=method,
        headers=headers,
        body=body,
        secret_headers=secret_headers,
        timeout=timeout,
        max_body=max_body,
        max_redirects=max_redirects,
        tls=tls,
        setting=setting,
    )
    if cancel is None:
        return request(on_socket=on_socket)
    sockets: list[socket.socket] = []

    def remember(sock: socket.socket) -> None:
        sockets.append(sock)
        if on_socket is not None:
            on_socket(sock)

    answer: list[Response] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            answer.append(request(on_socket=remember))
        except BaseException as error:  # handed to the caller's thread
            failure.append(error)

    worker = threading.Thread(target=work, name="safehttp-request", daemon=True)
    worker.start()
    while True:
        worker.join(POLL_SECONDS)
        if not worker.is_alive():
            break
        try:
            cancel()
        except BaseException:
            # Unblocks the helper: a read or connect on a shut socket returns at once.
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            raise
    if failure:
        raise failure[0]
    return answer[0]


def _fetch(
    url: str,
    *,
    allowed: AllowList = DEFAULT_ALLOWED,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    secret_headers: tuple[str, ...] | set[str] = (),
    timeout: float = 5.0,
    max_body: int = 5 * 1024 * 1024,
    max_redirects: int = MAX_REDIRECTS,
    on_socket: SocketHook | None = None,
    tls: ssl.SSLContext | None = None,
    setting: str = TARGET_SETTING,
) -> Response:
    secret = CREDENTIAL_HEADERS | {name.lower() for name in secret_headers}
    sent = dict(headers or {})
    started = time.perf_counter()
    followed: list[str] = []
    dropped = False
    current = url
    while True:
        status, reason, answer_headers, data = _exchange(
            current, method, sent, body, allowed, timeout, max_body, on_socket, tls, setting
        )
        location = answer_headers.get("location")
        if status not in REDIRECT_STATUSES or not location or max_redirects == 0:
            break
        if len(followed) >= max_redirects:
            raise RedirectError(f"more than {max_redirects} redirects, the last to {location}")
        following = urljoin(current, location.strip())
        if origin(following) != origin(current):
            # A credential is bound to the origin it was given for: never sent on, and
            # not sent again should a later hop come back to that origin.
            kept = {name: value for name, value in sent.items() if name.lower() not in secret}
            dropped = dropped or len(kept) != len(sent)
            sent = kept
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, body = "GET", None
        followed.append(following)
        current = following
    elapsed_ms = (time.perf_counter() - started) * 1000
    return Response(status, reason, answer_headers, data, elapsed_ms, current, followed, dropped)
