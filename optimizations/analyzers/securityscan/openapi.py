"""The target's OpenAPI document: its operations, sample requests and invalid ones.

A compact, seeded generator rather than schemathesis: the scan needs every request
to go through its own paced, cancellable, allow-listed client, a fixed and small
number of cases per operation, and the certainty that a request to a
state-changing operation is invalid by the schema (so a correct server creates
nothing). Schemathesis drives its own HTTP stack through Hypothesis and pulls
pytest, requests and Hypothesis into the worker; see the package docstring.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from optimizations.analyzers import jsondoc

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
MISSING = object()
# Values that no declared type of a path or query parameter expects.
UNEXPECTED_STRING = "kaizen'\"<>;\x00"
LONG_STRING_CHARS = 4_096
BEYOND_INT64 = 2**63
MAX_ARRAY_FOR_OVERFLOW = 2_000
MAX_DEPTH = 6
FORMAT_SAMPLES = {
    "uuid": "00000000-0000-4000-8000-000000000000",
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00",
    "email": "kaizen@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
}


class OpenAPIError(Exception):
    """The document is missing or unusable; the message says what is wrong."""


# A schema (or any object) of the target's OpenAPI document: arbitrary JSON from the target.
type JSONObject = dict[str, Any]
# Where a field sits in a body: keys of objects and indexes of arrays.
type Pointer = tuple[str | int, ...]


@dataclass
class Parameter:
    name: str
    location: str  # path, query, header, cookie
    required: bool
    schema: JSONObject
    example: Any = MISSING


@dataclass
class Operation:
    method: str  # upper case
    path: str  # the template, e.g. /items/{item_id}
    operation_id: str
    parameters: list[Parameter]
    body_schema: JSONObject | None
    body_required: bool
    body_example: Any
    security: list[Any]  # effective security requirements ([] or [{}] mean none)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def safe(self) -> bool:
        return self.method in SAFE_METHODS

    @property
    def secured(self) -> bool:
        """True when every way to call it names at least one security scheme."""
        return bool(self.security) and all(bool(req) for req in self.security)


@dataclass
class Case:
    """One request for an operation; ``invalid`` when it breaks the documented schema."""

    description: str
    kind: str  # missing, wrong_type, wrong_format, out_of_range, oversized, unexpected, body
    invalid: bool
    path_values: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


class Document:
    """A parsed OpenAPI 3 document with local ``$ref`` resolution."""

    def __init__(self, raw: Any, source: str):
        if not isinstance(raw, dict):
            raise OpenAPIError(f"{source} is not an OpenAPI document (not a JSON object).")
        version = str(raw.get("openapi", ""))
        if not version:
            if "swagger" in raw:
                raise OpenAPIError(
                    f"{source} is Swagger {raw['swagger']}; the security scan reads OpenAPI 3."
                )
            raise OpenAPIError(f"{source} has no 'openapi' version field.")
        if not version.startswith("3."):
            raise OpenAPIError(f"{source} is OpenAPI {version}; the security scan reads 3.x.")
        if not isinstance(raw.get("paths"), dict):
            raise OpenAPIError(f"{source} has no 'paths' object.")
        self.raw = raw
        self.version = version
        self.title = str((raw.get("info") or {}).get("title", ""))
        self.source = source

    @classmethod
    def parse(cls, body: bytes, source: str) -> Document:
        try:
            raw = jsondoc.loads(body.decode("utf-8"), f"The OpenAPI document at {source}")
        except jsondoc.DocumentRefused as exc:
            raise OpenAPIError(str(exc)) from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            start = body[:60].decode("utf-8", "replace").strip()
            raise OpenAPIError(
                f"{source} is not valid JSON ({exc}); it starts with {start!r}."
            ) from None
        return cls(raw, source)

    def resolve(self, node: Any, depth: int = 0) -> Any:
        """Follow local ``$ref`` pointers (``#/components/...``); others resolve to {}."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 20:
            ref = node["$ref"]
            seen += 1
            if not isinstance(ref, str) or not ref.startswith("#/"):
                return {}
            target: Any = self.raw
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    return {}
                target = target[part]
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            node = {**target, **siblings} if siblings and isinstance(target, dict) else target
        return node

    def operations(self) -> list[Operation]:
        global_security = self.raw.get("security") or []
        found: list[Operation] = []
        for path, item in sorted(self.raw["paths"].items()):
            item = self.resolve(item)
            if not isinstance(item, dict) or not isinstance(path, str):
                continue
            shared = [self.resolve(p) for p in item.get("parameters") or []]
            for method in HTTP_METHODS:
                op = item.get(method)
                if not isinstance(op, dict):
                    continue
                found.append(self._operation(method, path, op, shared, global_security))
        return found

    def _operation(
        self,
        method: str,
        path: str,
        op: JSONObject,
        shared: list[Any],
        global_security: Any,
    ) -> Operation:
        params: dict[tuple[str, str], Parameter] = {}
        for raw in [*shared, *(self.resolve(p) for p in op.get("parameters") or [])]:
            if not isinstance(raw, dict) or "name" not in raw or "in" not in raw:
                continue
            example = _parameter_example(raw)
            params[(raw["in"], raw["name"])] = Parameter(
                name=str(raw["name"]),
                location=str(raw["in"]),
                required=bool(raw.get("required")) or raw["in"] == "path",
                schema=self.resolve(raw.get("schema") or {}),
                example=example,
            )
        body_schema, body_required, body_example = None, False, MISSING
        body = self.resolve(op.get("requestBody") or {})
        if isinstance(body, dict):
            content = body.get("content") or {}
            media = next((m for m in content if "json" in m.lower()), None)
            if media is not None:
                media_obj = content[media] or {}
                body_schema = self.resolve(media_obj.get("schema") or {})
                body_required = bool(body.get("required"))
                body_example = _media_example(media_obj)
        security = op.get("security", global_security)
        return Operation(
            method=method.upper(),
            path=path,
            operation_id=str(op.get("operationId", "")),
            parameters=list(params.values()),
            body_schema=body_schema,
            body_required=body_required,
            body_example=body_example,
            security=security if isinstance(security, list) else [],
        )

    # -- values -------------------------------------------------------------------------------

    def schema_of(self, schema: Any, depth: int = 0) -> JSONObject:
        """The schema with ``$ref`` followed and a nullable anyOf/oneOf narrowed to its type."""
        if depth > MAX_DEPTH:
            return {}  # an allOf that includes itself ($ref cycle) or nests without end
        schema = self.resolve(schema)
        if not isinstance(schema, dict):
            return {}
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list):
                concrete = [self.resolve(o) for o in options]
                concrete = [o for o in concrete if isinstance(o, dict) and o.get("type") != "null"]
                if concrete:
                    rest = {k: v for k, v in schema.items() if k != key}
                    return {**concrete[0], **rest}
        if isinstance(schema.get("allOf"), list):
            merged: JSONObject = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.schema_of(part, depth + 1)
                props = {**merged.get("properties", {}), **part.get("properties", {})}
                # Once each: with an allOf cycle the list would double at every level.
                both = [*merged.get("required", []), *part.get("required", [])]
                required = list(dict.fromkeys(name for name in both if isinstance(name, str)))
                merged = {**part, **merged, "properties": props, "required": required}
            return merged
        return schema

    def type_of(self, schema: JSONObject) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if not kind:
            if "properties" in schema:
                return "object"
            if "items" in schema:
                return "array"
            return ""
        return str(kind)

    def sample(self, schema: Any, depth: int = 0) -> Any:
        """A value the schema accepts, the same every time (examples first)."""
        schema = self.schema_of(schema)
        for key in ("const", "example", "default"):
            if key in schema:
                return schema[key]
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return schema["examples"][0]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return schema["enum"][0]
        kind = self.type_of(schema)
        if depth > MAX_DEPTH:
            return None
        if kind == "string":
            if schema.get("format") in FORMAT_SAMPLES:
                return FORMAT_SAMPLES[schema["format"]]
            low = int(schema.get("minLength", 0) or 0)
            high = schema.get("maxLength")
            value = "kaizen".ljust(low, "k")
            return value[: int(high)] if isinstance(high, int) and high >= low else value
        if kind in {"integer", "number"}:
            number = _bounded_number(schema)
            return int(number) if kind == "integer" else float(number)
        if kind == "boolean":
            return True
        if kind == "array":
            count = max(int(schema.get("minItems", 0) or 0), 1)
            return [self.sample(schema.get("items") or {}, depth + 1) for _ in range(count)]
        if kind == "object":
            props = schema.get("properties") or {}
            return {
                name: self.sample(props.get(name) or {}, depth + 1)
                for name in schema.get("required") or []
                if isinstance(name, str)
            }
        if kind == "null":
            return None
        return "kaizen"

    def sample_request(self, op: Operation) -> Case:
        """The operation called with documented or sample values for every required input."""
        case = Case("sample values", "sample", invalid=False)
        for param in op.parameters:
            if not param.required and param.example is MISSING:
                continue
            value = param.example if param.example is not MISSING else self.sample(param.schema)
            _place(case, param, value)
        if op.body_schema is not None:
            value = op.body_example
            if value is MISSING:
                value = self.sample(op.body_schema)
            case.body = json.dumps(value).encode()
        return case

    # -- invalid and unexpected input --------------------------------------------------------

    def negative_cases(self, op: Operation, seed: int, limit: int) -> list[Case]:
        """Cases for negative testing, seeded and deterministic, at most ``limit``.

        For a state-changing operation only cases that break the documented schema are
        kept, so a server that validates its input creates nothing.
        """
        base = self.sample_request(op)
        cases: list[Case] = []
        for param in op.parameters:
            if param.location == "cookie":
                continue
            cases.extend(self._parameter_cases(base, param))
        if op.body_schema is not None:
            cases.extend(self._body_cases(base, op))
        if not op.safe:
            cases = [c for c in cases if c.invalid]
        if len(cases) > limit:
            rng = random.Random(f"{seed}:{op.label}")
            keep = sorted(rng.sample(range(len(cases)), limit))
            cases = [cases[i] for i in keep]
        return cases

    def _parameter_cases(self, base: Case, param: Parameter) -> list[Case]:
        schema = self.schema_of(param.schema)
        kind = self.type_of(schema)
        where = f"{param.location} parameter {param.name!r}"
        out: list[Case] = []

        def case(description: str, kind_: str, invalid: bool, value: Any = MISSING) -> None:
            new = _copy(base)
            _remove(new, param)
            if value is not MISSING:
                _place(new, param, value)
            new.description, new.kind, new.invalid = description, kind_, invalid
            out.append(new)

        if param.required and param.location != "path":
            case(f"{where} missing", "missing", True)
        if kind in {"integer", "number", "boolean"}:
            case(f"{where} of the wrong type (a word for {kind})", "wrong_type", True, "kaizen")
        fmt = schema.get("format")
        if kind == "string" and fmt in FORMAT_SAMPLES:
            case(f"{where} not a valid {fmt}", "wrong_format", True, f"kaizen-not-{fmt}")
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            case(f"{where} outside its enum", "wrong_format", True, "kaizen-not-listed")
        if kind in {"integer", "number"}:
            if isinstance(schema.get("maximum"), int | float):
                case(f"{where} above its maximum", "out_of_range", True, schema["maximum"] + 1)
            else:
                case(f"{where} beyond a 64-bit integer", "oversized", False, BEYOND_INT64)
            if isinstance(schema.get("minimum"), int | float):
                case(f"{where} below its minimum", "out_of_range", True, schema["minimum"] - 1)
        if kind == "string" and fmt not in FORMAT_SAMPLES and "enum" not in schema:
            if isinstance(schema.get("maxLength"), int):
                long = "A" * (schema["maxLength"] + 1)
                case(f"{where} longer than its maxLength", "out_of_range", True, long)
            else:
                long = "A" * LONG_STRING_CHARS
                case(f"{where} of {LONG_STRING_CHARS} characters", "oversized", False, long)
            # Header values cannot carry a NUL or quotes safely through every proxy.
            if "pattern" not in schema and param.location != "header":
                what = f"{where} with quotes, brackets and a NUL"
                case(what, "unexpected", False, UNEXPECTED_STRING)
        return out

    def _body_cases(self, base: Case, op: Operation) -> list[Case]:
        schema = self.schema_of(op.body_schema)
        sample = json.loads(base.body) if base.body else None
        out: list[Case] = []

        def case(description: str, kind: str, body: bytes | None) -> None:
            new = _copy(base)
            new.body, new.description, new.kind, new.invalid = body, description, kind, True
            out.append(new)

        case("body that is not valid JSON", "body", b'{"kaizen": ')
        if op.body_required:
            case("required body missing", "missing", None)
        top = self.type_of(schema)
        if top == "object":
            case("body of the wrong type (an array for an object)", "wrong_type", b"[]")
        elif top:
            case(f"body of the wrong type (an object for {top})", "wrong_type", b"{}")
        for pointer, sub, required in self._slots(schema):
            sub_kind = self.type_of(sub)
            label = "/".join(str(p) for p in pointer) or "body"
            if required:
                body = _mutate(sample, pointer, MISSING)
                if body is not None:
                    case(f"required field {label!r} missing", "missing", body)
            wrong: object = {"string": 12345, "integer": "kaizen", "number": "kaizen"}.get(sub_kind)
            wrong = {"boolean": "kaizen", "array": "kaizen", "object": "kaizen"}.get(
                sub_kind, wrong
            )
            if wrong is not None:
                body = _mutate(sample, pointer, wrong)
                if body is not None:
                    case(f"field {label!r} of the wrong type", "wrong_type", body)
            bound = _beyond_bound(sub, sub_kind, self)
            if bound is not MISSING:
                body = _mutate(sample, pointer, bound)
                if body is not None:
                    case(f"field {label!r} beyond its declared bound", "out_of_range", body)
            if sub_kind == "object" and sub.get("additionalProperties") is False:
                current = _get(sample, pointer)
                if isinstance(current, dict):
                    body = _mutate(sample, pointer, {**current, "kaizen_unexpected": 1})
                    if body is not None:
                        case(f"unknown field in {label!r}", "unexpected", body)
        return out

    def _slots(
        self, schema: JSONObject, pointer: Pointer = (), depth: int = 0
    ) -> Iterator[tuple[Pointer, JSONObject, bool]]:
        """(pointer, schema, required) for the fields of a body, arrays entered at [0]."""
        if depth > 3:
            return
        kind = self.type_of(schema)
        if kind == "object":
            if not pointer:
                yield pointer, schema, False
            required = set(schema.get("required") or [])
            for name, sub in (schema.get("properties") or {}).items():
                sub = self.schema_of(sub)
                yield (*pointer, name), sub, name in required
                yield from self._slots(sub, (*pointer, name), depth + 1)
        elif kind == "array":
            items = self.schema_of(schema.get("items") or {})
            if not pointer:
                yield pointer, schema, False
            if self.type_of(items) in {"object", "array"}:
                yield (*pointer, 0), items, False
                yield from self._slots(items, (*pointer, 0), depth + 1)

    # -- bounds ------------------------------------------------------------------------------

    def unbounded_inputs(self, op: Operation) -> list[str]:
        """Inputs the document sets no upper bound on: a string length, a number, a list."""
        found = []
        for param in op.parameters:
            if param.location == "cookie":
                continue
            what = _unbounded(self.schema_of(param.schema), self)
            if what:
                found.append(f"{param.location} parameter {param.name!r}: {what}")
        if op.body_schema is not None:
            seen_root = False
            for pointer, sub, _required in self._slots(self.schema_of(op.body_schema)):
                if not pointer:
                    if seen_root:
                        continue
                    seen_root = True
                what = _unbounded(sub, self)
                if what:
                    label = "/".join(str(p) for p in pointer) or "body"
                    found.append(f"body field {label!r}: {what}")
        return found


def _bounded_number(schema: JSONObject) -> float:
    low, high = schema.get("minimum"), schema.get("maximum")
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = schema["exclusiveMinimum"] + 1
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = schema["exclusiveMaximum"] - 1
    if isinstance(low, int | float):
        return max(low, 1) if not isinstance(high, int | float) or high >= 1 else low
    if isinstance(high, int | float) and high < 1:
        return high
    return 1


def _beyond_bound(schema: JSONObject, kind: str, doc: Document) -> Any:
    if kind == "string" and isinstance(schema.get("maxLength"), int):
        return "A" * (schema["maxLength"] + 1)
    if kind in {"integer", "number"} and isinstance(schema.get("maximum"), int | float):
        return schema["maximum"] + 1
    limit = schema.get("maxItems")
    if kind == "array" and isinstance(limit, int) and limit < MAX_ARRAY_FOR_OVERFLOW:
        return [doc.sample(schema.get("items") or {})] * (limit + 1)
    return MISSING


def _unbounded(schema: JSONObject, doc: Document) -> str:
    kind = doc.type_of(schema)
    if "enum" in schema or "const" in schema:
        return ""
    if kind == "string":
        if schema.get("format") in FORMAT_SAMPLES or "maxLength" in schema:
            return ""
        return "no maxLength"
    if kind in {"integer", "number"}:
        if "maximum" in schema or "exclusiveMaximum" in schema:
            return ""
        return "no maximum"
    if kind == "array" and "maxItems" not in schema:
        return "no maxItems"
    free_form = not schema.get("properties") and schema.get("additionalProperties") is not False
    if kind == "object" and free_form and "maxProperties" not in schema:
        return "free-form object without maxProperties"
    return ""


def _parameter_example(raw: JSONObject) -> Any:
    if "example" in raw:
        return raw["example"]
    examples = raw.get("examples")
    if isinstance(examples, dict):
        for item in examples.values():
            if isinstance(item, dict) and "value" in item:
                return item["value"]
    schema = raw.get("schema") or {}
    if isinstance(schema, dict) and "example" in schema:
        return schema["example"]
    return MISSING


def _media_example(media: JSONObject) -> Any:
    if "example" in media:
        return media["example"]
    examples = media.get("examples")
    if isinstance(examples, dict):
        for item in examples.values():
            if isinstance(item, dict) and "value" in item:
                return item["value"]
    return MISSING


def _place(case: Case, param: Parameter, value: Any) -> None:
    target: dict[str, Any] | None = {
        "path": case.path_values,
        "query": case.query,
        "header": case.headers,
    }.get(param.location)
    if target is None:
        return
    target[param.name] = value


def _remove(case: Case, param: Parameter) -> None:
    target = {"path": case.path_values, "query": case.query, "header": case.headers}.get(
        param.location
    )
    if target is not None:
        target.pop(param.name, None)


def _copy(case: Case) -> Case:
    return Case(
        case.description,
        case.kind,
        case.invalid,
        dict(case.path_values),
        dict(case.query),
        dict(case.headers),
        case.body,
    )


def _get(value: Any, pointer: Pointer) -> Any:
    for part in pointer:
        in_dict = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (in_dict or in_list):
            return MISSING
        value = value[part]
    return value


def _mutate(sample: Any, pointer: Pointer, new: Any) -> bytes | None:
    """The sample body with the value at ``pointer`` replaced (MISSING: removed)."""
    if not pointer:
        return None
    copy = json.loads(json.dumps(sample))
    parent = _get(copy, pointer[:-1])
    last = pointer[-1]
    if isinstance(parent, dict):
        if new is MISSING:
            if last not in parent:
                return None
            del parent[last]
        else:
            parent[last] = new
    elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
        if new is MISSING:
            return None
        parent[last] = new
    else:
        return None
    return json.dumps(copy).encode()


def render_path(template: str, values: dict[str, Any]) -> str:
    """The path with its parameters filled in and percent-encoded (a '/' stays in one segment)."""
    path = template
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value)
        path = path.replace("{" + name + "}", quote(text, safe=""))
    return path


def query_pairs(values: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for name, value in values.items():
        if isinstance(value, list):
            pairs.extend((name, _scalar(v)) for v in value)
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)
