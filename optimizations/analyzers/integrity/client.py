"""The integrity probes' HTTP client: JSON requests through safehttp, sent one by one or
released together from a barrier, each kept as an exchange a person can replay with curl."""

from __future__ import annotations

import http.client
import json
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urljoin

from .. import safehttp
from ..base import TargetSpec
from ..secrets import MASK, mask_credentials

USER_AGENT = "Kaizen-integrity/1"
MAX_BODY = 2 * 1024 * 1024
URL_SAFE = "/?&=%:@!$'()*+,;~[]{}"


@dataclass
class Exchange:
    """One request and what came back (status 0: no answer, ``error`` says why)."""

    method: str
    path: str
    url: str
    sent_headers: dict[str, str]
    sent_body: bytes | None
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def outcome(self) -> str:
        return str(self.status) if self.status else f"no answer ({self.error})"


class Client:
    """Requests to one target with its auth header; secrets never leave in a curl line."""

    def __init__(
        self, target: TargetSpec, timeout: float, cancel: Callable[[], None] | None = None
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.cancel = cancel
        self.requests = 0
        self._lock = threading.Lock()
        self.secret_headers: set[str] = set()
        self.auth: dict[str, str] = {}
        if target.auth_header:
            self.auth[target.auth_header[0]] = target.auth_header[1]
            self.secret_headers.add(target.auth_header[0].lower())

    def url(self, path: str, query: dict[str, Any] | None = None) -> str:
        url = urljoin(
            self.target.base_url.rstrip("/") + "/", quote(path, safe=URL_SAFE).lstrip("/")
        )
        return f"{url}?{urlencode(query)}" if query else url

    def send(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        return self._send(self.prepare(method, path, body, query=query, headers=headers))

    def prepare(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Exchange:
        sent = {"User-Agent": USER_AGENT, "Accept": "application/json", **self.auth}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        return Exchange(method, path, self.url(path, query), sent, data)

    def _send(self, exchange: Exchange) -> Exchange:
        if self.cancel is not None:
            self.cancel()
        with self._lock:
            self.requests += 1
        try:
            answer = safehttp.fetch(
                exchange.url,
                allowed=self.target.allowed_hosts,
                method=exchange.method,
                headers=exchange.sent_headers,
                body=exchange.sent_body,
                secret_headers=tuple(self.secret_headers),
                timeout=self.timeout,
                max_body=MAX_BODY,
                max_redirects=0,
                cancel=self.cancel,
            )
        except (OSError, http.client.HTTPException) as error:
            exchange.error = f"{type(error).__name__}: {error}"
            return exchange
        exchange.status, exchange.headers, exchange.body = (
            answer.status,
            answer.headers,
            answer.body,
        )
        return exchange

    def at_once(self, exchanges: list[Exchange]) -> list[Exchange]:
        """Send every prepared request concurrently, released together; in the same order."""
        barrier = threading.Barrier(len(exchanges))
        failures: list[BaseException] = []

        def one(exchange: Exchange) -> None:
            try:
                barrier.wait(timeout=self.timeout)
                self._send(exchange)
            except BaseException as error:  # a cancel, raised again in the caller's thread
                failures.append(error)

        threads = [threading.Thread(target=one, args=(e,), daemon=True) for e in exchanges]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        return exchanges

    def curl(self, exchange: Exchange) -> str:
        """The request as a curl command, credentials masked."""
        parts = ["curl", "-sS", "-X", exchange.method, shlex.quote(exchange.url)]
        for name, value in exchange.sent_headers.items():
            if name in {"User-Agent", "Accept"}:
                continue
            shown = MASK if name.lower() in self.secret_headers | {"authorization"} else value
            parts += ["-H", shlex.quote(f"{name}: {shown}")]
        if exchange.sent_body is not None:
            parts += ["--data-raw", shlex.quote(exchange.sent_body.decode("utf-8", "replace"))]
        return mask_credentials(" ".join(parts))

    def transcript(self, exchanges: list[Exchange], note: str = "") -> list[str]:
        """Each request as curl with what it answered, for a finding's evidence."""
        lines = [f"# {note}"] if note else []
        for exchange in exchanges:
            lines.append(f"{self.curl(exchange)}   # → {exchange.outcome()}")
        return lines
