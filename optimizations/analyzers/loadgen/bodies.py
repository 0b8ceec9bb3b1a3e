"""Request bodies for write operations, generated from their OpenAPI request schemas.

Used by a load test built from OpenAPI on a target that allows writes: each
POST, PUT and PATCH with a JSON request body gets a few *valid* bodies drawn
by schemathesis's generator (positive mode: what the schema accepts; objects
keep to their declared properties; ASCII strings without NUL bytes), seeded so
the same job draws the same bodies. Strings the schema leaves free (no enum,
format or pattern, and room under maxLength) end in ``-${journey}``, which the
engine makes unique per request: a load of creates does not collide with
itself on unique keys, and a repeated run does not collide with the last one.
A string with a ``pattern`` (a SKU like ``^[A-Za-z0-9-]+$``) gets the suffix too
when the pattern still accepts it, and one near its ``maxLength`` is shortened to
make room, so codes the schema constrains are unique as well.

A field named ``<thing>_id`` takes ids that exist, read from the target's
list of things (``GET /things``), so a write refers to real rows; an OAuth2
login is left out (generated credentials are refused by design).

Bulk endpoints — a body that is an array, or an object with one array of
objects on a path or operation named bulk/batch — are measured at batch sizes
of 10, 100 and 1 000 (within the schema's maxItems), one operation per size.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BATCH_SIZES = (10, 100, 1000)
BODY_VARIANTS = 5
# Distinct elements drawn for a bulk body; a batch cycles them (each made unique).
BULK_ELEMENTS = 20
UNIQUE = "-${journey}"
# The longest a unique suffix gets: "-" + "<seed>-<count>" + "-<index>" ≈ 24 characters.
SUFFIX_ROOM = 24
# What a suffix renders to at its longest (the index, then the seed and the count): a
# pattern must accept the value with this appended for the value to be made unique.
RENDERED_SUFFIX = "-999-2147483647-99999999"
BULK_WORDS = re.compile(r"bulk|batch", re.IGNORECASE)
WRITE_METHODS = ("post", "put", "patch")


class NoBody(Exception):
    """No body could be generated for the operation; the message says why."""


@dataclass(frozen=True)
class Shape:
    """Where a bulk body keeps its elements: the body itself (``""``) or one property."""

    element: dict[str, Any]
    prop: str
    max_items: int | None


def resolve(doc: dict[str, Any], node: Any) -> Any:
    """A ``$ref`` inside the document followed (once per call, repeatedly)."""
    seen = 0
    while isinstance(node, dict) and isinstance(node.get("$ref"), str) and seen < 20:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            return {}
        target: Any = doc
        for part in ref[2:].split("/"):
            target = (
                target.get(part.replace("~1", "/").replace("~0", "~"), {})
                if isinstance(target, dict)
                else {}
            )
        node = target
        seen += 1
    return node


def json_schema(doc: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    """The JSON request body schema of an operation (None: it takes no JSON body)."""
    body = resolve(doc, operation.get("requestBody"))
    if not isinstance(body, dict):
        return None
    content = body.get("content")
    if not isinstance(content, dict):
        return None
    for media, item in content.items():
        if media.split(";")[0].strip() in ("application/json", "application/*+json") or (
            media.endswith("+json")
        ):
            schema = item.get("schema") if isinstance(item, dict) else None
            return schema if isinstance(schema, dict) else None
    return None


def bulk_shape(
    doc: dict[str, Any], template: str, operation: dict[str, Any], schema: dict[str, Any]
) -> Shape | None:
    """How a bulk operation carries its elements, or None when it is not a bulk endpoint."""
    top = resolve(doc, schema)
    if not isinstance(top, dict):
        return None
    if top.get("type") == "array" and isinstance(top.get("items"), dict):
        return Shape(top["items"], "", _int(top.get("maxItems")))
    named = BULK_WORDS.search(template) or BULK_WORDS.search(str(operation.get("operationId", "")))
    properties = top.get("properties")
    if not named or not isinstance(properties, dict):
        return None
    arrays = [
        (name, resolve(doc, prop))
        for name, prop in properties.items()
        if isinstance(resolve(doc, prop), dict) and resolve(doc, prop).get("type") == "array"
    ]
    if len(arrays) != 1 or not isinstance(arrays[0][1].get("items"), dict):
        return None
    name, array = arrays[0]
    return Shape(array["items"], name, _int(array.get("maxItems")))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# Where a schema sets no bound, a load test's values stay ordinary: a 32-bit integer,
# a number below a billion, a string of at most 64 characters. Extremes the schema
# allows are the fuzzing's business (the security scan), not a load's.
ORDINARY: dict[str, dict[str, float]] = {
    "integer": {"minimum": -(2**31), "maximum": 2**31 - 1},
    "number": {"minimum": -1e9, "maximum": 1e9},
    "string": {"maxLength": 64},
}


def _closed(node: Any) -> Any:
    """The schema as a load test draws from it: every object without ``additionalProperties``
    closed to its declared properties (a client sends what it declares, not extra keys the
    schema merely tolerates), and unbounded values kept ORDINARY."""
    if isinstance(node, dict):
        out = {key: _closed(value) for key, value in node.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        kind = out.get("type")
        if (
            isinstance(kind, str)
            and kind in ORDINARY
            and not any(key in out for key in ("enum", "const", "format", "pattern"))
        ):
            for bound, value in ORDINARY[kind].items():
                if bound not in out and not (bound == "maximum" and "exclusiveMaximum" in out):
                    if bound == "minimum" and "exclusiveMinimum" in out:
                        continue
                    if bound == "maxLength" and out.get("minLength", 0) > value:
                        continue
                    out[bound] = value
        return out
    if isinstance(node, list):
        return [_closed(value) for value in node]
    return node


def draw(doc: dict[str, Any], schema: dict[str, Any], count: int, seed: int) -> list[Any]:
    """``count`` (at most) distinct valid instances of ``schema``, the same for the same seed.

    NoBody when the generator cannot produce any (an unsatisfiable schema).
    """
    import hypothesis
    import schemathesis
    from schemathesis.generation import GenerationMode

    synthetic = {
        "openapi": "3.0.3" if str(doc.get("openapi", "3.0")).startswith("3.0") else "3.1.0",
        "info": {"title": "bodies", "version": "1"},
        "paths": {
            "/body": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _closed(schema)}},
                    },
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": _closed(copy.deepcopy(doc.get("components") or {})),
    }
    try:
        api = schemathesis.openapi.from_dict(synthetic)
        api.config.generation.update(codec="ascii", allow_x00=False)
        strategy = api["/body"]["POST"].as_strategy(generation_mode=GenerationMode.POSITIVE)
    except Exception as exc:  # schemathesis refuses a schema it cannot read
        raise NoBody(f"the request schema cannot be read ({type(exc).__name__}: {exc})") from None
    found: list[Any] = []

    @hypothesis.seed(seed)
    @hypothesis.settings(
        max_examples=count * 4,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(strategy)
    def collect(case: Any) -> None:
        body = case.body
        if len(found) < count and body not in found and "${" not in repr(body):
            found.append(body)

    try:
        collect()
    except Exception as exc:  # an unsatisfiable schema, or one the generator gives up on
        if not found:
            raise NoBody(f"no valid body could be generated ({type(exc).__name__})") from None
    if not found:
        raise NoBody("no valid body could be generated")
    return found


def uniquify(doc: dict[str, Any], value: Any, schema: Any, suffix: str) -> Any:
    """``value`` with its free strings ending in ``suffix`` (see the module's docstring)."""
    node = resolve(doc, schema)
    if not isinstance(node, dict):
        return value
    if isinstance(value, dict):
        declared = node.get("properties")
        properties: dict[str, Any] = declared if isinstance(declared, dict) else {}
        return {
            key: uniquify(doc, item, properties.get(key), suffix) if key in properties else item
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [uniquify(doc, item, node.get("items"), suffix) for item in value]
    if isinstance(value, str) and node.get("type") == "string":
        if any(key in node for key in ("enum", "const", "format")):
            return value
        drawn = value
        limit = _int(node.get("maxLength"))
        if limit is not None and len(value) + SUFFIX_ROOM > limit:
            value = value[: max(0, limit - SUFFIX_ROOM)]  # shortened to make room
        shortest = value + "-0-0"  # the shortest a suffix renders to
        if (
            not value
            or len(shortest) < (_int(node.get("minLength")) or 0)
            or not _accepts(node.get("pattern"), value + RENDERED_SUFFIX)
            or not _accepts(node.get("pattern"), shortest)
        ):
            return drawn  # no unique suffix fits what the schema accepts: left as drawn
        return value + suffix
    return value


def _accepts(pattern: Any, text: str) -> bool:
    """Whether a JSON Schema ``pattern`` (unanchored, as the standard says) accepts ``text``;
    no pattern accepts everything, one Python cannot read accepts nothing."""
    if pattern is None:
        return True
    try:
        return isinstance(pattern, str) and re.search(pattern, text) is not None
    except re.error:
        return False


def reference(value: Any, ids: Callable[[str], list[Any]], index: int) -> Any:
    """``value`` with each ``<thing>_id`` (or ``<thing>Id``) field set to an id that exists
    (read from the target's list of things), the ``index``-th one cycled.

    A body drawn from the schema alone refers to things that do not exist (a random
    category id): the target then answers 422 or 404, and the load measures refusals
    instead of writes. Fields without a list to read from keep the drawn value.
    """
    if isinstance(value, list):
        return [reference(item, ids, index) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        known = ids(key) if isinstance(item, (str, int)) and not isinstance(item, bool) else []
        out[key] = known[index % len(known)] if known else reference(item, ids, index)
    return out


def login_paths(doc: dict[str, Any]) -> set[str]:
    """The token URLs of the document's OAuth2 password flows (``/auth/token``).

    A generated username and password are refused (401) every time: a load that logs in
    is a scripted scenario's job, with real credentials.
    """
    schemes = resolve(doc, (doc.get("components") or {}).get("securitySchemes")) or {}
    paths = set()
    for scheme in schemes.values() if isinstance(schemes, dict) else []:
        flows = resolve(doc, scheme).get("flows") if isinstance(resolve(doc, scheme), dict) else {}
        for flow in (flows or {}).values() if isinstance(flows, dict) else []:
            url = flow.get("tokenUrl") if isinstance(flow, dict) else None
            if isinstance(url, str) and "://" not in url:
                paths.add("/" + url.lstrip("/"))
    return paths


def write_bodies(
    doc: dict[str, Any],
    *,
    seed: int,
    log: Callable[..., None],
    ids: Callable[[str], list[Any]] | None = None,
) -> Callable[[str, str, dict[str, Any]], list[tuple[str, list[Any]]]]:
    """The body maker ``scenario.from_openapi`` calls for each write operation.

    It returns ``[(name suffix, bodies)]``: one entry for a plain write, one per
    batch size for a bulk endpoint (`` ×10``...). An operation without a JSON body
    is sent without one; one whose body cannot be generated is skipped, said in the log,
    as is an OAuth2 login (``login_paths``). ``ids(field)`` gives the ids that exist for
    a ``<thing>_id`` field (``reference``).
    """
    logins = login_paths(doc)

    def known(field: str) -> list[Any]:
        return ids(field) if ids is not None else []

    def make(template: str, method: str, operation: dict[str, Any]) -> list[tuple[str, list[Any]]]:
        name = f"{method.upper()} {template}"
        if template in logins:
            log(
                f"{name} skipped: it is the login of the document's OAuth2 scheme, where "
                "generated credentials are refused; log in from a scripted scenario"
            )
            return []
        schema = json_schema(doc, operation)
        if schema is None:
            return [("", [None])]
        try:
            shape = bulk_shape(doc, template, operation, schema)
            if shape is None:
                bodies = draw(doc, schema, BODY_VARIANTS, seed)
                return [
                    (
                        "",
                        [
                            reference(uniquify(doc, body, schema, UNIQUE), known, index)
                            for index, body in enumerate(bodies)
                        ],
                    )
                ]
            elements = draw(doc, shape.element, BULK_ELEMENTS, seed)
            wrapper = draw(doc, schema, 1, seed)[0] if shape.prop else None
        except NoBody as exc:
            log(f"{name} skipped: {exc}", "warning")
            return []
        out = []
        for size in BATCH_SIZES:
            if shape.max_items is not None and size > shape.max_items:
                log(f"{name}: batches of {size} left out (the schema allows {shape.max_items})")
                continue
            batch = [
                reference(
                    uniquify(doc, elements[i % len(elements)], shape.element, f"-{i}{UNIQUE}"),
                    known,
                    i,
                )
                for i in range(size)
            ]
            body: Any = batch
            if shape.prop:
                wrapped = reference(wrapper, known, 0) if isinstance(wrapper, dict) else {}
                body = {**wrapped, shape.prop: batch}
            out.append((f" ×{size}", [body]))
        return out

    return make
