"""Findings into work: who owns a finding, tasks made from findings, criteria checked by runs."""

import datetime
import hashlib

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.jobs import landing
from optimizations.models import Finding, Job, Measurement, PhaseTask, Run, TargetService
from optimizations.work import criteria, routing, triage
from portal.models import AuditEvent
from tests.conftest import PERSONAS

NOW = timezone.now()


def finding(target, rule="FSA101", *, source="code", category="performance", **fields):
    fields.setdefault("title", f"{rule} problem")
    fields.setdefault("severity", "high")
    fields.setdefault("location", "app/items.py:42")
    # Fingerprints are sha256 hex digests (64 characters, which PostgreSQL enforces).
    key = f"{rule}-{fields['location']}-{fields['title']}"
    fields.setdefault("fingerprint", hashlib.sha256(key.encode()).hexdigest())
    return Finding.objects.create(
        target=target,
        source=source,
        rule_id=rule,
        category=category,
        first_seen_at=NOW - datetime.timedelta(hours=1),
        last_seen_at=NOW,
        **fields,
    )


def landed_run(target, *jobs):
    """A finished run with succeeded jobs of these kinds (summary per kind optional)."""
    run = Run.objects.create(target=target, mode="performance", status="succeeded", finished_at=NOW)
    made = []
    for kind, summary in jobs:
        made.append(
            Job.objects.create(
                run=run,
                target=target,
                kind=kind,
                status=Job.SUCCEEDED,
                summary=summary,
                finished_at=NOW,
            )
        )
    return run, made


# --- routing -----------------------------------------------------------------------

ROUTES = [
    # (source, category, rule) → (department, phase)
    ("code", "performance", "FSA101", "dev", 2),
    ("code", "async", "FSA201", "dev", 2),
    ("db", "performance", "db.fk_without_index", "dev", 2),
    ("db", "architecture", "db.pool_usage", "strategy", 3),
    ("db", "configuration", "db.settings", "strategy", 3),
    ("db", "reliability", "db.replication", "strategy", 3),
    ("probe", "monitoring", "probe.no_metrics", "strategy", 3),
    ("security", "security", "sec.cors", "qa", 4),
    ("code", "security", "FSA301", "qa", 4),
    ("security", "performance", "sec.compression", "dev", 2),
    ("security", "correctness", "sec.negative_testing", "qa", 4),
    ("code", "testing", "FSA501", "qa", 4),
    ("runbook", "operations", "runbook.missing", "hr", 3),
    ("benchmark", "reliability", "benchmark.operation_errors", "dev", 2),
    ("availability", "other", "availability.down", "strategy", 3),
]


@pytest.mark.parametrize(("source", "category", "rule", "department", "phase"), ROUTES)
def test_a_finding_belongs_to_the_department_of_its_category(
    target, source, category, rule, department, phase
):
    made = finding(target, rule, source=source, category=category)
    route = routing.route(made)
    assert (route.department, route.phase) == (department, phase)
    # The SQL version used for filters and counts agrees with the Python one.
    owner = Finding.objects.annotate(owner=routing.department_case()).get(pk=made.pk).owner
    assert owner == department


# --- making tasks --------------------------------------------------------------------


def test_findings_become_tasks_in_the_owning_departments_phase(initiative, manager, target):
    code = finding(target, "FSA101")
    pool = finding(target, "db.pool_usage", source="db", category="architecture", location="")
    cors = finding(target, "sec.cors", source="security", category="security", location="/")
    outcome = triage.do_make_tasks(manager, initiative, [code, pool, cors])
    assert len(outcome.created) == 3 and not outcome.skipped
    tasks = {t.finding_id: t for t in PhaseTask.objects.filter(finding__isnull=False)}
    assert (tasks[code.pk].phase.number, tasks[code.pk].department.code) == (2, "dev")
    assert (tasks[pool.pk].phase.number, tasks[pool.pk].department.code) == (3, "strategy")
    assert (tasks[cors.pk].phase.number, tasks[cors.pk].department.code) == (4, "qa")
    assert tasks[code.pk].criterion == {
        "kind": "finding_gone",
        "finding": code.pk,
        "source": "code",
        "text": "FSA101 at app/items.py:42 gone on re-scan",
    }
    assert tasks[code.pk].criterion_state == "pending"
    assert AuditEvent.objects.filter(action="task.from_finding").count() == 3
    assert "3 tasks" in outcome.message()


def test_a_finding_gets_one_task_per_initiative_and_closed_findings_none(
    initiative, manager, target
):
    open_one = finding(target, "FSA101")
    fixed = finding(target, "FSA102", status=Finding.FIXED)
    triage.do_make_tasks(manager, initiative, [open_one])
    outcome = triage.do_make_tasks(manager, initiative, [open_one, fixed])
    assert outcome.created == []
    assert sorted(why for _, why in outcome.skipped) == ["already a task", "already fixed"]
    assert PhaseTask.objects.filter(finding=open_one).count() == 1


def test_a_slow_operation_becomes_a_latency_criterion_at_the_measured_rate(
    initiative, manager, target
):
    _, (job,) = landed_run(target, ("benchmark", {"offered_rate": 50.0, "rps": 49.8}))
    slow = finding(
        target,
        "benchmark.slow_operation",
        source="benchmark",
        location="GET /items",
        last_job=job,
    )
    triage.do_make_tasks(manager, initiative, [slow])
    task = PhaseTask.objects.get(finding=slow)
    assert task.criterion["kind"] == "metric"
    assert task.criterion["text"] == "average of GET /items ≤ 100 ms at 50 req/s"


def test_the_assignee_of_a_finding_takes_its_task_when_in_that_department(
    initiative, manager, dev_engineer, qa_engineer, target
):
    mine = finding(target, "FSA101", assignee=dev_engineer)
    not_mine = finding(target, "FSA102", assignee=qa_engineer)
    triage.do_make_tasks(manager, initiative, [mine, not_mine])
    assert PhaseTask.objects.get(finding=mine).assignee == dev_engineer
    assert PhaseTask.objects.get(finding=not_mine).assignee is None


# --- criteria checked when a run lands -------------------------------------------------


def test_a_task_closes_itself_when_its_finding_is_gone_on_rescan(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run, (scan,) = landed_run(target, ("code_scan", {}))
    # The runner marked the finding fixed: its check ran and no longer found it.
    Finding.objects.filter(pk=made.pk).update(status=Finding.FIXED, fixed_at=NOW, fixed_in_job=scan)
    closed = criteria.check_after_run(run)
    task = PhaseTask.objects.get(finding=made)
    assert closed == [task]
    assert task.status == PhaseTask.DONE
    assert task.criterion_state == "met"
    assert task.criterion_run == run
    assert f"code scan #{scan.pk}" in task.criterion_detail
    event = AuditEvent.objects.get(action="task.criterion_met")
    assert "closed itself" in event.summary and event.actor is None


def test_a_task_stays_open_while_its_finding_is_still_reported(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run, (scan,) = landed_run(target, ("code_scan", {}))
    Finding.objects.filter(pk=made.pk).update(last_job=scan)
    assert criteria.check_after_run(run) == []
    task = PhaseTask.objects.get(finding=made)
    assert (task.status, task.criterion_state) == (PhaseTask.TODO, "not_met")
    assert task.criterion_detail == f"still reported by code scan #{scan.pk}"


def test_a_run_that_did_not_rescan_leaves_the_criterion_alone(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run, _ = landed_run(target, ("db_scan", {}))
    Finding.objects.filter(pk=made.pk).update(status=Finding.FIXED)
    assert criteria.check_after_run(run) == []
    task = PhaseTask.objects.get(finding=made)
    assert (task.status, task.criterion_state) == (PhaseTask.TODO, "pending")


def test_a_scan_that_could_not_run_the_check_says_so(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run, _ = landed_run(target, ("code_scan", {}))
    criteria.check_after_run(run)
    task = PhaseTask.objects.get(finding=made)
    assert task.criterion_state == "unknown"
    assert "could not run the check" in task.criterion_detail


def _metric_task(initiative, manager, target, at_rate=50.0):
    _, (job,) = landed_run(target, ("benchmark", {"offered_rate": at_rate}))
    slow = finding(
        target, "benchmark.slow_operation", source="benchmark", location="GET /items", last_job=job
    )
    triage.do_make_tasks(manager, initiative, [slow])
    return PhaseTask.objects.get(finding=slow)


def _benchmark(target, rate, avg):
    run, (job,) = landed_run(target, ("benchmark", {"offered_rate": rate}))
    Measurement.objects.create(
        target=target,
        run=run,
        job=job,
        name="http.latency.avg",
        value=avg,
        unit="ms",
        labels={"operation": "GET /items"},
        measured_at=NOW,
    )
    # Another operation and a per-second row must not be read by mistake.
    Measurement.objects.create(
        target=target,
        run=run,
        job=job,
        name="http.latency.avg",
        value=1.0,
        unit="ms",
        labels={"operation": "GET /health"},
        measured_at=NOW,
    )
    return run


@pytest.mark.parametrize(
    ("rate", "avg", "state", "status"),
    [
        (50.0, 42.0, "met", PhaseTask.DONE),
        (50.0, 180.0, "not_met", PhaseTask.TODO),
        (10.0, 42.0, "unknown", PhaseTask.TODO),
    ],
)
def test_a_latency_criterion_is_judged_at_no_lower_a_rate(
    initiative, manager, target, rate, avg, state, status
):
    task = _metric_task(initiative, manager, target)
    run = _benchmark(target, rate, avg)
    criteria.check_after_run(run)
    task.refresh_from_db()
    assert (task.criterion_state, task.status) == (state, status)
    if state == "unknown":
        assert task.criterion_detail.endswith("ran at 10 req/s; the criterion needs 50 req/s")


def test_a_task_done_by_hand_is_not_touched(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    PhaseTask.objects.filter(finding=made).update(status=PhaseTask.DONE)
    run, _ = landed_run(target, ("code_scan", {}))
    assert criteria.check_after_run(run) == []
    assert PhaseTask.objects.get(finding=made).criterion_state == "pending"


def test_the_runner_checks_criteria_when_the_run_lands(initiative, manager, target):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    run = Run.objects.create(target=target, mode="performance")
    job = Job.objects.create(run=run, target=target, kind="code_scan", status=Job.SUCCEEDED)
    Finding.objects.filter(pk=made.pk).update(status=Finding.FIXED, fixed_at=NOW, fixed_in_job=job)
    landing.finish(job)
    assert PhaseTask.objects.get(finding=made).status == PhaseTask.DONE


# --- pages -------------------------------------------------------------------------------


def test_the_initiative_findings_page_shows_owner_and_task(
    login, viewer, initiative, manager, target, django_assert_max_num_queries
):
    made = finding(target, "FSA101")
    finding(target, "db.pool_usage", source="db", category="architecture", location="")
    triage.do_make_tasks(manager, initiative, [made])
    client = login(viewer)
    url = reverse("initiative_findings", args=[initiative.pk])
    # Session, user, time zone, roles, initiative, count, page, tasks, departments,
    # open counts by owner, people: flat in the number of findings (next test).
    with django_assert_max_num_queries(15):
        response = client.get(url)
    page = response.content.decode()
    assert response.status_code == 200
    assert "FSA101 at app/items.py:42 gone on re-scan" in page
    assert "Strategy" in page and "Development" in page
    # Viewers read; they get no bulk actions.
    assert "Apply to the chosen findings" not in page
    only_strategy = client.get(url, {"department": "strategy", "status": "open"})
    assert "db.pool_usage" in only_strategy.content.decode()
    assert "FSA101" not in only_strategy.content.decode()


def test_the_findings_page_costs_the_same_queries_for_many_findings(
    login, manager, initiative, target
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = login(manager)
    url = reverse("initiative_findings", args=[initiative.pk])
    finding(target, "FSA101")
    client.get(url)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for n in range(40):
        made = finding(target, f"FSA{n}", location=f"app/m{n}.py:1")
        if n % 2:
            triage.do_make_tasks(manager, initiative, [made])
    with CaptureQueriesContext(connection) as many:
        client.get(url)
    assert len(many) == len(few)


ALLOWED = {"manager", "dev_engineer", "qa_engineer", "strategist"}


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_bulk_make_tasks_by_role(request, login, persona, initiative, target):
    made = finding(target, "FSA101")
    client = login(persona)
    response = client.post(
        reverse("initiative_findings_bulk", args=[initiative.pk]),
        {"action": "tasks", "findings": [made.pk]},
    )
    name = request.node.callspec.params["persona"]
    if name in ALLOWED:
        assert response.status_code == 302
        assert PhaseTask.objects.filter(finding=made).count() == 1
    else:
        assert response.status_code == 403
        assert not PhaseTask.objects.filter(finding=made).exists()


def test_bulk_status_needs_a_reason_and_then_applies_to_all(login, manager, initiative, target):
    first, second = finding(target, "FSA101"), finding(target, "FSA102")
    client = login(manager)
    url = reverse("initiative_findings_bulk", args=[initiative.pk])
    response = client.post(
        url, {"action": "status", "status": "wont_fix", "findings": [first.pk, second.pk]}
    )
    assert response.status_code == 302
    assert set(Finding.objects.values_list("status", flat=True)) == {Finding.OPEN}
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Say why the findings are “won't fix”: a reason is required."]
    client.post(
        url,
        {
            "action": "status",
            "status": "wont_fix",
            "reason": "legacy endpoint, retired in Q3",
            "findings": [first.pk, second.pk],
        },
    )
    assert set(Finding.objects.values_list("status", "status_reason")) == {
        ("wont_fix", "legacy endpoint, retired in Q3")
    }


def test_bulk_assign_and_everything_matching_the_filter(
    login, manager, dev_engineer, initiative, target
):
    finding(target, "FSA101")
    finding(target, "FSA102")
    finding(target, "db.pool_usage", source="db", category="architecture", location="")
    client = login(manager)
    client.post(
        reverse("initiative_findings_bulk", args=[initiative.pk]),
        {
            "action": "assign",
            "assignee": dev_engineer.pk,
            "everything": "1",
            "query": "department=dev&status=open",
        },
    )
    assigned = set(Finding.objects.filter(assignee=dev_engineer).values_list("rule_id", flat=True))
    assert assigned == {"FSA101", "FSA102"}


def test_findings_of_another_target_cannot_be_planned_here(login, manager, initiative, departments):
    other = TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=departments["dev"],
    )
    foreign = finding(other, "FSA101")
    client = login(manager)
    client.post(
        reverse("initiative_findings_bulk", args=[initiative.pk]),
        {"action": "tasks", "findings": [foreign.pk]},
    )
    assert not PhaseTask.objects.filter(finding=foreign).exists()


def test_make_a_task_from_the_finding_page(login, dev_engineer, initiative, target):
    made = finding(target, "FSA101")
    client = login(dev_engineer)
    page = client.get(reverse("finding_detail", args=[made.pk])).content.decode()
    assert f"Make a task in “{initiative.title}”" in page
    response = client.post(
        reverse("initiative_findings_bulk", args=[initiative.pk]),
        {"action": "tasks", "findings": made.pk, "next": made.get_absolute_url()},
    )
    assert response["Location"] == made.get_absolute_url()
    page = client.get(made.get_absolute_url()).content.decode()
    assert "phase 2" in page and "gone on re-scan" in page
    assert 'Owned by <span class="badge dept-dev">Development</span>' in page
    assert "Make a task in" not in page


def test_tasks_from_findings_load_their_form_when_opened(
    login, dev_engineer, viewer, manager, initiative, target
):
    made = finding(target, "FSA101")
    triage.do_make_tasks(manager, initiative, [made])
    task = PhaseTask.objects.get(finding=made)
    client = login(dev_engineer)
    board = client.get(reverse("initiative_detail", args=[initiative.pk])).content.decode()
    assert f'hx-get="{reverse("task_update", args=[task.pk])}"' in board
    assert f'name="t{task.pk}-status"' not in board  # no form until opened
    card = client.get(reverse("task_update", args=[task.pk]), HTTP_HX_REQUEST="true")
    assert card.status_code == 200
    assert f'name="t{task.pk}-status"' in card.content.decode()
    assert "<details open>" in card.content.decode()
    assert login(viewer).get(reverse("task_update", args=[task.pk])).status_code == 403
