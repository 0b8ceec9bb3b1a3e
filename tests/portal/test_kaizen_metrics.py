"""Kaizen's own /metrics: off without a token, refused without the right one, and the
jobs' figures in the Prometheus text format (parsed by the probe's parser)."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from optimizations.analyzers.probe import parse_prometheus
from optimizations.models import Job, Run
from portal import metrics
from portal.models import ServiceBeat, WorkerBeat

TOKEN = "s3cret-metrics-token"


@pytest.fixture
def token(settings):
    settings.KAIZEN_METRICS_TOKEN = TOKEN


def test_off_without_a_token(db, settings):
    settings.KAIZEN_METRICS_TOKEN = ""

    answer = Client().get(reverse("kaizen_metrics"))

    assert answer.status_code == 404
    assert b"KAIZEN_METRICS_TOKEN" in answer.content


@pytest.mark.parametrize("header", ["", "Bearer wrong", f"Basic {TOKEN}"])
def test_refused_without_the_token(db, token, header):
    answer = Client().get(reverse("kaizen_metrics"), HTTP_AUTHORIZATION=header)

    assert answer.status_code == 401
    assert answer["WWW-Authenticate"].startswith("Bearer")


def test_jobs_queues_durations_and_heartbeats(db, token, target, monkeypatch):
    monkeypatch.setattr(metrics, "queue_lengths", lambda: {"analysis": 3, "benchmark": None})
    now = timezone.now()
    run = Run.objects.create(target=target, mode="performance")
    for seconds, status in ((4, Job.SUCCEEDED), (400, Job.SUCCEEDED), (20, Job.FAILED)):
        Job.objects.create(
            run=run,
            target=target,
            kind="benchmark",
            status=status,
            started_at=now - datetime.timedelta(seconds=seconds + 10),
            finished_at=now - datetime.timedelta(seconds=10),
        )
    Job.objects.create(
        run=run,
        target=target,
        kind="dbscan",
        status=Job.RUNNING,
        started_at=now,
        heartbeat_at=now - datetime.timedelta(seconds=30),
    )
    Job.objects.create(run=run, target=target, kind="probe", status=Job.QUEUED)
    ServiceBeat.objects.create(name="beat", at=now - datetime.timedelta(seconds=5))
    for name, queues, ago, stopped in (
        ("analysis@a", ["analysis"], 2, None),
        ("benchmark@b", ["benchmark"], 3600, None),  # killed an hour ago: silent
        ("maintenance@c", ["maintenance"], 60, now),
    ):
        WorkerBeat.objects.create(
            name=name,
            queues=queues,
            started_at=now - datetime.timedelta(hours=2),
            at=now - datetime.timedelta(seconds=ago),
            stopped_at=stopped,
        )

    answer = Client().get(reverse("kaizen_metrics"), HTTP_AUTHORIZATION=f"Bearer {TOKEN}")

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/plain; version=0.0.4")
    parsed = parse_prometheus(answer.content.decode())
    text = answer.content.decode()
    assert 'kaizen_jobs{state="succeeded"} 2' in text
    assert 'kaizen_jobs{state="running"} 1' in text
    assert 'kaizen_jobs_active{kind="probe",state="queued"} 1' in text
    assert 'kaizen_queue_depth{queue="analysis"} 3' in text
    assert 'kaizen_queue_depth{queue="benchmark"}' not in text  # unknown is left out, not 0
    assert 'kaizen_job_duration_seconds_bucket{kind="benchmark",le="5"} 1' in text
    assert 'kaizen_job_duration_seconds_bucket{kind="benchmark",le="60"} 2' in text
    assert 'kaizen_job_duration_seconds_bucket{kind="benchmark",le="+Inf"} 3' in text
    assert 'kaizen_job_duration_seconds_sum{kind="benchmark"} 424' in text
    age = next(
        value
        for name, labels, value in _samples(parsed)
        if name == "kaizen_running_job_heartbeat_age_seconds"
    )
    assert 30 <= age < 3600
    assert 'kaizen_heartbeat_age_seconds{service="beat"}' in text
    ages = {
        labels["worker"]: value
        for name, labels, value in _samples(parsed)
        if name == "kaizen_worker_heartbeat_age_seconds"
    }
    assert set(ages) == {"analysis@a", "benchmark@b"}  # a stopped worker is not late
    assert ages["benchmark@b"] >= 3600 > ages["analysis@a"]
    assert 'kaizen_workers_alive{queue="analysis"} 1' in text
    assert 'kaizen_workers_alive{queue="benchmark"} 0' in text
    assert 'kaizen_workers_alive{queue="maintenance"} 0' in text


def _samples(parsed):
    for name, series in parsed.items():
        for labels, value in series:
            yield name, labels, value
