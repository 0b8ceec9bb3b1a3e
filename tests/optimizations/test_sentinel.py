"""The regression sentinel: armed when an initiative is done, reopens it on a real regression."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from departments.models import Membership
from optimizations.jobs import housekeeping, landing, sentinel
from optimizations.models import Finding, Initiative, Phase, Run, Schedule
from optimizations.work.actions import do_update_initiative
from portal.models import AuditEvent, Notification, UserPreference
from tests.optimizations.test_portfolio import HOURS_AGO, LOAD, benchmark_set


def finish(initiative, actor):
    do_update_initiative(actor, initiative, status=Initiative.DONE)
    initiative.phases.update(status=Phase.DONE)


@pytest.fixture
def guarded(initiative, manager):
    """A finished initiative whose last benchmark set ran at a steady 100 ms p95."""
    reference = benchmark_set(initiative.target, HOURS_AGO[48], 100, initiative=initiative)[0]
    finish(initiative, manager)
    return initiative, reference


def sentinel_run(schedule, level, runs=5, **options):
    """A landed sentinel run: a set of ``runs`` load tests around ``level`` ms p95."""
    run = Run.objects.create(
        target=schedule.target,
        mode="custom",
        schedule=schedule,
        initiative=schedule.initiative,
        trigger="schedule",
        status="succeeded",
        finished_at=timezone.now(),
    )
    benchmark_set(schedule.target, timezone.now(), level, runs, run=run, **options)
    return run


# --- arming -------------------------------------------------------------------------------


def test_marking_an_initiative_done_arms_a_weekly_sentinel_on_its_last_benchmark(
    login, manager, initiative
):
    older = benchmark_set(initiative.target, HOURS_AGO[72], 150, initiative=initiative)[0]
    stress = {**LOAD, "mode": "stress"}
    last = benchmark_set(initiative.target, HOURS_AGO[24], 100, initiative=initiative)[0]
    benchmark_set(initiative.target, HOURS_AGO[12], 900, 1, initiative=initiative, params=stress)
    data = {
        "title": initiative.title,
        "target": initiative.target.pk,
        "run_mode": "comprehensive",
        "owner": manager.pk,
        "status": "done",
        "start_date": initiative.start_date.isoformat(),
    }
    response = login(manager).post(reverse("initiative_edit", args=[initiative.pk]), data)
    assert response.status_code == 302
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    assert schedule.sentinel_reference_id == last.run_id != older.run_id  # the load test
    assert (schedule.target, schedule.initiative) == (initiative.target, initiative)
    assert (schedule.mode, schedule.focus, schedule.cron) == (
        "performance",
        ["fastapi"],
        "0 3 * * 1",
    )
    assert schedule.name == f"Regression sentinel: {initiative.title}"
    assert schedule.enabled and schedule.next_run_at > timezone.now()
    assert schedule.created_by == manager
    event = AuditEvent.objects.get(action="schedule.sentinel")
    assert f"run #{last.run_id}" in event.summary and event.initiative == initiative
    # The initiative page shows the event.
    page = login(manager).get(initiative.get_absolute_url()).content.decode()
    assert "regression sentinel" in page


def test_marking_it_done_again_rearms_the_same_schedule(guarded, manager):
    initiative, _ = guarded
    do_update_initiative(manager, initiative, status=Initiative.ACTIVE)
    newer = benchmark_set(initiative.target, HOURS_AGO[2], 90, initiative=initiative)[0]
    do_update_initiative(manager, initiative, status=Initiative.DONE)
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    assert schedule.sentinel_reference_id == newer.run_id
    assert AuditEvent.objects.filter(action="schedule.sentinel").count() == 2


def test_nothing_to_guard_without_a_benchmark_and_the_audit_says_why(initiative, manager):
    do_update_initiative(manager, initiative, status=Initiative.DONE)
    assert not Schedule.objects.filter(sentinel_reference__isnull=False).exists()
    event = AuditEvent.objects.get(action="schedule.sentinel")
    assert "no successful benchmark" in event.summary


def test_the_beat_starts_the_references_exact_configuration(guarded, monkeypatch, broker_up):
    initiative, reference = guarded
    sent = []
    monkeypatch.setattr("optimizations.jobs.landing.enqueue", lambda job: sent.append(job) or True)
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    Schedule.objects.filter(pk=schedule.pk).update(
        next_run_at=timezone.now() - datetime.timedelta(minutes=1)
    )
    # The reference ran for 30 s, not the benchmark's default: the re-run does too.
    assert reference.params["duration"] == 30.0
    assert housekeeping.start_due_schedules() == 1
    run = Run.objects.get(schedule=schedule)
    assert (run.initiative, run.trigger) == (initiative, "schedule")
    jobs = list(run.jobs.order_by("pk"))
    assert [job.kind for job in jobs] == ["benchmark"] * 5
    for job in jobs:
        assert {k: job.params[k] for k in LOAD} == LOAD
        assert job.expires_at is not None
    assert sentinel.set_of_run(run.pk) is None  # nothing measured yet


# --- checking -------------------------------------------------------------------------------


def test_a_clear_regression_reopens_the_initiative_with_a_finding_and_tells_managers(
    guarded, make_user
):
    initiative, reference = guarded
    make_user("dora", ("dev", Membership.MANAGER))  # the target's department
    make_user("quinn", ("qa", Membership.MANAGER))  # another department: not told
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    run = sentinel_run(schedule, 180)
    landing.run_landed(run)
    finding = Finding.objects.get(rule_id="benchmark.regression")
    assert (finding.source, finding.severity, finding.category, finding.status) == (
        "benchmark",
        "high",
        "performance",
        "open",
    )
    assert "p95 latency regressed ×1.80" in finding.title
    assert finding.evidence["reference_run"] == reference.run_id
    assert finding.evidence["run"] == run.pk
    assert finding.evidence["ratio"] == pytest.approx(1.8, abs=0.01)
    assert finding.evidence["p_value"] < 0.05 and finding.evidence["evidence"] == "measured"
    assert finding.evidence["reference"].startswith(f"Reference: run #{reference.run_id} (5 × load")
    initiative.refresh_from_db()
    assert initiative.status == Initiative.ACTIVE
    assert initiative.phases.get(number=4).status == Phase.ACTIVE
    assert initiative.phases.get(number=2).status == Phase.DONE
    assert AuditEvent.objects.filter(action="initiative.reopen", initiative=initiative).exists()
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert {"dora", initiative.owner.username} <= told and "quinn" not in told
    # Landing twice (or a next sentinel run) changes nothing more and tells nobody again.
    notes = Notification.objects.count()
    landing.run_landed(run)
    finding.refresh_from_db()
    assert finding.times_seen == 1 and Notification.objects.count() == notes
    next_run = sentinel_run(schedule, 181)
    sentinel.check_after_run(next_run)
    assert Finding.objects.filter(rule_id="benchmark.regression").count() == 1
    assert Finding.objects.get(rule_id="benchmark.regression").times_seen == 2
    assert Notification.objects.count() == notes


def test_the_same_finding_comes_back_when_a_fixed_regression_returns(guarded, manager):
    initiative, _ = guarded
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    sentinel.check_after_run(sentinel_run(schedule, 200))
    finding = Finding.objects.get(rule_id="benchmark.regression")
    Finding.objects.filter(pk=finding.pk).update(status="fixed", fixed_at=timezone.now())
    # Closed again by hand (not re-armed, so the reference stays the same).
    Initiative.objects.filter(pk=initiative.pk).update(status=Initiative.DONE)
    sentinel.check_after_run(sentinel_run(schedule, 210))
    finding.refresh_from_db()
    initiative.refresh_from_db()
    assert finding.status == "open" and initiative.status == Initiative.ACTIVE


@pytest.mark.parametrize("level", [100, 104, 60], ids=["no change", "within x1.10", "faster"])
def test_no_regression_changes_nothing_and_tells_nobody(guarded, level):
    initiative, _ = guarded
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    events = AuditEvent.objects.count()
    landing.run_landed(sentinel_run(schedule, level))
    initiative.refresh_from_db()
    assert initiative.status == Initiative.DONE
    assert not Finding.objects.exists()
    assert AuditEvent.objects.count() == events and not Notification.objects.exists()


def test_an_inconclusive_check_reaches_people_with_why(guarded, make_user):
    initiative, _ = guarded
    make_user("dora", ("dev", Membership.MANAGER))  # the target's department
    make_user("quinn", ("qa", Membership.MANAGER))
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    # Three runs (two failed): too few to decide either way.
    run = sentinel_run(schedule, 300, runs=3)
    landing.run_landed(run)
    sentinel.check_after_run(run)  # checked again: nobody is told twice
    initiative.refresh_from_db()
    assert initiative.status == Initiative.DONE and not Finding.objects.exists()
    notes = {n.user.username: n for n in Notification.objects.select_related("user")}
    assert set(notes) == {"dora", initiative.owner.username}
    note = notes["dora"]
    assert "could not decide" in note.subject
    assert "at least 5 runs per side (has 5 and 3)" in note.body
    assert "Reference: run #" in note.body


def test_other_runs_are_not_checked(guarded, target):
    initiative, _ = guarded
    plain = Run.objects.create(target=target, mode="performance", initiative=initiative)
    benchmark_set(target, timezone.now(), 500, run=plain)
    monthly = Schedule.objects.create(
        target=target,
        name="Monthly",
        mode="performance",
        cron="0 2 1 * *",
        initiative=initiative,
    )
    scheduled = Run.objects.create(target=target, mode="performance", schedule=monthly)
    benchmark_set(target, timezone.now(), 500, run=scheduled)
    for run in (plain, scheduled):
        sentinel.check_after_run(run)
    initiative.refresh_from_db()
    assert initiative.status == Initiative.DONE and not Finding.objects.exists()


def test_a_sentinel_run_without_a_comparable_benchmark_reopens_nothing_and_says_why(guarded):
    initiative, _ = guarded
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    # The set was given another rate: the comparability guard makes it inconclusive.
    sentinel.check_after_run(sentinel_run(schedule, 500, params={**LOAD, "rate": 200.0}))
    failed = Run.objects.create(
        target=schedule.target, mode="custom", schedule=schedule, status="failed"
    )
    sentinel.check_after_run(failed)
    initiative.refresh_from_db()
    assert initiative.status == Initiative.DONE and not Finding.objects.exists()
    bodies = [n.body for n in Notification.objects.filter(user=initiative.owner).order_by("pk")]
    assert len(bodies) == 2
    assert "rate differs between the sides: 20.0, 200.0" in bodies[0]
    assert f"run #{failed.pk} measured no load benchmark" in bodies[1]


def test_a_triaged_regression_does_not_reopen_the_initiative(guarded, manager):
    initiative, _ = guarded
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    sentinel.check_after_run(sentinel_run(schedule, 200))
    Finding.objects.update(status="accepted", status_reason="the new feature costs this")
    Initiative.objects.filter(pk=initiative.pk).update(status=Initiative.DONE)
    sentinel.check_after_run(sentinel_run(schedule, 200))
    initiative.refresh_from_db()
    assert initiative.status == Initiative.DONE


def test_a_japanese_reader_gets_the_sets_roles_in_japanese(guarded, make_user):
    initiative, reference = guarded
    dora = make_user("dora", ("dev", Membership.MANAGER))
    UserPreference.objects.update_or_create(user=dora, defaults={"language": "ja"})
    schedule = Schedule.objects.get(sentinel_reference__isnull=False)
    run = sentinel_run(schedule, 300, runs=3)
    landing.run_landed(run)
    body = Notification.objects.get(user=dora).body
    assert f"基準：実行 #{reference.run_id}（5 × load" in body
    assert f"、センチネルの基準 · 再実行：実行 #{run.pk}（3 × load" in body
    assert "のセンチネル実行" in body
    assert "Reference" not in body and "Re-run" not in body
    # The initiative's manager reads English: the same roles in English.
    english = Notification.objects.get(user=initiative.owner).body
    assert f"Reference: run #{reference.run_id} (5 × load" in english
    assert f"the sentinel's · Re-run: run #{run.pk} (3 × load" in english
    assert "sentinel run of " in english
