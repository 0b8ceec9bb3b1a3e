"""Writes that turn findings into work: tasks, assignment, bulk triage — each one audited."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext, gettext_noop, ngettext

from departments.models import Department, Membership
from optimizations.models import Finding, Initiative, PhaseTask
from optimizations.work import findings as service
from optimizations.work import routing
from optimizations.work.findings import STATUS_WORDS
from portal.audit import record
from portal.i18n import Phrase

# Findings that may still become work: open ones, and accepted ones (a risk
# someone chose to carry may still get a task later).
PLANNABLE = (Finding.OPEN, Finding.ACCEPTED)


@dataclass
class Outcome:
    created: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (finding, why)

    def message(self) -> str:
        """What happened, for the page (in its reader's language)."""
        parts = []
        if self.created:
            by_department: dict[str, int] = {}
            for task in self.created:
                by_department[task.department.name] = by_department.get(task.department.name, 0) + 1
            made = ", ".join(
                gettext("%(count)s for %(department)s") % {"count": n, "department": name}
                for name, n in sorted(by_department.items())
            )
            parts.append(
                ngettext(
                    "Made %(count)s task: %(made)s.",
                    "Made %(count)s tasks: %(made)s.",
                    len(self.created),
                )
                % {"count": len(self.created), "made": made}
            )
        if self.skipped:
            reasons = sorted({str(why.shown()) for _, why in self.skipped})
            parts.append(
                gettext("Skipped %(count)s: %(reasons)s.")
                % {"count": len(self.skipped), "reasons": "; ".join(reasons)}
            )
        return " ".join(parts) or gettext("Nothing to do.")


def _title(finding) -> str:
    where = f" ({finding.location})" if finding.location else ""
    return f"Fix {finding.rule_id}: {finding.title}{where}"[:200]


def _description(finding, route, department) -> str:
    lines = [f"From the {finding.get_source_display().lower()} finding “{finding.title}”."]
    if finding.fix_hint:
        lines.append(finding.fix_hint)
    lines.append(f"{department.name} owns it: {route.why}.")
    return "\n".join(lines)


@transaction.atomic
def do_make_tasks(actor, initiative: Initiative, findings) -> Outcome:
    """One task per finding in the phase of the department that owns it.

    A finding that already has a task in this initiative gets no second one;
    fixed and dismissed findings are not work.
    """
    outcome = Outcome()
    phases = {phase.number: phase for phase in initiative.phases.all()}
    departments = {d.code: d for d in Department.objects.all()}
    taken = set(
        PhaseTask.objects.filter(phase__initiative=initiative, finding__isnull=False).values_list(
            "finding_id", flat=True
        )
    )
    members = set(Membership.objects.values_list("user_id", "department__code"))
    positions = dict(
        initiative.phases.annotate(last=Max("tasks__position")).values_list("number", "last")
    )
    thresholds = initiative.target.thresholds()
    for finding in findings:
        if finding.target_id != initiative.target_id:
            outcome.skipped.append(
                (finding, Phrase(gettext_noop("not on this initiative's target")))
            )
            continue
        if finding.status not in PLANNABLE:
            outcome.skipped.append(
                (
                    finding,
                    Phrase(gettext_noop("already %(status)s"), status=STATUS_WORDS[finding.status]),
                )
            )
            continue
        if finding.pk in taken:
            outcome.skipped.append((finding, Phrase(gettext_noop("already a task"))))
            continue
        route = routing.route(finding)
        phase = phases.get(route.phase)
        if phase is None:
            outcome.skipped.append(
                (
                    finding,
                    Phrase(
                        gettext_noop("the initiative has no phase %(number)s"), number=route.phase
                    ),
                )
            )
            continue
        positions[route.phase] = (positions.get(route.phase) or 0) + 1
        assignee = finding.assignee if (finding.assignee_id, route.department) in members else None
        task = PhaseTask.objects.create(
            phase=phase,
            title=_title(finding),
            description=_description(finding, route, departments[route.department]),
            department=departments[route.department],
            assignee=assignee,
            position=positions[route.phase],
            finding=finding,
            criterion=routing.criterion_for(finding, thresholds),
            criterion_state="pending",
        )
        taken.add(finding.pk)
        outcome.created.append(task)
        record(
            actor,
            "task.from_finding",
            task,
            Phrase(
                gettext_noop(
                    "made task “%(title)s” for %(department)s (phase %(number)s); done when "
                    "%(criterion)s"
                ),
                title=task.title,
                department=task.department.name,
                number=phase.number,
                criterion=task.criterion["text"],
            ),
            initiative=initiative,
            target=initiative.target,
        )
    return outcome


@transaction.atomic
def do_assign_findings(actor, findings, assignee) -> int:
    """Assign findings to a person (or nobody); tasks made later go to them in their department."""
    findings = [f for f in findings if f.assignee_id != (assignee.pk if assignee else None)]
    if not findings:
        return 0
    Finding.objects.filter(pk__in=[f.pk for f in findings]).update(assignee=assignee)
    who = assignee.get_username() if assignee else "nobody"
    for finding in findings:
        record(
            actor,
            "finding.assign",
            finding,
            Phrase(
                gettext_noop("assigned %(rule)s “%(title)s” to %(who)s"),
                rule=finding.rule_id,
                title=finding.title,
                who=who if assignee else Phrase(gettext_noop("nobody")),
            ),
            changes={
                "assignee": [finding.assignee.get_username() if finding.assignee else None, who]
            },
            target=finding.target,
        )
    return len(findings)


def do_triage_findings(actor, findings, status: str, reason: str) -> int:
    """Set many findings' status at once, with one reason for all of them (the findings
    service decides what a person may set: never "fixed")."""
    return service.set_status(actor, findings, status, reason)
