"""A target's SLO edits reach every judge of that SLO through the portal's wiring: the
spec the analyzers get (benchmark, DB scan), the SLO board and its gate, the form."""

import pytest

from optimizations.analyzers.dbscan.common import Thresholds
from optimizations.analyzers.loadgen.verdicts import judge, judge_run, thresholds_for
from optimizations.jobs import runner
from optimizations.reports import sloboard
from optimizations.targets.forms import TargetForm
from tests.optimizations.test_sloboard import bench

pytestmark = pytest.mark.django_db


def test_the_analyzers_get_the_targets_values_in_the_tables_units(target):
    target.slo = {"db_avg_ms": 20, "error_rate_pct": 5, "memory_reduction_pct": 1}
    target.save()
    spec = runner.target_spec(target)
    assert Thresholds.build(spec.thresholds).db_avg_ms == 20
    summary = {
        "model": "open",
        "offered_rate": 50.0,
        "rps": 50.0,
        "error_rate": 0.03,
        "latency_ms": {"avg": 40.0, "p99": 60.0},
        "requests": {"completed": 500, "answered": 500},
        "validity": {"generator_limited": False},
    }
    # 3 % errors: within the target's 5 %, beyond the default 1 %.
    assert judge(judge_run(summary, thresholds_for(spec.thresholds), mode="load"))[0] == "pass"
    assert judge(judge_run(summary, thresholds_for({}), mode="load"))[0] == "fail"


def test_the_slo_board_and_its_gate_judge_by_the_targets_values(target):
    bench(target, avg=150.0, errors=0.0, rps=50.0)
    assert {r.key: r.state for r in sloboard.board(target)}["api_avg_ms"] == "fail"
    target.slo = {"api_avg_ms": 200}
    target.save()
    row = {r.key: r for r in sloboard.board(target)}["api_avg_ms"]
    assert (row.threshold, row.state) == (200, "pass")


def test_the_target_form_refuses_a_percentage_above_100(target):
    form = TargetForm(instance=target)
    field = form.fields["slo_memory_reduction_pct"]
    assert field.max_value == 100 and "(%)" in field.label
    assert form.fields["slo_api_avg_ms"].max_value is None


def test_an_availability_override_changes_the_boards_verdict(target):
    from django.core.cache import cache

    from tests.optimizations.test_sloboard import at, measure

    for minute in range(1000):
        measure(target, "availability.up", 0.0 if minute < 2 else 1.0, when=at(minute))
    assert {r.key: r.state for r in sloboard.board(target)}["availability_pct"] == "fail"
    target.slo = {"availability_pct": 99.5}
    target.save()
    cache.clear()  # the board caches closed days per target; the threshold is read anew
    row = {r.key: r for r in sloboard.board(target)}["availability_pct"]
    assert (row.threshold, row.state) == (99.5, "pass")  # 99.8 % ≥ 99.5 %


def test_an_slo_not_measured_reads_incomplete_on_the_board(client, viewer, target):
    from django.urls import reverse

    client.force_login(viewer)
    page = client.get(reverse("target_slo", args=[target.slug])).content.decode()
    assert '<span class="badge slo-unknown">incomplete</span>' in page
    assert 'slo-unknown">unknown' not in page
