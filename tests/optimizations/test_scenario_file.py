"""A scripted scenario file starts a load test from the benchmark form and from the CLI.

Both read the file, check it (its mistakes are said with their line before
anything runs) and put its text in the benchmark job's ``scenario`` parameter.
"""

import io
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from optimizations.analyzers.base import LocalContext, TargetSpec
from optimizations.analyzers.loadgen import run as benchmark
from optimizations.jobs import engine, landing, lease, runner
from optimizations.management.commands import optimize
from optimizations.models import Job, Run

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scenarios" / "shop_journey.yaml"
BAD = "steps:\n  - path: /orders/${order_id}\n"


@pytest.fixture
def queue(monkeypatch):
    sent = []

    def enqueue(job):
        sent.append(job.pk)
        Job.objects.filter(pk=job.pk).update(enqueued_at=timezone.now())
        return True

    monkeypatch.setattr(landing, "enqueue", enqueue)
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: None)
    return sent


def optimize_cmd(*args):
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exit:
        call_command("optimize", *args, stdout=out, stderr=err)
    return exit.value.code, out.getvalue(), err.getvalue()


# -- the command line ----------------------------------------------------------------------


@pytest.mark.django_db
def test_cli_scenario_puts_the_files_text_in_the_load_test(target, qa_engineer, queue):
    code, _, err = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--scenario", str(EXAMPLE)
    )
    assert code == 0, err
    benchmark = Run.objects.get().jobs.get(kind="benchmark")
    assert benchmark.params["scenario"] == EXAMPLE.read_text()
    assert benchmark.params["mode"] == "load"


@pytest.mark.django_db
def test_cli_refuses_a_bad_scenario_file_naming_its_line(target, qa_engineer, queue, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    code, _, err = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--scenario", str(bad)
    )
    assert code == 2
    assert f"--scenario {bad}: line 2:" in err and "${order_id}" in err
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_cli_refuses_a_missing_file_and_a_run_without_load_test(target, qa_engineer, queue):
    code, _, err = optimize_cmd(
        "performance", "--target", target.slug, "--user", "aiko", "--scenario", "/nonexistent.yaml"
    )
    assert code == 2 and "cannot read it" in err
    code, _, err = optimize_cmd(
        *("performance", "--focus", "async", "--target", target.slug, "--user", "aiko"),
        *("--scenario", str(EXAMPLE)),
    )
    assert code == 2 and "a performance run has no load test" in err
    assert not Run.objects.exists()


# -- the benchmark form ---------------------------------------------------------------------


def upload(text, name="journey.yaml"):
    data = text if isinstance(text, bytes) else text.encode()
    return SimpleUploadedFile(name, data, content_type="text/yaml")


@pytest.mark.django_db
def test_the_benchmark_form_offers_a_scenario_file(login, qa_engineer, target):
    page = login(qa_engineer).get(reverse("job_params", args=[target.slug, "benchmark"]))
    assert page.status_code == 200
    html = page.content.decode()
    assert 'type="file"' in html and 'name="s-scenario_file"' in html
    assert 'enctype="multipart/form-data"' in html and 'hx-encoding="multipart/form-data"' in html
    probe = login(qa_engineer).get(reverse("job_params", args=[target.slug, "probe"]))
    assert 'name="s-scenario_file"' not in probe.content.decode()


@pytest.mark.django_db
def test_an_uploaded_scenario_becomes_the_load_tests_scenario(login, qa_engineer, target, queue):
    response = login(qa_engineer).post(
        reverse("job_start", args=[target.slug, "benchmark"]),
        {"p-mode": "load", "p-rate": "20", "s-scenario_file": upload(EXAMPLE.read_text())},
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response.url == job.get_absolute_url()
    assert job.params["scenario"] == EXAMPLE.read_text()
    assert job.kind == "benchmark" and job.params["rate"] == 20


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"s-scenario_file": upload(BAD)}, "line 2:"),
        ({"s-scenario_file": upload(b"steps: \xff\n")}, "not UTF-8"),
        (
            {"s-scenario_file": upload(EXAMPLE.read_text()), "p-scenario": '[{"path": "/x"}]'},
            "not both",
        ),
    ],
)
def test_a_bad_upload_is_refused_on_the_form(login, qa_engineer, target, queue, fields, message):
    response = login(qa_engineer).post(
        reverse("job_start", args=[target.slug, "benchmark"]), {"p-mode": "load", **fields}
    )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_a_viewer_cannot_start_a_scripted_load_test(login, viewer, target, queue):
    response = login(viewer).post(
        reverse("job_start", args=[target.slug, "benchmark"]),
        {"p-mode": "load", "s-scenario_file": upload(EXAMPLE.read_text())},
    )
    assert response.status_code == 403
    assert not Job.objects.exists()


# -- the result page ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_job_page_shows_journeys_and_per_step_figures(login, qa_engineer, target):
    from tests.analyzers.journey_server import JourneyServer

    shop = JourneyServer()
    try:
        spec = TargetSpec(name="shop", base_url=shop.url, health_path="/__stats", max_rate=500)
        # The test shop knows alice by another password than the demo's.
        scenario = EXAMPLE.read_text().replace("password: shop-demo-password", "password: pw")
        result = benchmark(
            spec,
            {"mode": "load", "rate": 40, "duration": 1, "scenario": scenario, "cpu": "none"},
            LocalContext(),
        )
    finally:
        shop.stop()
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        params={"mode": "load", "scenario": scenario},
        status=Job.SUCCEEDED,
        summary=result.summary,
        verdict=result.verdict,
    )
    html = login(qa_engineer).get(job.get_absolute_url()).content.decode()
    assert 'id="journeys"' in html and "Per step" in html
    assert "order and cancel › create order" in html
    assert "order and cancel › cancel order" in html
    assert "window shopping › read item" in html
    for journey in result.summary["journeys"]:
        assert journey["failed"] == 0, journey["failures"]
    assert sum(journey["completed"] for journey in result.summary["journeys"]) > 0


# -- writes: asked for, and only where the target allows them -------------------------------


@pytest.mark.django_db
def test_a_load_test_writes_only_when_asked_and_its_target_allows_writes(
    login, qa_engineer, target, queue
):
    page = login(qa_engineer).get(reverse("job_params", args=[target.slug, "benchmark"]))
    assert 'name="p-allow_writes"' in page.content.decode()  # a write-path load is a choice
    # Asked for on a target that does not allow writes: the target's setting wins.
    run = engine.start_job(qa_engineer, target, "benchmark", {"mode": "load", "allow_writes": True})
    assert run.jobs.get().params["allow_writes"] is False
    target.allows_writes = True  # the setting of a staging target
    # Not asked for: a load test stays read-only even where writes are allowed.
    run = engine.start_job(qa_engineer, target, "benchmark", {"mode": "load"})
    assert run.jobs.get().params["allow_writes"] is False
    run = engine.start_job(qa_engineer, target, "benchmark", {"mode": "load", "allow_writes": True})
    assert run.jobs.get().params["allow_writes"] is True
    # The security scan's fuzzing writes whenever the target allows it (not on its form).
    page = login(qa_engineer).get(reverse("job_params", args=[target.slug, "security_scan"]))
    assert 'name="p-allow_writes"' not in page.content.decode()
    run = engine.start_job(qa_engineer, target, "security_scan", {})
    assert run.jobs.get().params["allow_writes"] is True
    # Kinds that never write carry no such parameter.
    run = engine.start_job(qa_engineer, target, "probe", {})
    assert "allow_writes" not in run.jobs.get().params


# -- the command line, end to end -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_cli_runs_the_scenario_as_a_load_test_with_per_step_figures(
    target, qa_engineer, queue, monkeypatch, tmp_path
):
    from tests.analyzers.journey_server import JourneyServer

    def pause():
        while queue:
            runner.execute(queue.pop(0), "test-worker")

    monkeypatch.setattr(optimize, "pause", pause)
    # The health check and cool-down before a load have their own tests.
    monkeypatch.setattr(lease, "cool_down", lambda job, spec, ctx: None)
    scenario = tmp_path / "journey.yaml"
    scenario.write_text(EXAMPLE.read_text().replace("password: shop-demo-password", "password: pw"))
    shop = JourneyServer()
    try:
        target.base_url, target.health_path = shop.url, "/__stats"
        target.save()
        code, out, err = optimize_cmd(
            *("performance", "--target", target.slug, "--user", "aiko", "--wait", "--json"),
            *("--scenario", str(scenario)),
            *("--param", "benchmark.rate=20", "--param", "benchmark.duration=2"),
            *("--param", "benchmark.cpu=none"),
        )
        logins = shop.stats()["requests"].get("POST /auth/token", 0)
    finally:
        shop.stop()
    benchmark = Run.objects.get().jobs.get(kind="benchmark")
    assert benchmark.status == Job.SUCCEEDED, (benchmark.error, err)
    summary = benchmark.summary
    steps = [op["name"] for op in summary["operations"]]
    assert steps[:3] == [
        "order and cancel › log in",
        "order and cancel › browse items",
        "order and cancel › create order",
    ]
    journeys = {journey["name"]: journey for journey in summary["journeys"]}
    assert journeys["order and cancel"]["started"] == logins > 0
    assert all(journey["failed"] == 0 for journey in journeys.values())
    # No code or database to scan on this target: incomplete, said so — never pass.
    assert code == 3 and '"exit_code": 3' in out
