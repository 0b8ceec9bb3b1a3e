"""Cron expressions, due schedules starting runs, and stale scheduled jobs expiring."""

import datetime
import zoneinfo

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.jobs import cron, housekeeping
from optimizations.jobs.schedules import DEFAULT_SCHEDULES
from optimizations.models import Job, JobLog, Measurement, Run, Schedule
from optimizations.targets import slo
from portal.models import ServiceBeat

UTC = zoneinfo.ZoneInfo("UTC")


def at(*args):
    return datetime.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 2 1 * *", at(2026, 11, 26, 21, 0), at(2026, 12, 1, 2, 0)),
        ("0 3 1 1,4,7,10 *", at(2026, 11, 26), at(2027, 1, 1, 3, 0)),
        ("*/15 * * * *", at(2026, 1, 1, 10, 7), at(2026, 1, 1, 10, 15)),
        ("30 9 * * 1-5", at(2026, 11, 27, 10, 0), at(2026, 11, 30, 9, 30)),  # Fri → Mon
        ("0 0 29 2 *", at(2026, 3, 1), at(2028, 2, 29, 0, 0)),
        ("0 12 * * 7", at(2026, 11, 26), at(2026, 11, 29, 12, 0)),  # 7 is Sunday
        ("0 2 1 * *", at(2026, 12, 1, 2, 0), at(2027, 1, 1, 2, 0)),  # strictly after
    ],
)
def test_next_after(expression, after, expected):
    assert cron.next_after(expression, after) == expected


@pytest.mark.parametrize(
    "expression", ["", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a * * * *"]
)
def test_bad_expressions_are_refused_with_a_reason(expression):
    with pytest.raises(ValueError):
        cron.parse(expression)


def test_every_registered_target_gets_the_recurring_reviews(login, dev_engineer, departments):
    client = login(dev_engineer)
    client.post(
        reverse("target_create"),
        {
            "name": "Billing API",
            "base_url": "http://127.0.0.1:9100",
            "owner_department": departments["dev"].pk,
            "environment": "staging",
            "health_path": "/health",
            "openapi_path": "/openapi.json",
            "metrics_path": "/metrics",
            "max_rate": 500,
            "max_duration": 300,
            **{f"slo_{key}": value for key, value in _slo_defaults().items()},
        },
    )
    names = sorted(
        Schedule.objects.filter(target__slug="billing-api").values_list("name", flat=True)
    )
    assert names == sorted(name for name, *_ in DEFAULT_SCHEDULES)
    assert all(s.next_run_at > timezone.now() for s in Schedule.objects.all())


def _slo_defaults():
    return slo.defaults()


def test_a_due_schedule_starts_its_run_once_and_moves_to_its_next_turn(
    target, manager, monkeypatch, broker_up
):
    sent = []
    monkeypatch.setattr(
        "optimizations.jobs.landing.enqueue", lambda job: sent.append(job.pk) or True
    )
    schedule = Schedule.objects.create(
        target=target,
        name="Monthly",
        mode="performance",
        cron="0 2 1 * *",
        created_by=manager,
        next_run_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    assert housekeeping.start_due_schedules() == 1
    assert housekeeping.start_due_schedules() == 0  # the turn was claimed
    run = Run.objects.get()
    assert (run.trigger, run.schedule, run.mode) == ("schedule", schedule, "performance")
    schedule.refresh_from_db()
    assert schedule.next_run_at > timezone.now()
    # Its jobs expire if they have not started by the schedule's next turn.
    assert all(job.expires_at == schedule.next_run_at for job in run.jobs.all())


def test_a_scheduled_job_that_could_not_start_in_time_expires(target):
    run = Run.objects.create(target=target, mode="performance", trigger="schedule")
    stale = Job.objects.create(
        run=run,
        kind="probe",
        target=target,
        expires_at=timezone.now() - datetime.timedelta(seconds=1),
    )
    fresh = Job.objects.create(
        run=run, kind="probe", target=target, expires_at=timezone.now() + datetime.timedelta(days=1)
    )
    housekeeping.tick()
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == Job.EXPIRED and fresh.status == Job.QUEUED


def test_beat_leaves_its_tick_for_the_status_page(target):
    housekeeping.tick()
    assert ServiceBeat.objects.get(name="beat").at <= timezone.now()


def test_only_managers_edit_schedules(login, target, manager, qa_engineer):
    schedule = Schedule.objects.create(
        target=target, name="Monthly", mode="performance", cron="0 2 1 * *"
    )
    data = {"name": "Weekly", "mode": "performance", "cron": "0 2 * * 1", "enabled": "on"}
    assert (
        login(qa_engineer).post(reverse("schedule_edit", args=[schedule.pk]), data).status_code
        == 403
    )
    assert (
        login(manager).post(reverse("schedule_edit", args=[schedule.pk]), data).status_code == 302
    )
    schedule.refresh_from_db()
    assert (schedule.name, schedule.cron) == ("Weekly", "0 2 * * 1")


def test_a_schedule_with_a_bad_cron_is_refused_readably(login, target, manager):
    response = login(manager).post(
        reverse("schedule_create", args=[target.slug]),
        {"name": "Broken", "mode": "performance", "cron": "61 * * * *"},
    )
    assert response.status_code == 200
    assert "outside 0–59" in response.content.decode()
    assert not Schedule.objects.filter(name="Broken").exists()


def test_purge_removes_old_logs_and_samples_but_keeps_summaries(target, settings):
    settings.KAIZEN_RETENTION_DAYS = 30
    old = timezone.now() - datetime.timedelta(days=40)
    run = Run.objects.create(target=target, mode="performance")
    job = Job.objects.create(
        run=run, kind="benchmark", target=target, status=Job.SUCCEEDED, finished_at=old
    )
    JobLog.objects.create(job=job, seq=1, at=old, message="old line")
    Measurement.objects.create(
        target=target,
        job=job,
        name="sample.achieved",
        value=1,
        unit="req/s",
        second=3,
        measured_at=old,
    )
    Measurement.objects.create(
        target=target, job=job, name="http.latency.p95", value=9, unit="ms", measured_at=old
    )
    assert housekeeping.purge() == {"logs": 1, "samples": 1, "traces": 0, "workers": 0}
    assert Measurement.objects.filter(name="http.latency.p95").exists()


def test_purge_keeps_the_samples_of_baselines_and_sentinel_references(target, settings):
    settings.KAIZEN_RETENTION_DAYS = 30
    old = timezone.now() - datetime.timedelta(days=40)
    runs = [Run.objects.create(target=target, mode="performance") for _ in range(3)]
    for run in runs:
        job = Job.objects.create(
            run=run, kind="benchmark", target=target, status=Job.SUCCEEDED, finished_at=old
        )
        Measurement.objects.create(
            target=target,
            run=run,
            job=job,
            name="sample.p95_ms",
            value=1,
            unit="ms",
            second=1,
            measured_at=old,
        )
    baseline, reference, _ordinary = runs
    target.baseline_run = baseline
    target.save()
    Schedule.objects.create(
        target=target,
        name="Sentinel",
        mode="performance",
        cron="0 3 * * 1",
        sentinel_reference=reference,
    )
    assert housekeeping.purge()["samples"] == 1
    assert set(Measurement.objects.values_list("run_id", flat=True)) == {baseline.pk, reference.pk}
