"""How fast people may start jobs: a rate and a queue length, per user and per target.

A script in a loop (or a fuzzer: 6 250 jobs in one afternoon) must not bury
the workers and the targets. Every run the engine makes asks the preflight
(optimizations.jobs.preflight), which calls ``check_start`` last (the comparison
and benchmark sets call it themselves). A refusal is a ``TooManyStarts``: a ``CannotStart``
with a readable reason, so the portal and the command line show it like any
other refusal; the API answers it 429 with ``Retry-After``.

What counts:
- *rate*: runs started in the last minute, by this user and on this target;
- *queue*: jobs sent to the job queue and not yet taken by a worker
  (status "queued"). Jobs "waiting" (for their run's previous job or for the
  target's lease) have no queue message and are never refused or counted.

Schedules start runs on their own and are not limited here (their cron is).
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from optimizations.jobs.refusals import TooManyStarts
from optimizations.models import Job, Run

__all__ = ["TooManyStarts", "check_start"]

WINDOW = timedelta(minutes=1)
# How long to wait when the queue is full: about the time a short job takes.
QUEUE_RETRY_SECONDS = 30


def check_start(user, target, trigger: str = "ui", now=None) -> None:
    """Raise TooManyStarts when ``user`` may not start another run on ``target`` now."""
    if trigger == "schedule":
        return
    now = now or timezone.now()
    since = now - WINDOW
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    if user_id is not None:
        _rate(
            Run.objects.filter(triggered_by_id=user_id, created_at__gt=since),
            settings.KAIZEN_JOB_START_RATE,
            now,
            gettext_noop(
                "You have started %(count)s runs in the last minute (at most %(limit)s a minute, "
                "KAIZEN_JOB_START_RATE). Try again in %(wait)s s."
            ),
        )
    _rate(
        Run.objects.filter(target_id=target.pk, created_at__gt=since),
        settings.KAIZEN_TARGET_START_RATE,
        now,
        gettext_noop(
            "%(count)s runs were started on %(target)s in the last minute (at most "
            "%(limit)s a minute per target, KAIZEN_TARGET_START_RATE). Try again in %(wait)s s."
        ),
        target=target.name,
    )
    if user_id is not None:
        _queue(
            Job.objects.filter(triggered_by_id=user_id, status=Job.QUEUED),
            settings.KAIZEN_JOB_QUEUE_MAX,
            gettext_noop(
                "%(count)s of your jobs are queued and not yet started (at most %(limit)s, "
                "KAIZEN_JOB_QUEUE_MAX). Wait for some to start, or cancel some, and try again."
            ),
        )
    _queue(
        Job.objects.filter(target_id=target.pk, status=Job.QUEUED),
        settings.KAIZEN_TARGET_QUEUE_MAX,
        gettext_noop(
            "%(count)s jobs on %(target)s are queued and not yet started (at most "
            "%(limit)s per target, KAIZEN_TARGET_QUEUE_MAX). Wait for some to start and try again."
        ),
        target=target.name,
    )


def _rate(runs, limit: int, now, message: str, **values) -> None:
    # Only the oldest ``limit + 1`` matter: the count is capped, the query stays cheap.
    times = list(runs.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(times) < limit:
        return
    # The start that frees a slot: the oldest of the last ``limit`` leaves the window.
    wait = math.ceil((times[-1] + WINDOW - now).total_seconds())
    values.update(count=len(times), limit=limit, wait=max(1, wait))
    raise TooManyStarts(gettext(message) % values, wait)


def _queue(jobs, limit: int, message: str, **values) -> None:
    count = jobs[: limit + 1].count()
    if count >= limit:
        values.update(count=count, limit=limit)
        raise TooManyStarts(gettext(message) % values, QUEUE_RETRY_SECONDS)
