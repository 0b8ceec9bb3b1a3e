"""The job kinds: one analyzer module and one registration each.

Adding a kind is writing its analyzer under ``optimizations/analyzers/`` (plain
Python: ``PARAMS`` and ``run(target, params, ctx)``) and one entry in
``KINDS`` below. A kind whose module is not there yet shows in the portal as
"not yet available" instead of failing.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType

from django.utils.translation import gettext_noop

from optimizations.analyzers.base import Param


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    module: str
    queue: str  # "analysis" or "benchmark"
    source: str  # Finding.source of what it reports
    # What the target must have for the kind to run: "base_url", "database_url", "source".
    needs: tuple[str, ...]
    description: str
    # Read-only kinds may be retried by the reaper when their worker is lost;
    # a load test is never sent twice without somebody asking.
    max_attempts: int = 2
    # Seconds a job may run before Celery stops it (soft limit 30 s earlier).
    time_limit: int = 900
    # Reports offered for download: (file suffix, content type, "module:function"),
    # the function taking the AnalysisResult and returning text or a JSON-able dict.
    exports: tuple[tuple[str, str, str], ...] = ()
    # It creates, changes or cancels data through the target's API: only on a target that
    # allows writes, and afterwards the "target_written" hook runs (the demo reseeds).
    writes: bool = False

    def analyzer(self) -> ModuleType | None:
        return _load(self.module)

    def available(self) -> bool:
        return self.analyzer() is not None

    def params(self) -> list[Param]:
        module = self.analyzer()
        return list(getattr(module, "PARAMS", [])) if module else []


@cache
def _load(path: str) -> ModuleType | None:
    try:
        module = importlib.import_module(path)
    except ModuleNotFoundError as error:
        if error.name and path.startswith(error.name):
            return None  # the analyzer has not landed yet
        raise
    if not callable(getattr(module, "run", None)):
        return None
    return module


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            "probe",
            gettext_noop("Target probe"),
            "optimizations.analyzers.probe",
            "analysis",
            "probe",
            ("base_url",),
            gettext_noop(
                "Reachability, health endpoint, OpenAPI operations, a few timed requests, /metrics."
            ),
            time_limit=300,
        ),
        Kind(
            "code_scan",
            gettext_noop("Code scan"),
            "optimizations.analyzers.codescan",
            "analysis",
            "code",
            ("source",),
            gettext_noop(
                "FastAPI and SQLAlchemy rules over the source tree, with ruff's where they apply."
            ),
            exports=(
                ("sarif", "application/sarif+json", "optimizations.analyzers.codescan:to_sarif"),
                ("json", "application/json", "optimizations.analyzers.codescan:to_json"),
            ),
        ),
        Kind(
            "db_scan",
            gettext_noop("DB scan"),
            "optimizations.analyzers.dbscan",
            "analysis",
            "db",
            ("database_url",),
            gettext_noop(
                "Slow queries, index problems and suggestions, pool and connection use — read-only."
            ),
        ),
        Kind(
            "security_scan",
            gettext_noop("Security scan"),
            "optimizations.analyzers.securityscan",
            "analysis",
            "security",
            ("base_url",),
            gettext_noop(
                "Headers, CORS, error leakage, unauthenticated writes, OpenAPI negative testing."
            ),
            max_attempts=1,
        ),
        Kind(
            "integrity",
            gettext_noop("Integrity probes"),
            "optimizations.analyzers.integrity",
            "analysis",
            "integrity",
            ("base_url",),
            gettext_noop(
                "Lost updates, bulk atomicity, unique races, idempotency and read-your-writes, "
                "through the API — only on a target that allows writes."
            ),
            # It writes: never sent again without somebody asking.
            max_attempts=1,
            time_limit=600,
            writes=True,
        ),
        Kind(
            "benchmark",
            gettext_noop("Benchmark"),
            "optimizations.analyzers.loadgen",
            "benchmark",
            "benchmark",
            ("base_url",),
            gettext_noop(
                "Load, stress (capacity knee) or endurance (memory trend) against the HTTP API."
            ),
            max_attempts=1,
            time_limit=3 * 3600,
        ),
    )
}


def get(name: str) -> Kind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}") from None
