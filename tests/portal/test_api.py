"""The JSON API: tokens, each endpoint, the same permissions as the portal, bounded queries."""

import dataclasses
from datetime import timedelta

import pytest
from django.utils import timezone

from optimizations.jobs import engine, kinds, landing, runner
from optimizations.models import Finding, Job, JobLog, Measurement, Run, TargetService
from portal.models import ApiToken, AuditEvent
from portal.tokens import do_create_token, do_revoke_token
from tests.conftest import PERSONAS
from tests.optimizations import fake_analyzer

WRITERS = {"manager", "dev_engineer", "qa_engineer", "strategist"}


@pytest.fixture(autouse=True)
def fake_kinds(monkeypatch, broker_up):
    """Every kind is the fake analyzer; nothing reaches a broker."""
    for name, kind in list(kinds.KINDS.items()):
        fake = dataclasses.replace(kind, module=fake_analyzer.__name__, needs=("base_url",))
        monkeypatch.setitem(kinds.KINDS, name, fake)
    sent = []
    monkeypatch.setattr(landing, "enqueue", lambda job: sent.append(job.pk) or True)
    return sent


@pytest.fixture
def api(client):
    """``api(user)`` → a client whose calls carry a fresh token of ``user``."""

    class Api:
        def __init__(self, user):
            self.token, self.key = do_create_token(user, "tests")
            self.headers = {"Authorization": f"Bearer {self.key}"}

        def get(self, url, **params):
            return client.get(url, params, headers=self.headers)

        def post(self, url, data=None):
            return client.post(
                url, data or {}, content_type="application/json", headers=self.headers
            )

    return Api


@pytest.fixture
def made_run(target, qa_engineer):
    """A run of two jobs (probe, code scan) as a worker left them: one ended, one running."""
    run = Run.objects.create(target=target, mode="performance", triggered_by=qa_engineer)
    probe = Job.objects.create(
        run=run,
        kind="probe",
        target=target,
        status=Job.SUCCEEDED,
        progress=100,
        verdict="pass",
        summary={"operations": 3, "findings": {"reported": 1, "fixed": 0}},
        triggered_by=qa_engineer,
    )
    scan = Job.objects.create(
        run=run, kind="code_scan", target=target, status=Job.RUNNING, progress=40, step="rules"
    )
    return run, probe, scan


def detail(response):
    return response.json()["detail"]


# --- tokens -----------------------------------------------------------------------


def test_without_a_token_the_api_answers_401_saying_how(client, viewer):
    response = client.get("/api/me")
    assert response.status_code == 401
    assert "Authorization: Bearer kz_…" in detail(response)
    assert response["WWW-Authenticate"] == 'Bearer realm="kaizen"'


def test_a_portal_session_is_not_a_token(client, login, qa_engineer):
    login(qa_engineer)
    response = client.get("/api/me")  # no redirect to the login page: an API answer
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Basic dXNlcjpwYXNz", "No API token"),
        ("Bearer", "No API token"),
        ("Bearer abc", "not a Kaizen API token"),
        ("Bearer kz_not-a-real-one", "Unknown API token"),
    ],
)
def test_wrong_credentials_are_refused_with_a_reason(client, viewer, header, message):
    response = client.get("/api/me", headers={"Authorization": header})
    assert response.status_code == 401 and message in detail(response)


def test_a_token_acts_as_its_owner(api, qa_engineer):
    caller = api(qa_engineer)
    response = caller.get("/api/me")
    assert response.status_code == 200
    assert response.json() == {
        "username": "aiko",
        "name": "",
        "roles": {"qa": "engineer"},
        "can_trigger_jobs": True,
        "token": caller.token.prefix,
    }


def test_a_revoked_token_is_refused_with_a_clear_message(api, qa_engineer):
    caller = api(qa_engineer)
    do_revoke_token(qa_engineer, caller.token)
    response = caller.get("/api/me")
    assert response.status_code == 401
    assert f"This API token ({caller.token.prefix}…) was revoked" in detail(response)


def test_a_disabled_account_is_refused(api, qa_engineer):
    caller = api(qa_engineer)
    qa_engineer.is_active = False
    qa_engineer.save()
    response = caller.get("/api/me")
    assert response.status_code == 401 and "disabled" in detail(response)


def test_only_the_hash_of_a_key_is_stored(api, qa_engineer):
    import hashlib

    caller = api(qa_engineer)
    token = ApiToken.objects.get()
    assert caller.key.startswith("kz_") and len(caller.key) == 43
    assert token.key_hash == hashlib.sha256(caller.key.encode()).hexdigest()
    assert token.prefix == caller.key[:10]
    stored = " ".join(str(value) for value in ApiToken.objects.values().get().values())
    assert caller.key not in stored


def test_last_used_is_written_at_most_once_a_minute(api, qa_engineer, django_assert_num_queries):
    caller = api(qa_engineer)
    assert caller.token.last_used_at is None
    caller.get("/api/me")
    first = ApiToken.objects.get().last_used_at
    assert first is not None
    with django_assert_num_queries(2):  # the token with its user, the roles: no write
        caller.get("/api/me")
    assert ApiToken.objects.get().last_used_at == first
    ApiToken.objects.update(last_used_at=first - timedelta(seconds=61))
    caller.get("/api/me")
    assert ApiToken.objects.get().last_used_at > first


# --- starting runs and jobs -----------------------------------------------------------


def test_start_a_run(api, qa_engineer, target, fake_kinds):
    response = api(qa_engineer).post(
        "/api/runs",
        {
            "target": "orders-api",
            "mode": "performance",
            "focus": "fastapi,sqlalchemy",
            "params": {"benchmark": {"samples": 2}},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get()
    assert body["id"] == run.pk and body["url"] == f"/runs/{run.pk}/"
    assert (body["mode"], body["focus"], body["target"]) == (
        "performance",
        ["fastapi", "sqlalchemy"],
        "orders-api",
    )
    assert (body["status"], body["progress"], body["trigger"]) == ("queued", 0, "api")
    assert body["triggered_by"] == "aiko"
    assert [job["kind"] for job in body["jobs"]] == ["probe", "code_scan", "db_scan", "benchmark"]
    assert run.jobs.get(kind="benchmark").params["samples"] == 2
    assert (run.trigger, run.triggered_by) == ("api", qa_engineer)
    event = AuditEvent.objects.get(action="job.trigger")
    assert event.actor == qa_engineer and "via API" in event.summary


def test_start_a_run_linked_to_an_initiative(api, qa_engineer, target, initiative):
    response = api(qa_engineer).post(
        "/api/runs", {"target": "orders-api", "mode": "strategy", "initiative": initiative.pk}
    )
    assert response.status_code == 201
    assert response.json()["initiative_id"] == initiative.pk


@pytest.mark.parametrize(
    ("payload", "loc", "message"),
    [
        ({"mode": "fastest"}, ["body", "payload", "mode"], "Input should be"),
        ({"focus": ["security"]}, ["body", "payload", "focus"], "does not apply to performance"),
        (
            {"params": {"benchmark": {"nope": 1}}},
            ["body", "payload", "params", "benchmark", "nope"],
            "unknown parameter of benchmark",
        ),
        (
            {"params": {"benchmark": {"samples": "many"}}},
            ["body", "payload", "params", "benchmark", "samples"],
            "expected int",
        ),
        (
            {"params": {"bogus": {}}},
            ["body", "payload", "params", "bogus"],
            "unknown job kind",
        ),
        (
            {"focus": ["async"], "params": {"benchmark": {"samples": 1}}},
            ["body", "payload", "params", "benchmark"],
            "this run has no benchmark job",
        ),
    ],
)
def test_bad_input_is_422_with_field_errors(api, qa_engineer, target, payload, loc, message):
    response = api(qa_engineer).post(
        "/api/runs", {"target": "orders-api", "mode": "performance", **payload}
    )
    assert response.status_code == 422
    errors = detail(response)
    assert any(error["loc"] == loc and message in error["msg"] for error in errors), errors
    assert not Run.objects.exists()


def test_an_initiative_of_another_target_is_422(api, qa_engineer, initiative, departments):
    TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=departments["qa"],
    )
    response = api(qa_engineer).post(
        "/api/runs", {"target": "other", "mode": "strategy", "initiative": initiative.pk}
    )
    assert response.status_code == 422
    assert detail(response)[0]["loc"] == ["body", "payload", "initiative"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"target": "nope"}, "No target service “nope”."),
        ({"initiative": 99999}, "No initiative #99999."),
    ],
)
def test_unknown_objects_are_404(api, qa_engineer, target, payload, message):
    response = api(qa_engineer).post(
        "/api/runs", {"target": "orders-api", "mode": "quality", **payload}
    )
    assert response.status_code == 404 and detail(response) == message


def test_broker_down_is_503_with_the_engines_message(api, qa_engineer, target, monkeypatch):
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: "Connection refused")
    response = api(qa_engineer).post("/api/runs", {"target": "orders-api", "mode": "quality"})
    assert response.status_code == 503
    assert "The job queue (Celery broker) cannot be reached" in detail(response)
    assert not Run.objects.exists()


def test_a_run_of_which_nothing_can_start_is_409(api, qa_engineer, target, monkeypatch):
    for name, kind in list(kinds.KINDS.items()):
        monkeypatch.setitem(kinds.KINDS, name, dataclasses.replace(kind, needs=("database_url",)))
    response = api(qa_engineer).post("/api/runs", {"target": "orders-api", "mode": "strategy"})
    assert response.status_code == 409
    assert "No job of this run can start" in detail(response)


def test_start_a_single_job(api, dev_engineer, target):
    response = api(dev_engineer).post(
        "/api/jobs", {"target": "orders-api", "kind": "code_scan", "params": {"samples": 1}}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    job = Job.objects.get()
    assert (body["id"], body["kind"], body["status"], body["target"]) == (
        job.pk,
        "code_scan",
        "queued",
        "orders-api",
    )
    assert body["params"]["samples"] == 1 and job.run.mode == "custom"
    assert job.run.trigger == "api"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"kind": "nope"}, ["body", "payload", "kind"]),
        ({"params": {"wait": "later"}}, ["body", "payload", "params", "wait"]),
        ({"params": {"colour": "red"}}, ["body", "payload", "params", "colour"]),
    ],
)
def test_a_single_job_with_bad_input_is_422(api, dev_engineer, target, payload, loc):
    response = api(dev_engineer).post(
        "/api/jobs", {"target": "orders-api", "kind": "probe", **payload}
    )
    assert response.status_code == 422
    assert detail(response)[0]["loc"] == loc


# --- reading ---------------------------------------------------------------------------


def test_read_a_run_with_its_jobs(api, viewer, made_run):
    run, probe, scan = made_run
    response = api(viewer).get(f"/api/runs/{run.pk}")
    assert response.status_code == 200
    body = response.json()
    # The run has not settled yet: its status comes from its jobs.
    assert (body["status"], body["progress"], body["verdict"]) == ("running", 70, "")
    assert body["jobs"] == [
        {
            "id": probe.pk,
            "url": f"/jobs/{probe.pk}/",
            "kind": "probe",
            "status": "succeeded",
            "progress": 100.0,
            "step": "",
            "verdict": "pass",
            "error": "",
        },
        {
            "id": scan.pk,
            "url": f"/jobs/{scan.pk}/",
            "kind": "code_scan",
            "status": "running",
            "progress": 40.0,
            "step": "rules",
            "verdict": "",
            "error": "",
        },
    ]


def test_read_a_job_with_its_summary(api, outsider, made_run):
    _, probe, _ = made_run
    body = api(outsider).get(f"/api/jobs/{probe.pk}").json()
    assert body["summary"] == {"operations": 3, "findings": {"reported": 1, "fixed": 0}}
    assert (body["status"], body["verdict"], body["triggered_by"]) == ("succeeded", "pass", "aiko")
    assert body["run_id"] == probe.run_id


@pytest.mark.parametrize(
    "url", ["/api/runs/999", "/api/jobs/999", "/api/jobs/999/log", "/api/targets/nope/findings"]
)
def test_unknown_objects_read_404(api, viewer, url):
    response = api(viewer).get(url)
    assert response.status_code == 404 and detail(response).startswith("No ")


def test_log_lines_after_a_seq_page_by_page(api, viewer, made_run):
    _, _, scan = made_run
    now = timezone.now()
    JobLog.objects.bulk_create(
        JobLog(job=scan, seq=n, at=now, message=f"line {n}") for n in range(1, 26)
    )
    Job.objects.filter(pk=scan.pk).update(log_lines=25)
    caller = api(viewer)
    page = caller.get(f"/api/jobs/{scan.pk}/log", after=0, limit=10).json()
    assert [line["seq"] for line in page["lines"]] == list(range(1, 11))
    assert (page["next_after"], page["more"], page["total"]) == (10, True, 25)
    page = caller.get(f"/api/jobs/{scan.pk}/log", after=20, limit=10).json()
    assert [line["message"] for line in page["lines"]] == [f"line {n}" for n in range(21, 26)]
    assert (page["next_after"], page["more"], page["status"]) == (25, False, "running")
    page = caller.get(f"/api/jobs/{scan.pk}/log", after=25).json()
    assert (page["lines"], page["next_after"]) == ([], 25)
    assert caller.get(f"/api/jobs/{scan.pk}/log", limit=0).status_code == 422


def _findings(target, job, count):
    now = timezone.now()
    severities = ["low", "critical", "high", "medium"]
    Finding.objects.bulk_create(
        Finding(
            target=target,
            source="code" if n % 2 else "db",
            rule_id=f"FSA{100 + n}",
            severity=severities[n % 4],
            category="performance",
            title=f"problem {n}",
            fingerprint=f"print-{n}",
            status=Finding.FIXED if n % 5 == 0 else Finding.OPEN,
            first_seen_at=now,
            last_seen_at=now,
            last_job=job,
        )
        for n in range(count)
    )


def test_findings_of_a_target_filtered_and_paged(api, viewer, target, made_run):
    _, probe, _ = made_run
    _findings(target, probe, 40)
    caller = api(viewer)
    body = caller.get("/api/targets/orders-api/findings", limit=5).json()
    assert body["count"] == 40 and len(body["items"]) == 5
    assert body["items"][0]["severity"] == "critical"  # most severe first
    assert body["items"][0]["last_job_id"] == probe.pk
    everything = caller.get("/api/targets/orders-api/findings", limit=500).json()["items"]
    assert [f["id"] for f in everything[5:10]] == [
        f["id"]
        for f in caller.get("/api/targets/orders-api/findings", limit=5, offset=5).json()["items"]
    ]
    body = caller.get(
        "/api/targets/orders-api/findings", source="code", severity="critical", status="open"
    ).json()
    assert body["count"] == 8  # n = 1, 9, 13, 17, 21, 29, 33, 37
    assert {(f["source"], f["severity"], f["status"]) for f in body["items"]} == {
        ("code", "critical", "open")
    }
    assert caller.get("/api/targets/orders-api/findings", rule="fsa11").json()["count"] == 10
    assert caller.get("/api/targets/orders-api/findings", severity="dire").status_code == 422


def test_the_findings_list_costs_a_bounded_number_of_queries(
    api, viewer, target, made_run, django_assert_max_num_queries
):
    _, probe, _ = made_run
    _findings(target, probe, 200)
    caller = api(viewer)
    caller.get("/api/me")  # last_used_at written now, not below
    # token + user, target, count, page
    with django_assert_max_num_queries(4):
        response = caller.get("/api/targets/orders-api/findings", limit=200)
    assert len(response.json()["items"]) == 200


def _measurements(target, run, job):
    now = timezone.now()
    rows = [
        Measurement(
            target=target,
            run=run,
            job=job,
            name="http.latency.p95",
            value=12.5,
            unit="ms",
            measured_at=now,
        ),
        Measurement(
            target=target,
            run=run,
            job=job,
            name="http.throughput",
            value=900,
            unit="req/s",
            measured_at=now,
        ),
    ]
    rows += [
        Measurement(
            target=target,
            run=run,
            job=job,
            name="sample.achieved",
            value=100 + s,
            unit="req/s",
            second=s,
            measured_at=now,
        )
        for s in range(30)
    ]
    other = Run.objects.create(target=target, mode="custom")
    rows.append(
        Measurement(
            target=target,
            run=other,
            name="http.latency.p95",
            value=99,
            unit="ms",
            measured_at=now,
        )
    )
    Measurement.objects.bulk_create(rows)


def test_measurements_of_a_run_job_and_target(api, viewer, target, made_run):
    run, probe, _ = made_run
    _measurements(target, run, probe)
    caller = api(viewer)
    body = caller.get(f"/api/runs/{run.pk}/measurements").json()
    assert body["count"] == 2
    assert [(m["name"], m["value"], m["unit"]) for m in body["items"]] == [
        ("http.latency.p95", 12.5, "ms"),
        ("http.throughput", 900.0, "req/s"),
    ]
    assert body["items"][0]["job_id"] == probe.pk and body["items"][0]["second"] is None
    samples = caller.get(f"/api/jobs/{probe.pk}/measurements", name="sample.achieved", samples=True)
    assert samples.json()["count"] == 30
    assert [m["second"] for m in samples.json()["items"][:3]] == [0, 1, 2]
    latest = caller.get("/api/targets/orders-api/measurements", name="http.latency.p95").json()
    assert latest["count"] == 2 and latest["items"][0]["value"] == 99.0  # newest first
    assert caller.get("/api/runs/999/measurements").status_code == 404
    assert caller.get("/api/jobs/999/measurements").status_code == 404


def test_measurement_lists_cost_a_bounded_number_of_queries(
    api, viewer, target, made_run, django_assert_max_num_queries
):
    run, probe, _ = made_run
    _measurements(target, run, probe)
    caller = api(viewer)
    caller.get("/api/me")
    for url in (
        f"/api/runs/{run.pk}/measurements",
        f"/api/jobs/{probe.pk}/measurements",
        "/api/targets/orders-api/measurements",
    ):
        with django_assert_max_num_queries(4):
            assert caller.get(url, samples=True, limit=100).status_code == 200


def test_reading_a_run_costs_a_bounded_number_of_queries(
    api, viewer, made_run, django_assert_max_num_queries
):
    run, _, _ = made_run
    caller = api(viewer)
    caller.get("/api/me")
    with django_assert_max_num_queries(3):  # token + user, run + target + who, its jobs
        assert caller.get(f"/api/runs/{run.pk}").status_code == 200


# --- cancel and re-run -------------------------------------------------------------------


def test_cancel_a_queued_job_at_once_and_a_running_one_by_request(api, qa_engineer, made_run):
    run, probe, scan = made_run
    queued = Job.objects.create(run=run, kind="benchmark", target=run.target)
    caller = api(qa_engineer)
    body = caller.post(f"/api/jobs/{queued.pk}/cancel").json()
    assert body["status"] == "cancelled"
    body = caller.post(f"/api/jobs/{scan.pk}/cancel").json()
    assert (body["status"], body["cancel_requested"]) == ("running", True)
    body = caller.post(f"/api/jobs/{probe.pk}/cancel").json()
    assert body["status"] == "succeeded"  # it had ended: answered as it is
    assert AuditEvent.objects.filter(action="job.cancel", actor=qa_engineer).count() == 3


def test_cancel_a_run_cancels_its_unfinished_jobs(api, strategist, made_run):
    run, _, scan = made_run
    Job.objects.create(run=run, kind="benchmark", target=run.target)
    body = api(strategist).post(f"/api/runs/{run.pk}/cancel").json()
    assert [job["status"] for job in body["jobs"]] == ["succeeded", "running", "cancelled"]
    assert Job.objects.get(pk=scan.pk).cancel_requested


def test_rerun_a_run_with_the_same_parameters(api, manager, made_run, fake_kinds):
    run, probe, _ = made_run
    Job.objects.filter(pk=probe.pk).update(params={"wait": 0.25})
    response = api(manager).post(f"/api/runs/{run.pk}/rerun")
    assert response.status_code == 201
    body = response.json()
    again = Run.objects.get(pk=body["id"])
    assert again.pk != run.pk and (again.mode, again.trigger) == ("performance", "api")
    assert again.triggered_by == manager
    assert [job["kind"] for job in body["jobs"]] == ["probe", "code_scan"]
    assert again.jobs.get(kind="probe").params["wait"] == 0.25


def test_rerun_one_job(api, manager, made_run):
    _, _, scan = made_run
    response = api(manager).post(f"/api/jobs/{scan.pk}/rerun")
    assert response.status_code == 201
    assert [job["kind"] for job in response.json()["jobs"]] == ["code_scan"]


# --- who may write -----------------------------------------------------------------------


WRITES = [
    ("run", lambda run, probe, scan: ("/api/runs", {"target": "orders-api", "mode": "quality"})),
    ("job", lambda run, probe, scan: ("/api/jobs", {"target": "orders-api", "kind": "probe"})),
    ("cancel job", lambda run, probe, scan: (f"/api/jobs/{scan.pk}/cancel", None)),
    ("rerun job", lambda run, probe, scan: (f"/api/jobs/{probe.pk}/rerun", None)),
    ("cancel run", lambda run, probe, scan: (f"/api/runs/{run.pk}/cancel", None)),
    ("rerun run", lambda run, probe, scan: (f"/api/runs/{run.pk}/rerun", None)),
]


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
@pytest.mark.parametrize(("action", "request_for"), WRITES, ids=[name for name, _ in WRITES])
def test_write_permissions_per_persona(api, persona, action, request_for, made_run, request):
    run, probe, scan = made_run
    url, payload = request_for(run, probe, scan)
    runs_before = Run.objects.count()
    response = api(persona).post(url, payload)
    allowed = request.node.callspec.params["persona"] in WRITERS
    if allowed:
        assert response.status_code in (200, 201), response.content
    else:
        assert response.status_code == 403
        assert "only managers and engineers of dev, QA or strategy" in detail(response)
        assert Run.objects.count() == runs_before
        assert not Job.objects.filter(cancel_requested=True).exists()
        assert not AuditEvent.objects.filter(action__startswith="job.").exists()


def test_reads_are_open_to_everyone_signed_in(api, outsider, target, made_run):
    run, probe, _ = made_run
    caller = api(outsider)
    for url in (
        f"/api/runs/{run.pk}",
        f"/api/jobs/{probe.pk}",
        f"/api/jobs/{probe.pk}/log",
        "/api/targets/orders-api/findings",
        "/api/targets/orders-api/measurements",
    ):
        assert caller.get(url).status_code == 200, url


# --- a run that really runs -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_started_through_the_api_reports_what_its_jobs_found(
    api, qa_engineer, target, fake_kinds
):
    caller = api(qa_engineer)
    response = caller.post(
        "/api/runs",
        {
            "target": "orders-api",
            "mode": "performance",
            "focus": ["async"],
            "params": {"probe": {"findings": [["R1", "a.py:1"]], "log_lines": 3}},
        },
    )
    run_id = response.json()["id"]
    while fake_kinds:  # a worker: the probe, then what it released
        runner.execute(fake_kinds.pop(0), "test-worker")
    body = caller.get(f"/api/runs/{run_id}").json()
    assert (body["status"], body["verdict"], body["progress"]) == ("succeeded", "pass", 100)
    probe = body["jobs"][0]
    assert caller.get(f"/api/jobs/{probe['id']}").json()["summary"]["tracked"]["reported"] == 1
    log = caller.get(f"/api/jobs/{probe['id']}/log").json()
    assert [line["message"] for line in log["lines"]][-3:] == ["line 1", "line 2", "line 3"]
    findings = caller.get("/api/targets/orders-api/findings", status="open").json()
    assert [f["rule_id"] for f in findings["items"]] == ["R1"]
    measured = caller.get(f"/api/jobs/{probe['id']}/measurements", name="fake.value").json()
    assert measured["items"][0]["labels"] == {"operation": "GET /"}


# --- the description of the API ------------------------------------------------------------


def test_the_openapi_document_loads_without_a_token(client, db):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Kaizen API"
    assert document["components"]["securitySchemes"]["TokenAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    for path in (
        "/api/runs",
        "/api/jobs",
        "/api/runs/{run_id}",
        "/api/runs/{run_id}/rerun",
        "/api/jobs/{job_id}",
        "/api/jobs/{job_id}/cancel",
        "/api/jobs/{job_id}/log",
        "/api/targets/{slug}/findings",
        "/api/targets/{slug}/measurements",
        "/api/runs/{run_id}/measurements",
        "/api/jobs/{job_id}/measurements",
    ):
        assert path in document["paths"], path


def test_the_docs_page_is_a_portal_page_with_local_assets(client, login, viewer):
    assert client.get("/api/docs").status_code == 302  # to the login page
    login(viewer)
    page = client.get("/api/docs").content.decode()
    assert "/api/docs/assets/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "https://" not in page
    assert '"validatorUrl": null' in page


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css")],
)
def test_the_docs_assets_are_served_by_the_portal(client, db, name, content_type):
    response = client.get(f"/api/docs/assets/{name}")
    assert response.status_code == 200 and response["Content-Type"] == content_type
    assert len(response.content) > 10_000
    assert client.get("/api/docs/assets/..%2Fsettings.py").status_code == 404
