"""Findings have one owner (optimizations.work.findings): only a re-scan fixes, people triage
with a reason, tasks close on re-scan evidence, one query API."""

import pytest
from django.urls import reverse

from optimizations.analyzers.base import AnalysisResult, CheckOutcome, FindingData
from optimizations.models import Finding, Job, PhaseTask, Run
from optimizations.work import criteria, findings, triage
from portal.models import AuditEvent
from tests.optimizations.test_work import finding, landed_run

pytestmark = pytest.mark.django_db


def _scan_result(*reported, checks=("FSA101",), status="passed"):
    return AnalysisResult(
        findings=[
            FindingData(rule, f"{rule} problem", "high", "performance", location=loc)
            for rule, loc in reported
        ],
        checks=[CheckOutcome(check, status) for check in checks],
    )


def _job(target, kind="code_scan"):
    run = Run.objects.create(target=target, mode="performance")
    return Job.objects.create(run=run, target=target, kind=kind, status=Job.RUNNING)


def test_fixed_cannot_be_set_by_hand(target, dev_engineer):
    made = finding(target, "FSA101")
    with pytest.raises(findings.NotSettable, match="re-scan"):
        findings.set_status(dev_engineer, [made], Finding.FIXED, "I fixed it")
    with pytest.raises(findings.NotSettable):
        triage.do_triage_findings(dev_engineer, [made], Finding.FIXED, "I fixed it")
    made.refresh_from_db()
    assert made.status == Finding.OPEN
    assert Finding.FIXED not in dict(Finding.SETTABLE)


@pytest.mark.parametrize("status", [Finding.ACCEPTED, Finding.WONT_FIX, Finding.FALSE_POSITIVE])
def test_a_persons_triage_needs_a_reason_and_is_audited(target, dev_engineer, status):
    made = finding(target, "FSA101")
    with pytest.raises(findings.NotSettable, match="reason is required"):
        findings.set_status(dev_engineer, [made], status, "  ")
    assert findings.set_status(dev_engineer, [made], status, "behind the VPN") == 1
    made.refresh_from_db()
    assert (made.status, made.status_reason, made.status_changed_by) == (
        status,
        "behind the VPN",
        dev_engineer,
    )
    assert "behind the VPN" in AuditEvent.objects.get(action="finding.status").summary


def test_the_triage_form_refuses_fixed(login, dev_engineer, target):
    made = finding(target, "FSA101")
    response = login(dev_engineer).post(
        reverse("finding_status", args=[made.pk]), {"status": "fixed", "reason": "done"}
    )
    assert response.status_code in (200, 302)
    made.refresh_from_db()
    assert made.status == Finding.OPEN


def test_only_a_rescan_that_ran_the_check_fixes_and_names_its_job(target):
    made = finding(target, "FSA101", location="app/items.py:42")
    job = _job(target)
    # The check could not run: nothing is fixed.
    findings.record_result(job, "code", _scan_result(status="unknown"), made.last_seen_at)
    made.refresh_from_db()
    assert made.status == Finding.OPEN
    # Another check ran: not this finding's.
    findings.record_result(job, "code", _scan_result(checks=("FSA999",)), made.last_seen_at)
    made.refresh_from_db()
    assert made.status == Finding.OPEN
    reported, fixed = findings.record_result(job, "code", _scan_result(), made.last_seen_at)
    made.refresh_from_db()
    assert (reported, fixed) == (set(), 1)
    assert (made.status, made.fixed_in_job) == (Finding.FIXED, job)
    assert f"job #{job.pk}" in made.status_reason


def test_a_fixed_finding_reported_again_reopens(target):
    job = _job(target)
    result = _scan_result(("FSA101", "app/items.py:42"))
    findings.record_result(job, "code", result, job.created_at)
    made = Finding.objects.get()
    findings.record_result(job, "code", _scan_result(), job.created_at)
    made.refresh_from_db()
    assert made.status == Finding.FIXED
    later = _job(target)
    findings.record_result(later, "code", result, later.created_at)
    made.refresh_from_db()
    assert (made.status, made.fixed_in_job, made.fixed_at) == (Finding.OPEN, None, None)
    assert f"came back in job #{later.pk}" in made.status_reason


def test_a_task_closes_only_on_rescan_evidence(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run, (scan,) = landed_run(target, ("code_scan", {}))
    # "fixed" without a job that re-ran the check (a row from before the service): not evidence.
    Finding.objects.filter(pk=made.pk).update(status=Finding.FIXED)
    assert criteria.check_after_run(run) == []
    task = PhaseTask.objects.get(finding=made)
    assert task.status != PhaseTask.DONE and task.criterion_state == "unknown"
    Finding.objects.filter(pk=made.pk).update(fixed_in_job=scan)
    assert criteria.check_after_run(run) == [task]


def test_one_query_api_for_list_export_and_api(target):
    finding(target, "FSA101", title="N+1 in orders")
    finding(target, "db.slow", source="db", title="slow select", location="db")
    fixed = finding(target, "FSA102", status=Finding.FIXED, location="app/x.py:1")
    base = Finding.objects.filter(target=target)
    assert findings.filters_from({})["status"] == Finding.OPEN  # no status: open ones
    assert findings.filter_findings(base, findings.filters_from({})).count() == 2
    assert list(findings.filter_findings(base, {"status": "fixed"})) == [fixed]
    chosen = findings.filters_from({"q": "orders", "source": "code"})
    narrowed = findings.filter_findings(base, chosen)
    assert [f.rule_id for f in narrowed] == ["FSA101"]
