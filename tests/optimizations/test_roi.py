"""ROI per initiative: the comparison of baseline and latest, capacity, money, assumptions."""

import csv
import datetime
import io
import json
import math

import pytest
from django.core.cache import cache
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from optimizations import roi
from optimizations.models import Job, Measurement, PhaseTask, RoiAssumptions, Run
from portal.models import AuditEvent
from tests.conftest import PERSONAS

T0 = timezone.now() - datetime.timedelta(days=10)


@pytest.fixture(autouse=True)
def _fresh_cache():
    # Comparisons are cached per pair of jobs; ids repeat between tests.
    cache.clear()
    yield
    cache.clear()


def bench(target, started, p95s, *, mode="load", rate=100.0, run=None, capacity=None):
    """A succeeded benchmark with one p95 (and a p50 of half of it) per second."""
    run = run or Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run, kind="benchmark", target=target, status=Job.SUCCEEDED, started_at=started,
        finished_at=started + datetime.timedelta(seconds=len(p95s) or 1),
        params={"mode": mode, "rate": rate, "duration": float(len(p95s))},
        summary={"mode": mode, "model": "open", "arrival": "constant", "offered_rate": rate,
                 "engine_version": "1", "rps": rate, "error_rate": 0.0},
    )  # fmt: skip
    rows = []
    for second, p95 in enumerate(p95s):
        for name, value in (("p95_ms", p95), ("p50_ms", p95 / 2), ("ok", rate), ("achieved", rate)):
            rows.append(
                Measurement(
                    target=target,
                    run=run,
                    job=job,
                    name=f"sample.{name}",
                    value=value,
                    unit="ms",
                    second=second,
                    measured_at=started,
                )
            )
    if capacity is not None:
        rows.append(
            Measurement(
                target=target,
                run=run,
                job=job,
                name="http.capacity",
                value=capacity,
                unit="req/s",
                measured_at=started + datetime.timedelta(seconds=1),
            )
        )
    Measurement.objects.bulk_create(rows)
    return job


def slow(n=60):
    return [100.0 + (i % 5) for i in range(n)]  # median 102


def fast(n=60):
    return [40.0 + (i % 5) for i in range(n)]  # median 42


def stress(target, started, capacity, run=None):
    return bench(target, started, [], mode="stress", run=run, capacity=capacity)


def assume(initiative, user=None, **values):
    values.setdefault("expected_peak_rps", 1000)
    values.setdefault("cost_per_instance_month", 200)
    values.setdefault("hourly_rates", {"dev": 100, "qa": 80})
    return roi.do_update_roi_assumptions(user, initiative, **values)


def log_hours(initiative, **hours_by_department):
    for code, hours in hours_by_department.items():
        task = PhaseTask.objects.filter(phase__initiative=initiative, department__code=code).first()
        task.logged_hours = hours
        task.save()


@pytest.fixture
def improved(initiative, target):
    """A baseline run with a load test and a stress knee of 300 req/s, then a faster load test."""
    base = bench(target, T0, slow())
    stress(target, T0 + datetime.timedelta(minutes=2), 300, run=base.run)
    latest = bench(target, T0 + datetime.timedelta(days=5), fast())
    assume(initiative)
    log_hours(initiative, dev=10, qa=5)  # 10 × 100 + 5 × 80 = 1400
    return base, latest


# --- compute() ----------------------------------------------------------------------


def test_a_significant_gain_is_verified_with_the_conservative_end_of_its_interval(
    initiative, improved
):
    base, latest = improved
    result = roi.compute(initiative)
    c = result.comparison
    assert (result.baseline.job_id, result.latest.job_id) == (base.pk, latest.pk)
    assert result.modes_compared == "load vs load"
    assert c.verdict == "improved" and c.p_value < 0.05
    assert (c.median_baseline, c.median_candidate) == (102.0, 42.0)
    assert c.speedup == pytest.approx(102 / 42)
    assert c.change_ci[0] <= c.change <= c.change_ci[1]
    assert result.baseline.seconds == 60 and result.latest.seconds == 60
    # Estimated: the point speed-up; verified: the lower end of its interval.
    est, ver = result.estimated, result.verified
    assert est.speedup == pytest.approx(102 / 42)
    assert ver.speedup == pytest.approx(max(1.0, c.speedup_ci[0])) and ver.speedup <= est.speedup
    assert est.capacity_before == 300 and est.capacity_after == pytest.approx(300 * 102 / 42)
    assert "derived" in est.capacity_basis and result.knee_after is None
    # 1000 req/s, each instance at ≤ 80 % of its knee: ⌈1000 / 240⌉ = 5 before,
    # ⌈1000 / (728.6 × 0.8)⌉ = 2 after.
    assert roi.HEADROOM == 0.8
    assert (est.instances_before, est.instances_after) == (5, 2)
    assert est.monthly_saving == 600.0 and est.horizon_saving == 7200.0
    assert result.investment.total == 1400.0 and result.investment.hours == 15.0
    assert est.roi == pytest.approx((7200 - 1400) / 1400)
    assert est.payback_months == pytest.approx(1400 / 600)
    assert ver.monthly_saving is not None and ver.monthly_saving <= est.monthly_saving
    assert result.missing == []


def test_no_change_verifies_nothing_and_says_why(initiative, target):
    bench(target, T0, slow())
    stress(target, T0, 300, run=Job.objects.get().run)
    bench(target, T0 + datetime.timedelta(days=1), [100.0 + ((i + 2) % 5) for i in range(60)])
    assume(initiative)
    log_hours(initiative, dev=10)
    result = roi.compute(initiative)
    assert result.verdict == "no change"
    assert result.verified.speedup is None and result.verified.roi is None
    assert any("no significant gain measured" in m for m in result.verified.missing)
    # The estimate still shows the point figures: no speed-up, nothing saved.
    assert result.estimated.speedup == pytest.approx(1.0)
    assert result.estimated.monthly_saving == 0.0
    assert result.estimated.payback_months is None
    assert result.estimated.roi == pytest.approx(-1.0)
    assert any("not paid back" in note for note in result.estimated.notes)


def test_too_few_seconds_are_inconclusive(initiative, target):
    bench(target, T0, [100.0, 101.0, 102.0])
    bench(target, T0 + datetime.timedelta(days=1), [40.0, 41.0, 42.0])
    result = roi.compute(initiative)
    assert result.verdict == "inconclusive"
    assert "at least 5 runs per side" in result.comparison.reasons[0]
    assert result.verified.speedup is None


def test_benchmarks_under_different_load_are_inconclusive(initiative, target):
    bench(target, T0, slow(), rate=100.0)
    bench(target, T0 + datetime.timedelta(days=1), fast(), rate=500.0)
    result = roi.compute(initiative)
    assert result.verdict == "inconclusive"
    assert any("config differs between the sides" in r for r in result.comparison.reasons)


def test_the_latest_benchmark_of_the_baselines_mode_is_preferred(initiative, target):
    bench(target, T0, slow())
    same = bench(target, T0 + datetime.timedelta(days=1), fast())
    bench(target, T0 + datetime.timedelta(days=2), fast(), mode="endurance")
    stress(target, T0 + datetime.timedelta(days=3), 900)
    result = roi.compute(initiative)
    assert result.latest.job_id == same.pk and result.modes_compared == "load vs load"


def test_a_pinned_baseline_run_wins_over_the_first_benchmark(initiative, target):
    bench(target, T0, fast())
    pinned = bench(target, T0 + datetime.timedelta(days=1), slow())
    target.baseline_run = pinned.run
    target.save()
    latest = bench(target, T0 + datetime.timedelta(days=2), fast())
    result = roi.compute(initiative)
    assert result.baseline.job_id == pinned.pk and result.baseline.pinned
    assert result.latest.job_id == latest.pk and result.verdict == "improved"
    # The pinned run has no stress test: its capacity is unknown, not taken from elsewhere.
    assert result.knee_before is None
    assert "no stress benchmark on the baseline — capacity unknown" in result.missing


def test_knees_measured_on_both_sides_replace_the_derived_capacity(initiative, improved):
    _base, latest = improved
    stress(initiative.target, latest.started_at + datetime.timedelta(minutes=1), 1300, latest.run)
    result = roi.compute(initiative)
    assert result.knee_before.value == 300 and result.knee_after.value == 1300
    for column in (result.verified, result.estimated):
        assert column.capacity_after == 1300 and "measured" in column.capacity_basis
        # ⌈1000 / (1300 × 0.8)⌉ = 1 instance after, where the derived capacity needed 2.
        assert (column.instances_before, column.instances_after) == (5, 1)
        assert column.monthly_saving == 800.0
        assert column.payback_months == pytest.approx(1400 / 800)


def ceiling(target, started, value, run):
    """A stress test in which no step met p99: no knee, only its throughput ceiling."""
    job = stress(target, started, None, run=run)
    Measurement.objects.create(
        target=target, run=run, job=job, name="http.saturation", value=value, unit="req/s",
        measured_at=started + datetime.timedelta(seconds=1),
    )  # fmt: skip
    return job


def test_without_a_knee_on_the_baseline_both_sides_use_their_throughput_ceilings(
    initiative, target
):
    base = bench(target, T0, slow())
    ceiling(target, T0 + datetime.timedelta(minutes=2), 200, base.run)
    latest = bench(target, T0 + datetime.timedelta(days=5), fast())
    # The fixed version meets p99 now: it has a knee, but a ceiling is compared with a ceiling.
    stress(target, latest.started_at + datetime.timedelta(minutes=1), 700, latest.run)
    ceiling(target, latest.started_at + datetime.timedelta(minutes=1), 900, latest.run)
    assume(initiative)
    result = roi.compute(initiative)
    assert (result.knee_before.kind, result.knee_before.value) == ("ceiling", 200)
    assert (result.knee_after.kind, result.knee_after.value) == ("ceiling", 900)
    column = result.estimated
    assert column.capacity_basis == "stress throughput ceilings measured before and after"
    # ⌈1000 / (200 × 0.8)⌉ = 7 before, ⌈1000 / (900 × 0.8)⌉ = 2 after.
    assert (column.instances_before, column.instances_after) == (7, 2)
    assert any("throughput ceiling" in note for note in column.notes)
    page = roi_page_text(initiative)
    assert "throughput ceiling of" in page


def roi_page_text(initiative):
    from django.test import Client

    client = Client()
    client.force_login(initiative.owner)
    return client.get(reverse("initiative_roi", args=[initiative.pk])).content.decode()


def test_missing_cost_leaves_money_unknown_and_names_it(initiative, improved):
    assume(initiative, cost_per_instance_month=None)
    result = roi.compute(initiative)
    assert result.estimated.instances_before == 5  # capacity is still known
    assert result.estimated.monthly_saving is None and result.estimated.roi is None
    assert "cost per instance not entered" in result.missing


def test_investment_needs_a_rate_for_every_department_that_logged_hours(initiative, improved):
    log_hours(initiative, strategy=2.5)
    result = roi.compute(initiative)
    by_code = {row.code: row for row in result.investment.rows}
    assert by_code["dev"].cost == 1000.0 and by_code["qa"].cost == 400.0
    assert by_code["strategy"].rate is None and result.investment.total is None
    assert "hourly rate of Strategy not entered (2.5 h logged)" in result.missing
    assert result.estimated.roi is None and result.estimated.payback_months is None
    assume(initiative, hourly_rates={"dev": 100, "qa": 80, "strategy": 120})
    assert roi.compute(initiative).investment.total == 1400.0 + 300.0


def test_nothing_measured_yet(initiative):
    result = roi.compute(initiative)
    assert result.baseline is None and result.comparison is None
    assert result.verdict == "unknown"
    assert "no benchmark of the target yet (a load test gives the baseline)" in result.missing
    assert "cost per instance not entered" in result.missing
    assert "no hours logged on the initiative's tasks yet" in result.missing
    json.dumps(result.to_dict())


def test_no_benchmark_after_the_baseline(initiative, target):
    bench(target, T0, slow())
    result = roi.compute(initiative)
    assert result.baseline and result.latest is None
    assert "no benchmark after the baseline" in result.missing


def test_the_peak_defaults_to_the_targets_expected_load(initiative, improved):
    target = initiative.target
    target.expected_rps = 600
    target.save()
    assume(initiative, expected_peak_rps=None)
    result = roi.compute(initiative)
    assert result.assumptions.expected_peak_rps == 600
    assert result.assumptions.peak_source == "target"
    assert result.estimated.instances_before == math.ceil(600 / (300 * 0.8))


def test_to_dict_is_json(initiative, improved):
    data = json.loads(json.dumps(roi.compute(initiative).to_dict()))
    assert data["verdict"] == "improved"
    assert data["estimated"]["monthly_saving"] == 600.0
    assert "before_samples" not in data


def test_compute_queries_are_bounded_whatever_the_data(
    initiative, improved, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        roi.compute(initiative)
    target = initiative.target
    for day in range(6, 9):
        bench(target, T0 + datetime.timedelta(days=day), fast())
        stress(target, T0 + datetime.timedelta(days=day, hours=1), 400)
    cache.clear()
    with django_assert_max_num_queries(12):
        roi.compute(initiative)


# --- the panel ---------------------------------------------------------------------


def test_the_panel_renders_from_the_result_alone(initiative, improved, django_assert_num_queries):
    result = roi.compute(initiative)
    with django_assert_num_queries(0):
        html = render_to_string("optimizations/roi_panel.html", {"roi": result})
    assert f'id="roi-panel-{initiative.pk}"' in html
    assert "improved" in html and "600 EUR" in html
    assert reverse("initiative_roi", args=[initiative.pk]) in html


def test_the_panel_says_what_is_not_measured(initiative):
    html = render_to_string("optimizations/roi_panel.html", {"roi": roi.compute(initiative)})
    assert "not measured yet" in html and "unknown" in html


# --- the page ----------------------------------------------------------------------


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_the_page(
    login, persona, initiative, improved, django_assert_max_num_queries
):
    client = login(persona)
    with django_assert_max_num_queries(17):
        response = client.get(reverse("initiative_roi", args=[initiative.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="roi-distribution"' in body and "autocorrelated" in body
    assert "improved" in body and "1,400.00 EUR" in body


def test_the_edit_form_is_offered_only_to_those_who_may_edit(login, initiative, strategist, viewer):
    url = reverse("initiative_roi", args=[initiative.pk])
    assert 'id="roi-assumptions-form"' in login(strategist).get(url).content.decode()
    assert 'id="roi-assumptions-form"' not in login(viewer).get(url).content.decode()


def test_anonymous_visitors_are_sent_to_sign_in(client, initiative):
    response = client.get(reverse("initiative_roi", args=[initiative.pk]))
    assert response.status_code == 302 and "login" in response["Location"]


VALID = {
    "expected_peak_rps": "1200",
    "cost_per_instance_month": "250.50",
    "currency": "EUR",
    "horizon_months": "24",
    "rate_dev": "95",
    "rate_qa": "80",
    "rate_strategy": "110",
    "rate_hr": "",
    "note": "Cloud list prices, 2026",
}


@pytest.mark.parametrize(
    ("persona", "allowed"),
    [
        ("manager", True),
        ("strategist", True),
        ("dev_engineer", False),
        ("qa_engineer", False),
        ("hr_editor", False),
        ("viewer", False),
        ("outsider", False),
    ],
    indirect=["persona"],
)
def test_who_may_change_the_assumptions(login, persona, allowed, initiative):
    response = login(persona).post(reverse("initiative_roi", args=[initiative.pk]), VALID)
    rows = RoiAssumptions.objects.filter(initiative=initiative)
    if not allowed:
        assert response.status_code == 403 and not rows.exists()
        return
    assert response.status_code == 302
    row = rows.get()
    assert row.changed_by == persona and row.expected_peak_rps == 1200
    assert row.hourly_rates == {"dev": 95.0, "qa": 80.0, "strategy": 110.0}
    event = AuditEvent.objects.get(action="roi.assumptions")
    assert event.initiative == initiative and event.actor == persona
    assert event.changes["horizon_months"] == [12, 24]


def test_each_edit_adds_a_version_and_the_history_shows_what_changed(login, strategist, initiative):
    url = reverse("initiative_roi", args=[initiative.pk])
    client = login(strategist)
    client.post(url, VALID)
    client.post(url, {**VALID, "cost_per_instance_month": "300", "rate_qa": "85"})
    rows = list(RoiAssumptions.objects.filter(initiative=initiative))
    assert len(rows) == 2 and rows[0].cost_per_instance_month == 300
    assert rows[1].cost_per_instance_month == pytest.approx(250.5)
    body = client.get(url).content.decode()
    assert "cost per instance and month" in body and "250.5 → 300.0" in body
    assert "hourly rate of qa" in body and "80.0 → 85.0" in body
    assert roi.compute(initiative).assumptions.cost_per_instance_month == 300.0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "euro", "three-letter currency code"),
        ("horizon_months", "0", "greater than or equal to 1"),
        ("cost_per_instance_month", "-5", "greater than or equal to 0"),
        ("rate_dev", "abc", "Enter a number"),
        ("expected_peak_rps", "0", "greater than or equal to 1"),
    ],
)
def test_invalid_assumptions_are_refused_with_a_readable_error(
    login, strategist, initiative, field, value, message
):
    response = login(strategist).post(
        reverse("initiative_roi", args=[initiative.pk]), {**VALID, field: value}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RoiAssumptions.objects.exists()


# --- exports -----------------------------------------------------------------------


def test_json_export(login, viewer, initiative, improved):
    response = login(viewer).get(reverse("initiative_roi_json", args=[initiative.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert data["verdict"] == "improved" and data["currency"] == "EUR"
    assert data["investment"]["total"] == 1400.0
    assert data["estimated"]["payback_months"] == pytest.approx(1400 / 600)
    assert data["comparison"]["speedup_ci"][0] <= data["comparison"]["speedup"]


def test_csv_export(login, viewer, initiative, improved, django_assert_max_num_queries):
    client = login(viewer)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("initiative_roi_csv", args=[initiative.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == ["section", "item", "value", "verified", "estimated", "unit"]
    by_item = {(row[0], row[1]): row for row in rows[1:]}
    assert by_item[("roi", "monthly saving")][4] == "600.0"
    assert by_item[("investment", "total")][2] == "1400.0"
    assert by_item[("comparison p95 per second", "verdict")][2] == "improved"


def test_exports_say_what_is_missing(login, viewer, initiative):
    response = login(viewer).get(reverse("initiative_roi_csv", args=[initiative.pk]))
    assert "cost per instance not entered" in response.content.decode()
    data = login(viewer).get(reverse("initiative_roi_json", args=[initiative.pk])).json()
    assert data["verified"]["roi"] is None and data["baseline"] is None


def test_a_baseline_whose_samples_were_purged_says_so(initiative, target):
    base = bench(target, T0, slow())
    bench(target, T0 + datetime.timedelta(days=1), fast())
    Measurement.objects.filter(job=base, second__isnull=False).delete()
    result = roi.compute(initiative)
    assert result.comparison is None and result.baseline.seconds == 0
    assert any(f"baseline benchmark #{base.pk}" in reason for reason in result.missing)
    html = render_to_string("optimizations/roi_panel.html", {"roi": result})
    assert "no per-second latency samples left" in html


def test_long_runs_are_thinned_evenly_for_the_rule(initiative, target):
    assert roi.thin(list(range(10)), 5) == [0, 2, 4, 7, 9]
    assert roi.thin([1.0, 2.0], 5) == [1.0, 2.0]
    bench(target, T0, slow(400))
    bench(target, T0 + datetime.timedelta(days=1), fast(400))
    result = roi.compute(initiative)
    assert result.baseline.seconds == 400
    assert result.baseline.seconds_tested == roi.MAX_TEST_SECONDS
    assert result.comparison.n_baseline == roi.MAX_TEST_SECONDS


def test_two_stress_knees_alone_give_an_estimate_but_verify_nothing(initiative, target):
    stress(target, T0, 300)
    stress(target, T0 + datetime.timedelta(days=1), 1300)
    assume(initiative)
    log_hours(initiative, dev=10, qa=5)
    result = roi.compute(initiative)
    assert result.comparison is None
    assert result.estimated.capacity_after == 1300 and result.estimated.monthly_saving == 800.0
    assert result.verified.monthly_saving is None
    assert any("no benchmark of the target yet" in m for m in result.verified.missing)


def test_the_before_after_chart_goes_logarithmic_for_a_tenfold_change():
    from optimizations import charts

    close = charts.before_after_latency(
        {"p50": [50.0, 51.0], "p95": [100.0, 102.0]},
        {"p50": [40.0, 41.0], "p95": [80.0, 82.0]},
        ("before", "after"),
    )
    assert close.layout.yaxis.type != "log"
    far = charts.before_after_latency(
        {"p50": [1500.0, 1600.0], "p95": [3000.0, 3100.0]},
        {"p50": [8.0, 9.0], "p95": [25.0, 26.0]},
        ("before", "after"),
    )
    assert far.layout.yaxis.type == "log"
    assert "logarithmic" in far.layout.title.text
    assert [trace.name for trace in far.data] == ["before", "after"]
