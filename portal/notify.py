"""Tell people what they need to know: in the portal's inbox and by email."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

from departments.models import Department, Membership
from portal.models import Notification

logger = logging.getLogger(__name__)


def notify(users, subject: str, body: str, url: str = "") -> None:
    """One inbox entry and one email per person (people without an address get the entry)."""
    seen = set()
    for user in users:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        Notification.objects.create(user=user, subject=subject[:200], body=body, url=url)
        if user.email:
            try:
                send_mail(
                    subject, f"{body}\n\n{url}".strip(), settings.DEFAULT_FROM_EMAIL, [user.email]
                )
            except OSError as error:  # a mail relay that is down must not fail the job
                logger.warning("could not email %s: %s", user.email, error)


# Who hears of each event (route). "starter": who started the run; "initiative owner":
# the initiative's manager; "target owners": the managers of the target's department;
# "control owner": a compliance control's owner, or without one its department's editors
# and managers; "control managers": the managers of the control's department; "hr": HR's
# editors and managers.
ROUTES = {
    "run.finished": ("starter", "initiative owner"),
    "sentinel.regressed": ("initiative owner", "target owners"),
    "sentinel.inconclusive": ("initiative owner", "target owners"),
    # A manual compliance control near its due date, then past it (departments.compliance).
    "compliance.due": ("control owner",),
    "compliance.overdue": ("control managers", "hr"),
}


def recipients(event: str, *, initiative=None, target=None, run=None, control=None) -> list:
    """The people ``event`` reaches (ROUTES), each once, in a stable order."""
    if event not in ROUTES:
        raise ValueError(f"no route for event {event!r}")
    if target is None:
        target = initiative.target if initiative is not None else getattr(run, "target", None)
    if initiative is None and run is not None and run.initiative_id:
        initiative = run.initiative
    people = []
    for audience in ROUTES[event]:
        if audience == "starter" and run is not None:
            people.append(run.triggered_by)
        elif audience == "initiative owner" and initiative is not None:
            people.append(initiative.owner)
        elif audience == "target owners" and target is not None:
            people.extend(
                membership.user
                for membership in Membership.objects.filter(
                    department_id=target.owner_department_id, role=Membership.MANAGER
                )
                .select_related("user")
                .order_by("user__username")
            )
        elif audience == "control owner" and control is not None:
            if control.owner_id:
                people.append(control.owner)
            else:
                people.extend(
                    _members(control.department_id, (Membership.EDITOR, Membership.MANAGER))
                )
        elif audience == "control managers" and control is not None:
            people.extend(_members(control.department_id, (Membership.MANAGER,)))
        elif audience == "hr":
            people.extend(
                _members(
                    Department.objects.filter(code=Department.HR).values("pk")[:1],
                    (Membership.EDITOR, Membership.MANAGER),
                )
            )
    return [person for person in dict.fromkeys(people) if person is not None]


def _members(department, roles) -> list:
    """The users of ``department`` (a primary key or a one-row subquery) in ``roles``."""
    return [
        membership.user
        for membership in Membership.objects.filter(department_id=department, role__in=roles)
        .select_related("user")
        .order_by("user__username")
    ]


def route(
    event: str,
    subject: str,
    body: str,
    url: str = "",
    *,
    initiative=None,
    target=None,
    run=None,
    control=None,
) -> list:
    """The one way Kaizen tells people of an event: decides who hears (``recipients``)
    and sends through ``notify``; channels beyond the inbox and email go here."""
    people = recipients(event, initiative=initiative, target=target, run=run, control=control)
    notify(people, subject, body, url)
    return people


def run_finished(run) -> None:
    """The person who started the run and the initiative's owner hear how it ended."""
    from django.urls import reverse

    verdict = {
        "pass": "verdict pass",
        "fail": "verdict fail",
        "incomplete": "verdict incomplete (a check could not run; see the run)",
        "error": "verdict error (a job could not do its work)",
        "cancelled": "verdict cancelled",
    }.get(run.verdict, "no verdict")
    subject = f"Kaizen: {run.command_line()} {run.status}, {verdict}"
    lines = [f"Run #{run.pk} ({run.command_line()}) ended: {run.status}; {verdict}."]
    for job in run.jobs.order_by("pk"):
        line = f"- {job.kind}: {job.status}"
        if job.verdict:
            line += f", verdict {job.verdict}"
        if job.error:
            line += f" — {job.error}"
        lines.append(line)
    route("run.finished", subject, "\n".join(lines), reverse("run_detail", args=[run.pk]), run=run)
