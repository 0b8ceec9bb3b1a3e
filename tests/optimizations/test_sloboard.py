"""The SLO board: every SLO judged from hand-built Measurements, with its source and trend."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Job, Measurement, Run
from optimizations.reports import sloboard
from tests.conftest import PERSONAS
from tests.factories import benchmark_job

NOW = timezone.now()


def at(minutes_ago: float) -> datetime.datetime:
    return NOW - datetime.timedelta(minutes=minutes_ago)


def bench(target, mode="load", when=None, run=None, **fields):
    """A load/stress/endurance benchmark whose Measurements are ``fields`` (short names:
    avg, p99, rps, capacity, errors, pss — tests.factories.SHORT_NAMES)."""
    return benchmark_job(
        target,
        finished=when or NOW,
        run=run or Run.objects.create(target=target, mode="custom"),
        mode=mode,
        params={"mode": mode},
        measured=fields,
    )


def measure(target, name, value, when=None, job=None, **labels):
    return Measurement.objects.create(
        target=target,
        run=job.run if job else None,
        job=job,
        name=name,
        value=value,
        unit="",
        labels=labels,
        measured_at=when or NOW,
    )


def db_scan(target, when=None, run=None, **summary):
    run = run or Run.objects.create(target=target, mode="custom")
    return Job.objects.create(
        run=run,
        kind="db_scan",
        target=target,
        status=Job.SUCCEEDED,
        summary=summary,
        started_at=(when or NOW) - datetime.timedelta(seconds=60),
        finished_at=when or NOW,
    )


def rows_by_key(target):
    return {row.key: row for row in sloboard.board(target)}


def test_every_slo_is_unknown_on_a_new_target_and_says_what_to_run(db, target):
    rows = sloboard.board(target)
    assert [row.key for row in rows] == [
        "api_avg_ms",
        "db_avg_ms",
        "throughput_rps",
        "memory_reduction_pct",
        "pool_use_pct",
        "slow_query_rate_pct",
        "error_rate_pct",
        "availability_pct",
        "p99_ms",
    ]
    assert {row.state for row in rows} == {"unknown"}
    by_key = {row.key: row for row in rows}
    assert "stress benchmark" in by_key["p99_ms"].missing
    assert "quality --focus testing" in by_key["p99_ms"].missing
    assert "database URL" in by_key["db_avg_ms"].missing  # the target has none set
    assert "endurance" in by_key["memory_reduction_pct"].missing
    assert "beat" in by_key["availability_pct"].missing
    assert all(row.missing for row in rows)


def test_load_test_judges_latency_and_errors_and_shows_where_they_came_from(db, target):
    job = bench(target, "load", avg=42.0, p99=180.0, rps=19.8, errors=0.02, offered=20.0)
    # Per-operation and per-step rows must not pass for the headline.
    measure(target, "http.latency.avg", 900.0, job=job, operation="GET /slow")
    rows = rows_by_key(target)
    api = rows["api_avg_ms"]
    assert (api.value, api.state, api.run_id, api.job_id) == (42.0, "pass", job.run_id, job.pk)
    assert api.source == f"benchmark (load) · run #{job.run_id}"
    errors = rows["error_rate_pct"]
    assert errors.value == pytest.approx(2.0) and errors.state == "fail"  # ratio → %
    # No stress test: the achieved rate at the offered rate, not a capacity.
    throughput = rows["throughput_rps"]
    assert throughput.value == 19.8 and throughput.state == "fail"
    assert "offered 20 req/s" in throughput.source and "not a capacity" in throughput.source
    p99 = rows["p99_ms"]
    assert p99.value == 180.0 and "no stress test yet" in p99.source


def test_stress_knee_is_the_throughput_and_judges_p99(db, target):
    bench(target, "load", when=at(5), avg=30.0, p99=90.0, rps=20.0, offered=20.0)
    stress = bench(target, "stress", when=at(1), avg=80.0, p99=620.0, rps=160.0, capacity=160.0)
    rows = rows_by_key(target)
    assert rows["throughput_rps"].value == 160.0
    assert rows["throughput_rps"].source.startswith("stress knee")
    assert rows["p99_ms"].value == 620.0 and rows["p99_ms"].state == "fail"
    assert rows["p99_ms"].job_id == stress.pk
    # The API average still comes from the load test, not the stress knee.
    assert rows["api_avg_ms"].value == 30.0


def test_custom_threshold_changes_the_verdict(db, target):
    bench(target, "load", avg=120.0)
    assert rows_by_key(target)["api_avg_ms"].state == "fail"
    target.slo = {"api_avg_ms": 150}
    target.save()
    row = rows_by_key(target)["api_avg_ms"]
    assert row.state == "pass" and row.threshold == 150.0


def test_memory_is_judged_against_the_pinned_baseline(db, target):
    mib = 2**20
    first = bench(target, "endurance", when=at(300), pss=400 * mib)
    pinned = bench(target, "endurance", when=at(200), pss=300 * mib)
    latest = bench(target, "endurance", when=at(100), pss=120 * mib)
    # Without a pinned baseline, the first endurance test is the baseline: −70 %.
    row = rows_by_key(target)["memory_reduction_pct"]
    assert row.value == pytest.approx(70.0) and row.state == "pass"
    assert row.job_id == latest.pk and f"run #{first.run_id}" in row.source
    target.baseline_run = pinned.run
    target.save()
    row = rows_by_key(target)["memory_reduction_pct"]
    assert row.value == pytest.approx(60.0) and row.state == "pass"
    assert [round(v) for _, v in row.trend] == [-33, 0, 60]


def test_memory_with_only_the_baseline_is_unknown_not_zero(db, target):
    bench(target, "endurance", pss=300 * 2**20)
    row = rows_by_key(target)["memory_reduction_pct"]
    assert row.state == "unknown" and row.value is None
    assert "baseline's own" in row.missing and "endurance" in row.missing


def test_db_scan_figures_prefer_the_exact_slow_rate(db, target):
    old = db_scan(target, when=at(60))
    measure(target, "db.query.avg", 80.0, when=at(60), job=old)
    measure(target, "db.slow_query_rate.estimate", 9.0, when=at(60), job=old)
    scan = db_scan(target, when=at(1))
    measure(target, "db.query.avg", 12.5, when=at(1), job=scan, scope="60s window")
    measure(target, "db.slow_query_rate.estimate", 7.0, when=at(1), job=scan)
    measure(target, "db.slow_query_rate.exact", 3.0, when=at(1), job=scan)
    measure(target, "db.pool.use", 92.0, when=at(1), job=scan, stat="peak")
    # A later idle minute check does not hide what the DB scan saw under load.
    measure(target, "metrics.pool_use", 0.0, when=at(0.5))
    rows = rows_by_key(target)
    assert rows["db_avg_ms"].value == 12.5 and rows["db_avg_ms"].state == "pass"
    assert rows["db_avg_ms"].last_values() == ["80", "12.5"]
    slow = rows["slow_query_rate_pct"]
    assert slow.value == 3.0 and slow.state == "pass" and "exact" in slow.source
    pool = rows["pool_use_pct"]
    assert pool.value == 92.0 and pool.state == "fail" and pool.source.startswith("DB scan")


def test_pool_from_minute_checks_when_no_scan_read_it(db, target):
    measure(target, "metrics.pool_use", 35.0)
    pool = rows_by_key(target)["pool_use_pct"]
    assert pool.value == 35.0 and pool.state == "pass" and "minute check" in pool.source


def test_availability_over_thirty_days(db, target):
    for minute in range(1000):
        measure(target, "availability.up", 0.0 if minute < 2 else 1.0, when=at(minute))
    measure(target, "availability.up", 0.0, when=NOW - datetime.timedelta(days=40))
    row = rows_by_key(target)["availability_pct"]
    assert row.value == pytest.approx(99.8)  # 998 of 1000 checks in the window
    assert row.state == "fail" and "1000 checks" in row.source and row.run_id is None


def test_trend_direction_follows_the_slo_direction(db, target):
    for n, avg in enumerate([90.0, 80.0, 70.0, 60.0, 50.0]):
        bench(target, "load", when=at(10 - n), avg=avg)
    row = rows_by_key(target)["api_avg_ms"]
    assert row.trend_direction == "better" and [v for _, v in row.trend] == [90, 80, 70, 60, 50]
    assert sloboard.trend_direction([1.0, 2.0, 3.0, 4.0, 5.0], "min") == "better"
    assert sloboard.trend_direction([1.0, 2.0, 3.0, 4.0, 5.0], "max") == "worse"
    assert sloboard.trend_direction([3.0, 1.0, 3.0, 1.0, 3.0], "max") == "flat"
    assert sloboard.trend_direction([1.0, 2.0, 3.0], "max") is None


def test_trend_keeps_the_last_twelve_values(db, target):
    for n in range(15):
        bench(target, "load", when=at(100 - n), avg=float(n))
    row = rows_by_key(target)["api_avg_ms"]
    assert len(row.trend) == 12 and row.trend[-1][1] == 14.0 and row.trend[0][1] == 3.0


# -- the verdict of the latest benchmark (the phase-4 gate) --------------------------


def test_no_benchmark_gives_no_verdict(db, target):
    assert sloboard.latest_benchmark_verdict(target) == {
        "run": None,
        "rows": [],
        "ok": None,
        "failing": [],
        "missing": [],
    }


def test_latest_benchmark_run_passing_every_slo(db, target):
    mib = 2**20
    bench(target, "endurance", when=at(500), pss=400 * mib)  # the baseline
    bench(target, "load", when=at(400), avg=500.0)  # an older, failing run is not judged
    run = Run.objects.create(target=target, mode="quality", focus=["testing"])
    bench(target, "load", when=at(3), run=run, avg=40.0, rps=20.0, errors=0.0, offered=20.0)
    bench(
        target,
        "stress",
        when=at(2),
        run=run,
        avg=60.0,
        p99=300.0,
        rps=1500.0,
        capacity=1500.0,
        errors=0.001,
    )
    bench(target, "endurance", when=at(1), run=run, avg=41.0, rps=20.0, errors=0.0, pss=150 * mib)
    verdict = sloboard.latest_benchmark_verdict(target)
    assert verdict["run"] == run
    assert [row.key for row in verdict["rows"]] == list(sloboard.BENCHMARK_SLOS)
    assert verdict["failing"] == [] and verdict["missing"] == []
    assert verdict["ok"] is True


def test_latest_benchmark_run_names_what_failed_and_what_it_could_not_judge(db, target):
    bench(target, "stress", when=at(100), capacity=5000.0, p99=100.0)  # older: not this run
    job = bench(target, "load", avg=140.0, rps=20.0, errors=0.0, p99=300.0, offered=20.0)
    verdict = sloboard.latest_benchmark_verdict(target)
    assert verdict["run"] == job.run and verdict["ok"] is False
    assert "API average latency: 140 ms (objective ≤ 100 ms)" in verdict["failing"]
    assert any(item.startswith("Throughput: 20 req/s") for item in verdict["failing"])
    assert [item.split(":")[0] for item in verdict["missing"]] == ["Memory against the baseline"]


# -- the page ------------------------------------------------------------------------


def test_board_page_renders_for_a_viewer(login, viewer, target):
    job = bench(
        target, "load", avg=42.0, p99=180.0, rps=19.8, errors=0.0, offered=20.0, med=20.0, p95=90.0
    )
    response = login(viewer).get(reverse("target_slo", args=[target.slug]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="slo-api_avg_ms"' in body and "42" in body
    assert f'href="/runs/{job.run_id}/"' in body
    assert 'data-target="target-runs"' in body and 'data-target="slo-trends"' in body
    assert 'id="advisor"' in body and "expected peak load not set" in body.lower()


def test_board_page_needs_a_signed_in_user(client, target):
    response = client.get(reverse("target_slo", args=[target.slug]))
    assert response.status_code == 302 and "login" in response["Location"]


def test_advisor_form_rerenders_only_its_panel(login, strategist, target):
    bench(target, "stress", capacity=100.0, p99=200.0)
    response = login(strategist).get(
        reverse("target_slo", args=[target.slug]) + "?peak_rps=250&workers_per_instance=2",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="advisor",
    )
    body = response.content.decode()
    assert body.lstrip().startswith('<section class="panel" id="advisor">')
    assert "slo-board" not in body
    assert "<strong>4</strong>" in body  # ⌈250 ÷ (100 × 80 %)⌉


def test_target_page_shows_the_slo_panel(login, viewer, target):
    bench(target, "load", avg=140.0)
    body = login(viewer).get(target.get_absolute_url()).content.decode()
    assert 'id="slo-panel"' in body and "1 fail" in body and "API average latency" in body


def _history(target, runs: int):
    for n in range(runs):
        run = Run.objects.create(target=target, mode="comprehensive")
        bench(
            target,
            "load",
            when=at(1000 - 10 * n),
            run=run,
            avg=50.0 + n,
            med=20.0,
            p95=80.0,
            p99=150.0,
            rps=20.0,
            errors=0.0,
            offered=20.0,
        )
        bench(target, "stress", when=at(999 - 10 * n), run=run, capacity=100.0 + n, p99=400.0)
        bench(target, "endurance", when=at(998 - 10 * n), run=run, pss=(300 - n) * 2**20)
        scan = db_scan(
            target,
            when=at(997 - 10 * n),
            run=run,
            connections={"max_connections": 100, "available": 97},
            pool={"size": 5, "max_overflow": 10, "peak_checked_out": 6},
        )
        measure(target, "db.query.avg", 10.0 + n, when=at(997 - 10 * n), job=scan)
        measure(target, "db.slow_query_rate.estimate", 1.0, when=at(997 - 10 * n), job=scan)
        measure(target, "db.pool.use", 40.0, when=at(997 - 10 * n), job=scan)
        measure(target, "availability.up", 1.0, when=at(996 - 10 * n))


@pytest.mark.parametrize("runs", [2, 20])
def test_board_page_query_count_is_flat_in_history(
    login, viewer, target, runs, django_assert_max_num_queries
):
    _history(target, runs)
    client = login(viewer)
    with django_assert_max_num_queries(16):
        response = client.get(reverse("target_slo", args=[target.slug]))
    assert response.status_code == 200
    assert response.context["tally"]["unknown"] == 0


@pytest.mark.parametrize("runs", [2, 20])
def test_board_reads_a_bounded_number_of_queries(target, runs, django_assert_num_queries):
    _history(target, runs)
    target.baseline_run = Run.objects.order_by("created_at").first()
    with django_assert_num_queries(5):
        rows = sloboard.board(target)
    assert {row.state for row in rows} <= {"pass", "fail"}


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_the_board(login, persona, target):
    response = login(persona).get(reverse("target_slo", args=[target.slug]))
    assert response.status_code == 200


def test_advisor_says_what_is_wrong_with_the_form(login, strategist, target):
    response = login(strategist).get(
        reverse("target_slo", args=[target.slug]) + "?peak_rps=-5&workers_per_instance=x",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="advisor",
    )
    body = response.content.decode()
    assert response.status_code == 200 and "message-error" in body and "peak_rps" in body


def test_trend_follows_one_mode_and_figures_read_plainly(db, target):
    for n in range(3):
        bench(target, "endurance", when=at(20 - 2 * n), avg=300.0 + n)
        bench(target, "load", when=at(19 - 2 * n), avg=40.0 + n)
    row = rows_by_key(target)["api_avg_ms"]
    assert row.source.startswith("benchmark (load)") and row.last_values() == ["40", "41", "42"]
    assert [sloboard.shown(v) for v in (1500.0, 130.0, 98.958, 0.4, 0.0)] == [
        "1,500",
        "130",
        "98.96",
        "0.4",
        "0",
    ]


def test_a_knee_known_only_as_a_lower_bound_never_fails_throughput(db, target):
    # The stress test's machine was busy: at least 400 req/s, the objective is 1000.
    stress = bench(target, "stress", when=at(1), p99=200.0, capacity=400.0)
    Measurement.objects.filter(job=stress, name="http.capacity").update(
        labels={"bound": "lower", "limited_by": "machine"}
    )
    row = rows_by_key(target)["throughput_rps"]
    assert row.value == 400.0 and row.state == "unknown"
    assert "≥ 400 req/s, a lower bound" in row.source
    # A bound that already meets the objective passes.
    Measurement.objects.filter(job=stress, name="http.capacity").update(value=1200.0)
    met = rows_by_key(target)["throughput_rps"]
    assert met.state == "pass" and "lower bound" in met.source
