"""Starting runs: the plan of a mode, what cannot run and why, the probe first, re-runs."""

import pytest

from departments.models import TrainingGate, TrainingModule
from optimizations.jobs import engine, kinds, landing, modes
from optimizations.models import Job, Measurement, Run

pytestmark = pytest.mark.usefixtures("broker_up")


@pytest.fixture
def sent(monkeypatch):
    jobs = []
    monkeypatch.setattr(landing, "enqueue", lambda job: jobs.append(job.kind) or True)
    return jobs


def test_every_mode_starts_with_the_probe_and_has_no_duplicates():
    for mode, focus in modes.FOCUS.items():
        for chosen in [[], *[[tag] for tag in focus]]:
            planned = modes.plan(mode, chosen)
            assert planned[0].kind == "probe"
            keys = [(job.kind, repr(sorted(job.params.items()))) for job in planned]
            assert len(keys) == len(set(keys))


@pytest.mark.parametrize(
    ("mode", "focus", "kinds_expected"),
    [
        ("performance", [], ["probe", "code_scan", "db_scan", "benchmark"]),
        ("performance", ["fastapi"], ["probe", "code_scan", "benchmark"]),
        ("performance", ["sqlalchemy"], ["probe", "code_scan", "db_scan"]),
        ("quality", ["testing"], ["probe", "benchmark", "benchmark", "benchmark"]),
        ("quality", ["validation"], ["probe", "security_scan"]),
        ("strategy", ["monitoring"], ["probe"]),
        ("strategy", ["scaling"], ["probe", "db_scan", "benchmark"]),
    ],
)
def test_the_mode_table_of_design(mode, focus, kinds_expected):
    assert [job.kind for job in modes.plan(mode, focus)] == kinds_expected


def test_a_focus_of_another_mode_is_refused():
    with pytest.raises(ValueError, match="does not apply to performance"):
        modes.plan("performance", ["security"])


def test_kinds_the_target_cannot_run_are_skipped_with_the_reason(target, qa_engineer, sent):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kinds.Kind, "available", lambda self: self.name != "code_scan")
        run = engine.start_run(qa_engineer, target, "performance", [])
    skipped = {item["kind"]: item["why"] for item in run.skipped}
    assert skipped["code_scan"] == "not yet available in this Kaizen"
    assert "lacks a database URL" in skipped["db_scan"]
    assert [job.kind for job in run.jobs.order_by("pk")] == ["probe", "benchmark"]


def test_the_probe_goes_first_and_each_job_follows_the_one_before(
    target, qa_engineer, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        run = engine.start_run(qa_engineer, target, "quality", ["testing"])
    assert sent == ["probe"]
    jobs = list(run.jobs.order_by("pk"))
    assert [job.after_id for job in jobs] == [None, *[job.pk for job in jobs[:-1]]]
    assert [job.status for job in Job.objects.filter(run=run).order_by("pk")] == [
        Job.QUEUED,
        Job.WAITING,
        Job.WAITING,
        Job.WAITING,
    ]
    probe = jobs[0]
    probe.claim("w")
    probe.fail("target down")
    with django_capture_on_commit_callbacks(execute=True):
        landing.release_followers(probe)
    # Only the next one: the load test; stress and endurance wait for it.
    assert sent == ["probe", "benchmark"]
    assert Job.objects.get(pk=jobs[1].pk).status == Job.QUEUED


def test_an_unknown_override_parameter_is_refused(target, qa_engineer, sent):
    with pytest.raises(engine.CannotStart, match="has no parameter speed"):
        engine.start_run(
            qa_engineer, target, "quality", ["testing"], overrides={"benchmark": {"speed": 3}}
        )
    assert not Run.objects.exists()


def test_a_bad_parameter_value_is_refused_before_anything_is_created(target, qa_engineer, sent):
    with pytest.raises(engine.CannotStart, match="Target probe: timeout"):
        engine.start_job(qa_engineer, target, "probe", {"timeout": 0})
    assert not Run.objects.exists()


def test_a_rerun_repeats_the_same_jobs_with_the_same_parameters(target, qa_engineer, sent):
    first = engine.start_run(
        qa_engineer, target, "quality", ["testing"], overrides={"benchmark": {"duration": 12.0}}
    )
    again = engine.rerun(qa_engineer, first)

    def shape(run):
        return [(job.kind, job.params) for job in run.jobs.order_by("pk")]

    assert shape(again) == shape(first)
    assert all(job.params["duration"] == 12.0 for job in again.jobs.filter(kind="benchmark"))


def test_a_training_gate_stops_a_load_test_for_someone_untrained(
    target, qa_engineer, sent, departments
):
    module = TrainingModule.objects.create(
        title="Load testing safely",
        slug="load-testing",
        status="published",
        owner_department=departments["hr"],
    )
    TrainingGate.objects.create(target=target, module=module)
    with pytest.raises(engine.CannotStart, match="Load testing safely"):
        engine.start_job(qa_engineer, target, "benchmark", {"duration": 5.0})
    # A probe needs no training, and schedules (nobody) are not gated.
    engine.start_job(qa_engineer, target, "probe", {})
    engine.start_job(None, target, "benchmark", {"duration": 5.0}, trigger="schedule")
    assert Job.objects.count() == 2


def test_a_code_scan_learns_postgres_version_and_connections_from_the_last_db_scan(
    target, qa_engineer, sent
):
    target.source_location = "/tmp"
    target.save()
    run = Run.objects.create(target=target, mode="custom")
    Job.objects.create(
        run=run,
        kind="db_scan",
        target=target,
        status=Job.SUCCEEDED,
        summary={"server_version": "15.20 (Debian)", "connections": {"max_connections": 40}},
    )
    job = engine.start_job(qa_engineer, target, "code_scan", {}).jobs.get()
    assert job.params["postgres_version"] == "15.20"
    assert job.params["max_connections"] == 40


def test_a_benchmark_learns_the_baselines_memory_for_the_memory_objective(
    target, qa_engineer, sent
):
    from django.utils import timezone

    run = Run.objects.create(target=target, mode="quality")
    endurance = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        status=Job.SUCCEEDED,
        started_at=timezone.now(),
        params={"mode": "endurance"},
        summary={"memory": {"mean_bytes": 160e6}},
    )
    # The runner stores the summary's mean as memory.pss.mean (the baseline reads it there).
    Measurement.objects.create(
        target=target,
        run=run,
        job=endurance,
        name="memory.pss.mean",
        value=160e6,
        unit="B",
        measured_at=timezone.now(),
    )
    job = engine.start_job(qa_engineer, target, "benchmark", {"mode": "endurance"}).jobs.get()
    assert job.params["baseline_memory_bytes"] == 160e6
