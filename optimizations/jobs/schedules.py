"""The organisation's recurring reviews (DESIGN.md), as schedules every target gets."""

from __future__ import annotations

from django.utils import timezone

from optimizations.jobs import cron
from optimizations.models import Schedule

# (name, mode, focus, cron)
DEFAULT_SCHEDULES: tuple[tuple[str, str, list[str], str], ...] = (
    ("Monthly performance analysis", "performance", [], "0 2 1 * *"),
    ("Quarterly architecture review", "strategy", ["architecture"], "0 3 1 1,4,7,10 *"),
    ("Yearly stack review", "comprehensive", [], "0 4 2 1 *"),
)


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
