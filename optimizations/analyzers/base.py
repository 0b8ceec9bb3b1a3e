"""The contract between Kaizen's analyzers and whoever runs them.

An analyzer is a plain module under ``optimizations.analyzers`` that imports
nothing from Django. It declares ``PARAMS`` (a list of :class:`Param`) and a
``run(target, params, ctx)`` function that returns an :class:`AnalysisResult`.
The Celery task, the CLI, the API and the tests all call the same ``run``;
only the :class:`Context` differs (the job's, which writes progress and logs to
the Job row, or :class:`LocalContext`, which keeps them in memory).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# The one severity order of Kaizen, least severe first; a higher rank is more severe.
# Sorting, "at least high", the gates, the charts and the SARIF levels all read it
# from here (lists show it reversed: MOST_SEVERE_FIRST).
SEVERITIES = ("info", "low", "medium", "high", "critical")
SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}
MOST_SEVERE_FIRST = tuple(reversed(SEVERITIES))


def at_least(floor: str) -> tuple[str, ...]:
    """The severities at or above ``floor``, most severe first: at_least("high") is
    ("critical", "high")."""
    if floor not in SEVERITY_RANK:
        raise ValueError(f"unknown severity {floor!r} (known: {', '.join(SEVERITIES)})")
    return tuple(name for name in MOST_SEVERE_FIRST if SEVERITY_RANK[name] >= SEVERITY_RANK[floor])


def is_at_least(severity: str, floor: str) -> bool:
    """True when ``severity`` is ``floor`` or more severe (an unknown one never is)."""
    return severity in at_least(floor)


# Where a finding came from; matches Finding.source in the portal.
SOURCES = (
    "code",
    "db",
    "security",
    "benchmark",
    "availability",
    "probe",
    "runbook",
    "integrity",
    "trace",
)

# What a finding is about; the portal routes categories to departments
# (performance → dev, architecture/monitoring → strategy, security → qa, ...).
CATEGORIES = (
    "performance",
    "correctness",
    "security",
    "reliability",
    "configuration",
    "architecture",
    "monitoring",
    "documentation",
    "integrity",  # data integrity and transactions under concurrency (QA's, phase 4)
)

CHECK_PASSED = "passed"
CHECK_FAILED = "failed"
CHECK_UNKNOWN = "unknown"

# The one verdict vocabulary (DESIGN.md "Verdicts and baselines"): of a job, a
# run, a scan, a gate, a control and the CLI. An analyzer returns pass, fail or
# incomplete; error (the job could not do its work) and cancelled are set by
# whoever runs it. Incomplete: a check the verdict needs could not run or saw
# nothing; its reason says what is missing and how to enable it. It is never
# shown as pass.
PASS, FAIL, INCOMPLETE, ERROR, CANCELLED = "pass", "fail", "incomplete", "error", "cancelled"
VERDICTS = (PASS, FAIL, INCOMPLETE, ERROR, CANCELLED)


def verdict_from_checks(
    checks: list[CheckOutcome], *, failed: bool, required: Collection[str] = ()
) -> tuple[str, str]:
    """(verdict, reason) of an analysis whose ``required`` checks must have run.

    ``failed`` is the analysis's own judgement (an SLO broken, a high finding):
    a definite failure stands even when other checks could not run. Otherwise a
    required check that is unknown (or absent) makes the verdict incomplete,
    with that check's reason — never pass.
    """
    by_id = {c.check_id: c for c in checks}
    missing = []
    for check_id in required:
        check = by_id.get(check_id)
        if check is None:
            missing.append(f"{check_id}: did not run")
        elif check.status == CHECK_UNKNOWN:
            missing.append(f"{check_id}: {check.detail or 'could not run'}")
    if failed:
        # The failure stands; what could not be checked is still said.
        return FAIL, ("also not checked: " + "; ".join(missing)) if missing else ""
    if missing:
        return INCOMPLETE, "; ".join(missing)
    return PASS, ""


class Cancelled(Exception):
    """Raised inside an analyzer when its job was cancelled."""


class AnalysisError(Exception):
    """A failure explained for a person: the job ends failed with this message."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of an analyzer; the portal builds its form from these."""

    name: str
    type: str  # "int", "float", "str", "bool", "choice", "text", "list", "json"
    default: Any
    help: str = ""
    label: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    required: bool = False


def validate_params(declared: list[Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``given`` completed with defaults and coerced to the declared types.

    Raises ValueError naming the parameter when a value is out of bounds or of
    the wrong type, or when a parameter is unknown.
    """
    by_name = {p.name: p for p in declared}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise ValueError(f"unknown parameter(s): {', '.join(unknown)}")
    clean: dict[str, Any] = {}
    for param in declared:
        value = given.get(param.name, param.default)
        if value is None or value == "":
            if param.required:
                raise ValueError(f"{param.name}: a value is required")
            clean[param.name] = param.default
            continue
        clean[param.name] = _coerce(param, value)
    return clean


def _coerce(param: Param, value: Any) -> Any:
    try:
        if param.type == "int":
            if isinstance(value, bool):
                raise TypeError
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            value = int(value)
        elif param.type == "float":
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError  # "nan" passes every bound, and JSON cannot store it
        elif param.type == "bool":
            if isinstance(value, str):
                if value.lower() not in {"true", "false", "1", "0", "on", "off", "yes", "no"}:
                    raise ValueError
                value = value.lower() in {"true", "1", "on", "yes"}
            else:
                value = bool(value)
        elif param.type == "list":
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            else:
                value = [str(item) for item in value]
        elif param.type in {"str", "text", "choice"}:
            value = str(value)
        elif param.type == "json":
            pass
        else:  # a programming error in the analyzer's declaration
            raise AssertionError(f"unknown parameter type {param.type!r}")
    except (TypeError, ValueError):
        raise ValueError(f"{param.name}: expected {param.type}, got {value!r}") from None
    if param.type == "choice" and value not in param.choices:
        raise ValueError(f"{param.name}: must be one of {', '.join(param.choices)}")
    if param.type == "list" and param.choices:
        bad = [item for item in value if item not in param.choices]
        if bad:
            raise ValueError(f"{param.name}: unknown value(s) {', '.join(bad)}")
    if param.min is not None and value < param.min:
        raise ValueError(f"{param.name}: must be at least {param.min:g}")
    if param.max is not None and value > param.max:
        raise ValueError(f"{param.name}: must be at most {param.max:g}")
    return value


@dataclass
class TargetSpec:
    """What an analyzer knows of a target service: plain values, secrets decrypted."""

    name: str
    base_url: str = ""
    health_path: str = "/health"
    openapi_path: str = "/openapi.json"
    metrics_path: str = "/metrics"
    auth_header: tuple[str, str] | None = None  # (name, value); never logged
    database_url: str = ""  # never logged
    source_path: str = ""  # a local directory (a git URL is cloned before the analyzer runs)
    thresholds: dict[str, float] = field(default_factory=dict)
    max_rate: float = 200.0  # requests per second the target allows us to send
    max_duration: float = 300.0  # seconds of load the target allows
    allowed_hosts: tuple[str, ...] = ("127.0.0.0/8", "::1", "localhost")
    # The target's explicit "allows writes" setting: only then may an analyzer create,
    # change or delete data through the API (the integrity probes, write-path load).
    allows_writes: bool = False


@dataclass
class FindingData:
    """One problem an analysis reports.

    ``key`` is what makes this finding the same one on the next run (for code:
    file, enclosing function and normalised excerpt rather than the line
    number, which moves; for the database: the normalised statement or the
    index definition). It defaults to ``location``.
    """

    rule_id: str
    title: str
    severity: str
    category: str
    location: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    fix_hint: str = ""
    doc_url: str = ""
    key: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITY_RANK:
            raise ValueError(f"unknown severity {self.severity!r}")
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r}")

    def fingerprint(self, source: str) -> str:
        identity = "\x1f".join((source, self.rule_id, self.key or self.location))
        return hashlib.sha256(identity.encode()).hexdigest()[:40]


@dataclass
class MeasurementData:
    """One number an analysis measured, e.g. ``http.latency.p95`` = 12.5 ms."""

    name: str
    value: float
    unit: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class CheckOutcome:
    """Whether one check ran. Only a check that ran and passed may mark its
    earlier findings fixed; ``unknown`` says why it could not run and the fix."""

    check_id: str
    status: str  # CHECK_PASSED, CHECK_FAILED or CHECK_UNKNOWN
    detail: str = ""


@dataclass
class AnalysisResult:
    """Everything one analyzer run produced."""

    summary: dict[str, Any] = field(default_factory=dict)
    findings: list[FindingData] = field(default_factory=list)
    measurements: list[MeasurementData] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    # PASS, FAIL or INCOMPLETE (None: the analysis judges nothing, shown as incomplete).
    verdict: str | None = None
    # Why it is not pass: for INCOMPLETE what is missing and how to enable it.
    verdict_reason: str = ""


class Log(Protocol):
    """``Context.log`` handed on by itself."""

    def __call__(self, message: str, level: str = "info") -> None: ...


class Context(Protocol):
    """What an analyzer may call while it runs."""

    def progress(self, percent: float, step: str = "") -> None: ...

    def log(self, message: str, level: str = "info") -> None: ...

    def sample(self, row: dict[str, Any]) -> None: ...

    def cancelled(self) -> bool: ...

    def check_cancel(self) -> None: ...


class LocalContext:
    """A Context that keeps everything in memory: for the CLI and the tests.

    ``cancel()`` may be called from another thread; ``cancel_after`` cancels
    by itself after that many seconds.
    """

    def __init__(
        self, echo: Callable[[str], object] | None = None, cancel_after: float | None = None
    ) -> None:
        self.logs: list[tuple[str, str]] = []
        self.samples: list[dict[str, Any]] = []
        self.percent = 0.0
        self.step = ""
        self._echo = echo
        self._cancel = threading.Event()
        self._deadline = None if cancel_after is None else time.monotonic() + cancel_after

    def progress(self, percent: float, step: str = "") -> None:
        self.percent = max(0.0, min(100.0, percent))
        if step:
            self.step = step

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, message))
        if self._echo:
            self._echo(f"[{level}] {message}")

    def sample(self, row: dict[str, Any]) -> None:
        self.samples.append(row)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._cancel.set()
        return self._cancel.is_set()

    def check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled("cancelled")
