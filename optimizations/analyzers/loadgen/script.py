"""Scripted scenarios: a YAML file of journeys, checked with readable errors, compiled.

The file (an example: ``examples/scenarios/shop_journey.yaml``)::

    name: shop journey
    variables: {username: qa.demo, password: demo}   # ${username} in any step
    headers: {Accept: application/json}               # sent with every step
    journeys:
      - name: buy and cancel
        weight: 3                                     # between journeys
        steps:
          - name: log in
            method: POST
            path: /auth/token
            body: {username: "${username}", password: "${password}"}
            expect: 200                               # or [200, 201]; default any 2xx
            extract: {token: $.access_token}          # JSON path, or {header: Location}
            think: 0.5                                # seconds, or [0.2, 1.0] (uniform)
          - name: read order
            path: /orders/${order_id}
            headers: {Authorization: "Bearer ${token}"}

``steps:`` at the top instead of ``journeys:`` is one journey. A value is a
variable, the built-in ``${journey}`` (unique per journey in the run: unique
keys, idempotency keys) or a value an *earlier* step extracts; a string that is
exactly ``${name}`` in a body keeps the value's type. Nothing in the file is
code: it is data the engine (journeys.py) interprets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.loadgen.journeys import BUILTINS, parse_json_path, variables_in

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD")
MAX_JOURNEYS = 20
MAX_STEPS = 50
MAX_THINK = 60.0
MAX_SIZE = 64 * 1024
TOP_KEYS = ("name", "variables", "headers", "think", "journeys", "steps")
JOURNEY_KEYS = ("name", "weight", "think", "steps")
STEP_KEYS = ("name", "method", "path", "headers", "body", "expect", "extract", "think")
# Separates a journey's name from its step's in the per-step figures.
JOIN = " › "


class ScriptError(AnalysisError):
    """The scenario file is not valid; the message names the line and the problem."""


class _Map(dict[Any, Any]):
    line = 0


class _Seq(list[Any]):
    line = 0


class _Loader(yaml.SafeLoader):
    """SafeLoader whose mappings and lists remember the line they start on."""


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> Any:
    data = _Map()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node, deep=True))


def _construct_seq(loader: yaml.SafeLoader, node: yaml.SequenceNode) -> Any:
    data = _Seq()
    data.line = node.start_mark.line + 1
    yield data
    data.extend(loader.construct_sequence(node, deep=True))


_Loader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_Loader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


@dataclass
class Script:
    """A checked scenario: the engine's journeys and the scenario's variables."""

    name: str
    variables: dict[str, Any]
    journeys: list[dict[str, Any]]

    def operations(self) -> list[str]:
        return [step["operation"] for journey in self.journeys for step in journey["steps"]]

    def mean_steps(self) -> float:
        total = sum(float(j["weight"]) for j in self.journeys)
        return sum(float(j["weight"]) * len(j["steps"]) for j in self.journeys) / total


def load(text: str) -> Any:
    """The YAML document in ``text``; a syntax error names its line and column."""
    if len(text.encode()) > MAX_SIZE:
        raise ScriptError(f"the scenario is larger than {MAX_SIZE // 1024} KiB")
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ScriptError(f"the scenario is not valid YAML — {where}{exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"the scenario is not valid YAML — {exc}") from None


def is_script(document: Any) -> bool:
    """A scripted scenario (a mapping with journeys or steps), not the older list of requests."""
    return isinstance(document, dict) and ("journeys" in document or "steps" in document)


def _at(node: Any, fallback: int) -> str:
    line = getattr(node, "line", 0) or fallback
    return f"line {line}: " if line else ""


def _fail(node: Any, fallback: int, message: str) -> ScriptError:
    return ScriptError(_at(node, fallback) + message)


def _keys(node: dict[Any, Any], known: tuple[str, ...], what: str) -> None:
    unknown = [str(key) for key in node if key not in known]
    if unknown:
        raise _fail(node, 0, f"unknown key {unknown[0]!r} in {what} (known: {', '.join(known)})")


def _think(value: Any, node: Any, what: str) -> list[float]:
    if value is None:
        return [0.0, 0.0]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = high = float(value)
    elif (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        low, high = float(value[0]), float(value[1])
    else:
        raise _fail(value, getattr(node, "line", 0), f"{what}: think is seconds, or [least, most]")
    if not 0 <= low <= high <= MAX_THINK:
        raise _fail(
            value,
            getattr(node, "line", 0),
            f"{what}: think must lie between 0 and {MAX_THINK:g} s, least first",
        )
    return [low, high]


def _headers(value: Any, node: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, (str, int, float)) and not isinstance(v, bool)
        for k, v in value.items()
    ):
        raise _fail(value, getattr(node, "line", 0), f"{what}: headers map names to values")
    for name, header in value.items():
        if any(ch in f"{name}{header}" for ch in "\r\n\0"):
            raise _fail(value, getattr(node, "line", 0), f"{what}: a header has a line break")
    return {str(k): str(v) for k, v in value.items()}


def _expect(value: Any, node: Any, what: str) -> list[int]:
    if value is None:
        return []
    codes = value if isinstance(value, list) else [value]
    if not codes or not all(
        isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599
        for code in codes
    ):
        raise _fail(
            value, getattr(node, "line", 0), f"{what}: expect is a status code or a list of them"
        )
    return sorted(set(codes))


def _extract(value: Any, node: Any, what: str) -> list[dict[str, str]]:
    if value is None:
        return []
    line = getattr(node, "line", 0)
    if not isinstance(value, dict) or not value:
        raise _fail(value, line, f"{what}: extract maps names to $.json.paths or {{header: Name}}")
    out = []
    for var, source in value.items():
        if not isinstance(var, str) or not var.isidentifier():
            raise _fail(value, line, f"{what}: {var!r} is not a usable name for ${{...}}")
        if var in BUILTINS:
            raise _fail(value, line, f"{what}: ${{{var}}} is built in; extract into another name")
        if isinstance(source, dict) and set(source) == {"header"}:
            header = source["header"]
            if not isinstance(header, str) or not header or any(c in header for c in ":\r\n "):
                raise _fail(source, line, f"{what}: {var}: header names a response header")
            out.append({"var": var, "header": header})
            continue
        path = (
            source.get("json") if isinstance(source, dict) and set(source) == {"json"} else source
        )
        if not isinstance(path, str):
            raise _fail(value, line, f"{what}: {var}: give a JSON path ($.id) or {{header: Name}}")
        try:
            parse_json_path(path)
        except ValueError as exc:
            raise _fail(value, line, f"{what}: {var}: {exc}") from None
        out.append({"var": var, "json": path})
    return out


def _step(
    raw: Any,
    number: int,
    journey: str,
    defined: set[str],
    default_headers: dict[str, str],
    default_think: list[float],
    fallback: int,
) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _fail(raw, fallback, f"journey {journey!r}, step {number}: expected a mapping")
    method = raw.get("method", "GET")
    path = raw.get("path")
    label = str(raw.get("name") or f"{str(method).upper()} {path}")
    what = f"journey {journey!r}, step {number} ({label})"
    _keys(raw, STEP_KEYS, what)
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise _fail(raw, fallback, f"{what}: method must be one of {', '.join(METHODS)}")
    if not isinstance(path, str) or not (path.startswith(("/", "${"))):
        raise _fail(raw, fallback, f"{what}: path must start with / (e.g. /orders/${{order_id}})")
    if any(ch in path for ch in " \r\n\t"):
        raise _fail(raw, fallback, f"{what}: path must not contain spaces")
    headers = {**default_headers, **_headers(raw.get("headers"), raw, what)}
    body = raw.get("body")
    if body is not None and not isinstance(body, (str, dict, list, int, float, bool)):
        raise _fail(raw, fallback, f"{what}: body must be text or JSON")
    if isinstance(body, (int, float, bool)):
        body = json.dumps(body)  # a bare JSON scalar, sent as such
    used = variables_in([path, headers, body])
    missing = [name for name in dict.fromkeys(used) if name not in defined]
    if missing:
        raise _fail(
            raw,
            fallback,
            f"{what} uses ${{{missing[0]}}}, which no earlier step extracts and `variables` "
            "does not define",
        )
    extract = _extract(raw.get("extract"), raw, what)
    defined.update(item["var"] for item in extract)
    think_value = raw.get("think")
    return {
        "operation": f"{journey}{JOIN}{label}",
        "label": label,
        "method": method.upper(),
        "path": path,
        "headers": headers,
        "body": _plain(body),
        "expect": _expect(raw.get("expect"), raw, what),
        "extract": extract,
        "think": default_think if think_value is None else _think(think_value, raw, what),
    }


def _plain(value: Any) -> Any:
    """Plain dicts and lists (JSON-serialisable, no line numbers) all the way down."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def parse(source: Any) -> Script:
    """A checked Script from the YAML text (or its already-decoded form, from the API)."""
    document = load(source) if isinstance(source, str) else source
    if not is_script(document):
        raise ScriptError(
            "a scripted scenario is a mapping with journeys: (or steps:) — see "
            "examples/scenarios/shop_journey.yaml"
        )
    _keys(document, TOP_KEYS, "the scenario")
    top_line = getattr(document, "line", 1)
    variables = document.get("variables") or {}
    if not isinstance(variables, dict) or not all(
        isinstance(k, str) and k.isidentifier() and isinstance(v, (str, int, float, bool))
        for k, v in variables.items()
    ):
        raise _fail(variables, top_line, "variables map names to plain values (text or numbers)")
    builtin = [name for name in variables if name in BUILTINS]
    if builtin:
        raise _fail(variables, top_line, f"${{{builtin[0]}}} is built in; choose another name")
    headers = _headers(document.get("headers"), document, "the scenario")
    think = _think(document.get("think"), document, "the scenario")
    if "journeys" in document and "steps" in document:
        raise _fail(document, top_line, "give journeys: or steps:, not both")
    raw_journeys = document.get("journeys")
    if raw_journeys is None:
        raw_journeys = [{"name": document.get("name") or "journey", "steps": document["steps"]}]
    if not isinstance(raw_journeys, list) or not raw_journeys:
        raise _fail(raw_journeys, top_line, "journeys: a list of journeys, each with steps")
    if len(raw_journeys) > MAX_JOURNEYS:
        raise _fail(raw_journeys, top_line, f"at most {MAX_JOURNEYS} journeys")
    journeys: list[dict[str, Any]] = []
    for number, raw in enumerate(raw_journeys, 1):
        line = getattr(raw_journeys, "line", top_line)
        if not isinstance(raw, dict):
            raise _fail(raw, line, f"journey {number}: expected a mapping with name and steps")
        _keys(raw, JOURNEY_KEYS, f"journey {number}")
        name = raw.get("name")
        if not isinstance(name, str) or not name.strip():
            raise _fail(raw, line, f"journey {number}: a name is required")
        name = name.strip()
        if any(j["name"] == name for j in journeys):
            raise _fail(raw, line, f"journey {number}: the name {name!r} is used twice")
        weight = raw.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise _fail(raw, line, f"journey {name!r}: weight is a number, 0 or more")
        steps = raw.get("steps")
        if not isinstance(steps, list) or not steps:
            raise _fail(raw, line, f"journey {name!r}: steps: a non-empty list of requests")
        if len(steps) > MAX_STEPS:
            raise _fail(steps, line, f"journey {name!r}: at most {MAX_STEPS} steps")
        journey_think = (
            _think(raw.get("think"), raw, f"journey {name!r}") if "think" in raw else think
        )
        defined = set(variables) | set(BUILTINS)
        compiled = [
            _step(step, index, name, defined, headers, journey_think, getattr(steps, "line", line))
            for index, step in enumerate(steps, 1)
        ]
        labels = [step["label"] for step in compiled]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise _fail(
                steps, line, f"journey {name!r}: two steps are named {twice[0]!r} (name them)"
            )
        journeys.append({"name": name, "weight": float(weight), "steps": compiled})
    if sum(j["weight"] for j in journeys) <= 0:
        raise _fail(raw_journeys, top_line, "every journey has weight 0")
    journeys = [j for j in journeys if j["weight"] > 0]
    return Script(
        name=str(document.get("name") or journeys[0]["name"]),
        variables=_plain(variables),
        journeys=journeys,
    )


def engine_journeys(
    script: Script, *, base_path: str = "", auth_header: tuple[str, str] | None = None
) -> list[dict[str, Any]]:
    """The journeys for the engine: paths under the target's base path, its credentials
    on every step that does not set that header itself."""
    prefix = base_path.rstrip("/")
    out = []
    for journey in script.journeys:
        steps = []
        for step in journey["steps"]:
            headers = dict(step["headers"])
            if auth_header and not any(k.lower() == auth_header[0].lower() for k in headers):
                headers[auth_header[0]] = auth_header[1]
            steps.append({**step, "path": prefix + step["path"], "headers": headers})
        out.append({**journey, "steps": steps})
    return out
