"""The capacity and pool advisor: instances from the knee, pool per worker, PgBouncer."""

import datetime

import pytest
from django.utils import timezone

from optimizations.models import Job, Measurement, Run
from optimizations.reports import capacity
from optimizations.work import gates

NOW = timezone.now()
POOL = {"size": 5, "max_overflow": 10, "peak_checked_out": 6, "peak_use_pct": 40.0}
CONNECTIONS = {"max_connections": 100, "available": 97}


def stress(target, knee=100.0, run=None, when=None):
    """A stress job whose knee is ``knee`` req/s (http.capacity, as the benchmark stores it)."""
    when = when or NOW
    run = run or Run.objects.create(target=target, mode="strategy", focus=["scaling"])
    job = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        status=Job.SUCCEEDED,
        params={"mode": "stress"},
        started_at=when - datetime.timedelta(minutes=5),
        finished_at=when,
    )
    Measurement.objects.create(
        target=target,
        run=run,
        job=job,
        name="http.capacity",
        value=knee,
        unit="req/s",
        measured_at=when,
    )
    return job


def db_scan(target, run=None, when=None, **summary):
    run = run or Run.objects.create(target=target, mode="strategy", focus=["architecture"])
    return Job.objects.create(
        run=run,
        kind="db_scan",
        target=target,
        status=Job.SUCCEEDED,
        summary=summary,
        started_at=(when or NOW) - datetime.timedelta(minutes=1),
        finished_at=when or NOW,
    )


def scaling_run(target, knee=100.0, pool=None, connections=None):
    """strategy --focus scaling: a stress test and a DB scan in one run."""
    job = stress(target, knee)
    db_scan(target, run=job.run, pool=pool or POOL, connections=connections or CONNECTIONS)
    return job


def test_a_new_target_names_every_missing_input(db, target):
    advice = capacity.advise(target)
    assert advice.ok is None and advice.instances is None
    assert advice.missing == [capacity.MISSING_STRESS, capacity.MISSING_PEAK, capacity.MISSING_DB]
    assert (
        "stress benchmark" in advice.missing[0] and "quality --focus testing" in advice.missing[0]
    )
    assert advice.to_dict()["ok"] is None


def test_plan_that_fits_the_server(db, target):
    job = scaling_run(target)
    advice = capacity.advise(target, peak_rps=250, workers_per_instance=2)
    # ⌈250 ÷ (100 × 80 %)⌉ = 4 instances at 62.5 req/s each.
    assert advice.instances == 4 and advice.per_instance_rps == pytest.approx(62.5)
    # 6 connections at 100 req/s → 3.75 per instance at 62.5 req/s → 1.875 per worker.
    assert advice.busy_per_worker == pytest.approx(1.875)
    # pool_size 2; 2 + max_overflow = ⌈1.875 ÷ 0.8⌉ = 3.
    assert (advice.pool_size, advice.max_overflow) == (2, 1)
    assert advice.pool_use_at_peak_pct == pytest.approx(62.5)
    assert advice.connections_needed == 24 and advice.usable_connections == 97
    assert advice.fits is True and advice.pgbouncer is None and advice.ok is True
    assert advice.missing == []
    knee = advice.input("knee")
    assert (knee.value, knee.run_id, knee.job_id) == (100.0, job.run_id, job.pk)
    assert "DB scan #" in advice.input("checked_out").source
    assert len(advice.steps) == 4


def test_pool_slo_of_the_target_is_used(db, target):
    scaling_run(target)
    target.slo = {"pool_use_pct": 50}
    target.save()
    advice = capacity.advise(target, peak_rps=250, workers_per_instance=2)
    # 1.875 busy ÷ 50 % → 4 connections per worker.
    assert (advice.pool_size, advice.max_overflow) == (2, 2)
    assert advice.pool_use_at_peak_pct <= 50


def test_pgbouncer_when_the_pools_exceed_max_connections(db, target):
    scaling_run(target, pool={**POOL, "peak_checked_out": 2})
    advice = capacity.advise(target, peak_rps=2000, workers_per_instance=4)
    assert advice.instances == 25
    assert (advice.pool_size, advice.max_overflow) == (1, 0)
    assert advice.connections_needed == 100 and advice.fits is False
    # 2 connections at 100 req/s → 40 busy at 2000 req/s → ⌈40 ÷ 0.8⌉ = 50 server connections.
    assert advice.pgbouncer == {
        "pool_mode": "transaction",
        "default_pool_size": 50,
        "max_client_conn": 100,
        "fits": True,
    }
    assert advice.ok is True and "PgBouncer" in advice.summary


def test_nothing_fits_when_even_pgbouncer_exceeds_the_server(db, target):
    scaling_run(target, pool={**POOL, "peak_checked_out": 2})
    advice = capacity.advise(target, peak_rps=2000, workers_per_instance=4, max_connections=30)
    # The reserved slots come from the DB scan (100 − 97 = 3).
    assert advice.usable_connections == 27
    assert advice.pgbouncer["default_pool_size"] == 50 and advice.pgbouncer["fits"] is False
    assert advice.ok is False and "max_connections" in advice.summary


def test_expected_peak_comes_from_the_target(db, target):
    scaling_run(target)
    target.expected_rps = 60
    target.save()
    advice = capacity.advise(target)
    assert advice.instances == 1 and advice.input("peak").source == "the target's settings"
    assert advice.workers_per_instance == 1 and "assumed" in advice.input("workers").source


def test_pool_from_the_minute_checks_during_the_stress_test(db, target):
    job = stress(target, 100.0)
    db_scan(target, pool=POOL, connections=CONNECTIONS, when=NOW - datetime.timedelta(days=1))
    for minute, use in ((10, 95.0), (3, 40.0), (1, 20.0)):  # the first is before the test
        Measurement.objects.create(
            target=target,
            name="metrics.pool_use",
            value=use,
            unit="%",
            measured_at=NOW - datetime.timedelta(minutes=minute),
        )
    advice = capacity.advise(target, peak_rps=80)
    # 40 % of 5 + 10 = 6 connections at the knee.
    assert advice.input("checked_out").value == 6.0
    assert f"stress job #{job.pk}" in advice.input("checked_out").source
    assert advice.ok is True


def test_without_pool_figures_the_instances_still_come(db, target):
    stress(target, 100.0)
    db_scan(target, connections=CONNECTIONS)
    advice = capacity.advise(target, peak_rps=250)
    assert advice.instances == 4 and advice.pool_size is None
    assert advice.ok is None and advice.missing == [capacity.MISSING_POOL]


def test_max_connections_entered_without_a_scan(db, target):
    stress(target, 100.0)
    advice = capacity.advise(target, peak_rps=100, max_connections=50)
    usable = advice.input("usable")
    assert usable.value == 47 and "default" in usable.source
    assert capacity.MISSING_DB not in advice.missing and advice.ok is None  # pool still unknown


def test_a_knee_of_zero_cannot_carry_any_peak(db, target):
    scaling_run(target, knee=0.0)
    advice = capacity.advise(target, peak_rps=10)
    assert advice.ok is False and advice.instances is None


def test_a_stress_test_without_a_knee_fails_the_model_and_says_why(db, target):
    run = Run.objects.create(target=target, mode="strategy", focus=["scaling"])
    job = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        status=Job.SUCCEEDED,
        params={"mode": "stress", "start_rate": 5.0},
        summary={"capacity_rps": None, "saturation_rps": 7.6},
        finished_at=NOW,
    )
    target.expected_rps = 20
    advice = capacity.advise(target)
    assert advice.ok is False and capacity.MISSING_STRESS not in advice.missing
    assert advice.summary.startswith(f"No step of the latest stress test (job #{job.pk}, from 5")
    assert "throughput ceiling 7.6 req/s" in advice.summary
    # A later stress test with a knee gives a plan again.
    stress(target, knee=50.0, when=NOW + datetime.timedelta(minutes=10))
    assert capacity.advise(target).instances == 1


# --- a knee known only as a lower bound (the generator or the machine stopped the test) ---


def bounded_stress(target, knee, limited_by="machine", run=None, when=None):
    """A stress job whose knee is at least ``knee`` req/s, labelled as the benchmark stores it."""
    job = stress(target, knee, run=run, when=when)
    Measurement.objects.filter(job=job, name="http.capacity").update(
        labels={"bound": "lower", "limited_by": limited_by}
    )
    return job


def test_a_lower_bound_knee_is_used_with_its_caveat(db, target):
    job = bounded_stress(target, 100.0)
    db_scan(target, run=job.run, pool=POOL, connections=CONNECTIONS)
    advice = capacity.advise(target, peak_rps=250, workers_per_instance=2)
    knee = advice.input("knee")
    assert knee.value == 100.0 and knee.bound == "lower" and knee.shown == "≥ 100"
    assert "lower bound" in knee.label and "machine was busy" in knee.source
    # The same plan as on an exact knee of 100, said to err high; it fits: a pass.
    assert advice.instances == 4 and (advice.pool_size, advice.max_overflow) == (2, 1)
    assert any("upper estimate" in step for step in advice.steps)
    assert advice.ok is True and "lower bound" in advice.summary
    assert advice.missing == []


def test_a_lower_bound_on_which_nothing_fits_is_incomplete_not_a_failure(db, target):
    job = bounded_stress(target, 100.0, limited_by="generator")
    db_scan(target, run=job.run, pool={**POOL, "peak_checked_out": 2}, connections=CONNECTIONS)
    advice = capacity.advise(target, peak_rps=2000, workers_per_instance=4, max_connections=30)
    # On an exact knee this is test_nothing_fits_when_even_pgbouncer_exceeds_the_server.
    assert advice.pgbouncer["fits"] is False
    assert advice.ok is None
    (why,) = advice.missing
    assert why.startswith("the knee is known only as a lower bound (≥ 100 req/s")
    assert "load generator was saturated" in why


def test_a_stress_test_our_side_stopped_before_any_step_is_a_gap_not_a_failure(db, target):
    run = Run.objects.create(target=target, mode="strategy", focus=["scaling"])
    reason = "step 1 broke (corrected p99 800 ms > 500 ms) while the machine limited the test"
    job = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        status=Job.SUCCEEDED,
        params={"mode": "stress", "start_rate": 5.0},
        summary={"capacity_rps": None, "capacity_bound_reason": reason},
        finished_at=NOW,
    )
    advice = capacity.advise(target, peak_rps=20)
    assert advice.ok is None
    assert capacity.MISSING_STRESS not in advice.missing
    assert any(f"job #{job.pk}" in item and "machine limited" in item for item in advice.missing)


def test_the_phase_3_gate_passes_on_a_bound_that_meets_the_need(db, target, make_initiative):
    job = bounded_stress(target, 100.0)
    db_scan(target, run=job.run, pool=POOL, connections=CONNECTIONS)
    target.expected_rps = 250
    target.save()
    phase = make_initiative().phases.get(number=3)
    check = next(c for c in gates.evaluate(phase) if c.key == "capacity")
    assert check.ok is True and "lower bound" in check.detail
    # On a bound where the plan does not fit, the gate is incomplete with the reason.
    target.expected_rps = 100_000
    target.save()
    check = next(c for c in gates.evaluate(phase) if c.key == "capacity")
    assert check.ok is None and "lower bound" in check.detail
