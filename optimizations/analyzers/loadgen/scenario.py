"""What a benchmark sends: weighted operations from the target's OpenAPI or a custom list.

From OpenAPI every GET operation becomes an operation of the scenario (weight 1
unless given), named like k6 and the portal name it: ``GET /items/{item_id}``.
Path parameters are filled from the document's examples (parameter
``example``/``examples``, schema ``example``/``examples``/``default``/``enum``)
or, failing those, from the list operation one level up (``GET /items`` for
``GET /items/{item_id}``): ids read from its JSON answer. Required query
parameters need an example or default; optional ones are left out. An
operation whose parameters cannot be filled is skipped and the log says why.

A custom scenario is a list of entries ``{"method", "path", "headers",
"body", "weight", "name"}`` — the form's editable table — or a scripted
scenario: YAML journeys of steps with values carried from one answer to the
next request (``script.py``; ``scripted`` below tells them apart).
"""

from __future__ import annotations

import fnmatch
import http.client
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from optimizations.analyzers import jsondoc, safehttp
from optimizations.analyzers.base import AnalysisError, Log, TargetSpec
from optimizations.analyzers.loadgen import script
from optimizations.analyzers.loadgen.bodies import write_bodies as generated_bodies
from optimizations.analyzers.netguard import AllowList

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Keys under which list endpoints commonly wrap their rows.
LIST_KEYS = ("items", "results", "data", "rows", "records", "objects")
PARAM_RE = re.compile(r"\{([^}/]+)\}")
MAX_VARIANTS = 20
FETCH_LIMIT = 5 * 1024 * 1024


@dataclass
class Operation:
    """One operation of a scenario and the concrete requests that stand for it."""

    name: str
    weight: float = 1.0
    requests: list[dict[str, Any]] = field(default_factory=list)


def fetch_json(
    url: str,
    *,
    allowed: AllowList,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    cancel: Callable[[], None] | None = None,
) -> Any:
    """GET ``url`` and decode its JSON answer.

    Through safehttp: the allow-list is checked on the resolved address of the
    URL and of every redirect hop, and credentials never follow a change of host.
    ``cancel`` (a job's check_cancel) stops a wait on a silent server within a second.
    """
    sent = {"Accept": "application/json", **(headers or {})}
    try:
        answer = safehttp.fetch(
            url,
            allowed=allowed,
            headers=sent,
            secret_headers=tuple(name for name in sent if name.lower() != "accept"),
            timeout=timeout,
            max_body=FETCH_LIMIT + 1,
            cancel=cancel,
        )
    except (OSError, http.client.HTTPException) as exc:
        raise AnalysisError(f"GET {url} failed: {exc or type(exc).__name__}") from None
    if answer.status >= 300:
        raise AnalysisError(f"GET {url} answered {answer.status} {answer.reason}")
    body = answer.body
    if len(body) > FETCH_LIMIT:
        raise AnalysisError(f"GET {url} answered more than {FETCH_LIMIT // 1024 // 1024} MiB")
    try:
        return jsondoc.loads(body, f"The answer of GET {url}")
    except jsondoc.DocumentRefused as exc:
        raise AnalysisError(str(exc)) from None
    except ValueError:
        raise AnalysisError(f"GET {url} did not answer JSON") from None


def _example(spec: dict[str, Any]) -> tuple[bool, Any]:
    """(found, value) from a parameter's or schema's examples, default or enum."""
    if not isinstance(spec, dict):
        return False, None
    if "example" in spec:
        return True, spec["example"]
    examples = spec.get("examples")
    if isinstance(examples, dict) and examples:
        first = next(iter(examples.values()))
        if isinstance(first, dict) and "value" in first:
            return True, first["value"]
    if isinstance(examples, list) and examples:
        return True, examples[0]
    schema = spec.get("schema")
    if isinstance(schema, dict):
        found, value = _example(schema)
        if found:
            return True, value
    if "default" in spec:
        return True, spec["default"]
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return True, spec["enum"][0]
    return False, None


def _resolve_ref(doc: dict[str, Any], item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("$ref"), str):
        ref = item["$ref"]
        if ref.startswith("#/"):
            node: Any = doc
            for part in ref[2:].split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
            return node
    return item


def _rows(payload: Any) -> list[Any]:
    """The list of rows in a list endpoint's answer."""
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        for key in LIST_KEYS:
            rows = payload.get(key)
            if isinstance(rows, list):
                return rows
        lists = [value for value in payload.values() if isinstance(value, list)]
        if len(lists) == 1:
            return lists[0]
    return []


def _values_from_rows(rows: list[Any], param: str, limit: int) -> list[str | int]:
    """Values for path parameter ``param`` read from list rows (``item_id`` → ``id``...)."""
    candidates = [param]
    if param.endswith("_id"):
        candidates.append("id")
    candidates += ["id", "uuid", "slug", "key", "name"]
    for key in dict.fromkeys(candidates):
        values = [
            row[key]
            for row in rows
            if isinstance(row, dict) and isinstance(row.get(key), (str, int))
        ]
        if values:
            return list(dict.fromkeys(values))[:limit]
    if rows and all(isinstance(row, (str, int)) for row in rows):
        return list(dict.fromkeys(rows))[:limit]
    return []


def _quiet(message: str, level: str = "info") -> None:
    """A Log that says nothing."""


def from_openapi(
    doc: dict[str, Any],
    *,
    fetch: Callable[[str], Any] | None = None,
    weights: dict[str, float] | None = None,
    exclude: list[str] | tuple[str, ...] = (),
    log: Log | None = None,
    max_variants: int = MAX_VARIANTS,
    write_bodies: Callable[[str, str, dict[str, Any]], list[tuple[str, list[Any]]]] | None = None,
) -> list[Operation]:
    """GET operations of an OpenAPI document, with their path parameters filled.

    ``fetch(path)`` returns the decoded JSON answer of GET ``path`` on the target
    (used to read ids from list operations); ``weights`` maps operation names
    (``GET /items``) or paths to weights; ``exclude`` holds glob patterns on
    names or paths. With ``write_bodies`` (bodies.write_bodies: only for a target
    that allows writes) POST, PUT and PATCH operations join, each with the bodies
    it returns; a bulk endpoint becomes one operation per batch size.
    """
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), dict):
        raise AnalysisError("the OpenAPI document has no 'paths'")
    weights = weights or {}
    say: Log = log or _quiet
    paths: dict[str, Any] = doc["paths"]
    operations: list[Operation] = []
    cache: dict[str, list[Any]] = {}

    def list_values(list_path: str, param: str) -> list[str | int]:
        if fetch is None or PARAM_RE.search(list_path):
            return []
        if list_path not in cache:
            try:
                cache[list_path] = _rows(fetch(list_path))
            except AnalysisError as exc:
                say(f"could not read ids from GET {list_path}: {exc}", "warning")
                cache[list_path] = []
        return _values_from_rows(cache[list_path], param, max_variants)

    methods = ("get", "post", "put", "patch") if write_bodies is not None else ("get",)
    for template, item, method in [
        (template, item, method)
        for template, item in paths.items()
        if isinstance(item, dict)
        for method in methods
        if method in item
    ]:
        name = f"{method.upper()} {template}"
        if any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(template, p) for p in exclude):
            continue
        operation = _resolve_ref(doc, item[method]) or {}
        parameters = [_resolve_ref(doc, p) for p in item.get("parameters", [])]
        parameters += [_resolve_ref(doc, p) for p in operation.get("parameters", [])]
        by_place: dict[str, dict[str, dict[str, Any]]] = {"path": {}, "query": {}, "header": {}}
        for parameter in parameters:
            if isinstance(parameter, dict) and parameter.get("in") in by_place:
                by_place[parameter["in"]][parameter.get("name", "")] = parameter
        query: dict[str, Any] = {}
        missing = []
        for pname, parameter in by_place["query"].items():
            if not parameter.get("required"):
                continue
            found, value = _example(parameter)
            if found:
                query[pname] = value
            else:
                missing.append(f"query parameter {pname}")
        headers: dict[str, str] = {}
        for pname, parameter in by_place["header"].items():
            if parameter.get("required"):
                found, value = _example(parameter)
                if found:
                    headers[pname] = str(value)
                else:
                    missing.append(f"header {pname}")
        # Fill path parameters left to right; later ones may need the earlier ones' values.
        variants: list[str] = [template]
        for pname in PARAM_RE.findall(template):
            parameter = by_place["path"].get(pname, {"name": pname})
            found, value = _example(parameter)
            values = [value] if found else []
            if not values:
                prefix = variants[0].split("{" + pname + "}", 1)[0].rstrip("/")
                values = list_values(prefix or "/", pname)
            if not values:
                missing.append(f"path parameter {pname}")
                break
            variants = [
                variant.replace("{" + pname + "}", quote(str(value), safe=""))
                for variant in variants
                for value in values
            ][:max_variants]
        if missing:
            say(
                f"{name} skipped: no value for {', '.join(missing)} (add an example to the "
                "OpenAPI document or list the request in a custom scenario)",
                "warning",
            )
            continue
        suffix = ("?" + urlencode(query, doseq=True)) if query else ""
        # (write methods are among ``methods`` only with write_bodies)
        kinds = (
            write_bodies(template, method, operation)
            if method != "get" and write_bodies is not None
            else [("", [None])]
        )
        for kind, bodies in kinds:
            named = name + kind
            weight = float(weights.get(named, weights.get(name, weights.get(template, 1.0))))
            if weight <= 0:
                continue
            requests = [
                {
                    "method": method.upper(),
                    "path": variant + suffix,
                    "headers": dict(headers),
                    **({"body": body} if body is not None else {}),
                }
                for variant in variants
                for body in bodies
            ][:max_variants]
            operations.append(Operation(name=named, weight=weight, requests=requests))
    if not operations:
        raise AnalysisError(
            "the OpenAPI document has no GET operation that can be called "
            "(see the log for the skipped ones); give a custom scenario instead"
        )
    return operations


def custom(entries: list[dict[str, Any]]) -> list[Operation]:
    """Operations from the form's table of requests; a bad entry is an error naming it."""
    if not isinstance(entries, list) or not entries:
        raise AnalysisError("the custom scenario must be a non-empty list of requests")
    operations: dict[str, Operation] = {}
    for number, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise AnalysisError(f"scenario entry {number}: expected an object")
        method = str(entry.get("method", "GET")).upper()
        path = str(entry.get("path", ""))
        if method not in METHODS:
            raise AnalysisError(f"scenario entry {number}: method must be one of {METHODS}")
        if not path.startswith("/") or any(ch in path for ch in " \r\n\t"):
            raise AnalysisError(f"scenario entry {number}: path must start with / (no spaces)")
        headers = entry.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, (str, int, float)) for k, v in headers.items()
        ):
            raise AnalysisError(f"scenario entry {number}: headers must map names to values")
        if any(ch in f"{k}{v}" for k, v in headers.items() for ch in "\r\n"):
            raise AnalysisError(f"scenario entry {number}: a header contains a line break")
        try:
            weight = float(entry.get("weight", 1.0))
        except (TypeError, ValueError):
            raise AnalysisError(f"scenario entry {number}: weight must be a number") from None
        if weight < 0:
            raise AnalysisError(f"scenario entry {number}: weight must not be negative")
        body = entry.get("body")
        if body is not None and not isinstance(body, (str, dict, list)):
            raise AnalysisError(f"scenario entry {number}: body must be text or JSON")
        name = str(entry.get("name") or f"{method} {path.split('?', 1)[0]}")
        request = {"method": method, "path": path, "headers": dict(headers), "body": body}
        operation = operations.setdefault(name, Operation(name=name, weight=0.0))
        operation.weight += weight
        operation.requests.append(request)
    kept = [operation for operation in operations.values() if operation.weight > 0]
    if not kept:
        raise AnalysisError("every request of the custom scenario has weight 0")
    return kept


def from_paths(paths: list[str]) -> list[Operation]:
    """GET operations from a plain list of paths (``/items, /items/1``)."""
    return custom([{"method": "GET", "path": path} for path in paths])


def engine_requests(
    operations: list[Operation],
    *,
    base_path: str = "",
    auth_header: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The engine's request list: each operation's weight split over its variants."""
    prefix = base_path.rstrip("/")
    requests: list[dict[str, Any]] = []
    for operation in operations:
        share = operation.weight / len(operation.requests)
        for request in operation.requests:
            headers = dict(request.get("headers") or {})
            if auth_header:
                headers.setdefault(auth_header[0], auth_header[1])
            requests.append(
                {
                    "operation": operation.name,
                    "method": request.get("method", "GET"),
                    "path": prefix + request["path"],
                    "headers": headers,
                    "body": request.get("body"),
                    "weight": share,
                }
            )
    return requests


def _decoded(value: Any) -> Any:
    """The scenario parameter decoded: JSON text as before, else YAML (a scenario file)."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return script.load(value)


def scripted(params: dict[str, Any]) -> script.Script | None:
    """The job's scripted scenario (journeys of steps), or None for any other kind."""
    document = _decoded(params.get("scenario"))
    if not script.is_script(document):
        return None
    return script.parse(document)


def build(
    target: TargetSpec,
    params: dict[str, Any],
    log: Log,
    cancel: Callable[[], None] | None = None,
) -> list[Operation]:
    """The scenario a benchmark job asked for: custom list, plain paths, or OpenAPI."""
    if params.get("scenario"):
        entries = _decoded(params["scenario"])
        return custom(entries)
    if params.get("paths"):
        return from_paths(list(params["paths"]))
    base = target.base_url.rstrip("/")
    headers = dict([target.auth_header]) if target.auth_header else {}

    def fetch(path: str) -> Any:
        return fetch_json(
            base + path,
            allowed=target.allowed_hosts,
            headers=headers,
            timeout=params["timeout"],
            cancel=cancel,
        )

    document = fetch(target.openapi_path)
    weights = params.get("weights") or {}
    if isinstance(weights, str):
        try:
            weights = json.loads(weights)
        except ValueError:
            raise AnalysisError("the weights are not valid JSON") from None
    writer = None
    # The job's parameter (filled by the portal from the target's setting), and the
    # target's own setting where the spec carries it: both must allow writes.
    refused = not target.allows_writes
    if params.get("allow_writes") and refused:
        log("writes were asked for, but this target does not allow writes: GET only", "warning")
    elif params.get("allow_writes"):
        writer = generated_bodies(
            document,
            seed=int(params.get("seed") or 1),
            log=log,
            ids=_reference_ids(document, fetch, log),
        )
    operations = from_openapi(
        document,
        fetch=fetch,
        weights=weights,
        exclude=params.get("exclude") or (),
        log=log,
        write_bodies=writer,
    )
    log(f"scenario from {target.openapi_path}: {', '.join(op.name for op in operations)}")
    if writer is None and any(
        isinstance(item, dict) and any(m in item for m in ("post", "put", "patch"))
        for item in document.get("paths", {}).values()
    ):
        log(
            "write operations (POST, PUT, PATCH) left out: this target does not allow "
            "writes (a target marked as allowing writes — staging — gets them, with bodies "
            "generated from their schemas)"
        )
    return operations


def _reference_ids(
    document: dict[str, Any], fetch: Callable[[str], Any], log: Log
) -> Callable[[str], list[Any]]:
    """``ids(field)``: the ids that exist for a ``<thing>_id`` field, read once from the
    target's ``GET /things`` (``/categories`` for ``category_id``; or ``/thinges``,
    ``/thing``); none when there is no such list."""
    paths = document.get("paths") or {}
    cache: dict[str, list[Any]] = {}

    def ids(field: str) -> list[Any]:
        stem = field[:-3] if field.endswith("_id") else field[:-2] if field.endswith("Id") else ""
        if not stem:
            return []
        if field not in cache:
            cache[field] = []
            plural = f"/{stem[:-1]}ies" if stem.endswith("y") else f"/{stem}s"
            for path in (plural, f"/{stem}es", f"/{stem}"):
                item = paths.get(path)
                if isinstance(item, dict) and "get" in item:
                    try:
                        cache[field] = list(
                            _values_from_rows(_rows(fetch(path)), "id", MAX_VARIANTS)
                        )
                    except AnalysisError as exc:
                        log(f"could not read ids for {field} from GET {path}: {exc}", "warning")
                    break
        return cache[field]

    return ids


def base_path(base_url: str) -> str:
    return urlsplit(base_url).path.rstrip("/")
