"""Tell people what they need to know: in the portal's inbox and by email."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from departments.models import Department, Membership
from portal.i18n import shown
from portal.language import language_for
from portal.models import Notification

logger = logging.getLogger(__name__)


class Text:
    """Words to tell people, put into each reader's language as they are sent.

    ``message`` is an English msgid marked with ``gettext_noop`` (so the catalogue
    has it); ``params`` fill its ``%(name)s`` placeholders and may themselves be
    ``Text``, ``Joined``, a ``portal.i18n.Phrase`` or lazy strings (a model's choice
    label), rendered in the same language. A plain ``str`` is data and is sent as it is.
    """

    def __init__(self, message: str, /, **params) -> None:
        self.message, self.params = message, params

    def __str__(self) -> str:
        text = gettext(self.message)
        if not self.params:
            return text
        return text % {name: shown(value) for name, value in self.params.items()}


class Joined:
    """Several Text (or str) parts, joined in the reader's language."""

    def __init__(self, parts, separator: str = "\n") -> None:
        self.parts, self.separator = list(parts), separator

    def __str__(self) -> str:
        return self.separator.join(shown(part) for part in self.parts)


# What notify and route send: plain English, or words put into each reader's language.
Words = str | Text | Joined


def in_language(words, language: str) -> str:
    """``words`` (str, Text, Joined or a lazy string) as written in ``language``."""
    with translation.override(language):
        return str(words)


def notify(users, subject: Words, body: Words, url: str = "") -> None:
    """One inbox entry and one email per person (people without an address get the entry),
    each in the person's own language (their profile's choice, else English)."""
    seen = set()
    for user in users:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        language = language_for(user)
        subject_text, body_text = in_language(subject, language), in_language(body, language)
        Notification.objects.create(user=user, subject=subject_text[:200], body=body_text, url=url)
        if user.email:
            try:
                send_mail(
                    subject_text,
                    f"{body_text}\n\n{url}".strip(),
                    settings.DEFAULT_FROM_EMAIL,
                    [user.email],
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
    subject: Words,
    body: Words,
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

    verdict = Text(
        {
            "pass": gettext_noop("verdict pass"),
            "fail": gettext_noop("verdict fail"),
            "incomplete": gettext_noop("verdict incomplete (a check could not run; see the run)"),
            "error": gettext_noop("verdict error (a job could not do its work)"),
            "cancelled": gettext_noop("verdict cancelled"),
        }.get(run.verdict, gettext_noop("no verdict"))
    )
    status = Text(STATUS_WORDS.get(run.status, run.status))
    command = run.command_line()
    subject = Text(
        gettext_noop("Kaizen: %(command)s %(status)s, %(verdict)s"),
        command=command,
        status=status,
        verdict=verdict,
    )
    lines: list = [
        Text(
            gettext_noop("Run #%(pk)s (%(command)s) ended: %(status)s; %(verdict)s."),
            pk=run.pk,
            command=command,
            status=status,
            verdict=verdict,
        )
    ]
    for job in run.jobs.order_by("pk"):
        job_status = Text(STATUS_WORDS.get(job.status, job.status))
        if job.verdict:
            line = Text(
                gettext_noop("- %(kind)s: %(status)s, verdict %(verdict)s"),
                kind=job.kind,
                status=job_status,
                verdict=Text(VERDICT_WORDS.get(job.verdict, job.verdict)),
            )
        else:
            line = Text(gettext_noop("- %(kind)s: %(status)s"), kind=job.kind, status=job_status)
        lines.append(Joined([line, f" — {job.error}"], "") if job.error else line)
    route("run.finished", subject, Joined(lines), reverse("run_detail", args=[run.pk]), run=run)


# A run's and a job's status and verdict tokens as the sentences above use them (lower
# case, unlike the choice labels): English keeps the token itself.
STATUS_WORDS = {
    "waiting": gettext_noop("waiting"),
    "queued": gettext_noop("queued"),
    "running": gettext_noop("running"),
    "succeeded": gettext_noop("succeeded"),
    "failed": gettext_noop("failed"),
    "cancelled": gettext_noop("cancelled"),
    "expired": gettext_noop("expired"),
}
VERDICT_WORDS = {
    "pass": gettext_noop("pass"),
    "fail": gettext_noop("fail"),
    "incomplete": gettext_noop("incomplete"),
    "error": gettext_noop("error"),
    "cancelled": gettext_noop("cancelled"),
}
