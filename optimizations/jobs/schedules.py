"""The organisation's recurring reviews (DESIGN.md), as schedules every target gets."""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext_noop

from optimizations.jobs import cron
from optimizations.models import Schedule

# (name, mode, focus, cron). The names are stored in English and shown in each reader's
# language until a person renames the schedule (the |default_text filter).
DEFAULT_SCHEDULES: tuple[tuple[str, str, list[str], str], ...] = (
    (gettext_noop("Monthly performance analysis"), "performance", [], "0 2 1 * *"),
    (
        gettext_noop("Quarterly architecture review"),
        "strategy",
        ["architecture"],
        "0 3 1 1,4,7,10 *",
    ),
    (gettext_noop("Yearly stack review"), "comprehensive", [], "0 4 2 1 *"),
)
DEFAULT_NAMES = frozenset(name for name, *_ in DEFAULT_SCHEDULES)


def create_default_schedules(target, actor=None) -> list[Schedule]:
    now = timezone.localtime()
    return [
        Schedule.objects.create(
            target=target,
            name=name,
            mode=mode,
            focus=focus,
            cron=expression,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            next_run_at=cron.next_after(expression, now),
        )
        for name, mode, focus, expression in DEFAULT_SCHEDULES
    ]
