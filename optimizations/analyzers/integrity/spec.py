"""What the integrity probes read from the target's OpenAPI document: its operations, and
request bodies built from their schemas with real references fetched from the API."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .client import Client

METHODS = ("get", "post", "put", "patch", "delete")
PATH_PARAM = re.compile(r"\{[^}/]+\}")
LIST_LIMIT = 50


@dataclass
class Op:
    method: str  # upper case
    path: str
    parameters: list[dict[str, Any]]
    body: dict[str, Any] | None  # the resolved JSON request schema

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    def header(self, name: str) -> bool:
        return any(
            p.get("in") == "header" and str(p.get("name", "")).lower() == name.lower()
            for p in self.parameters
        )

    def required_query(self) -> list[dict[str, Any]]:
        return [p for p in self.parameters if p.get("in") == "query" and p.get("required")]

    def query_names(self) -> set[str]:
        return {str(p.get("name")) for p in self.parameters if p.get("in") == "query"}


class Spec:
    """A parsed OpenAPI 3 document with local ``$ref`` resolution."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.ops: list[Op] = []
        for path, item in (raw.get("paths") or {}).items():
            if not isinstance(item, dict):
                continue
            shared = [p for p in item.get("parameters") or [] if isinstance(p, dict)]
            for method in METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                params = [self.resolve(p) for p in [*shared, *(op.get("parameters") or [])]]
                self.ops.append(Op(method.upper(), str(path), params, self._json_body(op)))
        self.token_paths = self._token_paths()

    def resolve(self, node: Any, depth: int = 0) -> dict[str, Any]:
        """``node`` with its ``$ref`` followed (local references only), and an optional
        (``anyOf`` with null) reduced to its non-null schema."""
        if not isinstance(node, dict) or depth > 20:
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            target: Any = self.raw
            for part in ref[2:].split("/"):
                target = target.get(part) if isinstance(target, dict) else None
            return self.resolve(target, depth + 1)
        for combiner in ("anyOf", "oneOf"):
            choices = node.get(combiner)
            if isinstance(choices, list):
                usable = [c for c in choices if isinstance(c, dict) and c.get("type") != "null"]
                if len(usable) == 1:
                    return {**node, **self.resolve(usable[0], depth + 1), combiner: None}
        return node

    def _json_body(self, op: dict[str, Any]) -> dict[str, Any] | None:
        body = self.resolve(op.get("requestBody"))
        content = body.get("content") if body else None
        if not isinstance(content, dict):
            return None
        media = content.get("application/json")
        if not isinstance(media, dict):
            return None
        return self.resolve(media.get("schema"))

    def _token_paths(self) -> set[str]:
        schemes = (self.raw.get("components") or {}).get("securitySchemes") or {}
        found = set()
        for scheme in schemes.values() if isinstance(schemes, dict) else ():
            flows = scheme.get("flows") if isinstance(scheme, dict) else None
            for flow in flows.values() if isinstance(flows, dict) else ():
                url = flow.get("tokenUrl") if isinstance(flow, dict) else None
                if isinstance(url, str) and "://" not in url:
                    found.add("/" + url.lstrip("/"))
        return found

    def find(self, method: str, path: str) -> Op | None:
        for op in self.ops:
            if op.method == method and op.path == path:
                return op
        return None

    def item_path(self, collection: str) -> str | None:
        """The path of one element of ``collection`` (``/items`` → ``/items/{item_id}``)."""
        for op in self.ops:
            if op.method == "GET" and op.path.startswith(collection + "/"):
                rest = op.path[len(collection) + 1 :]
                if PATH_PARAM.fullmatch(rest):
                    return op.path
        return None

    def element_action(self, collection: str, method: str, suffix: str = "") -> str | None:
        """``POST /orders/{order_id}/cancel`` or ``DELETE /items/{item_id}``, when declared."""
        for op in self.ops:
            if op.method != method or not op.path.startswith(collection + "/"):
                continue
            rest = op.path[len(collection) + 1 :]
            head, _, tail = rest.partition("/")
            if PATH_PARAM.fullmatch(head) and tail == suffix.strip("/"):
                return op.path
        return None


def fill_path(template: str, value: str) -> str:
    return PATH_PARAM.sub(value, template, count=1)


def elements(document: Any) -> list[dict[str, Any]]:
    """The objects of a list answer: a JSON array, or the first array inside an object."""
    if isinstance(document, list):
        return [e for e in document if isinstance(e, dict)]
    if isinstance(document, dict):
        for value in document.values():
            if isinstance(value, list):
                return [e for e in value if isinstance(e, dict)]
    return []


def list_query(op: Op | None) -> dict[str, Any]:
    if op is not None and "limit" in op.query_names():
        return {"limit": LIST_LIMIT}
    return {}


class Builder:
    """Valid request bodies from a schema: unique markers in strings, real ids in
    references (``category_id`` → the first of ``GET /categories``), numbers in bounds."""

    def __init__(self, spec: Spec, client: Client) -> None:
        self.spec = spec
        self.client = client
        self._references: dict[str, str | None] = {}
        self._templates: dict[str, dict[str, Any] | None] = {}
        self.missing: list[str] = []

    def template(self, collection: str) -> dict[str, Any] | None:
        """The first element the collection lists (for references and plausible numbers)."""
        if collection not in self._templates:
            op = self.spec.find("GET", collection)
            found = None
            if op is not None and not op.required_query():
                answer = self.client.send("GET", collection, query=list_query(op))
                found = next(iter(elements(answer.json())), None) if answer.ok else None
            self._templates[collection] = found
        return self._templates[collection]

    def reference(self, field_name: str) -> str | None:
        """An existing id for ``<name>_id``: the first element of ``GET /<name>s``."""
        if field_name not in self._references:
            base = field_name.removesuffix("_id")
            plurals = [f"/{base}s", f"/{base}es"]
            if base.endswith("y"):
                plurals.append(f"/{base[:-1]}ies")
            found = None
            for path in plurals:
                element = self.template(path)
                if element is not None and element.get("id") is not None:
                    found = str(element["id"])
                    break
            self._references[field_name] = found
        return self._references[field_name]

    def body(
        self, schema: dict[str, Any], marker: str, collection: str = ""
    ) -> dict[str, Any] | None:
        """A body every required property of ``schema`` filled; None (and ``missing`` says
        why) when a value cannot be made."""
        schema = self.spec.resolve(schema)
        properties = schema.get("properties") or {}
        template = self.template(collection) if collection else None
        body: dict[str, Any] = {}
        for index, name in enumerate(schema.get("required") or []):
            value = self.value(
                name, self.spec.resolve(properties.get(name)), marker, index, template
            )
            if value is None:
                self.missing.append(f"no value for {name!r}")
                return None
            body[name] = value
        return body

    def value(
        self,
        name: str,
        schema: dict[str, Any],
        marker: str,
        index: int,
        template: dict[str, Any] | None,
    ) -> Any:
        kind = schema.get("type")
        if schema.get("enum"):
            return schema["enum"][0]
        if kind == "string":
            if name.endswith("_id") or schema.get("format") == "uuid":
                if template is not None and template.get(name) is not None:
                    return str(template[name])
                return self.reference(name)
            return self.text(schema, marker, index)
        if kind in ("integer", "number"):
            templated = template.get(name) if template else None
            if isinstance(templated, int | float) and not isinstance(templated, bool):
                return templated
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
            high = schema.get("maximum")
            value = max(1, int(low) + (1 if "exclusiveMinimum" in schema else 0))
            return min(value, int(high)) if isinstance(high, int | float) else value
        if kind == "boolean":
            return False
        if kind == "object":
            return {}
        if kind == "array":
            return []
        return None

    @staticmethod
    def text(schema: dict[str, Any], marker: str, index: int) -> str | None:
        value = f"kz{marker}{index}"
        high = schema.get("maxLength")
        if isinstance(high, int) and len(value) > high:
            value = value[:high]
        low = schema.get("minLength")
        if isinstance(low, int) and len(value) < low:
            value = value.ljust(low, "0")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                if re.search(pattern, value) is None:
                    return None
            except re.error:
                return None
        return value
