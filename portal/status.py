"""Kaizen's own health: workers and their queues, beat, the broker, queue lengths."""

from __future__ import annotations

import contextlib
import datetime

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from optimizations.jobs.engine import broker_reachable
from optimizations.models import Job
from portal import broker
from portal.celery import app
from portal.models import ServiceBeat

QUEUES = ("analysis", "benchmark", "maintenance")


def workers(timeout: float = 1.0) -> dict[str, list[str]] | None:
    """{worker name: [queues it serves]}; None when no worker answered."""
    try:
        replies = app.control.inspect(timeout=timeout).active_queues()
    except Exception:  # the broker is down: no worker can answer
        return None
    if not replies:
        return None
    return {name: sorted(q["name"] for q in queues) for name, queues in replies.items()}


def queue_lengths() -> dict[str, int | None]:
    lengths: dict[str, int | None] = dict.fromkeys(QUEUES)
    with contextlib.suppress(Exception), app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            with contextlib.suppress(Exception):
                # kombu's virtual channels count a queue with _size (not in the stubs).
                lengths[queue] = channel._size(queue)  # type: ignore[attr-defined]
    return lengths


def snapshot() -> dict:
    now = timezone.now()
    broker_problem = broker_reachable(timeout=1.0)
    beats = {beat.name: beat for beat in ServiceBeat.objects.all()}
    beat = beats.get("beat")
    tick = settings.KAIZEN_TICK_SECONDS
    oldest = Job.objects.filter(status=Job.QUEUED).order_by("created_at").first()
    day = dict(
        Job.objects.filter(created_at__gte=now - datetime.timedelta(days=1))
        .values_list("status")
        .annotate(n=Count("pk"))
    )
    corrupt_count, corrupt_newest = (
        broker.corrupt_messages(settings.BROKER_DIR)
        if settings.CELERY_BROKER_URL.startswith("filesystem")
        else (0, [])
    )
    return {
        "broker": settings.CELERY_BROKER_URL.split("://", 1)[0],
        "broker_problem": broker_problem,
        "broker_corrupt": corrupt_count,
        "broker_corrupt_newest": corrupt_newest,
        "workers": None if broker_problem else workers(),
        "queues": {} if broker_problem else queue_lengths(),
        "beat": beat,
        "beat_late": beat is None or (now - beat.at).total_seconds() > 3 * tick,
        "purge": beats.get("purge"),
        "oldest_queued": oldest,
        "running": Job.objects.filter(status=Job.RUNNING).count(),
        "last_day": day,
        "tick": tick,
        "lost_after": settings.KAIZEN_LOST_AFTER,
        "retention_days": settings.KAIZEN_RETENTION_DAYS,
        "now": now,
    }
