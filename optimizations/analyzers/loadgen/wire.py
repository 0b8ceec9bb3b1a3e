"""What goes on the wire: request bytes built once, and the weighted order of requests."""

from __future__ import annotations

import json
import math
import random
from typing import Any

USER_AGENT = "kaizen-loadgen/1"


def build_request(host_header: str, spec: dict[str, Any]) -> bytes:
    """The bytes of one HTTP/1.1 request, built once and written many times."""
    method = spec.get("method", "GET").upper()
    path = spec.get("path", "/") or "/"
    body = spec.get("body")
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
    payload = body.encode() if isinstance(body, str) else (body or b"")
    headers = {"Host": host_header, "User-Agent": USER_AGENT, "Accept": "*/*"}
    for name, value in dict(spec.get("headers") or {}).items():
        headers[str(name)] = str(value)
    if payload or method in {"POST", "PUT", "PATCH"}:
        headers["Content-Length"] = str(len(payload))
        if isinstance(body, str) and "Content-Type" not in headers:
            headers["Content-Type"] = "application/json"
    lines = [f"{method} {path} HTTP/1.1"] + [f"{name}: {value}" for name, value in headers.items()]
    if any(ch in line for line in lines for ch in "\r\n\0"):
        # A line break in a header value would smuggle a second request onto the wire.
        raise ValueError("a request line or header contains a line break")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


def weighted_table(weights: list[float], seed: int, size: int = 1000) -> list[int]:
    """Request indices in proportion to their weights, spread out evenly.

    Smooth weighted round-robin (as nginx balances upstreams): each pass over
    the table gives every request exactly its share, the heavy ones are spread
    between the light ones rather than bunched, and walking the table costs
    one list lookup per request. ``seed`` only rotates the starting point.
    """
    total = sum(weights)
    if total <= 0:
        raise ValueError("scenario weights must add up to more than zero")
    counts = [max(1, round(w / total * size)) if w > 0 else 0 for w in weights]
    divisor = math.gcd(*counts)
    counts = [count // divisor for count in counts]
    current = [0] * len(counts)
    length = sum(counts)
    table = []
    for _ in range(length):
        for index, count in enumerate(counts):
            current[index] += count
        chosen = max(range(len(counts)), key=current.__getitem__)
        current[chosen] -= length
        table.append(chosen)
    shift = random.Random(seed).randrange(length)
    return table[shift:] + table[:shift]
