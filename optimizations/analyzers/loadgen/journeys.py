"""Scripted journeys inside the load engine: templates, extraction, and each journey's tally.

A journey is a list of steps sent one after the other by one virtual user:
each step's request may use ``${name}`` values — the scenario's variables, the
built-in ``${journey}`` (unique per journey in the run) and values extracted
from earlier answers (a JSON path such as ``$.id`` or ``$.items[0].id``, or a
response header). The engine (engine.py) starts journeys at an open-model rate
and schedules each next step at the previous answer plus the step's think
time; the latency of a step counts from that intended time, like any request.

The scenario file itself (YAML) is read and checked in ``script.py``; this
module takes its compiled, plain-JSON form and runs nothing the file wrote —
no user code runs in a worker.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
BUILTINS = ("journey",)
# Segments of a JSON path: ``.name`` or ``[3]``.
PATH_SEGMENT_RE = re.compile(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(\d+)\]")
# An answer larger than this is not kept for extraction (the step then fails its journey).
CAPTURE_LIMIT = 1 << 20
# Characters a value may keep when put into a path: the path's own separators survive.
PATH_SAFE = "/-._~!$&'()*+,;=:@"


def variables_in(value: Any) -> list[str]:
    """Every ``${name}`` used in a text, or anywhere inside a JSON value."""
    if isinstance(value, str):
        return VAR_RE.findall(value)
    if isinstance(value, dict):
        return [
            name for key, item in value.items() for name in variables_in(key) + variables_in(item)
        ]
    if isinstance(value, list):
        return [name for item in value for name in variables_in(item)]
    return []


def parse_json_path(path: str) -> list[str | int]:
    """``$.items[0].id`` → ``["items", 0, "id"]``; ValueError names what is wrong."""
    if not path.startswith("$"):
        raise ValueError(f"a JSON path starts with $ (got {path!r})")
    segments: list[str | int] = []
    position = 1
    while position < len(path):
        match = PATH_SEGMENT_RE.match(path, position)
        if match is None:
            raise ValueError(
                f"cannot read the JSON path {path!r} at {path[position:]!r} "
                "(write $.name, $.list[0].name)"
            )
        name, index = match.groups()
        segments.append(name if name is not None else int(index))
        position = match.end()
    return segments


def follow(document: Any, segments: list[str | int]) -> tuple[bool, Any]:
    """(found, value) at ``segments`` inside a decoded JSON document."""
    node = document
    for segment in segments:
        if isinstance(segment, int):
            if not isinstance(node, list) or segment >= len(node):
                return False, None
            node = node[segment]
        else:
            if not isinstance(node, dict) or segment not in node:
                return False, None
            node = node[segment]
    return True, node


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "" if value is None else str(value)


def render_text(template: str, values: dict[str, Any], *, in_path: bool = False) -> str:
    """``template`` with its ``${name}`` replaced; in a path, values are percent-encoded."""

    def replace(match: re.Match[str]) -> str:
        text = _text(values[match.group(1)])
        return quote(text, safe=PATH_SAFE) if in_path else text

    return VAR_RE.sub(replace, template)


def render_body(body: Any, values: dict[str, Any]) -> Any:
    """A JSON body with its values filled: a string that is exactly ``${name}`` takes the
    value itself (a number stays a number), any other string is filled as text."""
    if isinstance(body, str):
        whole = VAR_RE.fullmatch(body)
        if whole is not None:
            return values[whole.group(1)]
        return render_text(body, values)
    if isinstance(body, dict):
        return {render_text(key, values): render_body(item, values) for key, item in body.items()}
    if isinstance(body, list):
        return [render_body(item, values) for item in body]
    return body


@dataclass(frozen=True)
class Extraction:
    """One value a step takes from its answer: ``json`` path segments or a ``header`` name."""

    var: str
    json_path: str = ""
    segments: tuple[str | int, ...] = ()
    header: str = ""

    def describe(self) -> str:
        return self.json_path or f"header {self.header}"


@dataclass
class Step:
    """One request of a journey, compiled once."""

    index: int  # the engine's request index (its per-operation figures)
    operation: str
    spec: dict[str, Any]  # method, path, headers, body: templates
    expect: frozenset[int]
    extract: tuple[Extraction, ...]
    think: tuple[float, float]
    static: bool  # no ${...} anywhere: the engine's prebuilt bytes are used

    @property
    def needs_body(self) -> bool:
        return any(extraction.json_path for extraction in self.extract)

    @property
    def needs_headers(self) -> bool:
        return any(extraction.header for extraction in self.extract)

    def accepts(self, status: int) -> bool:
        if self.expect:
            return status in self.expect
        return 200 <= status < 300

    def think_time(self, rng: random.Random) -> float:
        low, high = self.think
        return low if high <= low else rng.uniform(low, high)

    def request(self, values: dict[str, Any]) -> dict[str, Any]:
        """This step's request with ``values`` filled in (KeyError: a value is missing)."""
        spec = self.spec
        return {
            "method": spec["method"],
            "path": render_text(spec["path"], values, in_path=True),
            "headers": {
                render_text(name, values): render_text(str(value), values)
                for name, value in (spec.get("headers") or {}).items()
            },
            "body": render_body(spec.get("body"), values),
        }

    def extract_from(
        self, status: int, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> dict[str, Any]:
        """The values this step extracts; ValueError says what was not found."""
        found: dict[str, Any] = {}
        document: Any = None
        decoded = False
        for extraction in self.extract:
            if extraction.header:
                wanted = extraction.header.lower().encode("latin-1")
                values = [value for name, value in headers if name.lower() == wanted]
                if not values:
                    raise ValueError(f"the answer ({status}) has no header {extraction.header}")
                found[extraction.var] = values[0].decode("latin-1")
                continue
            if not decoded:
                if body is None:
                    raise ValueError(
                        f"the answer is larger than {CAPTURE_LIMIT // 1024} KiB, not read"
                    )
                try:
                    document = json.loads(body)
                except ValueError:
                    raise ValueError(f"the answer ({status}) is not JSON") from None
                decoded = True
            ok, value = follow(document, list(extraction.segments))
            if not ok:
                raise ValueError(f"{extraction.json_path} is not in the answer ({status})")
            found[extraction.var] = value
        return found


@dataclass
class Journey:
    """A weighted list of steps, and what became of its runs."""

    name: str
    weight: float
    steps: list[Step]
    started: int = 0
    completed: int = 0
    failed: int = 0
    # Cut by the end of the test: a next step would have been due after the last arrival.
    unfinished: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    durations: dict[int, int] = field(default_factory=dict)
    duration_sum: int = 0
    duration_max: int = 0

    def fail(self, reason: str) -> None:
        self.failed += 1
        if reason in self.failures or len(self.failures) < 20:
            self.failures[reason] = self.failures.get(reason, 0) + 1

    def to_result(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "weight": self.weight,
            "steps": [step.operation for step in self.steps],
            "started": self.started,
            "completed": self.completed,
            "failed": self.failed,
            "unfinished": self.unfinished,
            "failures": dict(sorted(self.failures.items(), key=lambda kv: -kv[1])),
            "duration": {
                "counts": [[index, self.durations[index]] for index in sorted(self.durations)],
                "sum": self.duration_sum,
                "max": self.duration_max,
            },
        }


class JourneyRun:
    """One journey of one virtual user: where it is and the values it carries."""

    __slots__ = ("journey", "payload", "position", "started_at", "values")

    def __init__(self, journey: Journey, values: dict[str, Any], started_at: float):
        self.journey = journey
        self.values = values
        self.position = 0
        self.started_at = started_at
        self.payload: bytes | None = None  # the current step's bytes, when not static

    @property
    def step(self) -> Step:
        return self.journey.steps[self.position]


def compile_journeys(
    journeys: list[dict[str, Any]],
) -> tuple[list[Journey], list[dict[str, Any]]]:
    """The engine's journeys and its flat request list (one request per step, in order).

    ``journeys`` is script.py's compiled form: ``[{"name", "weight", "steps": [{"operation",
    "method", "path", "headers", "body", "expect", "extract", "think"}]}]``.
    """
    compiled: list[Journey] = []
    requests: list[dict[str, Any]] = []
    for journey in journeys:
        steps = []
        for raw in journey["steps"]:
            extract = []
            for item in raw.get("extract") or []:
                if item.get("header"):
                    extract.append(Extraction(var=item["var"], header=str(item["header"])))
                else:
                    path = str(item["json"])
                    extract.append(
                        Extraction(
                            var=item["var"], json_path=path, segments=tuple(parse_json_path(path))
                        )
                    )
            spec = {key: raw.get(key) for key in ("method", "path", "headers", "body")}
            spec["method"] = str(spec.get("method") or "GET").upper()
            think = raw.get("think") or [0.0, 0.0]
            steps.append(
                Step(
                    index=len(requests),
                    operation=str(raw["operation"]),
                    spec=spec,
                    expect=frozenset(int(code) for code in raw.get("expect") or ()),
                    extract=tuple(extract),
                    think=(float(think[0]), float(think[1])),
                    static=not variables_in(
                        [spec["path"], spec.get("headers") or {}, spec.get("body")]
                    ),
                )
            )
            requests.append({"operation": str(raw["operation"]), "weight": 0.0, **spec})
        if not steps:
            raise ValueError(f"journey {journey.get('name')!r} has no steps")
        compiled.append(
            Journey(
                name=str(journey["name"]), weight=float(journey.get("weight", 1.0)), steps=steps
            )
        )
    if not compiled:
        raise ValueError("the scenario has no journeys")
    return compiled, requests


def request_templates(requests: list[dict[str, Any]]) -> dict[int, Step]:
    """Plain requests that use ``${journey}`` (unique per request), by their index.

    ValueError when such a request uses any other ``${name}``: it has no other value.
    """
    templates: dict[int, Step] = {}
    for index, spec in enumerate(requests):
        used = variables_in([spec.get("path", "/"), spec.get("headers") or {}, spec.get("body")])
        if "journey" not in used:
            continue  # sent as written, ${...} and all (as before journeys existed)
        unknown = sorted(set(used) - set(BUILTINS))
        if unknown:
            raise ValueError(f"request {index + 1} uses ${{{unknown[0]}}}, which has no value")
        templates[index] = Step(
            index=index,
            operation=str(spec.get("operation") or ""),
            spec={
                "method": str(spec.get("method") or "GET").upper(),
                "path": spec.get("path") or "/",
                "headers": spec.get("headers") or {},
                "body": spec.get("body"),
            },
            expect=frozenset(),
            extract=(),
            think=(0.0, 0.0),
            static=False,
        )
    return templates


def mean_steps(journeys: list[Journey]) -> float:
    """Requests per journey, weighted: the open model's journey rate is rate ÷ this."""
    total = sum(journey.weight for journey in journeys)
    if total <= 0:
        raise ValueError("journey weights must add up to more than zero")
    return sum(journey.weight * len(journey.steps) for journey in journeys) / total


def merge_journeys(parts: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One list of journey tallies from several engines' (same journeys, counts added)."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for journey in part:
            into = merged.get(journey["name"])
            if into is None:
                merged[journey["name"]] = json.loads(json.dumps(journey))
                continue
            for key in ("started", "completed", "failed", "unfinished"):
                into[key] += journey[key]
            for reason, count in journey["failures"].items():
                into["failures"][reason] = into["failures"].get(reason, 0) + count
            counts = dict(map(tuple, into["duration"]["counts"]))
            for index, count in journey["duration"]["counts"]:
                counts[index] = counts.get(index, 0) + count
            into["duration"] = {
                "counts": [[index, counts[index]] for index in sorted(counts)],
                "sum": into["duration"]["sum"] + journey["duration"]["sum"],
                "max": max(into["duration"]["max"], journey["duration"]["max"]),
            }
    return list(merged.values())
