"""Shared pieces of the DB scan: thresholds, the scan's running state, outcome helpers."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .. import slo
from ..base import (
    CHECK_FAILED,
    CHECK_PASSED,
    CHECK_UNKNOWN,
    CheckOutcome,
    Context,
    FindingData,
    MeasurementData,
)
from .capabilities import Capabilities
from .connect import QueryFailed, Session

DOCS = "https://www.postgresql.org/docs/current/"
_TABLE = slo.defaults()


@dataclass
class Thresholds:
    """Every threshold a check uses. SLO defaults from the one table, the rest ANALYSIS.md §1."""

    # The SLOs and thresholds of the one table (same keys, same units: ms and %).
    slow_query_ms: float = _TABLE["slow_query_ms"]  # one execution at or above is slow
    slow_family_mean_ms: float = _TABLE["slow_family_mean_ms"]  # a family with this mean ...
    slow_family_min_calls: int = int(_TABLE["slow_family_min_calls"])  # ... over this many calls
    db_avg_ms: float = _TABLE["db_avg_ms"]  # DB average SLO
    slow_query_rate_pct: float = _TABLE["slow_query_rate_pct"]
    pool_use_pct: float = _TABLE["pool_use_pct"]
    # The scan's own thresholds (not SLOs).
    cache_hit_pct: float = 99.0
    long_running_s: float = 60.0
    idle_in_tx_s: float = 60.0
    unused_index_mb: float = 10.0
    seqscan_min_rows: int = 10000
    sequence_pct: float = 90.0
    wraparound_remaining: int = 500_000_000
    replication_lag_s: float = 5.0
    advisor_min_saving_pct: float = 50.0  # Dexter's bar
    advisor_min_cost: float = 100.0

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def build(cls, *layers: dict[str, Any]) -> Thresholds:
        """Later layers win; None means 'not given here'."""
        values: dict[str, Any] = {}
        # Each field's default is a float or an int: the given value is converted to it.
        converters: dict[str, Callable[[Any], Any]] = {f.name: type(f.default) for f in fields(cls)}
        for layer in layers:
            for name, value in (layer or {}).items():
                if name in converters and value is not None and value != "":
                    values[name] = converters[name](value)
        return cls(**values)


@dataclass
class ScanState:
    """What the checks share while one scan runs."""

    session: Session
    caps: Capabilities
    thresholds: Thresholds
    ctx: Context
    findings: list[FindingData] = field(default_factory=list)
    measurements: list[MeasurementData] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)  # shared between checks (FK covers...)

    def outcome(self, check_id: str, status: str, detail: str = "") -> None:
        self.checks.append(CheckOutcome(check_id, status, detail))

    def passed(self, check_id: str, detail: str = "") -> None:
        self.outcome(check_id, CHECK_PASSED, detail)

    def failed(self, check_id: str, detail: str = "") -> None:
        self.outcome(check_id, CHECK_FAILED, detail)

    def unknown(self, check_id: str, why: str, fix: str = "") -> None:
        detail = f"unknown — {why}" + (f" — fix: {fix}" if fix else "")
        self.outcome(check_id, CHECK_UNKNOWN, detail)

    def verdict(self, check_id: str, found: int, what: str, ok_detail: str = "") -> None:
        if found:
            self.failed(check_id, f"{found} {what}")
        else:
            self.passed(check_id, ok_detail or f"no {what}")

    def measure(self, name: str, value: float, unit: str, **labels: str) -> None:
        self.measurements.append(MeasurementData(name, float(value), unit, dict(labels)))

    def add(self, finding: FindingData) -> None:
        self.findings.append(finding)

    def guarded(self, check_id: str, func: Callable[[ScanState], object]) -> None:
        """Run one check; a failed statement makes it unknown instead of ending the scan."""
        self.ctx.check_cancel()
        try:
            func(self)
        except QueryFailed as exc:
            fix = ""
            if exc.sqlstate == "42501":
                fix = f"GRANT pg_monitor TO {self.caps.role}; (as a superuser)"
            elif exc.sqlstate == "57014":
                fix = "raise the scan's statement timeout (param statement_timeout_ms)"
            self.unknown(check_id, f"the query failed: {exc}", fix)


_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_SPACE = re.compile(r"\s+")


def normalise_sql(query: str) -> str:
    """The stable key of a statement family: comments dropped, whitespace folded.

    pg_stat_statements already replaced constants by $n; a family first seen
    with a route comment must not change its key when seen with another one.
    """
    return _SPACE.sub(" ", _COMMENT.sub(" ", query)).strip()


def short(text: str, limit: int = 120) -> str:
    text = normalise_sql(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def size_mb(nbytes: int | float) -> float:
    return round(float(nbytes) / (1024 * 1024), 1)
