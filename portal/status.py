"""Kaizen's own health: workers and their queues, beat, the broker, queue lengths.

The page itself reads only Kaizen's rows and folders (the workers' heartbeat rows,
beat's, the jobs), so it is shown at once; what only the broker can tell comes in
a panel the page loads after it is shown (``broker_facts``)."""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Count
from django.utils import timezone

from optimizations.jobs.engine import broker_reachable
from optimizations.models import Job
from portal import broker, workerbeat
from portal.celery import app
from portal.models import ServiceBeat, WorkerBeat

QUEUES = ("analysis", "benchmark", "maintenance")
# The broker check's budget (kombu connects, then retries once at once).
BROKER_TIMEOUT = 1.0


@dataclass(frozen=True)
class WorkerState:
    """One worker as its heartbeat row tells it: alive, silent (gone without a word) or stopped."""

    name: str
    queues: list[str]
    pid: int | None
    concurrency: int | None
    started_at: datetime.datetime
    at: datetime.datetime
    stopped_at: datetime.datetime | None
    state: str  # ALIVE, SILENT or STOPPED

    @property
    def alive(self) -> bool:
        return self.state == ALIVE


ALIVE, SILENT, STOPPED = "alive", "silent", "stopped"
# Workers gone for longer than this drop off the page (their rows stay).
SHOWN_FOR = datetime.timedelta(days=1)


def workers() -> list[WorkerState]:
    """The workers seen in the last day, from the rows they write themselves (one query):
    the alive first, then the silent and the stopped, most recently heard of first."""
    now = timezone.now()
    silent = datetime.timedelta(seconds=workerbeat.silent_after())
    states = []
    for row in WorkerBeat.objects.filter(at__gte=now - SHOWN_FOR).order_by("name"):
        if row.stopped_at is not None:
            state = STOPPED
        elif now - row.at > silent:
            state = SILENT
        else:
            state = ALIVE
        states.append(
            WorkerState(
                name=row.name,
                queues=list(row.queues),
                pid=row.pid,
                concurrency=row.concurrency,
                started_at=row.started_at,
                at=row.at,
                stopped_at=row.stopped_at,
                state=state,
            )
        )
    # Stable: the alive keep their names' order; the others, most recently heard of first.
    states.sort(key=lambda w: (0, 0.0) if w.alive else (1, -w.at.timestamp()))
    return states


def queue_lengths() -> dict[str, int | None]:
    lengths: dict[str, int | None] = dict.fromkeys(QUEUES)
    with contextlib.suppress(Exception), app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in QUEUES:
            with contextlib.suppress(Exception):
                # kombu's virtual channels count a queue with _size (not in the stubs).
                lengths[queue] = channel._size(queue)  # type: ignore[attr-defined]
    return lengths


def broker_facts() -> dict:
    """What only the broker can tell: is it reachable, and how many messages wait per queue.

    Asked by the page's broker panel after the page is shown (a broker that does not
    answer costs its timeout there, never the page), and inline when that panel's
    address is opened directly."""
    problem = broker_reachable(timeout=BROKER_TIMEOUT)
    return {
        "broker": broker_kind(),
        "broker_checked": True,
        "broker_problem": problem,
        "queues": {} if problem else queue_lengths(),
    }


def broker_kind() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]


def snapshot() -> dict:
    """Everything the page shows that Kaizen's own rows and folders tell at once; the
    broker's facts come from ``broker_facts()`` (``broker_checked`` says whether they
    are in)."""
    now = timezone.now()
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
    seen = workers() or []
    alive = [worker for worker in seen if worker.alive]
    return {
        "broker": broker_kind(),
        "broker_checked": False,
        "broker_problem": None,
        "queues": {},
        "broker_corrupt": corrupt_count,
        "broker_corrupt_newest": corrupt_newest,
        "workers": seen,
        "workers_alive": len(alive),
        "unserved_queues": [q for q in QUEUES if not any(q in w.queues for w in alive)],
        "worker_beat": workerbeat.beat_seconds(),
        "worker_silent_after": workerbeat.silent_after(),
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
