"""Which department and phase own a finding, and what closes a task made from it.

DESIGN.md: a finding can become a phase task for the department that owns its
category. Code, query and index work is development's (phase 2); pool,
connections, database settings, replication, monitoring and architecture are
strategy's (phase 3); security, data integrity and test gaps are QA's (phase 4); a missing
runbook is HR's (phase 3, where operations get ready).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_noop

from departments.models import Department
from optimizations.jobs.kinds import KINDS
from optimizations.targets import slo


@dataclass(frozen=True)
class Route:
    department: str  # Department code
    phase: int
    why: str


# ``why`` is English, marked for the catalogue: pages show it with |translated.
DEV = Route(Department.DEV, 2, gettext_noop("code, query and index work is development's"))
STRATEGY = Route(
    Department.STRATEGY,
    3,
    gettext_noop(
        "pool, connections, database settings, replication, monitoring and architecture are "
        "strategy's"
    ),
)
QA = Route(Department.QA, 4, gettext_noop("security, data integrity and test gaps are QA's"))
HR = Route(Department.HR, 3, gettext_noop("runbooks are HR's"))

# Categories the analyzers use (optimizations/analyzers/*) and who owns them.
BY_CATEGORY = {
    "performance": DEV,
    "async": DEV,
    "correctness": DEV,
    "architecture": STRATEGY,
    "configuration": STRATEGY,
    "monitoring": STRATEGY,
    "reliability": STRATEGY,
    "security": QA,
    "integrity": QA,  # data integrity and transactions (integrity probes, NOT VALID rows)
    "testing": QA,
    "validation": QA,
    "operations": HR,
}
# Rules whose category says less than the rule itself.
BY_RULE_PREFIX = (
    ("sec.negative_testing", QA),
    ("sec.input_bounds", QA),
    ("benchmark.operation_errors", DEV),
    ("db.idle_in_tx", DEV),
)


def route(finding) -> Route:
    """The department and phase that own ``finding``."""
    if finding.source == "runbook":
        return HR
    for prefix, owner in BY_RULE_PREFIX:
        if finding.rule_id.startswith(prefix):
            return owner
    if finding.category in BY_CATEGORY:
        return BY_CATEGORY[finding.category]
    if finding.source == "security":
        return QA
    if finding.source in ("availability", "probe"):
        return STRATEGY
    return DEV


def department_for_finding(finding) -> str:
    return route(finding).department


# --- acceptance criteria ---------------------------------------------------------


def kind_of_source(source: str) -> str | None:
    """The job kind that re-checks findings of ``source`` (optimizations.jobs.kinds)."""
    return next((kind.name for kind in KINDS.values() if kind.source == source), None)


def criterion_for(finding, thresholds: dict[str, float] | None = None) -> dict:
    """The acceptance criterion of a task made from ``finding``.

    A slow or failing operation is met when a benchmark at no lower a rate
    measures it within the objective; everything else when the check that
    found it runs again and no longer finds it.
    """
    # The target's values over the one SLO table's defaults (never a second copy here).
    thresholds = slo.merged(thresholds)
    evidence = finding.evidence or {}
    if finding.rule_id == "benchmark.slow_operation" and finding.location:
        rate = _rate_of(finding)
        return {
            "kind": "metric",
            "name": "http.latency.avg",
            "operation": finding.location,
            "max": thresholds["api_avg_ms"],
            "at_rps": rate,
            "text": _metric_text("average", finding.location, thresholds["api_avg_ms"], rate),
        }
    if finding.rule_id == "benchmark.bottleneck" and finding.location:
        typical = evidence.get("typical_p95_ms")
        limit = round(max(float(typical or 0) * 2, thresholds["api_avg_ms"]), 1)
        rate = _rate_of(finding)
        return {
            "kind": "metric",
            "name": "http.latency.p95",
            "operation": finding.location,
            "max": limit,
            "at_rps": rate,
            "text": _metric_text("p95", finding.location, limit, rate),
        }
    where = f" at {finding.location}" if finding.location else ""
    return {
        "kind": "finding_gone",
        "finding": finding.pk,
        "source": finding.source,
        "text": f"{finding.rule_id}{where} gone on re-scan",
    }


def _rate_of(finding) -> float | None:
    """The request rate of the benchmark that found it: a criterion holds at no lower rate."""
    summary = getattr(finding.last_job, "summary", None) or {}
    rate = summary.get("offered_rate") or summary.get("rps")
    return round(float(rate), 1) if rate else None


def _metric_text(stat: str, operation: str, limit: float, rate: float | None) -> str:
    at = f" at {rate:g} req/s" if rate else ""
    return f"{stat} of {operation} ≤ {limit:g} ms{at}"


# How many findings one bulk action may touch (the form posts their ids).
BULK_LIMIT = 500


def department_case():
    """The owning department's code as an SQL expression, to filter and count in the database.

    Mirrors ``route`` (tested against it): runbook source, then rule prefixes,
    then category, then source.
    """
    from django.db.models import Case, CharField, Q, Value, When

    whens = [When(source="runbook", then=Value(HR.department))]
    whens += [
        When(rule_id__startswith=prefix, then=Value(owner.department))
        for prefix, owner in BY_RULE_PREFIX
    ]
    whens += [
        When(category=category, then=Value(owner.department))
        for category, owner in BY_CATEGORY.items()
    ]
    whens += [
        When(source="security", then=Value(QA.department)),
        When(Q(source="availability") | Q(source="probe"), then=Value(STRATEGY.department)),
    ]
    return Case(*whens, default=Value(DEV.department), output_field=CharField())
