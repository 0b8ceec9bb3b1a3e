"""Training gates on load tests, and the Finding HR gets for each missing standard runbook."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from departments import actions
from departments.models import Runbook, TrainingGate
from departments.tasks import refresh_runbook_findings
from optimizations.jobs import housekeeping, landing
from optimizations.models import Finding, Run, Schedule, TargetService
from portal.access import missing_training, training_gate_refusal

RIGHT = {1: {2}, 2: {1, 2}}


@pytest.fixture
def gate(module, target):
    return TrainingGate.objects.create(target=target, module=module)


def test_without_a_gate_nothing_is_asked(module, target, qa_engineer):
    assert training_gate_refusal(qa_engineer, target, "benchmark") is None


def test_a_gate_asks_for_the_module_and_says_where_to_take_it(gate, target, qa_engineer):
    reason = training_gate_refusal(qa_engineer, target, "benchmark")
    assert "Load testing safely" in reason and gate.module.get_absolute_url() in reason
    # Other kinds of job are not gated.
    assert training_gate_refusal(qa_engineer, target, "db_scan") is None


def test_a_current_completion_opens_the_gate_until_it_expires(gate, target, qa_engineer):
    gate.module.recertify_after_days = 30
    gate.module.save()
    record = actions.do_start_training(qa_engineer, gate.module)
    actions.do_submit_quiz(qa_engineer, record, RIGHT)
    assert training_gate_refusal(qa_engineer, target, "benchmark") is None
    later = timezone.now() + datetime.timedelta(days=31)
    assert missing_training(qa_engineer, target, "benchmark", now=later) == [gate.module]


def test_an_unfinished_or_failed_training_does_not_open_the_gate(gate, target, qa_engineer):
    record = actions.do_start_training(qa_engineer, gate.module)
    actions.do_submit_quiz(qa_engineer, record, {1: {1}, 2: {1}})
    assert training_gate_refusal(qa_engineer, target, "benchmark") is not None


def test_runs_nobody_started_by_hand_pass_the_gate(gate, target):
    assert training_gate_refusal(None, target, "benchmark") is None


def test_a_blocked_step_links_to_the_training_and_starts_nothing(
    login, gate, make_runbook, target, qa_engineer
):
    runbook = make_runbook(body="```kaizen-run kind=benchmark\nrate: 5\nduration: 5\n```")
    runbook.targets.set([target])
    client = login(qa_engineer)
    page = client.get(runbook.get_absolute_url()).content.decode()
    step = page.split('id="step-1"')[1].split("</div>\n      </div>")[0]
    assert "asks for training first" in step
    assert f'href="{gate.module.get_absolute_url()}"' in step
    response = client.post(
        reverse("runbook_run_step", args=[runbook.slug, 1]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 422 and not Run.objects.exists()

    record = actions.do_start_training(qa_engineer, gate.module)
    actions.do_submit_quiz(qa_engineer, record, RIGHT)
    response = client.post(
        reverse("runbook_run_step", args=[runbook.slug, 1]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    assert Run.objects.get().jobs.get().kind == "benchmark"


# --- coverage findings -------------------------------------------------------------


def open_topics(target):
    return sorted(
        f.location.removeprefix("runbooks: ")
        for f in Finding.objects.filter(target=target, source="runbook", status=Finding.OPEN)
    )


def test_each_missing_standard_runbook_is_an_open_finding_for_hr(target, topics):
    counts = actions.sync_runbook_findings()
    assert counts == {"opened": 5, "fixed": 0, "reopened": 0}
    assert open_topics(target) == [
        "connection-pool-exhaustion",
        "incident-response",
        "load-test-procedure",
        "operations-manual",
        "slow-query-triage",
    ]
    finding = Finding.objects.get(location="runbooks: incident-response")
    assert (finding.rule_id, finding.category, finding.severity) == (
        "runbook.missing",
        "operations",
        "medium",
    )
    assert "template=incident-response" in finding.fix_hint
    assert actions.sync_runbook_findings() == {"opened": 0, "fixed": 0, "reopened": 0}


def test_publishing_the_runbook_fixes_its_finding_and_archiving_reopens_it(
    target, topics, make_runbook, hr_editor
):
    actions.sync_runbook_findings()
    runbook = make_runbook(targets=[target], topic_slugs=["connection-pool-exhaustion"])
    assert "connection-pool-exhaustion" not in open_topics(target)
    fixed = Finding.objects.get(location="runbooks: connection-pool-exhaustion")
    assert fixed.status == Finding.FIXED and runbook.title in fixed.status_reason

    actions.do_update_runbook_settings(hr_editor, runbook, status=Runbook.ARCHIVED)
    assert "connection-pool-exhaustion" in open_topics(target)


def test_a_draft_does_not_fix_the_finding(target, topics, make_runbook):
    actions.sync_runbook_findings()
    make_runbook(targets=[target], topic_slugs=["incident-response"], status=Runbook.DRAFT)
    assert "incident-response" in open_topics(target)


def test_a_triaged_finding_stays_as_a_person_decided(target, topics):
    actions.sync_runbook_findings()
    Finding.objects.filter(location="runbooks: operations-manual").update(
        status=Finding.WONT_FIX, status_reason="Covered by the platform manual"
    )
    actions.sync_runbook_findings()
    finding = Finding.objects.get(location="runbooks: operations-manual")
    assert (finding.status, finding.status_reason) == (
        Finding.WONT_FIX,
        "Covered by the platform manual",
    )


def test_a_new_target_gets_its_findings_from_the_periodic_task(topics, departments):
    newcomer = TargetService.objects.create(
        name="Search API",
        slug="search-api",
        base_url="http://127.0.0.1:8300",
        owner_department=departments["dev"],
    )
    refresh_runbook_findings.run()
    assert len(open_topics(newcomer)) == 5


def test_a_schedule_runs_past_the_gate_of_the_person_who_made_it(
    gate, target, qa_engineer, monkeypatch, broker_up
):
    monkeypatch.setattr(landing, "enqueue", lambda job: True)
    Schedule.objects.create(
        target=target,
        name="Regression sentinel",
        mode="quality",
        focus=["testing"],
        cron="0 3 * * 1",
        created_by=qa_engineer,
        next_run_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    assert training_gate_refusal(qa_engineer, target, "benchmark") is not None
    assert housekeeping.start_due_schedules() == 1
    run = Run.objects.get(trigger="schedule")
    assert run.triggered_by == qa_engineer
    assert run.jobs.filter(kind="benchmark").exists()
