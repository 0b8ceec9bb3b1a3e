"""Each Celery worker writes its own heartbeat row, so the status page never waits on it.

Asking the workers through the broker (``inspect().active_queues()``) waits the
whole reply timeout on every call, because the asker cannot know how many
workers should answer; the status page took a second for that alone (issue 18).
Instead each worker keeps a ``WorkerBeat`` row: written when it starts (with the
queues it serves), every ``KAIZEN_TICK_SECONDS`` from the worker's own timer, and
when it stops. The page reads the rows: a worker whose row is older than
``silent_after()`` died without a word (SIGKILL, the OOM killer, a lost host);
one with ``stopped_at`` was stopped.

The timer is the worker's: with Redis it is the event loop that also consumes
the messages, so a worker stuck in its loop stops beating too; with the embedded
broker it is the worker's timer thread.

``Heartbeat`` is a worker bootstep (Celery's way to add a part with a start and a
stop to the worker), registered in ``PortalConfig.ready()``.
"""

from __future__ import annotations

import logging
import os

from celery import bootsteps
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from portal.models import WorkerBeat

logger = logging.getLogger(__name__)

# A worker is called silent once it missed this many beats in a row.
MISSED_BEATS = 3


def beat_seconds() -> int:
    return settings.KAIZEN_TICK_SECONDS


def silent_after() -> int:
    """Seconds without a beat after which a worker that did not say it stopped is gone."""
    return MISSED_BEATS * beat_seconds()


def record_start(name: str, queues: list[str], pid: int, concurrency: int | None) -> None:
    now = timezone.now()
    WorkerBeat.objects.update_or_create(
        name=name,
        defaults={
            "queues": sorted(queues),
            "pid": pid,
            "concurrency": concurrency,
            "started_at": now,
            "at": now,
            "stopped_at": None,
        },
    )


def record_beat(name: str) -> None:
    # An UPDATE only: a row someone deleted (a test's flush) is written again at the
    # next start; a beat never invents a worker without its queues.
    WorkerBeat.objects.filter(name=name).update(at=timezone.now(), stopped_at=None)


def record_stop(name: str) -> None:
    now = timezone.now()
    WorkerBeat.objects.filter(name=name).update(at=now, stopped_at=now)


def _write(write, *args) -> None:
    """One heartbeat write on its own connection: a database that is down costs this beat
    only (logged), never the worker; the connection is closed so no pool child forked
    later inherits it."""
    close_old_connections()
    try:
        write(*args)
    except Exception as error:  # the database is down or not migrated: the next beat retries
        logger.warning("worker heartbeat not written: %s: %s", type(error).__name__, error)
    finally:
        connection.close()


class _Heart:
    def __init__(self, worker) -> None:
        self.worker = worker
        self.entry = None

    def start(self) -> None:
        worker = self.worker
        queues = list(worker.app.amqp.queues.consume_from or worker.app.amqp.queues)
        _write(record_start, worker.hostname, queues, os.getpid(), worker.concurrency)
        self.entry = worker.timer.call_repeatedly(
            beat_seconds(), _write, (record_beat, worker.hostname), priority=10
        )

    def stop(self) -> None:
        if self.entry is not None:
            self.entry.cancel()
            self.entry = None
            _write(record_stop, self.worker.hostname)


class Heartbeat(bootsteps.StartStopStep):
    """The worker's heartbeat row: written at start, on the worker's timer, at stop."""

    requires = ("celery.worker.components:Timer",)

    def create(self, parent):
        return _Heart(parent)
