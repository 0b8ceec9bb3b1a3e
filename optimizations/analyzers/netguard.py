"""The host allow-list: Kaizen connects only to hosts it was told it may reach.

Checked on the *resolved* addresses, so a name that points somewhere else
(DNS rebinding, an /etc/hosts entry) is refused too. Used for HTTP, database
and git connections alike.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

DEFAULT_ALLOWED = ("127.0.0.0/8", "::1", "localhost")


class HostNotAllowed(Exception):
    """The host is not on the allow-list; the message says what to change."""


def _networks(allowed: tuple[str, ...] | list[str]):
    names, networks = set(), []
    for entry in allowed:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def resolve(host: str, port: int | None = None) -> list[str]:
    """All addresses ``host`` resolves to (IPv4 and IPv6)."""
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise HostNotAllowed(f"cannot resolve host {host!r}: {exc.strerror}") from None
    return sorted({info[4][0] for info in infos})


def check_host(host: str, allowed=DEFAULT_ALLOWED, port: int | None = None) -> list[str]:
    """Return the resolved addresses of ``host``, or raise HostNotAllowed.

    Every resolved address must lie in an allowed network. A host name on the
    list is allowed only when its addresses are too (a name listed as such is
    how an operator allows a specific machine whose address may change).
    """
    if not host:
        raise HostNotAllowed("no host given")
    names, networks = _networks(allowed)
    bare = host.strip("[]").lower().rstrip(".")
    addresses = resolve(bare, port)
    if bare in names:
        return addresses
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if not any(ip in network for network in networks):
            raise HostNotAllowed(
                f"{host} resolves to {address}, which is not in KAIZEN_ALLOWED_TARGET_HOSTS "
                f"({', '.join(allowed)}). Add the host or its network there to allow it."
            )
    return addresses


def check_url(url: str, allowed=DEFAULT_ALLOWED) -> list[str]:
    """Check the host of an http(s), postgresql or git URL against the allow-list."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        # A PostgreSQL URL without a host uses the local Unix socket.
        if parts.scheme.startswith("postgres"):
            return ["local socket"]
        raise HostNotAllowed(f"{url!r} names no host")
    try:
        port = parts.port
    except ValueError:
        raise HostNotAllowed(f"{url!r} has an invalid port") from None
    return check_host(host, allowed, port)
