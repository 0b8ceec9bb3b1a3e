"""Static and runtime evidence of one problem side by side (issue 16): a runtime N+1
found in a target's traces and the code scan's finding at the same route.

``beside(finding)`` is what a finding's page shows next to it: for a runtime N+1 the code
scan's findings at its route (file:line and rule), for a code-scan finding that names a
route the runtime N+1 findings there (the statement family and its repeats per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizations.analyzers.observe.traces import RULE_N_PLUS_ONE
from optimizations.models import Finding, Trace
from optimizations.targets.traces import SOURCE, linked_code_findings

RUNTIME, STATIC = "runtime", "static"


@dataclass
class Beside:
    """What stands beside ``finding``: ``side`` names the other evidence shown."""

    side: str  # RUNTIME (runtime findings beside a code finding) or STATIC
    routes: list[str]
    others: list[Finding] = field(default_factory=list)
    # For a code finding with no runtime N+1 beside it: whether the target sends traces
    # at all (without them "none at this route" is not evidence of anything).
    traced: bool = True


def routes_of(finding: Finding) -> list[str]:
    """The routes ("GET /items") a code-scan finding is reached from, as its evidence says."""
    evidence = finding.evidence or {}
    found = []
    if isinstance(evidence.get("route"), str):
        found.append(evidence["route"])
    for path in evidence.get("request_path") or []:
        if isinstance(path, str):
            found.append(path.split(" →", 1)[0].strip())
    return list(dict.fromkeys(route for route in found if route))


def runtime_findings_at(target_id: int, routes: list[str]):
    """The runtime N+1 findings of a target at ``routes``, not fixed, most severe first."""
    return (
        Finding.objects.filter(
            target_id=target_id, source=SOURCE, rule_id=RULE_N_PLUS_ONE, location__in=routes
        )
        .exclude(status=Finding.FIXED)
        .by_severity()
    )


def beside(finding: Finding) -> Beside | None:
    """The other evidence for the finding's page, or None when it has no route to match."""
    if finding.source == SOURCE and finding.rule_id == RULE_N_PLUS_ONE:
        return Beside(STATIC, [finding.location], list(linked_code_findings(finding)))
    if finding.source != "code":
        return None
    routes = routes_of(finding)
    if not routes:
        return None
    others = list(runtime_findings_at(finding.target_id, routes))
    traced = bool(others) or Trace.objects.filter(target_id=finding.target_id).exists()
    return Beside(RUNTIME, routes, others, traced)
