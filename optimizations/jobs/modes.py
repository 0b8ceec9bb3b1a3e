"""Run modes → the jobs they make: DESIGN.md's table, in one place.

| mode          | kinds                                                       |
|---------------|-------------------------------------------------------------|
| performance   | code scan (performance rules), DB scan, benchmark (load)    |
| quality       | security scan, benchmark (load, stress, endurance),         |
|               | code scan (correctness and security rules), integrity       |
|               | probes (only on a target that allows writes)                |
| strategy      | benchmark (stress), DB scan (connections, pool, settings),  |
|               | probe, availability report                                  |
| comprehensive | all of the above (integrity only where writes are allowed)  |

Every run starts with the probe: it checks the target is reachable and
answers before the heavier jobs spend their time on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FOCUS = {
    "performance": ("fastapi", "sqlalchemy", "async"),
    "quality": ("testing", "security", "validation", "integrity"),
    "strategy": ("architecture", "monitoring", "scaling"),
    "comprehensive": (),
}

# Load tests model user traffic: monitoring endpoints and bulk exports are not
# part of it (an export of the whole catalogue per request would measure the
# export, not the API).
LOAD_EXCLUDE = ["GET /metrics", "GET /health*", "GET /ready*", "GET /*export*"]

# What a single job of a kind starts with in the portal's form (over the
# analyzer's own defaults).
FORM_DEFAULTS = {"benchmark": {"exclude": LOAD_EXCLUDE}}

DB_POOL_CHECKS = ["db.capabilities", "db.conn_headroom", "db.pool_usage", "db.settings"]
DB_ARCHITECTURE_CHECKS = [*DB_POOL_CHECKS, "db.replication", "db.vacuum_health"]


@dataclass(frozen=True)
class PlannedJob:
    kind: str
    params: dict = field(default_factory=dict)
    why: str = ""


def _performance(focus: set[str]) -> list[PlannedJob]:
    jobs = []
    if not focus:
        jobs.append(PlannedJob("code_scan", {"focus": ["performance"]}, "performance rules"))
        jobs.append(PlannedJob("db_scan", {}, "slow queries, indexes, pool"))
        jobs.append(PlannedJob("benchmark", {"mode": "load", "exclude": LOAD_EXCLUDE}, "load test"))
        return jobs
    rule_focus = [tag for tag in ("fastapi", "sqlalchemy", "async") if tag in focus]
    jobs.append(PlannedJob("code_scan", {"focus": rule_focus}, f"{', '.join(rule_focus)} rules"))
    if "sqlalchemy" in focus:
        jobs.append(PlannedJob("db_scan", {}, "the ORM's queries in the database"))
    if "fastapi" in focus:
        jobs.append(
            PlannedJob(
                "benchmark", {"mode": "load", "exclude": LOAD_EXCLUDE}, "load test of the API"
            )
        )
    return jobs


INTEGRITY = PlannedJob("integrity", {}, "data integrity probes (writes through the API)")


def _quality(focus: set[str], allows_writes: bool = False) -> list[PlannedJob]:
    testing = [
        PlannedJob("benchmark", {"mode": "load", "exclude": LOAD_EXCLUDE}, "load test"),
        PlannedJob(
            "benchmark", {"mode": "stress", "exclude": LOAD_EXCLUDE}, "stress test to the knee"
        ),
        PlannedJob(
            "benchmark", {"mode": "endurance", "exclude": LOAD_EXCLUDE}, "endurance: memory trend"
        ),
    ]
    if not focus:
        return [
            PlannedJob("security_scan", {}, "HTTP security"),
            *testing,
            PlannedJob(
                "code_scan",
                {"focus": ["correctness", "security"], "audit_dependencies": True},
                "correctness and security rules, dependency advisories",
            ),
            *([INTEGRITY] if allows_writes else []),
        ]
    jobs = []
    if "integrity" in focus:
        # Asked for by name: planned whatever the target allows; the engine refuses it with
        # the reason on a target that allows no writes.
        jobs.append(INTEGRITY)
    if "security" in focus or "validation" in focus:
        checks = {}
        if "security" not in focus:
            checks = {"checks": ["sec.negative_testing"]}
        jobs.append(PlannedJob("security_scan", checks, "OpenAPI negative testing"))
    if "security" in focus:
        jobs.append(
            PlannedJob(
                "code_scan",
                {"focus": ["security"], "audit_dependencies": True},
                "security rules, dependency advisories",
            )
        )
    if "testing" in focus:
        jobs.extend(testing)
    return jobs


def _strategy(focus: set[str]) -> list[PlannedJob]:
    if not focus:
        return [
            PlannedJob("benchmark", {"mode": "stress", "exclude": LOAD_EXCLUDE}, "capacity knee"),
            PlannedJob(
                "db_scan", {"checks": DB_ARCHITECTURE_CHECKS}, "connections, pool, settings"
            ),
        ]
    jobs = []
    if "architecture" in focus:
        jobs.append(
            PlannedJob("db_scan", {"checks": DB_ARCHITECTURE_CHECKS}, "pool, settings, replication")
        )
        jobs.append(PlannedJob("code_scan", {"focus": ["architecture"]}, "pool and config rules"))
    if "scaling" in focus:
        jobs.append(
            PlannedJob("benchmark", {"mode": "stress", "exclude": LOAD_EXCLUDE}, "capacity knee")
        )
        if "architecture" not in focus:
            jobs.append(PlannedJob("db_scan", {"checks": DB_POOL_CHECKS}, "connections and pool"))
    return jobs


# The order a run's jobs go in, one after another: the light, read-only ones
# first, then those that load the target, from the shortest to the longest (a
# long test must not leave the target busy for a short one). Kinds not named
# (new ones) go last, in the order planned.
ORDER = (
    "probe",
    "code_scan",
    "db_scan",
    "security_scan",
    "integrity",
    "benchmark:load",
    "benchmark:closed",
    "benchmark:stress",
    "benchmark:endurance",
)


def rank(kind: str, params: dict) -> int:
    """Where a job of ``kind`` with ``params`` goes in a run (ORDER)."""
    key = f"{kind}:{params.get('mode') or 'load'}" if kind == "benchmark" else kind
    return ORDER.index(key) if key in ORDER else len(ORDER)


def ordered(jobs: list[PlannedJob]) -> list[PlannedJob]:
    return sorted(jobs, key=lambda job: rank(job.kind, job.params))


def plan(
    mode: str, focus: list[str] | tuple[str, ...] = (), *, allows_writes: bool = False
) -> list[PlannedJob]:
    """The jobs one run of ``mode`` with ``focus`` makes, in ORDER, no duplicates.

    ``allows_writes`` (the target's setting) adds the integrity probes to quality and
    comprehensive runs without a focus; the ``integrity`` focus plans them regardless.
    """
    if mode not in FOCUS:
        raise ValueError(f"unknown run mode {mode!r}")
    wrong = [tag for tag in focus if tag not in FOCUS[mode]]
    if wrong:
        allowed = ", ".join(FOCUS[mode]) or "none"
        raise ValueError(f"focus {', '.join(wrong)} does not apply to {mode} (allowed: {allowed})")
    chosen = set(focus)
    jobs = [PlannedJob("probe", {}, "reachability, health, OpenAPI, metrics")]
    if mode == "performance":
        jobs += _performance(chosen)
    elif mode == "quality":
        jobs += _quality(chosen, allows_writes)
    elif mode == "strategy":
        jobs += _strategy(chosen)
    else:
        jobs += _performance(set()) + _quality(set(), allows_writes) + _strategy(set())
        # One code scan and one DB scan with every rule and check cover the rest.
        jobs = [j for j in jobs if j.kind not in ("code_scan", "db_scan")]
        jobs.insert(
            1,
            PlannedJob(
                "code_scan", {"audit_dependencies": True}, "every rule, dependency advisories"
            ),
        )
        jobs.insert(2, PlannedJob("db_scan", {}, "every check"))
    unique, seen = [], set()
    for job in jobs:
        key = (job.kind, repr(sorted(job.params.items())))
        if key not in seen:
            seen.add(key)
            unique.append(job)
    return ordered(unique)
