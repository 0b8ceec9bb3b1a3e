"""Kaizen's own ``/metrics`` for the operators who run it (Prometheus text format 0.0.4).

Jobs by state and by kind, queue depth (the broker's queues and the queued jobs), job
durations as a cumulative histogram per kind, and heartbeats: how long ago beat, the
reaper and the purge last showed they were alive, and the oldest heartbeat of a running
job (the workers beat while they run one); each worker's own heartbeat and how many
workers alive serve each queue.

Protected by a token, not by an address allow-list: set KAIZEN_METRICS_TOKEN and give
Prometheus ``authorization: {credentials: <token>}`` in its scrape config. A client's
address says little behind a reverse proxy (every request comes from the proxy), and a
token works the same on one machine and across a network. Without the setting the
endpoint is off (404): nothing about the jobs is public by default.
"""

from __future__ import annotations

import datetime
import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, DurationField, ExpressionWrapper, F, Min, Q, Sum
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from optimizations.models import Job
from portal.models import ServiceBeat
from portal.status import QUEUES, queue_lengths, workers

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: from a quick probe to a long endurance test.
DURATION_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 7200)


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    quoted = (
        f'{key}="{str(value).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels.items()
    )
    return "{" + ",".join(quoted) + "}"


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: dict[str, str], value: float) -> None:
        self.lines.append(f"{name}{_labels(labels)} {value:g}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def render(now=None, *, broker_queues: dict[str, int | None] | None = None) -> str:
    now = now or timezone.now()
    out = Exposition()
    by_state = dict(Job.objects.order_by().values_list("status").annotate(n=Count("pk")))
    out.family("kaizen_jobs", "gauge", "Jobs by state.")
    for state, _label in Job.STATUSES:
        out.sample("kaizen_jobs", {"state": state}, by_state.get(state, 0))
    out.family("kaizen_jobs_active", "gauge", "Waiting, queued and running jobs by kind.")
    active = (
        Job.objects.filter(status__in=Job.ACTIVE)
        .order_by()
        .values_list("kind", "status")
        .annotate(n=Count("pk"))
    )
    for kind, state, count in active:
        out.sample("kaizen_jobs_active", {"kind": kind, "state": state}, count)
    out.family("kaizen_queue_depth", "gauge", "Messages waiting in each broker queue.")
    for queue, length in (queue_lengths() if broker_queues is None else broker_queues).items():
        if length is not None:
            out.sample("kaizen_queue_depth", {"queue": queue}, length)
    oldest = Job.objects.filter(status=Job.QUEUED).aggregate(at=Min("created_at"))["at"]
    out.family("kaizen_oldest_queued_job_age_seconds", "gauge", "Age of the oldest queued job.")
    out.sample(
        "kaizen_oldest_queued_job_age_seconds",
        {},
        (now - oldest).total_seconds() if oldest else 0,
    )
    _durations(out)
    out.family(
        "kaizen_heartbeat_age_seconds",
        "gauge",
        "Seconds since a background service last showed it was alive (beat, reaper, purge).",
    )
    for beat in ServiceBeat.objects.order_by("name"):
        out.sample("kaizen_heartbeat_age_seconds", {"service": beat.name}, _age(now, beat.at))
    seen = workers()
    out.family(
        "kaizen_worker_heartbeat_age_seconds",
        "gauge",
        "Seconds since each worker not stopped last wrote its heartbeat (seen in the last day).",
    )
    for worker in seen:
        if worker.stopped_at is None:
            out.sample(
                "kaizen_worker_heartbeat_age_seconds", {"worker": worker.name}, _age(now, worker.at)
            )
    out.family(
        "kaizen_workers_alive", "gauge", "Workers alive (heartbeat on time) serving each queue."
    )
    for queue in QUEUES:
        alive = sum(1 for worker in seen if worker.alive and queue in worker.queues)
        out.sample("kaizen_workers_alive", {"queue": queue}, alive)
    stalest = Job.objects.filter(status=Job.RUNNING).aggregate(at=Min("heartbeat_at"))["at"]
    out.family(
        "kaizen_running_job_heartbeat_age_seconds",
        "gauge",
        "Seconds since the stalest running job's worker last beat (0: none running).",
    )
    out.sample("kaizen_running_job_heartbeat_age_seconds", {}, _age(now, stalest) if stalest else 0)
    return out.text()


def _age(now, at) -> float:
    return max((now - at).total_seconds(), 0.0)


def _durations(out: Exposition) -> None:
    """A cumulative histogram of finished jobs' run times per kind, one aggregate query."""
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    finished = Job.objects.filter(started_at__isnull=False, finished_at__isnull=False).annotate(
        took=took
    )
    buckets = {
        f"le_{index}": Count("pk", filter=Q(took__lte=datetime.timedelta(seconds=bound)))
        for index, bound in enumerate(DURATION_BUCKETS)
    }
    rows = (
        finished.order_by().values("kind").annotate(count=Count("pk"), total=Sum("took"), **buckets)
    )
    out.family("kaizen_job_duration_seconds", "histogram", "Run time of finished jobs by kind.")
    for found in rows:
        row: dict[str, Any] = dict(found)
        kind = {"kind": row["kind"]}
        for index, bound in enumerate(DURATION_BUCKETS):
            out.sample(
                "kaizen_job_duration_seconds_bucket", {**kind, "le": str(bound)}, row[f"le_{index}"]
            )
        out.sample("kaizen_job_duration_seconds_bucket", {**kind, "le": "+Inf"}, row["count"])
        total = row["total"]
        out.sample("kaizen_job_duration_seconds_sum", kind, total.total_seconds() if total else 0)
        out.sample("kaizen_job_duration_seconds_count", kind, row["count"])


@login_not_required
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.KAIZEN_METRICS_TOKEN
    if not token:
        return HttpResponse(
            "Kaizen's /metrics is off: set KAIZEN_METRICS_TOKEN.\n",
            status=404,
            content_type="text/plain",
        )
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        answer = HttpResponse("A bearer token is needed.\n", status=401, content_type="text/plain")
        answer["WWW-Authenticate"] = 'Bearer realm="kaizen-metrics"'
        return answer
    return HttpResponse(render(), content_type=CONTENT_TYPE)
