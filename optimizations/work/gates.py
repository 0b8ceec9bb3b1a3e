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
from django.utils.translation import gettext, gettext_noop

from optimizations.analyzers import stats
from optimizations.analyzers.base import at_least
from optimizations.jobs import baselines
from optimizations.models import Finding, GateSignoff, Job, Phase
from optimizations.reports import capacity, sloboard
from optimizations.work import plan, routing
from optimizations.work.actions import do_set_phase_status
from portal.audit import record
from portal.i18n import Phrase, shown

SEVERE = at_least("high")


# The checks' names (English msgids: the stored evidence keeps English, a page shows
# them in its reader's language through |translated).
BASELINE_SET = Phrase(gettext_noop("Baseline benchmark set"))
DB_SNAPSHOT = Phrase(gettext_noop("DB snapshot"))
NO_SEVERE_PERFORMANCE = Phrase(gettext_noop("No open high-severity performance finding"))
CAPACITY = Phrase(gettext_noop("Capacity model"))
MONITORING = Phrase(gettext_noop("Monitoring checks"))
AVAILABILITY = Phrase(gettext_noop("Availability"))
SLOS = Phrase(gettext_noop("SLOs on the latest benchmark"))
NO_SEVERE_SECURITY = Phrase(gettext_noop("No open high-severity security finding"))
INTEGRITY = Phrase(gettext_noop("Data integrity"))


@dataclass
class Check:
    """One piece of a gate's evidence: ``label`` and ``detail`` are English (a Phrase
    where Kaizen wrote it), shown in the reader's language with |translated."""

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
        checks.append(Check("baseline_benchmark", BASELINE_SET, True, base.describe(), base.url))
    elif base is not None:
        checks.append(
            Check(
                "baseline_benchmark",
                BASELINE_SET,
                False,
                Phrase(
                    gettext_noop(
                        "%(set)s: fewer than %(least)s runs, so no before/after claim can rest "
                        "on it — start a baseline set (5 short load tests) on the Compare page"
                    ),
                    set=base.describe(),
                    least=stats.MIN_RUNS,
                ),
                base.url,
            )
        )
    else:
        checks.append(
            Check(
                "baseline_benchmark",
                BASELINE_SET,
                False,
                Phrase(
                    gettext_noop(
                        "no %(mode)s benchmark has succeeded on this target in the initiative "
                        "yet — start a baseline set (5 short load tests) on the Compare page"
                    ),
                    mode=baselines.DEFAULT_MODE,
                ),
            )
        )
    if snapshot:
        checks.append(
            Check(
                "db_snapshot",
                DB_SNAPSHOT,
                True,
                Phrase(
                    gettext_noop("DB scan #%(job)s of run #%(run)s"),
                    job=snapshot.pk,
                    run=snapshot.run_id,
                ),
                snapshot.get_absolute_url(),
            )
        )
    else:
        why = (
            Phrase(gettext_noop("no DB scan has succeeded on this target yet"))
            if target.database_url_encrypted
            else Phrase(
                gettext_noop(
                    "no DB scan: the target has no database URL — add one on the target's edit page"
                )
            )
        )
        checks.append(Check("db_snapshot", DB_SNAPSHOT, False, why))
    return checks


def _open_severe(target, department: str, exclude_category: str = ""):
    return list(
        Finding.objects.filter(target=target, status=Finding.OPEN, severity__in=SEVERE)
        .exclude(category=exclude_category)
        .annotate(owner=routing.department_case())
        .filter(owner=department)
        .by_severity()[:6]
    )


def _open(found: list, names) -> Phrase:
    """ "open: FSA101 (app/x.py:3), …" of the first five, saying when there are more."""
    names = ", ".join(f"{rule} ({where})"[:80] for rule, where in list(names)[:5])
    if len(found) > 5:
        return Phrase(gettext_noop("open: %(names)s and more"), names=names)
    return Phrase(gettext_noop("open: %(names)s"), names=names)


def _joined(items, separator: str):
    """Items (phrases or text) joined, each translated when shown (a text that is a msgid
    of the catalogue, such as the capacity advisor's, too)."""
    items = [item if isinstance(item, Phrase) else Phrase(str(item)) for item in items]
    if len(items) <= 1:
        return items[0] if items else ""
    template = (
        gettext_noop("%(first)s; %(rest)s")
        if separator == "; "
        else gettext_noop("%(first)s, %(rest)s")
    )
    return Phrase(template, first=items[0], rest=_joined(items[1:], separator))


def _findings_check(target, key, label, department, what, exclude_category="") -> Check:
    severe = _open_severe(target, department, exclude_category)
    url = reverse("finding_list", args=[target.slug]) + "?status=open"
    if not severe:
        return Check(key, label, True, what, url)
    return Check(
        key, label, False, _open(severe, ((f.rule_id, f.location or f.title) for f in severe)), url
    )


def _implementation(target) -> list[Check]:
    return [
        _findings_check(
            target,
            "no_severe_performance",
            NO_SEVERE_PERFORMANCE,
            routing.DEV.department,
            Phrase(gettext_noop("no open critical or high performance finding")),
        )
    ]


def _infrastructure(target) -> list[Check]:
    checks = []
    advice = capacity.advise(target)
    slo_url = reverse("target_slo", args=[target.slug])
    if advice.ok is True:
        checks.append(Check("capacity", CAPACITY, True, advice.summary, slo_url))
    elif advice.ok is False:
        checks.append(Check("capacity", CAPACITY, False, advice.summary, slo_url))
    else:
        missing = Phrase(gettext_noop("missing: %(what)s"), what=_joined(advice.missing, "; "))
        checks.append(Check("capacity", CAPACITY, None, missing, slo_url))
    probe = _latest_job(target, "probe")
    if probe is None:
        checks.append(
            Check(
                "monitoring",
                MONITORING,
                None,
                Phrase(gettext_noop("no probe has run — run strategy --focus monitoring")),
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
                    MONITORING,
                    False,
                    _joined(gaps, "; "),
                    probe.get_absolute_url(),
                )
            )
        else:
            checks.append(
                Check(
                    "monitoring",
                    MONITORING,
                    True,
                    Phrase(
                        gettext_noop("health and metrics endpoints answer (probe #%(job)s)"),
                        job=probe.pk,
                    ),
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
                AVAILABILITY,
                {"pass": True, "fail": False}.get(availability.state),
                (
                    Phrase(
                        gettext_noop("%(value)s %% (%(source)s), objective ≥ %(objective)s %%"),
                        value=f"{availability.value:.3f}",
                        source=availability.source,
                        objective=f"{availability.threshold:g}",
                    )
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
            SLOS,
            None,
            Phrase(gettext_noop("no benchmark yet — run quality --focus testing")),
        )
    elif verdict.get("ok"):
        slo = Check(
            "slos",
            SLOS,
            True,
            Phrase(gettext_noop("all met on run #%(run)s"), run=run.pk),
            run.get_absolute_url(),
        )
    else:
        failing = _joined(verdict.get("failing") or [], "; ")
        unmeasured = _joined(verdict.get("missing") or [], "; ")
        if failing and unmeasured:
            detail = Phrase(
                gettext_noop("run #%(run)s — not met: %(failing)s · not measured: %(missing)s"),
                run=run.pk,
                failing=failing,
                missing=unmeasured,
            )
        elif failing:
            detail = Phrase(
                gettext_noop("run #%(run)s — not met: %(failing)s"), run=run.pk, failing=failing
            )
        else:
            detail = Phrase(
                gettext_noop("run #%(run)s — not measured: %(missing)s"),
                run=run.pk,
                missing=unmeasured,
            )
        slo = Check("slos", SLOS, False if verdict.get("failing") else None, detail, slo_url)
    return [
        slo,
        _findings_check(
            target,
            "no_severe_security",
            NO_SEVERE_SECURITY,
            routing.QA.department,
            Phrase(gettext_noop("no open critical or high security finding")),
            exclude_category="integrity",  # their own check below
        ),
        _integrity(target),
    ]


def _integrity(target) -> Check:
    """The integrity probes ran on the target and left no open integrity finding (any
    severity: a lost update or a partial write is wrong data, whatever its size)."""
    label = INTEGRITY
    url = reverse("finding_list", args=[target.slug]) + "?status=open"
    if not target.allows_writes:
        return Check(
            "integrity",
            label,
            None,
            Phrase(
                gettext_noop(
                    "not probed: the target does not allow writes — probe a staging deployment "
                    "that does (its “allows writes” setting) with quality --focus integrity"
                )
            ),
        )
    job = _latest_job(target, "integrity")
    if job is None:
        return Check(
            "integrity",
            label,
            None,
            Phrase(gettext_noop("no integrity probe yet — run quality --focus integrity")),
        )
    open_findings = list(
        Finding.objects.filter(target=target, status=Finding.OPEN, category="integrity")
        .by_severity()
        .values_list("rule_id", "location")[:6]
    )
    if open_findings:
        return Check("integrity", label, False, _open(open_findings, open_findings), url)
    return Check(
        "integrity",
        label,
        True,
        Phrase(
            gettext_noop("integrity probes #%(job)s of run #%(run)s: no open integrity finding"),
            job=job.pk,
            run=job.run_id,
        ),
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
        lacking = "; ".join(
            gettext("%(check)s: %(detail)s") % {"check": shown(c.label), "detail": shown(c.detail)}
            for c in missing(checks)
        )
        raise GateRefused(
            gettext(
                "The gate's evidence is incomplete — %(lacking)s. To pass it anyway, give a "
                "reason for the override."
            )
            % {"lacking": lacking}
        )
    signoff = GateSignoff.objects.create(
        phase=phase,
        signed_by=actor,
        comment=comment.strip(),
        override=not complete,
        override_reason=override_reason if not complete else "",
        evidence=[check.to_dict() for check in checks],
    )
    if complete:
        summary = Phrase(
            gettext_noop("signed off the gate of phase %(number)s (%(phase)s)"),
            number=phase.number,
            phase=plan.default_text(phase.name),
        )
    else:
        summary = Phrase(
            gettext_noop(
                "overrode the gate (missing: %(lacking)s) — %(reason)s of phase %(number)s "
                "(%(phase)s)"
            ),
            lacking=_joined([check.label for check in missing(checks)], ", "),
            reason=override_reason,
            number=phase.number,
            phase=plan.default_text(phase.name),
        )
    record(
        actor,
        "phase.gate",
        phase,
        summary,
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
