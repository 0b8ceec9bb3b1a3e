"""A tiny order shop over HTTP/1.1, for scripted journeys' tests (its own process).

It prints ``PORT <n>`` once listening. ``POST /auth/token`` with
``{"username": "qa" or "alice", "password": "pw"}`` answers ``{"access_token": "t<n>"}``
(anything else: 401); with ``Authorization: Bearer t<n>``, ``POST /orders``
creates ``{"id", "item_id", "quantity", "status": "open"}`` (201, ``Location``
header), ``GET /orders/<id>`` reads it, ``POST /orders/<id>/cancel`` cancels
it (409 when already cancelled); 401 without a known token, 404 for an unknown
order. ``/__stats`` (uncounted) answers what it counted: requests per method and
path template, orders created and cancelled, and every order it holds.

A catalogue described by ``/openapi.json`` (no token needed): ``GET /items``,
``GET /items/<id>``, ``POST /items`` (``{"sku", "qty"}``: 422 when the body breaks
the schema — a wrong type, a missing or unknown key — 409 for a SKU it already
has), ``PATCH /items/<id>`` (``{"delta"}``) and ``POST /items/bulk`` (a list of
items, at most 1 000; all or nothing). ``/__stats`` also lists the 422 and 409
answers' reasons and the batch sizes received.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request

STATE: dict = {
    "requests": {},
    "tokens": set(),
    "orders": {},
    "next": 1,
    "bodies": [],
    "items": {"1": {"id": 1, "sku": "seed-1", "qty": 5}},
    "skus": {"seed-1"},
    "refused": [],
    "batches": [],
}
ITEM = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {
        "sku": {"type": "string", "minLength": 3, "maxLength": 60},
        "qty": {"type": "integer", "minimum": 0, "maximum": 1000},
        "colour": {"type": "string", "enum": ["red", "blue"]},
    },
}
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "catalogue", "version": "1"},
    "paths": {
        "/items": {
            "get": {"responses": {"200": {"description": "the items"}}},
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Item"}}
                    },
                },
                "responses": {"201": {"description": "created"}},
            },
        },
        "/items/{item_id}": {
            "parameters": [
                {"name": "item_id", "in": "path", "required": True, "schema": {"type": "integer"}}
            ],
            "get": {"responses": {"200": {"description": "an item"}}},
            "patch": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["delta"],
                                "properties": {
                                    "delta": {"type": "integer", "minimum": -5, "maximum": 5}
                                },
                            }
                        }
                    },
                },
                "responses": {"200": {"description": "changed"}},
            },
        },
        "/items/bulk": {
            "post": {
                "operationId": "bulk_create",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "maxItems": 1000,
                                "items": {"$ref": "#/components/schemas/Item"},
                            }
                        }
                    },
                },
                "responses": {"201": {"description": "created"}},
            }
        },
    },
    "components": {"schemas": {"Item": ITEM}},
}


def item_problem(data) -> str:
    """Why ``data`` is not a valid Item (empty: it is)."""
    if not isinstance(data, dict):
        return "not an object"
    extra = set(data) - set(ITEM["properties"])
    if extra:
        return f"unknown keys {sorted(extra)}"
    sku, qty = data.get("sku"), data.get("qty")
    if not isinstance(sku, str) or not 3 <= len(sku) <= 60:
        return f"bad sku {sku!r}"
    if not isinstance(qty, int) or isinstance(qty, bool) or not 0 <= qty <= 1000:
        return f"bad qty {qty!r}"
    if "colour" in data and data["colour"] not in ("red", "blue"):
        return "bad colour"
    return ""


def _response(status: int, payload: object, extra: str = "") -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


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
            headers = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode()] = value.strip().decode()
            length = int(headers.get("content-length", 0))
            if len(rest) < length:
                return
            self.buffer = rest[length:]
            method, path = head.split(b" ", 2)[:2]
            self.transport.write(
                self.handle(method.decode(), path.decode(), headers, rest[:length])
            )

    def handle(self, method: str, path: str, headers: dict, body: bytes) -> bytes:
        if path == "/__stats":
            return _response(
                200,
                {
                    "requests": STATE["requests"],
                    "orders": STATE["orders"],
                    "bodies": STATE["bodies"][-50:],
                    "refused": STATE["refused"][-50:],
                    "batches": STATE["batches"],
                    "items": len(STATE["items"]),
                },
            )
        parts = path.split("?")[0].strip("/").split("/")
        template = "/" + "/".join("{id}" if part.isdigit() else part for part in parts)
        key = f"{method} {template}"
        STATE["requests"][key] = STATE["requests"].get(key, 0) + 1
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return _response(422, {"detail": "not JSON"})
        if key == "POST /auth/token":
            known = ({"username": "qa", "password": "pw"}, {"username": "alice", "password": "pw"})
            if data not in known:
                return _response(401, {"detail": "bad credentials"})
            token = f"t{len(STATE['tokens']) + 1}"
            STATE["tokens"].add(token)
            return _response(200, {"access_token": token, "token_type": "bearer"})
        if key == "GET /big":
            return _response(200, {"blob": "x" * (1 << 21)})
        if key.endswith(" /openapi.json"):
            return _response(200, OPENAPI)
        if template.startswith("/items"):
            return self.catalogue(key, parts, data)
        auth = headers.get("authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in STATE["tokens"]:
            return _response(401, {"detail": "not authenticated"})
        if key == "POST /orders":
            STATE["bodies"].append(data)
            if not isinstance(data, dict) or not isinstance(data.get("item_id"), int):
                return _response(422, {"detail": "item_id must be an integer"})
            number = STATE["next"]
            STATE["next"] += 1
            order = {
                "id": number,
                "item_id": data["item_id"],
                "quantity": data.get("quantity", 1),
                "note": data.get("note"),
                "status": "open",
            }
            STATE["orders"][str(number)] = order
            return _response(201, order, f"Location: /orders/{number}\r\n")
        found = STATE["orders"].get(parts[1]) if len(parts) > 1 else None
        if found is None:
            return _response(404, {"detail": "no such order"})
        order = found
        if key == "GET /orders/{id}":
            return _response(200, found)
        if key == "POST /orders/{id}/cancel":
            if found["status"] == "cancelled":
                return _response(409, {"detail": "already cancelled"})
            found["status"] = "cancelled"
            return _response(200, found)
        return _response(404, {"detail": "not found"})

    def catalogue(self, key: str, parts: list, data) -> bytes:
        items = STATE["items"]
        if key == "GET /items":
            # Wrapped like the demo shop's page of items.
            return _response(200, {"items": list(items.values()), "next_cursor": None})
        if key == "POST /items":
            problem = item_problem(data)
            if problem:
                STATE["refused"].append(f"422 {problem}")
                return _response(422, {"detail": problem})
            if data["sku"] in STATE["skus"]:
                STATE["refused"].append(f"409 {data['sku']}")
                return _response(409, {"detail": "duplicate sku"})
            STATE["skus"].add(data["sku"])
            number = len(items) + 1
            items[str(number)] = {"id": number, **data}
            return _response(201, items[str(number)])
        if key == "POST /items/bulk":
            if not isinstance(data, list) or len(data) > 1000:
                STATE["refused"].append("422 not a list of at most 1000")
                return _response(422, {"detail": "a list of at most 1000 items"})
            STATE["batches"].append(len(data))
            problems = [item_problem(element) for element in data]
            skus = [element.get("sku") for element in data if isinstance(element, dict)]
            if any(problems):
                STATE["refused"].append(f"422 {next(p for p in problems if p)}")
                return _response(422, {"detail": "invalid element"})
            if len(set(skus)) != len(skus) or set(skus) & STATE["skus"]:
                STATE["refused"].append("409 bulk duplicate sku")
                return _response(409, {"detail": "duplicate sku"})
            for element in data:
                STATE["skus"].add(element["sku"])
                number = len(items) + 1
                items[str(number)] = {"id": number, **element}
            return _response(201, {"created": len(data)})
        item = items.get(parts[1]) if len(parts) > 1 else None
        if item is None:
            return _response(404, {"detail": "no such item"})
        if key == "GET /items/{id}":
            return _response(200, item)
        if key == "PATCH /items/{id}":
            delta = data.get("delta") if isinstance(data, dict) else None
            if set(data or {}) != {"delta"} or not isinstance(delta, int) or not -5 <= delta <= 5:
                STATE["refused"].append(f"422 bad delta {data!r}")
                return _response(422, {"detail": "delta: an integer from -5 to 5"})
            item["qty"] += delta
            return _response(200, item)
        return _response(405, {"detail": "method not allowed"})


class JourneyServer:
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

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


async def main() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Handler, "127.0.0.1", 0, backlog=1024)
    sys.stdout.write(f"PORT {server.sockets[0].getsockname()[1]}\n")
    sys.stdout.flush()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
