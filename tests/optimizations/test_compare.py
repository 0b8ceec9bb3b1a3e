"""The comparison page: the rule applied to two sets of benchmark runs, and interleaved A/B."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.jobs import engine, landing
from optimizations.models import Job, Run, TargetService
from portal.models import AuditEvent
from tests.factories import benchmark_job, load_summary


def benchmark(target, started, median_ms, rps, run=None, **summary):
    return benchmark_job(
        target,
        finished=started + datetime.timedelta(seconds=20),
        duration_s=20,
        run=run or Run.objects.create(target=target, mode="custom"),
        summary=load_summary(
            median_ms * 2, med=median_ms, p99=median_ms * 3, rps=rps, duration_s=20.0, **summary
        ),
    )


@pytest.fixture
def fixed(departments):
    return TargetService.objects.create(
        name="Orders API (fixed)",
        slug="orders-fixed",
        base_url="http://127.0.0.1:8101",
        owner_department=departments["dev"],
    )


def sides(target, fixed, interleaved=True):
    start = timezone.now() - datetime.timedelta(hours=1)
    a, b = [], []
    for n in range(5):
        if interleaved:
            a.append(benchmark(target, start + datetime.timedelta(minutes=2 * n), 160 + n, 55 + n))
            b.append(
                benchmark(fixed, start + datetime.timedelta(minutes=2 * n + 1), 21 + n % 2, 430 - n)
            )
        else:
            a.append(benchmark(target, start + datetime.timedelta(minutes=n), 160 + n, 55 + n))
            b.append(
                benchmark(target, start + datetime.timedelta(minutes=10 + n), 21 + n % 2, 430 - n)
            )
    return a, b


def ids(jobs):
    return ",".join(str(job.pk) for job in jobs)


def test_interleaved_runs_of_two_deployments_give_a_verdict_with_intervals(
    login, qa_engineer, target, fixed
):
    a, b = sides(target, fixed)
    response = login(qa_engineer).get(f"{reverse('compare')}?a={ids(a)}&b={ids(b)}")
    results = {r["key"]: r["c"] for r in response.context["results"]}
    latency = results["latency_med"]
    assert latency.verdict == "improved" and latency.interleaved
    assert latency.speedup > 7 and latency.speedup_ci[0] < latency.speedup < latency.speedup_ci[1]
    assert latency.p_value == pytest.approx(2 / 252)  # exact Mann–Whitney U, no overlap
    assert results["throughput"].verdict == "improved"
    assert results["error_rate"].verdict == "no change"  # 0 % → 0 %: within ±0.1 pp
    assert latency.evidence == "verified"
    body = response.content.decode()
    assert "alternated in time" in body and "improved" in body


def test_sequential_sessions_are_measured_not_verified(login, qa_engineer, target, fixed):
    a, b = sides(target, fixed, interleaved=False)
    response = login(qa_engineer).get(f"{reverse('compare')}?a={ids(a)}&b={ids(b)}")
    latency = response.context["results"][0]["c"]
    assert latency.verdict == "improved" and latency.interleaved is False
    assert latency.evidence == "measured" and latency.speedup > 7
    body = response.content.decode()
    assert "did not alternate in time" in body and "measured" in body  # …and what that means


def test_runs_of_different_settings_are_flagged(login, qa_engineer, target, fixed):
    a, b = sides(target, fixed)
    Job.objects.filter(pk=b[0].pk).update(params={**b[0].params, "rate": 500.0})
    response = login(qa_engineer).get(f"{reverse('compare')}?a={ids(a)}&b={ids(b)}")
    latency = response.context["results"][0]["c"]
    assert latency.verdict == "inconclusive"
    assert [flag["key"] for flag in latency.flags] == ["rate", "rate"]  # within B, and A vs B
    assert latency.evidence == "estimated"
    assert "500.0" in response.content.decode()


def test_an_interleaved_comparison_alternates_its_benchmarks(
    target, fixed, qa_engineer, monkeypatch, broker_up
):
    sent = []
    monkeypatch.setattr(landing, "enqueue", lambda job: sent.append(job.target.slug) or True)
    run = engine.start_comparison(
        qa_engineer, target, fixed, {"mode": "load", "rate": 50.0, "duration": 10.0}, repetitions=5
    )
    order = list(run.jobs.order_by("pk").values_list("target__slug", flat=True))
    assert order == ["orders-api", "orders-fixed"] * 5
    assert run.compared_with == fixed
    with pytest.raises(engine.CannotStart, match="at least 5 runs"):
        engine.start_comparison(qa_engineer, target, fixed, {}, repetitions=3)


def test_a_viewer_cannot_start_a_comparison(login, viewer, target, fixed):
    data = {
        "baseline": target.pk,
        "candidate": fixed.pk,
        "repetitions": 5,
        "rate": 50,
        "duration": 10,
    }
    assert login(viewer).post(reverse("comparison_start"), data).status_code == 403


def test_pinning_a_baseline_is_audited(login, qa_engineer, target):
    run = Run.objects.create(
        target=target, mode="performance", status="succeeded", finished_at=timezone.now()
    )
    login(qa_engineer).post(reverse("run_pin_baseline", args=[run.pk]))
    target.refresh_from_db()
    assert target.baseline_run == run
    assert AuditEvent.objects.filter(action="target.edit", changes__has_key="baseline_run").exists()


def test_the_slow_demo_against_its_fixed_twin_is_improved_on_every_metric(
    login, qa_engineer, target, fixed
):
    """Issue 13's shapes: a noisy slow side (×45 on the median), 38.75 % errors → none,
    throughput ×2: improved on all five metrics, verified (interleaved)."""
    start = timezone.now() - datetime.timedelta(hours=1)
    slow_medians = [120.0, 397.0, 900.0, 2500.0, 250.0]
    slow_errors = [0.35, 0.3875, 0.42, 0.40, 0.375]
    fast_medians = [8.8, 9.1, 8.5, 12.0, 8.0]
    a, b = [], []
    for n in range(5):
        a.append(
            benchmark(
                target,
                start + datetime.timedelta(minutes=2 * n),
                slow_medians[n],
                49.0 + n,
                error_rate=slow_errors[n],
            )
        )
        b.append(
            benchmark(
                fixed, start + datetime.timedelta(minutes=2 * n + 1), fast_medians[n], 100.0 + n
            )
        )
    response = login(qa_engineer).get(f"{reverse('compare')}?a={ids(a)}&b={ids(b)}")
    results = {r["key"]: r["c"] for r in response.context["results"]}
    assert {key: c.verdict for key, c in results.items()} == {
        "latency_med": "improved",
        "latency_p95": "improved",
        "latency_p99": "improved",
        "throughput": "improved",
        "error_rate": "improved",
    }
    assert {c.evidence for c in results.values()} == {"verified"}
    assert results["latency_med"].speedup == pytest.approx(45, rel=0.1)
    assert results["error_rate"].shift == pytest.approx(-38.75)
    # The mirror (fixed as A, slow as B) is regressed on every metric.
    mirror = login(qa_engineer).get(f"{reverse('compare')}?a={ids(b)}&b={ids(a)}")
    assert {r["c"].verdict for r in mirror.context["results"]} == {"regressed"}


def test_two_sets_are_compared_by_their_runs(login, qa_engineer, target):
    start = timezone.now() - datetime.timedelta(hours=2)
    before = Run.objects.create(target=target, mode="custom")
    for n in range(5):
        benchmark(target, start + datetime.timedelta(minutes=n), 100.0 + n, 20.0, run=before)
    after = Run.objects.create(target=target, mode="custom")
    for n in range(5):
        benchmark(target, start + datetime.timedelta(minutes=30 + n), 40.0 + n, 20.0, run=after)
    url = f"{reverse('compare')}?a_run={before.pk}&b_run={after.pk}"
    response = login(qa_engineer).get(url)
    latency = response.context["results"][0]["c"]
    assert (latency.n_baseline, latency.n_candidate) == (5, 5)
    assert latency.verdict == "improved" and latency.evidence == "measured"
