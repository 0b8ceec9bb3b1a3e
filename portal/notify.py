"""Tell people what they need to know: in the portal's inbox and by email."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail

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


def run_finished(run) -> None:
    """The person who started the run and the initiative's owner hear how it ended."""
    from django.urls import reverse

    verdict = {"pass": "SLOs met", "fail": "a verdict failed"}.get(run.verdict, "no verdict")
    subject = f"Kaizen: {run.command_line()} {run.status}, {verdict}"
    lines = [f"Run #{run.pk} ({run.command_line()}) ended: {run.status}; {verdict}."]
    for job in run.jobs.order_by("pk"):
        line = f"- {job.kind}: {job.status}"
        if job.verdict:
            line += f", verdict {job.verdict}"
        if job.error:
            line += f" — {job.error}"
        lines.append(line)
    people = [run.triggered_by]
    if run.initiative_id:
        people.append(run.initiative.owner)
    notify(people, subject, "\n".join(lines), reverse("run_detail", args=[run.pk]))
