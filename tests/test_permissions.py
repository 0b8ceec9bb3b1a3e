"""Who may do what, checked server-side for every write view and every persona."""

import hashlib
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from departments.models import Membership
from optimizations.models import (
    Finding,
    Job,
    JobArtifact,
    JobLog,
    PhaseTask,
    Run,
    Schedule,
    WebhookEndpoint,
)
from optimizations.observe import incidents
from tests.conftest import PERSONAS

ENGINEERS = {"dev_engineer", "qa_engineer", "strategist"}
# Incident response is HR's; managers and engineers respond too.
RESPONDERS = {"manager", "hr_editor"} | ENGINEERS


def _task(initiative, department):
    return PhaseTask.objects.filter(
        phase__initiative=initiative, department__code=department
    ).first()


def _requests(initiative, target, departments, personas):
    """(name, method, url, data, personas allowed) for every write view."""
    phase = initiative.phases.get(number=2)
    hr_task = PhaseTask.objects.create(
        phase=phase, title="Write runbook", department=departments["hr"]
    )
    dev_task, qa_task, strategy_task = (
        _task(initiative, code) for code in ("dev", "qa", "strategy")
    )
    membership = Membership.objects.get(user=personas["viewer"])
    task_data = lambda task: {f"t{task.pk}-status": "doing", f"t{task.pk}-logged_hours": "1"}  # noqa: E731
    return [
        ("initiative create", "post", reverse("initiative_create"), {}, {"manager"}),
        (
            "initiative edit",
            "post",
            reverse("initiative_edit", args=[initiative.pk]),
            {},
            {"manager"},
        ),
        (
            "phase status",
            "post",
            reverse("phase_status", args=[phase.pk]),
            {"status": "active"},
            {"manager"},
        ),
        (
            "task create",
            "post",
            reverse("task_create", args=[phase.pk]),
            {"title": "x", "department": departments["dev"].pk},
            {"manager"},
        ),
        (
            "dev task",
            "post",
            reverse("task_update", args=[dev_task.pk]),
            task_data(dev_task),
            {"manager", "dev_engineer"},
        ),
        (
            "qa task",
            "post",
            reverse("task_update", args=[qa_task.pk]),
            task_data(qa_task),
            {"manager", "qa_engineer"},
        ),
        (
            "strategy task",
            "post",
            reverse("task_update", args=[strategy_task.pk]),
            task_data(strategy_task),
            {"manager", "strategist"},
        ),
        (
            "hr task",
            "post",
            reverse("task_update", args=[hr_task.pk]),
            task_data(hr_task),
            {"manager", "hr_editor"},
        ),
        ("target create", "post", reverse("target_create"), {}, {"manager"} | ENGINEERS),
        (
            "target edit",
            "post",
            reverse("target_edit", args=[target.slug]),
            {},
            {"manager"} | ENGINEERS,
        ),
        (
            "alert rules",
            "post",
            reverse("target_alert_rules", args=[target.slug]),
            {},
            {"manager"} | ENGINEERS,
        ),
        (
            "alert sources",
            "post",
            reverse("target_alert_sources", args=[target.slug]),
            {},
            {"manager"} | ENGINEERS,
        ),
        *_incident_requests(target),
        ("person add", "post", reverse("person_add"), {}, {"manager"}),
        ("membership set", "post", reverse("membership_set"), {}, {"manager"}),
        (
            "membership remove",
            "post",
            reverse("membership_remove", args=[membership.pk]),
            {},
            {"manager"},
        ),
        ("audit list", "get", reverse("audit_list"), {}, {"manager"}),
    ]


def _incident_requests(target):
    incident = incidents.open_from_alert(target, "test", "down", "Orders API is down")
    endpoint = WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook")
    return [
        *(
            (
                f"incident {action}",
                "post",
                reverse(f"incident_{action}", args=[incident.pk]),
                {},
                RESPONDERS,
            )
            for action in ("acknowledge", "assign", "escalate", "note", "runbook", "resolve")
        ),
        (
            "postmortem",
            "post",
            reverse("incident_postmortem", args=[incident.pk]),
            {},
            RESPONDERS,
        ),
        ("webhook add", "post", reverse("webhook_new"), {}, {"manager", "hr_editor"}),
        (
            "webhook toggle",
            "post",
            reverse("webhook_toggle", args=[endpoint.pk]),
            {},
            {"manager", "hr_editor"},
        ),
    ]


@pytest.fixture
def everyone(request):
    return {name: request.getfixturevalue(name) for name in PERSONAS}


def test_every_write_view_refuses_whoever_its_role_does_not_allow(
    client, initiative, target, departments, everyone
):
    for name, method, url, data, allowed in _requests(initiative, target, departments, everyone):
        for persona, user in everyone.items():
            client.force_login(user)
            response = getattr(client, method)(url, data)
            if persona in allowed:
                assert response.status_code != 403, f"{persona} was refused {name}"
            else:
                assert response.status_code == 403, f"{persona} was allowed {name}"


READ_PAGES: list[tuple[str, list[Any]]] = [
    ("dashboard", []),
    ("incident_list", []),
    ("delivery_log", []),
    ("operations_review", []),
    ("initiative_list", []),
    ("target_list", []),
    ("department_list", []),
    ("people", []),
    ("profile", []),
]


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_every_page(client, persona, initiative, target):
    client.force_login(persona)
    urls = [reverse(name, args=args) for name, args in READ_PAGES] + [
        initiative.get_absolute_url(),
        target.get_absolute_url(),
        reverse("department_detail", args=["qa"]),
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_anonymous_users_go_to_login(client, initiative, target):
    for url in ["/", initiative.get_absolute_url(), target.get_absolute_url(), "/people/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_a_viewer_sees_tasks_read_only_and_an_engineer_sees_their_own_editable(
    client, initiative, viewer, dev_engineer
):
    dev_task = _task(initiative, "dev")
    qa_task = _task(initiative, "qa")
    client.force_login(viewer)
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert f'hx-post="/tasks/{dev_task.pk}/"' not in page
    client.force_login(dev_engineer)
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert f'hx-post="/tasks/{dev_task.pk}/"' in page
    assert f'hx-post="/tasks/{qa_task.pk}/"' not in page


# --- the views that read one object through portal.access --------------------------

MANAGER = {"manager"}
TRIGGERS = {"manager"} | ENGINEERS
ROI_EDITORS = {"manager", "strategist"}


@pytest.fixture
def ended_job(target, qa_engineer):
    run = Run.objects.create(target=target, mode="performance", triggered_by=qa_engineer)
    job = Job.objects.create(run=run, kind="probe", target=target, triggered_by=qa_engineer)
    Job.objects.filter(pk=job.pk).update(status=Job.SUCCEEDED, log_lines=1)
    JobLog.objects.create(job=job, seq=1, at=timezone.now(), message="probe answered")
    JobArtifact.objects.create(
        job=job, name="report.json", content_type="application/json", content="{}"
    )
    job.refresh_from_db()
    return job


@pytest.fixture
def open_finding(target):
    now = timezone.now()
    return Finding.objects.create(
        target=target,
        source="code",
        rule_id="FSA101",
        category="performance",
        title="N+1 in GET /items",
        severity="high",
        location="app/items.py:42",
        fingerprint=hashlib.sha256(b"FSA101-app/items.py:42").hexdigest(),
        first_seen_at=now,
        last_seen_at=now,
    )


@pytest.fixture
def schedule(target, manager):
    return Schedule.objects.create(
        target=target, name="Nightly", mode="performance", cron="0 3 * * *", created_by=manager
    )


def _object_requests(initiative, target, job, finding, schedule):
    """(name, method, url, data, personas allowed) for the write views that name an
    object in their URL and were not in the table above. The data is refused by the
    forms where it can be, so the allowed personas change as little as possible."""
    phase = initiative.phases.get(number=1)
    run = job.run
    return [
        ("run start", "post", reverse("run_start", args=[target.slug]), {}, TRIGGERS),
        ("job start", "post", reverse("job_start", args=[target.slug, "probe"]), {}, TRIGGERS),
        ("job cancel", "post", reverse("job_cancel", args=[job.pk]), {}, TRIGGERS),
        ("job rerun", "post", reverse("job_rerun", args=[job.pk]), {}, TRIGGERS),
        ("run cancel", "post", reverse("run_cancel", args=[run.pk]), {}, TRIGGERS),
        ("run rerun", "post", reverse("run_rerun", args=[run.pk]), {}, TRIGGERS),
        ("run baseline", "post", reverse("run_pin_baseline", args=[run.pk]), {}, TRIGGERS),
        ("database test", "post", reverse("database_test", args=[target.slug]), {}, TRIGGERS),
        # can_edit_targets: the same people as TRIGGERS (managers and engineers).
        ("otlp token", "post", reverse("otlp_token_issue", args=[target.slug]), {}, TRIGGERS),
        ("schedule add", "post", reverse("schedule_create", args=[target.slug]), {}, MANAGER),
        ("schedule form", "get", reverse("schedule_edit", args=[schedule.pk]), {}, MANAGER),
        ("schedule edit", "post", reverse("schedule_edit", args=[schedule.pk]), {}, MANAGER),
        ("finding triage", "post", reverse("finding_status", args=[finding.pk]), {}, TRIGGERS),
        (
            "findings bulk",
            "post",
            reverse("initiative_findings_bulk", args=[initiative.pk]),
            {},
            TRIGGERS,
        ),
        ("gate sign", "post", reverse("phase_gate_sign", args=[phase.pk]), {}, MANAGER),
        (
            "roi assumptions",
            "post",
            reverse("initiative_roi", args=[initiative.pk]),
            {},
            ROI_EDITORS,
        ),
    ]


def test_every_object_write_view_refuses_whoever_its_role_does_not_allow(
    client, initiative, target, ended_job, open_finding, schedule, everyone
):
    requests = _object_requests(initiative, target, ended_job, open_finding, schedule)
    for name, method, url, data, allowed in requests:
        for persona, user in everyone.items():
            client.force_login(user)
            response = getattr(client, method)(url, data)
            if persona in allowed:
                assert response.status_code not in (403, 404), f"{persona} was refused {name}"
            else:
                assert response.status_code == 403, f"{persona} was allowed {name}"


def test_a_refused_user_learns_nothing_of_which_ids_exist(client, viewer, dev_engineer):
    """403 before the lookup: a missing and an existing object are refused alike."""
    client.force_login(viewer)
    for url in (
        reverse("job_cancel", args=[999999]),
        reverse("run_rerun", args=[999999]),
        reverse("finding_status", args=[999999]),
        reverse("run_start", args=["no-such-target"]),
    ):
        assert client.post(url).status_code == 403, url
    client.force_login(dev_engineer)
    assert client.post(reverse("job_cancel", args=[999999])).status_code == 404
    assert client.post(reverse("schedule_edit", args=[999999])).status_code == 403


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_every_object_page(
    client, persona, initiative, target, ended_job, open_finding
):
    client.force_login(persona)
    job, run = ended_job, ended_job.run
    phase = initiative.phases.get(number=1)
    urls = [
        reverse("run_detail", args=[run.pk]),
        reverse("run_live", args=[run.pk]),
        reverse("job_detail", args=[job.pk]),
        reverse("job_live", args=[job.pk]),
        reverse("job_log", args=[job.pk]),
        reverse("job_log_download", args=[job.pk]),
        reverse("job_artifact", args=[job.pk, "report.json"]),
        reverse("job_params", args=[target.slug, "probe"]),
        reverse("finding_detail", args=[open_finding.pk]),
        reverse("finding_list", args=[target.slug]),
        reverse("initiative_findings", args=[initiative.pk]),
        reverse("phase_gate", args=[phase.pk]),
        reverse("initiative_roi", args=[initiative.pk]),
        reverse("target_slo", args=[target.slug]),
        reverse("target_traces", args=[target.slug]),
        reverse("target_alerts", args=[target.slug]),
    ]
    # The polls and the gate are htmx fragments (opened directly, they send to their page).
    fragments = {urls[1], urls[3], reverse("phase_gate", args=[phase.pk])}
    for url in urls:
        headers = {"HX-Request": "true"} if url in fragments else {}
        # run_live and job_live stop the page's polling (286) once the work has ended.
        assert client.get(url, headers=headers).status_code in (200, 286), url
    missing = [
        reverse("job_detail", args=[999999]),
        reverse("run_detail", args=[999999]),
        reverse("finding_detail", args=[999999]),
        reverse("job_artifact", args=[job.pk, "nothing.txt"]),
    ]
    for url in missing:
        assert client.get(url).status_code == 404, url
