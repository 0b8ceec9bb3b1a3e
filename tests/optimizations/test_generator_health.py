"""A distributed load test's generator health: judged, named in the verdict, on the job page."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.analyzers.base import AnalysisResult
from optimizations.analyzers.loadgen.modes import _judge_generators
from optimizations.jobs import generators, housekeeping
from optimizations.models import Generator, GeneratorSecond, Job, Run
from tests.factories import benchmark_job, load_summary

pytestmark = pytest.mark.django_db


def engine_result(ok: int, cpu: list[float]) -> dict:
    return {
        "model": "open",
        "sub_bits": 7,
        "totals": {"offered": ok, "sent": ok, "ok": ok},
        "cpu_samples": cpu,
        "lag": {"counts": [], "sum": 0, "max": 0},
    }


def test_a_generator_whose_cpu_stayed_saturated_fell_behind_and_is_named(target):
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="benchmark", target=target)
    busy = [{"t": t, "interval": 1.0, "cpu_percent": 97.0, "sent": 50} for t in range(4)]
    calm = [{"t": t, "interval": 1.0, "cpu_percent": 20.0, "sent": 50} for t in range(4)]
    g1, g2 = (
        Generator.objects.create(
            job=job,
            round=1,
            index=index,
            status=Generator.DONE,
            host="bench-a",
            config={"rate": 50.0, "connections": 5},
            result=engine_result(200, [cpu] * 4),
        )
        for index, cpu in ((0, 20.0), (1, 97.0))
    )
    healthy, behind = generators.health(g1, calm), generators.health(g2, busy)
    assert healthy["healthy"] and healthy["sent"] == 200
    assert not behind["healthy"] and behind["generator_limited"]
    assert behind["problem"].startswith("generator-limited: generator CPU above 80 %")

    result = AnalysisResult(summary={"verdict_reason": ""}, verdict="pass")
    _judge_generators(result, [[healthy, behind]])
    assert result.verdict == "incomplete"
    assert "g2 (bench-a): generator-limited" in result.verdict_reason
    assert result.summary["generators"] == [healthy, behind]


def test_every_healthy_generator_leaves_the_verdict_alone():
    healthy = {"name": "g1", "host": "a", "healthy": True, "problem": ""}
    result = AnalysisResult(summary={}, verdict="pass")
    _judge_generators(result, [[healthy, {**healthy, "name": "g2"}]])
    assert result.verdict == "pass" and result.verdict_reason == ""


def test_the_job_page_shows_each_generators_health_beside_the_merged_figures(
    client, login, target, qa_engineer
):
    health = [
        {
            "name": "g1",
            "host": "bench-a",
            "worker": "w1@bench-a",
            "status": "done",
            "healthy": True,
            "generator_limited": False,
            "seconds": 10,
            "sent": 500,
            "ok": 500,
            "offered_rate": 50.0,
            "connections": 5,
            "problem": "",
        },
        {
            "name": "g2",
            "host": "bench-b",
            "worker": "w2@bench-b",
            "status": "lost",
            "healthy": False,
            "generator_limited": False,
            "seconds": 4,
            "sent": 200,
            "ok": 200,
            "offered_rate": 50.0,
            "connections": 5,
            "problem": "it went silent (no heartbeat for 6 s; its worker died or was cut off)",
        },
    ]
    summary = load_summary(generators=health, verdict_reason="not every generator sent its share")
    summary.update(
        requests={"ok": 700}, service_ms={"p99": 1.0}, validity={}, duration_s=10, slo=[]
    )
    job = benchmark_job(target, finished=timezone.now(), summary=summary, verdict="incomplete")
    page = login(qa_engineer).get(reverse("job_detail", args=[job.pk])).content.decode()
    assert f'id="job-{job.pk}-generators"' in page
    row = page.split(f'id="job-{job.pk}-generator-g2"')[1].split("</tr>")[0]
    assert "bench-b" in row and "lost" in row and "went silent" in row
    assert "badge bad" in row
    assert "badge good" in page.split(f'id="job-{job.pk}-generator-g1"')[1].split("</tr>")[0]


def test_while_it_runs_the_job_page_shows_the_current_rounds_generators(
    client, login, target, qa_engineer
):
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run, kind="benchmark", target=target, params={"mode": "load", "generators": 2}
    )
    job.claim("benchmark@bench-a")
    for round_, status in ((1, Generator.DONE), (2, Generator.RUNNING)):
        Generator.objects.create(job=job, round=round_, index=0, status=status, host="bench-a")
    Generator.objects.create(job=job, round=2, index=1, status=Generator.PENDING)
    page = login(qa_engineer).get(reverse("job_detail", args=[job.pk])).content.decode()
    rows = page.split(f'id="job-{job.pk}-generators"')[1].split("</table>")[0]
    assert rows.count("<tr id=") == 2  # the current round only
    assert "running" in rows and "pending" in rows and "badge bad" not in rows
    # The panel polls its own fragment while the test runs, and stops once it has ended.
    url = reverse("job_detail", args=[job.pk]) + "?part=generators"
    assert f'hx-get="{url}"' in page
    fragment = client.get(url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.content.decode().count("<tr id=") == 2
    Generator.objects.filter(job=job, round=2, index=1).update(status=Generator.RUNNING)
    assert client.get(url, headers={"HX-Request": "true"}).content.decode().count("running") == 2
    job.fail("stopped")
    ended = client.get(url, headers={"HX-Request": "true"})
    assert ended.status_code == 286 and ended.content.strip() == b""


def test_purge_takes_old_generator_seconds_with_the_other_samples(target, settings):
    settings.KAIZEN_RETENTION_DAYS = 30
    old = timezone.now() - datetime.timedelta(days=40)
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run, kind="benchmark", target=target, status=Job.SUCCEEDED, finished_at=old
    )
    recent = Job.objects.create(
        run=run, kind="benchmark", target=target, status=Job.SUCCEEDED, finished_at=timezone.now()
    )
    for each in (job, recent):
        gen = Generator.objects.create(job=each, round=1, index=0, status=Generator.DONE)
        GeneratorSecond.objects.create(generator=gen, t=0, row={"sent": 1})
    assert housekeeping.purge()["samples"] == 1
    assert list(GeneratorSecond.objects.values_list("generator__job", flat=True)) == [recent.pk]
    assert Generator.objects.filter(job=job).exists()  # its health stays with the summary
