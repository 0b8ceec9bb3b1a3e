"""Tracing on/off is a comparability key (issue 16, Decided): a benchmark job records
whether its target sent traces while it ran, and traced and untraced sets are not
compared, saying so."""

import datetime

from django.utils import timezone

from optimizations.analyzers import stats
from optimizations.analyzers.base import AnalysisResult
from optimizations.jobs import baselines, runner
from optimizations.jobs.kinds import KINDS
from optimizations.models import Job, Run, Trace
from tests.optimizations.test_baselines import LOAD, T0, load_set


def test_a_traced_set_is_not_the_latest_of_an_untraced_baseline(target):
    load_set(target, T0, [100.0] * 5)
    traced = load_set(target, T0 + datetime.timedelta(hours=1), [80.0] * 5)
    for job in Job.objects.filter(run=traced):
        job.summary["traced"] = True
        job.save(update_fields=["summary"])

    base, latest, sets = baselines.baseline_and_latest(target)

    assert latest is None
    assert "differs in tracing" in baselines.why_no_latest_in(base, sets)
    assert [s.label for s in sets][1].endswith(", traced)")
    load_set(target, T0 + datetime.timedelta(hours=2), [70.0] * 5)  # untraced again
    assert baselines.baseline_and_latest(target)[1].run_id != traced.pk


def test_the_comparison_rule_flags_traced_against_untraced(target):
    before = load_set(target, T0, [100.0] * 5)
    after = load_set(target, T0 + datetime.timedelta(hours=1), [50.0] * 5)
    Job.objects.filter(run=after).update(
        summary={
            "mode": "load",
            "engine_version": "1",
            "traced": True,
            "rps": 20.0,
            "error_rate": 0.0,
            "latency_ms": {"med": 25.0, "p95": 50.0, "p99": 50.0},
        }
    )

    (p95,) = [
        m
        for m in baselines.compare_jobs(
            list(Job.objects.filter(run=before)), list(Job.objects.filter(run=after))
        )
        if m.key == "latency_p95"
    ]

    assert {"key": "tracing", "where": "between", "values": [False, True]} in p95.c.flags
    assert p95.c.verdict == stats.INCONCLUSIVE


def _benchmark(target, started):
    run = Run.objects.create(target=target, mode="custom")
    return Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        status=Job.RUNNING,
        started_at=started,
        params=LOAD,
    )


def test_a_benchmark_records_whether_traces_came_in_while_it_ran(target):
    started = timezone.now() - datetime.timedelta(seconds=30)
    quiet = _benchmark(target, started)
    Trace.objects.create(
        target=target, trace_id="a" * 32, received_at=started - datetime.timedelta(minutes=5)
    )  # before the job: another time's traces say nothing of this one
    runner.store_result(quiet, KINDS["benchmark"], AnalysisResult(verdict="pass"))
    quiet.refresh_from_db()
    assert quiet.summary["traced"] is False

    traced = _benchmark(target, started)
    Trace.objects.create(
        target=target, trace_id="b" * 32, received_at=started + datetime.timedelta(seconds=5)
    )
    runner.store_result(traced, KINDS["benchmark"], AnalysisResult(verdict="pass"))
    traced.refresh_from_db()
    assert traced.summary["traced"] is True
    assert baselines.run_meta(traced)["tracing"] is True
    assert baselines.run_meta(quiet)["tracing"] is False
