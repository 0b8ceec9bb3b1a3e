"""Running a job in a worker: results stored, findings tracked across runs, cancel, failures."""

import pytest

from optimizations.jobs import kinds, runner
from optimizations.models import Finding, Job, JobLog, Measurement, Run
from portal.models import Notification

# The runner writes progress from a second thread, on its own connection: the
# rows it updates must be committed, not inside a test transaction.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fake_kind(monkeypatch):
    kind = kinds.Kind(
        "fake",
        "Fake scan",
        "tests.optimizations.fake_analyzer",
        "analysis",
        "code",
        ("base_url",),
        "A scan the tests steer.",
    )
    monkeypatch.setitem(kinds.KINDS, "fake", kind)
    return kind


@pytest.fixture
def run_fake(target):
    def run(**params):
        run = Run.objects.create(target=target, mode="custom")
        job = Job.objects.create(run=run, kind="fake", target=target, params=params)
        outcome = runner.execute(job.pk, "test-worker")
        job.refresh_from_db()
        return job, outcome

    return run


def test_a_job_stores_its_findings_measurements_and_summary(run_fake, target):
    job, outcome = run_fake(
        findings=[["R1", "a.py:1"], ["R2", "b.py:2"]], checks=[["R1", "failed"]]
    )
    assert outcome == "succeeded" and job.status == Job.SUCCEEDED and job.verdict == "pass"
    assert job.summary["seen"] == 2
    assert job.summary["checks"] == [{"id": "R1", "status": "failed", "detail": ""}]
    assert set(Finding.objects.filter(target=target).values_list("rule_id", flat=True)) == {
        "R1",
        "R2",
    }
    measurement = Measurement.objects.get(job=job, name="fake.value")
    assert (measurement.value, measurement.unit, measurement.labels) == (
        42.0,
        "ms",
        {"operation": "GET /"},
    )


def test_a_rerun_updates_the_same_finding_by_fingerprint(run_fake):
    first, _ = run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    second, _ = run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    finding = Finding.objects.get()
    assert finding.times_seen == 2
    assert (finding.first_job, finding.last_job) == (first, second)


def test_a_vanished_finding_is_fixed_only_when_its_check_ran_again(run_fake):
    run_fake(
        findings=[["R1", "a.py:1"], ["R2", "b.py:1"]], checks=[["R1", "failed"], ["R2", "failed"]]
    )
    # R1's check could not run this time: its finding stays open. R2's ran and passed.
    run_fake(findings=[], checks=[["R1", "unknown"], ["R2", "passed"]])
    statuses = dict(Finding.objects.values_list("rule_id", "status"))
    assert statuses == {"R1": Finding.OPEN, "R2": Finding.FIXED}


def test_a_fixed_finding_that_comes_back_reopens(run_fake):
    run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    run_fake(findings=[], checks=[["R1", "passed"]])
    assert Finding.objects.get().status == Finding.FIXED
    job, _ = run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    finding = Finding.objects.get()
    assert finding.status == Finding.OPEN and finding.fixed_at is None
    assert f"job #{job.pk}" in finding.status_reason


def test_a_triaged_finding_keeps_its_status_on_rerun(run_fake):
    run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    Finding.objects.update(status=Finding.FALSE_POSITIVE, status_reason="test fixture")
    run_fake(findings=[["R1", "a.py:1"]], checks=[["R1", "failed"]])
    run_fake(findings=[], checks=[["R1", "passed"]])
    assert Finding.objects.get().status == Finding.FALSE_POSITIVE


def test_log_lines_and_samples_are_written_in_batches_in_order(run_fake):
    job, _ = run_fake(log_lines=1500, samples=3)
    lines = list(JobLog.objects.filter(job=job).values_list("seq", "message"))
    assert job.log_lines == len(lines) == 1501  # the runner's own first line, then ours
    assert [seq for seq, _ in lines] == list(range(1, 1502))
    assert lines[-1][1] == "line 1500"
    achieved = Measurement.objects.filter(job=job, name="sample.achieved").order_by("second")
    assert [(m.second, m.value) for m in achieved] == [(0, 100.0), (1, 101.0), (2, 102.0)]
    assert Measurement.objects.filter(job=job, name="sample.errors.timeout").count() == 3


def test_an_analysis_error_fails_the_job_with_its_message(run_fake):
    job, outcome = run_fake(fail="analysis")
    assert (outcome, job.status, job.error) == ("failed", Job.FAILED, "The target said no.")
    assert job.run.status == Job.FAILED


def test_a_bug_fails_the_job_readably_and_logs_the_traceback(run_fake):
    job, _ = run_fake(fail="bug")
    assert job.status == Job.FAILED
    assert "internal error" in job.error and "KeyError" in job.error
    assert JobLog.objects.filter(job=job, level="error", message__contains="Traceback").exists()


def test_a_duplicate_delivery_does_nothing(run_fake):
    job, _ = run_fake()
    assert runner.execute(job.pk, "another-worker") == "not claimed (succeeded)"
    job.refresh_from_db()
    assert job.attempt == 1 and job.worker == "test-worker"


def test_a_job_that_is_gone_is_skipped_quietly():
    assert runner.execute(987654, "w") == "gone"


def test_the_run_finishing_tells_who_started_it(target, qa_engineer, run_fake):
    run = Run.objects.create(target=target, mode="custom", triggered_by=qa_engineer)
    job = Job.objects.create(run=run, kind="fake", target=target, triggered_by=qa_engineer)
    runner.execute(job.pk, "w")
    note = Notification.objects.get(user=qa_engineer)
    assert "succeeded" in note.subject and note.url == run.get_absolute_url()


def test_a_code_scan_leaves_sarif_and_json_to_download(target, login, qa_engineer):
    import json
    from pathlib import Path

    target.source_location = str(Path(__file__).resolve().parents[2] / "examples/shop_api/slow")
    target.save()
    run = Run.objects.create(target=target, mode="custom")
    job = Job.objects.create(run=run, kind="code_scan", target=target, params={"ruff": False})
    assert runner.execute(job.pk, "w") == "succeeded"
    client = login(qa_engineer)
    page = client.get(job.get_absolute_url()).content.decode()
    assert f"/jobs/{job.pk}/files/kaizen-code_scan-{job.pk}.sarif" in page
    sarif = json.loads(client.get(f"/jobs/{job.pk}/files/kaizen-code_scan-{job.pk}.sarif").content)
    assert sarif["version"] == "2.1.0"
    rules = {result["ruleId"] for result in sarif["runs"][0]["results"]}
    assert {"FSA102", "FSA201"} <= rules
    assert "Stack report" in page and "SQLAlchemy" in page
