"""Cheap polling of the job and run pages: change stamps and a slowing rhythm.

Fifty people watching jobs ask a page every second each. A poll that finds
nothing new must cost one indexed query and no rendering, and a page whose
job sits still should ask less often:

- the job page's poll carries the stamp of what it shows (``v``); an
  unchanged job answers only the poll element, asking again after 1, 2, 3,
  then every 5 s while nothing changes, and every second again once it does;
- the run page's poll is answered with an ETag of its jobs' state (one query
  on the run's jobs): the browser revalidates, and an unchanged run costs a
  304 without rendering;
- both stop when the work has ended: django-htmx's ``HttpResponseStopPolling``
  (status 286) still swaps its content in, then htmx stops asking.
"""

from __future__ import annotations

import time
import zlib

from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.cache import patch_cache_control
from django_htmx.http import HttpResponseStopPolling

from optimizations.models import Job

# Seconds between polls after 0, 1, 2, 3… answers in a row without a change.
POLL_INTERVALS = (1, 2, 3, 5)
# The run page's "took" column of a running job is at most this many seconds old.
DURATION_STEP = 10


def interval(quiet: int) -> int:
    """Seconds until the next poll after ``quiet`` answers without a change."""
    return POLL_INTERVALS[min(max(quiet, 0), len(POLL_INTERVALS) - 1)]


def _crc(*parts) -> str:
    return format(zlib.crc32("\x1f".join(map(str, parts)).encode()), "08x")


def job_stamp(job: Job) -> str:
    """What the job's status panel shows, as a short stamp that changes with it.

    Progress as shown (whole percent); a running job's duration moves, so its
    stamp changes at least every DURATION_STEP seconds.
    """
    return _crc(
        job.status,
        _clock() if job.status == Job.RUNNING else 0,
        round(job.progress),
        job.step,
        job.log_lines,
        job.cancel_requested,
        job.waiting_for_id,
        job.verdict,
        job.error,
    )


def run_etag(request, pk: int) -> str:
    """The run page's jobs as an ETag: one query on the run's jobs (its foreign-key index).

    Per user and time zone (the section shows what this user may do, in their
    time). While a job runs, its "took" column moves: the tag changes at least
    every DURATION_STEP seconds.
    """
    rows = [
        (pk, status, round(progress), *rest)
        for pk, status, progress, *rest in Job.objects.filter(run_id=pk)
        .order_by("pk")
        .values_list(
            "pk",
            "status",
            "progress",
            "step",
            "verdict",
            "waiting_for_id",
            "cancel_requested",
            "error",
        )
    ]
    running = any(row[1] == Job.RUNNING for row in rows)
    clock = _clock() if running else 0
    return _crc(request.user.pk, request.session.get("time_zone"), clock, rows)


def _clock() -> int:
    return int(time.time() // DURATION_STEP)


def revalidate(response):
    """The browser keeps the answer but asks again each time (If-None-Match)."""
    patch_cache_control(response, no_cache=True, private=True)
    return response


def answer(request, template: str, context: dict, *, done: bool) -> HttpResponse:
    """A poll's answer: the rendered fragment, and once the work has ended the same
    fragment as ``HttpResponseStopPolling`` so the page stops asking."""
    response_class = HttpResponseStopPolling if done else HttpResponse
    return response_class(render_to_string(template, context, request))
