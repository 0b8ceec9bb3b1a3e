"""The host allow-list: Kaizen connects only to hosts it was told it may reach.

Checked on the *resolved* addresses, so a name that points somewhere else
(DNS rebinding, an /etc/hosts entry) is refused too. Used for HTTP (see
``safehttp``, which also connects to the checked address and checks every
redirect hop), database (``dbscan.connect``: every host libpq would use) and
git connections alike.

An entry is a network (``10.0.0.0/8``, ``::1``), a host name, or
``unix:/path`` for a PostgreSQL Unix-socket directory — sockets are reachable
only through such an explicit entry. Messages never repeat the URL that was
checked (it may hold a password).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

DEFAULT_ALLOWED = ("127.0.0.0/8", "::1", "localhost")
TARGET_SETTING = "KAIZEN_ALLOWED_TARGET_HOSTS"
NOTIFY_SETTING = "KAIZEN_ALLOWED_NOTIFY_HOSTS"
UNIX_PREFIX = "unix:"


class HostNotAllowed(Exception):
    """The host is not on the allow-list; the message says what to change."""


type Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# The allow-list as configured: any sequence of entries (a settings tuple or list).
type AllowList = Sequence[str]


def _networks(allowed: AllowList) -> tuple[set[str], list[Network]]:
    names: set[str] = set()
    networks: list[Network] = []
    for entry in allowed:
        entry = entry.strip()
        if not entry or entry.lower().startswith(UNIX_PREFIX):
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
    return sorted({str(info[4][0]) for info in infos})


def _listed(allowed: AllowList) -> str:
    return ", ".join(entry.strip() for entry in allowed if entry.strip()) or "empty"


def check_address(
    address: str, allowed: AllowList = DEFAULT_ALLOWED, setting: str = TARGET_SETTING
) -> str:
    """Check one numeric address (no name lookup); return it, or raise HostNotAllowed."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except ValueError:
        raise HostNotAllowed(f"{address!r} is not a numeric IP address") from None
    _names, networks = _networks(allowed)
    if not any(ip in network for network in networks):
        raise HostNotAllowed(
            f"the address {ip} is not in {setting} ({_listed(allowed)}). "
            "Add it or its network there to allow it."
        )
    return str(ip)


def check_socket_dir(
    path: str, allowed: AllowList = DEFAULT_ALLOWED, setting: str = TARGET_SETTING
) -> str:
    """A Unix-socket directory (or ``@abstract`` name) allowed by an explicit ``unix:`` entry."""
    wanted = path if path.startswith("@") else os.path.normpath(path)
    for entry in allowed:
        entry = entry.strip()
        if not entry.lower().startswith(UNIX_PREFIX):
            continue
        listed = entry[len(UNIX_PREFIX) :].strip()
        listed = listed if listed.startswith("@") else os.path.normpath(listed or "/")
        if listed == wanted:
            return wanted
    raise HostNotAllowed(
        f"the Unix socket {wanted} is not allowed: sockets are reachable only through an "
        f"explicit entry in {setting}, e.g. {UNIX_PREFIX}{wanted}"
    )


def check_host(
    host: str,
    allowed: AllowList = DEFAULT_ALLOWED,
    port: int | None = None,
    setting: str = TARGET_SETTING,
) -> list[str]:
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
                f"{host} resolves to {address}, which is not in {setting} "
                f"({_listed(allowed)}). Add the host or its network there to allow it."
            )
    return addresses


def check_url(
    url: str, allowed: AllowList = DEFAULT_ALLOWED, setting: str = TARGET_SETTING
) -> list[str]:
    """Check the host of an http(s) or git URL against the allow-list.

    Database URLs go through ``dbscan.connect.check_database_url`` instead:
    libpq reads hosts from the query string and socket paths too.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise HostNotAllowed("the URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise HostNotAllowed("the URL has an invalid port") from None
    return check_host(host, allowed, port, setting)
