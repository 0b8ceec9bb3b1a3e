"""One verdict vocabulary: pass, fail, incomplete, error, cancelled — for jobs, runs,
the CLI's exit codes and the run page's live state (badges, cancel button, progress)."""

from types import SimpleNamespace

import pytest
from django.urls import reverse

from optimizations.jobs import verdicts
from optimizations.models import GateSignoff, Job, PhaseTask, Run
from optimizations.work import criteria, gates


def test_a_job_status_maps_to_one_verdict():
    assert verdicts.of_job("failed", "") == "error"
    assert verdicts.of_job("expired", "") == "error"
    assert verdicts.of_job("cancelled", "pass") == "cancelled"
    assert verdicts.of_job("succeeded", "fail") == "fail"
    assert verdicts.of_job("succeeded", "") == "incomplete"  # judged nothing: not pass
    for active in ("waiting", "queued", "running"):
        assert verdicts.of_job(active, "") == ""  # pending


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "incomplete"], "incomplete"),
        (["pass", "fail", "incomplete"], "fail"),
        (["pass", "cancelled"], "cancelled"),
        (["fail", "error"], "error"),  # a job that failed outweighs a failed verdict
        ([], ""),
    ],
)
def test_roll_up_never_turns_incomplete_or_cancelled_into_pass(parts, expected):
    assert verdicts.roll_up(parts) == expected


def test_exit_codes():
    codes = {v: verdicts.exit_code(v) for v in ("pass", "fail", "error", "cancelled")}
    assert codes == {"pass": 0, "fail": 1, "error": 2, "cancelled": 2}
    assert verdicts.exit_code("incomplete") == 3
    assert verdicts.exit_code("") == 2  # nothing ran: could not start


def test_criteria_and_checks_map_to_the_vocabulary():
    # PhaseTask.criterion_state's values
    assert [verdicts.from_check(s) for s in ("met", "not_met", "unknown", "pending")] == [
        "pass",
        "fail",
        "incomplete",
        "",
    ]
    assert [verdicts.from_check(s) for s in (True, False, None)] == ["pass", "fail", "incomplete"]


def test_a_run_is_running_once_a_job_runs_or_ended_and_never_100_percent_when_cancelled():
    assert verdicts.run_status_while_active({"queued", "waiting"}) == "queued"
    assert verdicts.run_status_while_active({"running", "waiting"}) == "running"
    assert verdicts.run_status_while_active({"succeeded", "waiting"}) == "running"
    jobs = [
        SimpleNamespace(status="succeeded", progress=100),
        SimpleNamespace(status="cancelled", progress=40),
        SimpleNamespace(status="cancelled", progress=0),
    ]
    assert verdicts.run_progress(jobs) == 46


# --- on the models ------------------------------------------------------------


def _run(target, *statuses, skipped=()):
    run = Run.objects.create(target=target, mode="performance", skipped=list(skipped))
    jobs = [Job.objects.create(run=run, target=target, kind="probe", status=s) for s in statuses]
    return run, jobs


@pytest.mark.django_db
def test_transitions_store_error_and_cancelled(target):
    _, (failed, cancelled, expired, running) = _run(
        target, Job.RUNNING, Job.QUEUED, Job.QUEUED, Job.RUNNING
    )
    failed.fail("The target said no.")
    cancelled.request_cancel()
    expired.expire()
    running.request_cancel()
    running.confirm_cancelled()
    assert (failed.verdict, cancelled.verdict, expired.verdict) == ("error", "cancelled", "error")
    assert running.verdict == "cancelled"


@pytest.mark.django_db
def test_a_cancelled_run_settles_as_cancelled_not_pass(target):
    run, (done, queued) = _run(target, Job.RUNNING, Job.QUEUED)
    done.succeed({}, "pass")
    queued.request_cancel()
    run.settle()
    assert (run.status, run.verdict) == (Job.CANCELLED, "cancelled")


@pytest.mark.django_db
def test_an_analysis_that_judged_nothing_or_a_skipped_kind_leaves_the_run_incomplete(target):
    run, (job,) = _run(target, Job.RUNNING)
    job.succeed({}, None)
    run.settle()
    assert (job.verdict, run.verdict) == ("incomplete", "incomplete")
    run, (job,) = _run(target, Job.RUNNING, skipped=[{"kind": "db_scan", "why": "no DB URL"}])
    job.succeed({}, "pass")
    run.settle()
    assert run.verdict == "incomplete"


# --- the run page -------------------------------------------------------------


@pytest.mark.django_db
def test_the_run_page_says_running_while_a_job_runs_and_offers_cancel(client, qa_engineer, target):
    run, (probe, _scan) = _run(target, Job.RUNNING, Job.WAITING)
    probe.progress = 50
    probe.save()
    client.force_login(qa_engineer)
    page = client.get(reverse("run_detail", args=[run.pk])).content.decode()
    assert '<span class="badge running">Running</span>' in page  # the status in words
    assert "Cancel run" in page and "25 %" in page


@pytest.mark.django_db
def test_the_live_fragment_drops_cancel_and_shows_the_cancelled_verdict(
    client, qa_engineer, target
):
    run, (probe, scan) = _run(target, Job.RUNNING, Job.QUEUED)
    Job.objects.filter(pk=probe.pk).update(progress=60)
    probe.refresh_from_db()
    probe.request_cancel()
    probe.confirm_cancelled()
    scan.request_cancel()
    run.settle()
    client.force_login(qa_engineer)
    response = client.get(reverse("run_live", args=[run.pk]), HTTP_HX_REQUEST="true")
    fragment = response.content.decode()
    assert response.status_code == 286  # polling stops
    assert "Cancel run" not in fragment
    assert "verdict-cancelled" in fragment and "verdict: cancelled" in fragment
    assert "100 %" not in fragment and "30 %" in fragment


# --- phases and tasks -----------------------------------------------------------


@pytest.mark.django_db
def test_a_phase_closed_by_override_says_so_instead_of_done_at_0_percent(
    client, manager, initiative
):
    phase = initiative.phases.get(number=1)
    GateSignoff.objects.create(
        phase=phase, signed_by=manager, override=True, override_reason="baseline taken by hand"
    )
    type(phase).objects.filter(pk=phase.pk).update(status="done")
    client.force_login(manager)
    page = client.get(reverse("initiative_detail", args=[initiative.pk])).content.decode()
    assert (
        "Done: closed with 0 % of its tasks done, by a gate override: baseline taken by hand"
        in page
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("verdict", "status", "state"),
    [("pass", "done", "met"), ("fail", "todo", "not_met"), ("incomplete", "todo", "unknown")],
)
def test_a_task_whose_run_passed_moves_to_done(initiative, target, verdict, status, state):
    task = PhaseTask.objects.get(phase__initiative=initiative, title="Analyze performance")
    run = Run.objects.create(
        target=target, mode="performance", task=task, initiative=initiative, verdict=verdict
    )
    Job.objects.create(run=run, target=target, kind="probe", status=Job.SUCCEEDED, verdict=verdict)
    criteria.check_after_run(run)
    task.refresh_from_db()
    assert (task.status, task.criterion_state, task.criterion_run) == (status, state, run)
    assert f"run #{run.pk}: {verdict}" in task.criterion_detail


@pytest.mark.django_db
def test_a_gate_speaks_the_vocabulary_and_missing_evidence_is_never_pass(
    client, manager, initiative, monkeypatch
):
    phase = initiative.phases.get(number=1)
    client.force_login(manager)
    url = reverse("phase_gate", args=[phase.pk])
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "verdict-pass" not in fragment and "evidence missing" in fragment
    checks = [gates.Check("a", "A", True, ""), gates.Check("b", "B", None, "no benchmark yet")]
    monkeypatch.setattr(gates, "evaluate", lambda phase: checks)
    fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert '<span class="badge verdict-incomplete">incomplete</span>' in fragment
    assert 'aria-label="incomplete"' in fragment and 'aria-label="pass"' in fragment


@pytest.mark.django_db
def test_a_run_is_running_as_soon_as_a_worker_claims_its_first_job(target):
    run, (job, _later) = _run(target, Job.QUEUED, Job.WAITING)
    Run.objects.filter(pk=run.pk).update(status="queued")
    assert job.claim("worker-1")
    run.refresh_from_db()
    assert run.status == "running"


@pytest.mark.django_db
def test_the_job_page_says_what_an_incomplete_verdict_misses(client, qa_engineer, target):
    _, (job,) = _run(target, Job.RUNNING)
    reason = "db.avg_query_time: pg_stat_statements: not installed — fix: CREATE EXTENSION"
    job.succeed({"verdict_reason": reason}, "incomplete")
    client.force_login(qa_engineer)
    page = client.get(reverse("job_detail", args=[job.pk])).content.decode()
    assert "verdict-incomplete" in page and "CREATE EXTENSION" in page


@pytest.mark.django_db
def test_task_criteria_show_in_the_verdict_vocabulary(client, manager, initiative, target):
    task = PhaseTask.objects.filter(phase__initiative=initiative).first()
    criterion = {"kind": "finding_gone", "text": "FSA101 gone on re-scan", "finding": 0}
    states = {"met": "pass", "not_met": "fail", "unknown": "incomplete", "": "pending"}
    client.force_login(manager)
    for state, word in states.items():
        PhaseTask.objects.filter(pk=task.pk).update(criterion=criterion, criterion_state=state)
        page = client.get(reverse("initiative_detail", args=[initiative.pk])).content.decode()
        badge = f'<span class="badge crit-{state or "pending"}" title="">{word}</span>'
        assert badge in page, word
