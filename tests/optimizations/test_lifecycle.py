"""A job's life from start to end: the run's fixed order, the per-target lease, the
"waiting" status, and the sweeper that leaves no job in a non-final state forever."""

from __future__ import annotations

import datetime

import pytest
from django.db.models import F
from django.utils import timezone

from optimizations.jobs import engine, housekeeping, kinds, landing, lease, modes, runner
from optimizations.models import Job, Run, TargetLease, TargetService

pytestmark = pytest.mark.usefixtures("broker_up")


@pytest.fixture
def sent(monkeypatch):
    """The jobs sent to a queue, in order (no broker in these tests)."""
    jobs = []

    def enqueue(job):
        jobs.append(job.pk)
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now(), sends=F("sends") + 1)
        return True

    monkeypatch.setattr(landing, "enqueue", enqueue)
    return jobs


@pytest.fixture
def start(qa_engineer, django_capture_on_commit_callbacks):
    """Start a run or a single job with its after-commit dispatch carried out."""

    def go(target, mode="quality", focus=(), kind=None, params=None):
        with django_capture_on_commit_callbacks(execute=True):
            if kind:
                return engine.start_job(qa_engineer, target, kind, params or {})
            return engine.start_run(qa_engineer, target, mode, list(focus))

    return go


@pytest.fixture
def end(django_capture_on_commit_callbacks):
    """A worker ends ``job`` (claims it if needed) the way runner.execute does (landing.finish)."""

    def go(job, how="succeed"):
        job.refresh_from_db()
        if job.status == Job.QUEUED:
            assert job.claim("test-worker")
        if how == "succeed":
            assert job.succeed({}, "pass")
        else:
            assert job.fail("it broke")
        with django_capture_on_commit_callbacks(execute=True):
            landing.finish(job)

    return go


def status(job) -> str:
    return Job.objects.get(pk=job.pk).status


def label(job) -> str:
    return Job.objects.select_related("waiting_for").get(pk=job.pk).waiting_text()


# --- the fixed order ------------------------------------------------------------------


def test_a_comprehensive_run_goes_probe_code_db_security_load_stress_endurance():
    planned = modes.plan("comprehensive")
    names = [
        f"{job.kind}:{job.params['mode']}" if job.kind == "benchmark" else job.kind
        for job in planned
    ]
    assert names == [
        "probe",
        "code_scan",
        "db_scan",
        "security_scan",
        "benchmark:load",
        "benchmark:stress",
        "benchmark:endurance",
    ]


def test_a_run_sends_one_job_at_a_time_in_the_fixed_order(target, start, end, sent):
    run = start(target, "quality")  # probe, security, load, stress, endurance (+ code scan skipped)
    jobs = list(run.jobs.order_by("pk"))
    assert [job.label() for job in jobs] == [
        "probe",
        "security scan",
        "load test",
        "stress test",
        "endurance test",
    ]
    assert sent == [jobs[0].pk]
    assert label(jobs[1]) == f"Waiting for probe #{jobs[0].pk}, the run's previous job"
    for number, job in enumerate(jobs):
        # Whatever the outcome of a job, the next one goes after it, and only it.
        end(job, "fail" if number == 0 else "succeed")
        assert sent == [j.pk for j in jobs[: number + 2]]
    assert Run.objects.get(pk=run.pk).is_finished()


def test_a_rerun_keeps_the_fixed_order_whatever_order_it_was_given(target, qa_engineer, sent):
    specs = [("benchmark", {"mode": "endurance"}), ("probe", {}), ("benchmark", {"mode": "load"})]
    run = engine._create_run(qa_engineer, target, "quality", [], specs)
    assert [job.label() for job in run.jobs.order_by("pk")] == [
        "probe",
        "load test",
        "endurance test",
    ]


# --- the per-target lease -------------------------------------------------------------


def test_load_on_one_target_never_overlaps_across_runs(target, start, end, sent):
    first = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    second = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    assert sent == [first.pk]
    assert status(second) == Job.WAITING
    assert label(second) == f"Waiting for stress test #{first.pk} on this target"

    # Probes run freely beside it.
    probe = start(target, kind="probe").jobs.get()
    assert sent == [first.pk, probe.pk]

    end(first)
    assert sent == [first.pk, probe.pk, second.pk]
    assert status(second) == Job.QUEUED
    assert TargetLease.objects.get(target=target).holder_id == second.pk


def test_another_target_is_not_held_up(target, departments, start, sent):
    other = TargetService.objects.create(
        name="Billing",
        slug="billing",
        base_url="http://127.0.0.1:8101",
        owner_department=departments["dev"],
    )
    one = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    two = start(other, kind="security_scan").jobs.get()
    assert sent == [one.pk, two.pk]


def test_the_lease_passes_on_however_the_holder_ends(
    target, start, end, sent, qa_engineer, django_capture_on_commit_callbacks
):
    holder = start(target, kind="security_scan").jobs.get()
    waiting = [start(target, kind="benchmark", params={"mode": "load"}).jobs.get() for _ in "ab"]
    assert label(waiting[1]) == f"Waiting for security scan #{holder.pk} on this target"

    # Cancelled while still queued: the next job gets the target, in the order they came.
    with django_capture_on_commit_callbacks(execute=True):
        assert engine.cancel(qa_engineer, holder) == Job.CANCELLED
    assert sent == [holder.pk, waiting[0].pk]
    assert status(waiting[1]) == Job.WAITING
    assert label(waiting[1]) == f"Waiting for load test #{waiting[0].pk} on this target"

    # Failed.
    end(waiting[0], "fail")
    assert sent == [holder.pk, waiting[0].pk, waiting[1].pk]
    end(waiting[1])
    assert TargetLease.objects.get(target=target).holder_id is None


def test_a_cancelled_waiting_job_never_takes_the_target(target, start, end, sent, qa_engineer):
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    waiting = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    assert engine.cancel(qa_engineer, waiting) == Job.CANCELLED
    end(holder)
    assert sent == [holder.pk]
    assert TargetLease.objects.get(target=target).holder_id is None


def test_only_one_of_two_jobs_racing_for_the_lease_wins(target):
    run = Run.objects.create(target=target, mode="custom")
    one, two = (
        Job.objects.create(run=run, kind="benchmark", target=target, status=Job.WAITING)
        for _ in range(2)
    )
    assert lease.acquire(one) is None
    assert lease.acquire(two) == one
    assert lease.acquire(one) is None  # asking again is harmless
    assert not lease.give_back(two)  # only the holder gives it back
    assert lease.give_back(one)
    assert lease.acquire(two) is None


def test_a_holder_that_ended_without_giving_the_lease_back_is_replaced(target):
    run = Run.objects.create(target=target, mode="custom")
    dead = Job.objects.create(run=run, kind="benchmark", target=target, status=Job.WAITING)
    assert lease.acquire(dead) is None
    Job.objects.filter(pk=dead.pk).update(status=Job.FAILED)  # its process died right then
    nxt = Job.objects.create(run=run, kind="benchmark", target=target, status=Job.WAITING)
    assert lease.acquire(nxt) is None
    assert TargetLease.objects.get(target=target).holder_id == nxt.pk


def test_an_interleaved_comparison_alternates_one_job_at_a_time(
    target, departments, qa_engineer, sent, django_capture_on_commit_callbacks, end
):
    fixed = TargetService.objects.create(
        name="Orders API (fixed)",
        slug="orders-fixed",
        base_url="http://127.0.0.1:8102",
        owner_department=departments["dev"],
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = engine.start_comparison(qa_engineer, target, fixed, {"duration": 5.0})
    jobs = list(run.jobs.order_by("pk"))
    assert [job.target_id for job in jobs[:4]] == [target.pk, fixed.pk, target.pk, fixed.pk]
    assert sent == [jobs[0].pk]
    end(jobs[0])
    end(jobs[1])
    assert sent == [jobs[0].pk, jobs[1].pk, jobs[2].pk]


def test_a_scheduled_job_still_waiting_at_its_next_turn_expires(target, start, sent):
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    waiting = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    Job.objects.filter(pk=waiting.pk).update(expires_at=timezone.now())
    assert engine.expire_overdue(timezone.now() + datetime.timedelta(seconds=1)) == 1
    assert status(waiting) == Job.EXPIRED
    assert status(holder) == Job.QUEUED


# --- the sweeper ----------------------------------------------------------------------


def later(seconds: float):
    return timezone.now() + datetime.timedelta(seconds=seconds)


def test_a_queued_job_whose_message_was_lost_is_sent_again(target, start, sent, settings):
    settings.KAIZEN_RESEND_AFTER = 60
    job = start(target, kind="probe").jobs.get()
    assert sent == [job.pk]
    assert housekeeping.resend_lost_messages(later(30)) == 0  # a worker may yet take it
    assert housekeeping.resend_lost_messages(later(61)) == 1
    assert sent == [job.pk, job.pk]
    # It waits twice as long after each send…
    assert housekeeping.resend_lost_messages(later(100)) == 0
    assert housekeeping.resend_lost_messages(later(125)) == 1
    assert sent == [job.pk] * 3
    # …and a claim of either message ends the re-sending: the duplicate backs off.
    job.refresh_from_db()
    assert job.claim("w") and not Job.objects.get(pk=job.pk).claim("w2")
    assert housekeeping.resend_lost_messages(later(3600)) == 0


def test_a_queued_job_behind_a_running_one_of_its_queue_is_not_resent(
    target, start, sent, settings
):
    settings.KAIZEN_RESEND_AFTER = 60
    running = start(target, kind="probe").jobs.get()
    running.claim("w")
    queued = start(target, kind="probe").jobs.get()
    assert housekeeping.resend_lost_messages(later(600)) == 0
    assert sent == [running.pk, queued.pk]


def test_the_sweeper_leaves_waiting_jobs_alone_while_what_they_wait_for_runs(
    target, start, sent, settings
):
    settings.KAIZEN_RESEND_AFTER = 10
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    holder.claim("w")
    waiting = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    assert housekeeping.sweep(later(3600)) == {"cancelled": 0, "resent": 0, "woken": 0}
    assert status(waiting) == Job.WAITING
    assert sent == [holder.pk]


def test_a_waiting_job_whose_holder_ended_unannounced_is_woken(
    target, start, sent, django_capture_on_commit_callbacks
):
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    waiting = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    # The holder's worker ended it and died before dispatching anyone.
    Job.objects.filter(pk=holder.pk).update(status=Job.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        assert housekeeping.sweep()["woken"] == 1
    assert sent == [holder.pk, waiting.pk]
    assert TargetLease.objects.get(target=target).holder_id == waiting.pk


def test_a_job_cancelled_after_its_worker_died_ends_cancelled(target, start, settings):
    settings.KAIZEN_LOST_AFTER = 60
    job = start(target, kind="probe").jobs.get()
    Job.objects.filter(pk=job.pk).update(max_attempts=2)
    job.refresh_from_db()
    job.claim("w")
    assert job.request_cancel() == Job.RUNNING  # the worker is asked; it is already dead
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - datetime.timedelta(hours=1))
    assert housekeeping.reap_lost_jobs() == 1
    job.refresh_from_db()
    # Not re-queued (no worker would claim a job asked to stop): cancelled.
    assert job.status == Job.CANCELLED
    assert job.run.is_finished() or Run.objects.get(pk=job.run_id).is_finished()


def test_a_queued_job_asked_to_stop_is_finalised_by_the_sweeper_and_by_a_worker(
    target, start, sent
):
    # Left over from before this sweeper: re-queued by the reaper with the cancel flag set.
    one = start(target, kind="probe").jobs.get()
    two = start(target, kind="probe").jobs.get()
    Job.objects.filter(pk__in=[one.pk, two.pk]).update(cancel_requested=True)
    assert housekeeping.end_abandoned_cancels() == 2
    assert status(one) == status(two) == Job.CANCELLED
    three = start(target, kind="probe").jobs.get()
    Job.objects.filter(pk=three.pk).update(cancel_requested=True)
    assert runner.execute(three.pk, "w") == "cancelled"
    assert status(three) == Job.CANCELLED


# --- what people see ------------------------------------------------------------------


def test_the_job_run_and_history_pages_say_what_a_job_waits_for(
    target, start, sent, login, qa_engineer
):
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    run = start(target, "quality", ["testing"])
    load, stress, _ = run.jobs.filter(kind="benchmark").order_by("pk")
    end_probe = run.jobs.get(kind="probe")
    end_probe.claim("w")
    end_probe.succeed({}, "pass")
    landing.release_followers(end_probe)
    client = login(qa_engineer)

    page = client.get(load.get_absolute_url()).content.decode()
    assert f"Waiting for load test #{holder.pk} on this target" in page
    assert "Cancel" in page  # a waiting job can be cancelled
    assert f"Waiting for load test #{load.pk}, the run&#x27;s previous job" in (
        client.get(stress.get_absolute_url()).content.decode()
    )
    assert f"Waiting for load test #{holder.pk} on this target" in (
        client.get(run.get_absolute_url()).content.decode()
    )
    assert f"Waiting for load test #{holder.pk} on this target" in (
        client.get("/jobs/").content.decode()
    )


# --- the health check and cool-down in the worker ------------------------------------


@pytest.fixture
def fake_load_kind(monkeypatch):
    """A kind that "loads" the target: the fake analyzer, under the lease."""
    kind = kinds.Kind(
        "fake",
        "Fake load",
        "tests.optimizations.fake_analyzer",
        "benchmark",
        "benchmark",
        ("base_url",),
        "A load the tests steer.",
    )
    monkeypatch.setitem(kinds.KINDS, "fake", kind)
    monkeypatch.setattr(lease, "LOAD_KINDS", lease.LOAD_KINDS | {"fake"})
    return kind


def leased_job(target, **params) -> Job:
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="fake", target=target, params=params)
    assert lease.acquire(job) is None
    return job


@pytest.mark.django_db(transaction=True)
def test_a_leased_job_starts_after_the_health_check_and_notes_its_latency(
    target, fake_load_kind, health_server
):
    server = health_server([(200, 0.0)])
    target.base_url = server.spec.base_url
    target.save()
    job = leased_job(target)
    assert runner.execute(job.pk, "w") == "succeeded"
    held = TargetLease.objects.get(target=target)
    assert held.holder_id is None and held.last_job_id == job.pk
    assert held.health_ms is not None and held.health_ms > 0
    assert Job.objects.get(pk=job.pk).logs.filter(message__startswith="Target ready").exists()
    assert server.calls == 3


@pytest.mark.django_db(transaction=True)
def test_a_target_that_stays_unhealthy_fails_the_job_saying_so_and_frees_the_target(
    target, fake_load_kind, health_server, settings
):
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 0  # one round of health checks, no waiting
    server = health_server([(503, 0.0)])
    target.base_url = server.spec.base_url
    target.save()
    earlier = leased_job(target)
    lease.give_back(earlier)
    job = leased_job(target)
    assert runner.execute(job.pk, "w") == "failed"
    job.refresh_from_db()
    assert job.error.startswith(f"The target stayed unhealthy after fake #{earlier.pk}")
    assert "503" in job.error and "GET /health" in job.error
    assert TargetLease.objects.get(target=target).holder_id is None


# --- races, with a connection per thread (as with many workers) ---------------------


def race(count, action):
    """Run ``action(i)`` in ``count`` threads released at once; their results in order."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def go(i):
        try:
            barrier.wait(10)
            results[i] = action(i)
        except Exception as error:  # reported below, with the thread's number
            errors.append((i, error))
        finally:
            connection.close()

    threads = [threading.Thread(target=go, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True)
def test_of_many_jobs_racing_for_a_target_exactly_one_gets_it(target):
    run = Run.objects.create(target=target, mode="custom")
    jobs = [
        Job.objects.create(run=run, kind="benchmark", target=target, status=Job.WAITING)
        for _ in range(6)
    ]
    results = race(len(jobs), lambda i: lease.acquire(jobs[i]))
    winners = [job.pk for job, holder in zip(jobs, results, strict=True) if holder is None]
    assert len(winners) == 1
    assert TargetLease.objects.get(target=target).holder_id == winners[0]
    assert {holder.pk for holder in results if holder is not None} == set(winners)


@pytest.mark.django_db(transaction=True)
def test_a_job_dispatched_by_several_processes_at_once_is_sent_once(target, sent):
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="benchmark", target=target, status=Job.WAITING)
    results = race(4, lambda i: landing.dispatch(Job.objects.get(pk=job.pk)))
    assert sent == [job.pk]
    assert sorted(results) == [Job.QUEUED] * 4
    # None of the later ones took the target from it.
    assert TargetLease.objects.get(target=target).holder_id == job.pk


@pytest.mark.django_db(transaction=True)
def test_after_a_job_found_the_target_down_the_next_does_not_wait_as_long_again(
    target, fake_load_kind, health_server, settings
):
    settings.KAIZEN_COOLDOWN_MAX_SECONDS = 3600  # were it waited for, the test would hang
    server = health_server([(503, 0.0)])
    target.base_url = server.spec.base_url
    target.save()
    before = leased_job(target)
    Job.objects.filter(pk=before.pk).update(
        status=Job.FAILED, error="The target stayed unhealthy: GET /health did not answer"
    )
    lease.give_back(before)
    job = leased_job(target)
    assert runner.execute(job.pk, "w") == "failed"
    job.refresh_from_db()
    assert job.error.startswith("The target stayed unhealthy after fake #")
    assert job.error.endswith("found it unhealthy a moment ago, so it was not waited for again.")


def test_a_load_job_requeued_after_its_worker_died_keeps_the_target(
    target, start, sent, settings, django_capture_on_commit_callbacks
):
    holder = start(target, kind="benchmark", params={"mode": "load"}).jobs.get()
    waiting = start(target, kind="benchmark", params={"mode": "stress"}).jobs.get()
    Job.objects.filter(pk=holder.pk).update(max_attempts=2)
    holder.refresh_from_db()
    holder.claim("w")
    Job.objects.filter(pk=holder.pk).update(heartbeat_at=later(-3600))
    with django_capture_on_commit_callbacks(execute=True):
        assert housekeeping.reap_lost_jobs() == 1
    assert status(holder) == Job.QUEUED and sent == [holder.pk, holder.pk]
    assert TargetLease.objects.get(target=target).holder_id == holder.pk
    assert status(waiting) == Job.WAITING
