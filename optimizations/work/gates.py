"""Phase gates: each phase's exit criterion (DESIGN.md) evaluated from evidence.

1 Analysis        a baseline benchmark set (5 runs or more) and a DB snapshot exist
2 Implementation  no open high-severity performance finding
3 Infrastructure  the capacity model and the monitoring checks pass
4 QA              SLOs met on the latest benchmark, no open high-severity security finding,
                  the integrity probes ran on the target (it allows writes) and no
                  integrity finding is open

A manager signs a gate off; one whose evidence is incomplete passes only with
an override and a recorded reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from django.db import transaction
from django.urls import reverse

from optimizations.analyzers import stats
from optimizations.analyzers.base import at_least
from optimizations.jobs import baselines
from optimizations.models import Finding, GateSignoff, Job, Phase
from optimizations.reports import capacity, sloboard
from optimizations.work import routing
from optimizations.work.actions import do_set_phase_status
from portal.audit import record

SEVERE = at_least("high")


@dataclass
class Check:
    key: str
    label: str
    ok: bool | None  # None: cannot tell yet
    detail: str
    url: str = ""
    # The check as a verdict (pass, fail, incomplete), set by the page that shows it;
    # not part of the evidence a sign-off stores.
    verdict: str = ""

    def to_dict(self) -> dict:
        data = asdict(self)
        del data["verdict"]
        return data


def evaluate(phase: Phase) -> list[Check]:
    """The evidence for ``phase``'s gate, as it stands now."""
    target = phase.initiative.target
    if phase.number == 1:
        return _analysis(target, phase.initiative)
    return {2: _implementation, 3: _infrastructure, 4: _quality}[phase.number](target)


def passes(checks: list[Check]) -> bool:
    return bool(checks) and all(check.ok is True for check in checks)


def missing(checks: list[Check]) -> list[Check]:
    return [check for check in checks if check.ok is not True]


def _latest_job(target, kind: str):
    return (
        Job.objects.filter(target=target, kind=kind, status=Job.SUCCEEDED)
        .order_by("-finished_at", "-pk")
        .first()
    )


def _analysis(target, initiative=None) -> list[Check]:
    base = baselines.baseline(target, baselines.DEFAULT_MODE, initiative)
    snapshot = (
        Job.objects.filter(target=target, kind="db_scan", status=Job.SUCCEEDED)
        .order_by("finished_at", "pk")
        .first()
    )
    checks = []
    if base is not None and base.size >= stats.MIN_RUNS:
        checks.append(
            Check("baseline_benchmark", "Baseline benchmark set", True, base.describe(), base.url)
        )
    elif base is not None:
        checks.append(
            Check(
                "baseline_benchmark",
                "Baseline benchmark set",
                False,
                f"{base.describe()}: fewer than {stats.MIN_RUNS} runs, so no before/after "
                "claim can rest on it — start a baseline set (5 short load tests) on the "
                "Compare page",
                base.url,
            )
        )
    else:
        checks.append(
            Check(
                "baseline_benchmark",
                "Baseline benchmark set",
                False,
                f"no {baselines.DEFAULT_MODE} benchmark has succeeded on this target in the "
                "initiative yet — start a baseline set (5 short load tests) on the Compare page",
            )
        )
    if snapshot:
        checks.append(
            Check(
                "db_snapshot",
                "DB snapshot",
                True,
                f"DB scan #{snapshot.pk} of run #{snapshot.run_id}",
                snapshot.get_absolute_url(),
            )
        )
    else:
        why = (
            "no DB scan has succeeded on this target yet"
            if target.database_url_encrypted
            else "no DB scan: the target has no database URL — add one on the target's edit page"
        )
        checks.append(Check("db_snapshot", "DB snapshot", False, why))
    return checks


def _open_severe(target, department: str, exclude_category: str = ""):
    return list(
        Finding.objects.filter(target=target, status=Finding.OPEN, severity__in=SEVERE)
        .exclude(category=exclude_category)
        .annotate(owner=routing.department_case())
        .filter(owner=department)
        .by_severity()[:6]
    )


def _findings_check(target, key, label, department, what, exclude_category="") -> Check:
    severe = _open_severe(target, department, exclude_category)
    url = reverse("finding_list", args=[target.slug]) + "?status=open"
    if not severe:
        return Check(key, label, True, f"no open critical or high {what} finding", url)
    names = ", ".join(f"{f.rule_id} ({f.location or f.title})"[:80] for f in severe[:5])
    more = " and more" if len(severe) > 5 else ""
    return Check(key, label, False, f"open: {names}{more}", url)


def _implementation(target) -> list[Check]:
    return [
        _findings_check(
            target,
            "no_severe_performance",
            "No open high-severity performance finding",
            routing.DEV.department,
            "performance",
        )
    ]


def _infrastructure(target) -> list[Check]:
    checks = []
    advice = capacity.advise(target)
    slo_url = reverse("target_slo", args=[target.slug])
    if advice.ok is True:
        checks.append(Check("capacity", "Capacity model", True, advice.summary, slo_url))
    elif advice.ok is False:
        checks.append(Check("capacity", "Capacity model", False, advice.summary, slo_url))
    else:
        checks.append(
            Check(
                "capacity", "Capacity model", None, "missing: " + "; ".join(advice.missing), slo_url
            )
        )
    probe = _latest_job(target, "probe")
    if probe is None:
        checks.append(
            Check(
                "monitoring",
                "Monitoring checks",
                None,
                "no probe has run — run strategy --focus monitoring",
            )
        )
    else:
        gaps = list(
            Finding.objects.filter(
                target=target, status=Finding.OPEN, source="probe", category="monitoring"
            ).values_list("title", flat=True)[:5]
        )
        if gaps:
            checks.append(
                Check(
                    "monitoring",
                    "Monitoring checks",
                    False,
                    "; ".join(gaps),
                    probe.get_absolute_url(),
                )
            )
        else:
            checks.append(
                Check(
                    "monitoring",
                    "Monitoring checks",
                    True,
                    f"health and metrics endpoints answer (probe #{probe.pk})",
                    probe.get_absolute_url(),
                )
            )
    availability = next(
        (row for row in sloboard.board(target) if row.key == "availability_pct"), None
    )
    if availability is not None:
        checks.append(
            Check(
                "availability",
                "Availability",
                {"pass": True, "fail": False}.get(availability.state),
                (
                    f"{availability.value:.3f} % ({availability.source}), objective "
                    f"≥ {availability.threshold:g} %"
                    if availability.value is not None
                    else availability.missing
                ),
                slo_url,
            )
        )
    return checks


def _quality(target) -> list[Check]:
    verdict = sloboard.latest_benchmark_verdict(target)
    slo_url = reverse("target_slo", args=[target.slug])
    run = verdict.get("run")
    if run is None:
        slo = Check(
            "slos",
            "SLOs on the latest benchmark",
            None,
            "no benchmark yet — run quality --focus testing",
        )
    elif verdict.get("ok"):
        slo = Check(
            "slos",
            "SLOs on the latest benchmark",
            True,
            f"all met on run #{run.pk}",
            run.get_absolute_url(),
        )
    else:
        parts = []
        if verdict.get("failing"):
            parts.append("not met: " + "; ".join(verdict["failing"]))
        if verdict.get("missing"):
            parts.append("not measured: " + "; ".join(verdict["missing"]))
        slo = Check(
            "slos",
            "SLOs on the latest benchmark",
            False if verdict.get("failing") else None,
            f"run #{run.pk} — " + " · ".join(parts),
            slo_url,
        )
    return [
        slo,
        _findings_check(
            target,
            "no_severe_security",
            "No open high-severity security finding",
            routing.QA.department,
            "security",
            exclude_category="integrity",  # their own check below
        ),
        _integrity(target),
    ]


def _integrity(target) -> Check:
    """The integrity probes ran on the target and left no open integrity finding (any
    severity: a lost update or a partial write is wrong data, whatever its size)."""
    label = "Data integrity"
    url = reverse("finding_list", args=[target.slug]) + "?status=open"
    if not target.allows_writes:
        return Check(
            "integrity",
            label,
            None,
            "not probed: the target does not allow writes — probe a staging deployment that "
            "does (its “allows writes” setting) with quality --focus integrity",
        )
    job = _latest_job(target, "integrity")
    if job is None:
        return Check(
            "integrity", label, None, "no integrity probe yet — run quality --focus integrity"
        )
    open_findings = list(
        Finding.objects.filter(target=target, status=Finding.OPEN, category="integrity")
        .by_severity()
        .values_list("rule_id", "location")[:6]
    )
    if open_findings:
        names = ", ".join(f"{rule} ({where})"[:80] for rule, where in open_findings[:5])
        more = " and more" if len(open_findings) > 5 else ""
        return Check("integrity", label, False, f"open: {names}{more}", url)
    return Check(
        "integrity",
        label,
        True,
        f"integrity probes #{job.pk} of run #{job.run_id}: no open integrity finding",
        job.get_absolute_url(),
    )


# --- sign-off ------------------------------------------------------------------


class GateRefused(Exception):
    """The gate's evidence is incomplete and no override reason was given."""


@transaction.atomic
def do_sign_gate(
    actor, phase: Phase, *, comment: str = "", override_reason: str = ""
) -> GateSignoff:
    """Sign ``phase``'s gate off and finish the phase (the next one starts).

    Without complete evidence this needs an override reason, which stays on record.
    """
    checks = evaluate(phase)
    complete = passes(checks)
    override_reason = override_reason.strip()
    if not complete and not override_reason:
        lacking = "; ".join(f"{c.label}: {c.detail}" for c in missing(checks))
        raise GateRefused(
            f"The gate's evidence is incomplete — {lacking}. To pass it anyway, give a reason "
            "for the override."
        )
    signoff = GateSignoff.objects.create(
        phase=phase,
        signed_by=actor,
        comment=comment.strip(),
        override=not complete,
        override_reason=override_reason if not complete else "",
        evidence=[check.to_dict() for check in checks],
    )
    lacking = ", ".join(check.label for check in missing(checks))
    how = (
        "signed off the gate"
        if complete
        else f"overrode the gate (missing: {lacking}) — {override_reason}"
    )
    record(
        actor,
        "phase.gate",
        phase,
        f"{how} of phase {phase.number} ({phase.name})",
        changes={"override": [None, not complete]},
        initiative=phase.initiative,
        target=phase.initiative.target,
    )
    do_set_phase_status(actor, phase, Phase.DONE)
    following = (
        Phase.objects.filter(initiative=phase.initiative, number=phase.number + 1)
        .exclude(status=Phase.DONE)
        .first()
    )
    if following and following.status == Phase.NOT_STARTED:
        do_set_phase_status(actor, following, Phase.ACTIVE)
    return signoff
