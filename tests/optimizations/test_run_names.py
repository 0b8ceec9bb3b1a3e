"""A run page's title says what the run is: its mode, or what a custom run holds."""

from django.urls import reverse

from optimizations.models import Job, Run, TargetService


def run_with(target, kinds, mode="custom", **fields):
    run = Run.objects.create(target=target, mode=mode, **fields)
    for kind in kinds:
        Job.objects.create(run=run, kind=kind, target=target)
    return run


def test_a_custom_run_of_repeated_load_tests_is_a_benchmark_set(target):
    assert run_with(target, ["benchmark"] * 5).kind_of_run() == "Benchmark set (5 runs)"


def test_a_custom_run_of_one_job_is_a_single_job(target):
    assert run_with(target, ["probe"]).kind_of_run() == "Single job"


def test_an_interleaved_comparison_says_so(target, departments):
    twin = TargetService.objects.create(
        name="Twin", slug="twin", base_url="http://127.0.0.1:9", owner_department=departments["dev"]
    )
    run = run_with(target, ["benchmark"] * 10, compared_with=twin)
    assert run.kind_of_run() == "Interleaved comparison"


def test_a_mode_run_is_named_by_its_mode(target):
    assert run_with(target, ["probe", "code_scan"], mode="performance").kind_of_run() == (
        "Performance"
    )


def test_the_run_page_shows_it(client, target, qa_engineer):
    run = run_with(target, ["benchmark"] * 5)
    client.force_login(qa_engineer)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert f"Run #{run.pk}: Benchmark set (5 runs)" in page
