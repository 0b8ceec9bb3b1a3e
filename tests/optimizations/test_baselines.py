"""One baseline and one latest (optimizations.jobs.baselines), benchmark sets, and notify.route."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from departments.models import Membership
from optimizations.jobs import baselines, engine, landing
from optimizations.models import Job, Measurement, Run, TargetService
from optimizations.models.leases import TargetLease
from portal.models import AuditEvent, Notification
from portal.notify import recipients, route
from tests.conftest import PERSONAS

T0 = timezone.now() - datetime.timedelta(days=3)
LOAD = {"mode": "load", "rate": 20.0, "duration": 10.0, "connections": 10, "seed": 1}


def load_set(target, started, p95s, *, params=None, run=None, **run_fields):
    run = run or Run.objects.create(target=target, mode="custom", **run_fields)
    for n, p95 in enumerate(p95s):
        Job.objects.create(
            run=run,
            kind="benchmark",
            target=target,
            status=Job.SUCCEEDED,
            started_at=started + datetime.timedelta(minutes=n),
            finished_at=started + datetime.timedelta(minutes=n, seconds=10),
            params=params or LOAD,
            summary={
                "mode": (params or LOAD)["mode"],
                "engine_version": "1",
                "rps": 20.0,
                "error_rate": 0.0,
                "latency_ms": {"med": p95 / 2, "p95": p95, "p99": p95},
            },
        )
    return run


@pytest.fixture
def twin(departments):
    return TargetService.objects.create(
        name="Orders API (fixed)",
        slug="orders-fixed",
        base_url="http://127.0.0.1:8101",
        owner_department=departments["dev"],
    )


def test_the_baseline_is_the_first_set_and_the_latest_the_newest_comparable(target):
    first = load_set(target, T0, [100.0] * 5)
    load_set(target, T0 + datetime.timedelta(hours=1), [90.0] * 5)
    other_rate = load_set(
        target, T0 + datetime.timedelta(hours=3), [50.0] * 5, params={**LOAD, "rate": 40.0}
    )
    newest = load_set(
        target, T0 + datetime.timedelta(hours=2), [80.0] * 5, params={**LOAD, "seed": 7}
    )  # the seed may differ
    base, latest, sets = baselines.baseline_and_latest(target)
    assert base.run_id == first.pk and base.role == "Baseline"
    assert latest.run_id == newest.pk != other_rate.pk
    assert latest.describe() == (
        f"Latest: run #{newest.pk} (5 × load, 20 req/s, 10 s), "
        f"the newest set comparable to run #{first.pk}"
    )
    assert len(sets) == 4
    assert baselines.latest(target, base).run_id == newest.pk
    assert baselines.baseline(target).describe() == base.describe()


@pytest.mark.parametrize(
    ("key", "value"),
    [("rate", 40.0), ("duration", 30.0), ("connections", 50), ("exclude", ["GET /x"])],
)
def test_each_comparability_key_keeps_a_set_from_being_the_latest(target, key, value):
    load_set(target, T0, [100.0] * 5)
    load_set(target, T0 + datetime.timedelta(hours=1), [80.0] * 5, params={**LOAD, key: value})
    base, latest, sets = baselines.baseline_and_latest(target)
    assert latest is None
    differs = "scenario" if key == "exclude" else key
    assert f"differs in {differs}" in baselines.why_no_latest_in(base, sets)


def test_another_engine_version_is_not_comparable(target):
    load_set(target, T0, [100.0] * 5)
    later = load_set(target, T0 + datetime.timedelta(hours=1), [80.0] * 5)
    Job.objects.filter(run=later).update(summary={"mode": "load", "engine_version": "2"})
    assert baselines.baseline_and_latest(target)[1] is None


def test_a_pin_wins_and_interleaved_comparisons_are_never_baseline_or_latest(target, twin):
    load_set(target, T0, [100.0] * 5)
    pinned = load_set(target, T0 + datetime.timedelta(hours=1), [120.0] * 5)
    target.baseline_run = pinned
    target.save()
    latest = load_set(target, T0 + datetime.timedelta(hours=2), [60.0] * 5)
    compared = Run.objects.create(target=target, mode="custom", compared_with=twin)
    load_set(target, T0 + datetime.timedelta(hours=3), [900.0] * 5, run=compared)
    load_set(twin, T0 + datetime.timedelta(hours=3, seconds=30), [800.0] * 5, run=compared)
    base, found, _ = baselines.baseline_and_latest(target)
    assert base.run_id == pinned.pk and base.pinned and base.describe().endswith(", pinned")
    assert found.run_id == latest.pk
    run, a, b = baselines.latest_interleaved(target)
    assert run == compared and len(a) == len(b) == 5
    assert {j.target_id for j in a} == {target.pk} and {j.target_id for j in b} == {twin.pk}
    assert baselines.latest_interleaved(twin) is None


def test_a_set_compares_one_value_per_run(target):
    base = load_set(target, T0, [100.0, 101.0, 102.0, 103.0, 104.0])
    after = load_set(target, T0 + datetime.timedelta(hours=1), [50.0, 51.0, 52.0, 53.0, 54.0])
    before_set, latest, _ = baselines.baseline_and_latest(target)
    result = baselines.compare_sets(before_set, latest)
    p95 = result.get("latency_p95")
    assert (p95.n_baseline, p95.n_candidate) == (5, 5)
    assert p95.verdict == "improved" and p95.evidence == "measured"
    assert result.evidence == "measured" and result.headline is p95
    assert [m.key for m in result.metrics] == [key for key, *_ in baselines.METRICS]
    assert (base.pk, after.pk) == (before_set.run_id, latest.run_id)


def test_a_targets_baseline_set_and_latest_in_bulk_match_one_by_one(target, twin):
    load_set(target, T0, [100.0] * 5)
    load_set(target, T0 + datetime.timedelta(hours=1), [50.0] * 5)
    load_set(twin, T0, [10.0] * 5)
    bulk = baselines.for_targets([target, twin])
    for t in (target, twin):
        base, latest, _ = baselines.baseline_and_latest(t)
        got_base, got_latest, _ = bulk[t.pk]
        assert got_base.describe() == base.describe()
        assert (got_latest and got_latest.run_id) == (latest and latest.run_id)


def test_the_memory_baseline_follows_the_same_rule(target):
    endurance = {**LOAD, "mode": "endurance"}
    first = load_set(target, T0, [100.0], params=endurance)
    second = load_set(target, T0 + datetime.timedelta(hours=1), [100.0], params=endurance)
    for run, value in ((first, 300e6), (second, 200e6)):
        Measurement.objects.create(
            target=target,
            run=run,
            job=run.jobs.get(),
            name="memory.pss.mean",
            value=value,
            unit="B",
            measured_at=timezone.now(),
        )
    assert baselines.baseline_measurement(target, "endurance", "memory.pss.mean")["value"] == 300e6
    target.baseline_run = second
    target.save()
    assert baselines.baseline_measurement(target, "endurance", "memory.pss.mean")["value"] == 200e6


# --- starting a set -------------------------------------------------------------------------


@pytest.fixture
def sent(monkeypatch, broker_up):
    queued = []
    monkeypatch.setattr(landing, "enqueue", lambda job: queued.append(job) or True)
    return queued


def test_a_set_is_one_run_of_identical_short_load_tests(
    target, qa_engineer, sent, django_capture_on_commit_callbacks
):
    target.expected_rps = 20
    target.save()
    with django_capture_on_commit_callbacks(execute=True):
        run = engine.start_set(qa_engineer, target)
    jobs = list(run.jobs.order_by("pk"))
    assert len(jobs) == 5
    # One after another, like every run: only the first is sent, holding the target's
    # lease; each of the others waits for the one before it.
    assert len(sent) == 1
    assert [j.status for j in jobs] == [Job.QUEUED] + [Job.WAITING] * 4
    assert [j.after_id for j in jobs] == [None] + [j.pk for j in jobs[:-1]]
    assert TargetLease.objects.get(target=target).holder_id == jobs[0].pk
    assert {(j.kind, j.params["mode"], j.params["rate"], j.params["duration"]) for j in jobs} == {
        ("benchmark", "load", 20.0, 10.0)
    }
    event = AuditEvent.objects.get(action="job.trigger")
    assert f"run #{run.pk} (5 × load, 20 req/s, 10 s)" in event.summary
    with pytest.raises(engine.CannotStart, match="5 to 20 runs"):
        engine.start_set(qa_engineer, target, repetitions=3)


ALLOWED = {"manager", "dev_engineer", "qa_engineer", "strategist"}


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_who_may_start_a_set_from_the_compare_page(request, login, persona, target, sent):
    data = {"target": target.pk, "repetitions": 5, "duration": 10, "rate": 20, "pin": "on"}
    response = login(persona).post(reverse("baseline_set_start"), data)
    run = Run.objects.filter(target=target).first()
    if request.node.callspec.params["persona"] not in ALLOWED:
        assert response.status_code == 403 and run is None
        return
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.jobs.count() == 5
    target.refresh_from_db()
    assert target.baseline_run == run


# --- routing notifications ------------------------------------------------------------------


def test_route_decides_who_hears_of_each_event(initiative, make_user):
    dora = make_user("dora", ("dev", Membership.MANAGER))
    make_user("quinn", ("qa", Membership.MANAGER))
    make_user("devon", ("dev", Membership.ENGINEER))
    people = recipients("sentinel.regressed", initiative=initiative)
    assert initiative.owner in people and dora in people
    assert {p.username for p in people} <= {initiative.owner.username, "dora"}
    assert recipients("sentinel.inconclusive", initiative=initiative) == people
    with pytest.raises(ValueError, match="no route"):
        recipients("nobody.listens", initiative=initiative)
    told = route("sentinel.inconclusive", "Subject", "Body", "/x/", initiative=initiative)
    assert told == people
    assert set(Notification.objects.values_list("user__username", flat=True)) == {
        p.username for p in people
    }


def test_a_finished_run_is_routed_to_its_starter_and_the_initiative_owner(initiative, qa_engineer):
    run = Run.objects.create(
        target=initiative.target,
        mode="performance",
        initiative=initiative,
        triggered_by=qa_engineer,
        status="succeeded",
    )
    assert recipients("run.finished", run=run) == [qa_engineer, initiative.owner]


def test_re_running_a_set_makes_a_comparable_latest_set(
    target, qa_engineer, sent, django_capture_on_commit_callbacks
):
    target.expected_rps = 20
    target.save()
    with django_capture_on_commit_callbacks(execute=True):
        first = engine.start_set(qa_engineer, target)
    finish(first, T0, [100.0, 101.0, 102.0, 103.0, 104.0])
    with django_capture_on_commit_callbacks(execute=True):
        again = engine.rerun(qa_engineer, first)
    finish(again, T0 + datetime.timedelta(hours=1), [40.0, 41.0, 42.0, 43.0, 44.0])
    base, latest, _ = baselines.baseline_and_latest(target)
    assert (base.run_id, latest.run_id) == (first.pk, again.pk)
    assert baselines.compare_sets(base, latest).headline.verdict == "improved"


def finish(run, started, p95s):
    """What the worker would store: each job of the set succeeded with its summary."""
    for n, (job, p95) in enumerate(zip(run.jobs.order_by("pk"), p95s, strict=True)):
        Job.objects.filter(pk=job.pk).update(
            status=Job.SUCCEEDED,
            started_at=started + datetime.timedelta(minutes=n),
            finished_at=started + datetime.timedelta(minutes=n, seconds=10),
            summary={
                "mode": "load",
                "engine_version": "1",
                "offered_rate": 20.0,
                "rps": 20.0,
                "error_rate": 0.0,
                "latency_ms": {"med": p95 / 2, "p95": p95, "p99": p95},
            },
        )
