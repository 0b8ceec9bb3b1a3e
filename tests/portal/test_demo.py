"""The demo: plan data and assumptions only, a real baseline on the first start, the mode switch."""

import json

import pytest
from django.urls import reverse

from departments.models import Membership
from optimizations.jobs import engine, landing
from optimizations.models import Job, RoiAssumptions, Run, TargetService
from portal import demo_target
from portal.demo import DEMO_TARGET_SLUG, load_demo, start_baseline
from portal.models import AuditEvent
from tests.conftest import PERSONAS


@pytest.fixture
def demo(departments, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    assert load_demo("pw-demo-123456", "http://127.0.0.1:8100")
    return tmp_path


def test_the_demo_holds_assumptions_but_no_measurement(demo):
    row = RoiAssumptions.objects.get()
    assert row.changed_by.username == "strategy.manager"
    assert (row.cost_per_instance_month, row.currency, row.expected_peak_rps) == (350, "EUR", 20)
    assert row.hourly_rates == {"dev": 95.0, "qa": 85.0, "strategy": 110.0, "hr": 70.0}
    assert "replace them" in row.note
    assert not Run.objects.exists() and not Job.objects.exists()
    assert load_demo("pw-demo-123456", "http://127.0.0.1:8100") is False
    assert RoiAssumptions.objects.count() == 1


def test_the_first_start_runs_phase_ones_analyses_for_real(
    demo, monkeypatch, django_capture_on_commit_callbacks, broker_up
):
    sent = []
    monkeypatch.setattr(landing, "enqueue", lambda job: sent.append(job.kind) or True)
    with django_capture_on_commit_callbacks(execute=True):
        started = start_baseline()
    assert [(task.title, refusal) for task, _, refusal in started] == [
        ("Analyze performance", ""),
        ("Analyze performance", ""),
        ("Find bottlenecks", ""),
    ]
    baseline_set, *runs = [run for _, run, _ in started]
    # First the baseline set: 5 short load tests in one run, pinned as the target's baseline.
    jobs = list(baseline_set.jobs.order_by("pk"))
    assert [job.kind for job in jobs] == ["benchmark"] * 5
    assert {(job.params["mode"], job.params["duration"], job.params["rate"]) for job in jobs} == {
        ("load", 10.0, 20.0)
    }
    assert baseline_set.initiative.target.baseline_run_id == baseline_set.pk
    assert baseline_set.phase.number == 1
    assert [(r.mode, r.focus, r.phase.number) for r in runs] == [
        ("performance", ["fastapi", "sqlalchemy", "async"], 1),
        ("strategy", ["architecture", "scaling"], 1),
    ]
    assert {r.triggered_by.username for r in [baseline_set, *runs]} == {"qa.engineer"}
    # The set's first load test is sent and takes the target's lease; the other four
    # wait for it (one load at a time per target). In the runs, the probe goes first
    # and the rest wait for it.
    assert sent == ["benchmark", "probe", "probe"]
    first_test, *later = jobs
    assert first_test.status == Job.QUEUED
    assert all(job.status == Job.WAITING and job.waiting_for_id for job in later)
    kinds = set(Job.objects.values_list("kind", flat=True))
    assert {"benchmark", "probe"} <= kinds
    # Until the launcher registers the source tree, the code scan says why it waits.
    assert any("code_scan" in json.dumps(skip) for skip in runs[0].skipped)


def test_a_stopped_broker_is_reported_not_raised(demo, monkeypatch):
    monkeypatch.setattr(engine, "broker_reachable", lambda timeout=2.0: "connection refused")
    started = start_baseline()
    assert all(run is None and refusal for _, run, refusal in started)
    assert not Run.objects.exists()


def _state(var_dir, mode="slow"):
    path = demo_target.state_path(var_dir)
    path.write_text(
        json.dumps({"var_dir": str(var_dir), "mode": mode, "database_url": "sqlite:///x.db"})
    )


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_switching_the_demo_target_mode_by_role(request, login, persona, demo):
    _state(demo)
    client = login(persona)
    response = client.post(reverse("demo_target_mode"), {"mode": "fast"})
    mode = demo_target.reload_state(demo).mode
    if request.node.callspec.params["persona"] in {
        "manager",
        "dev_engineer",
        "qa_engineer",
        "strategist",
    }:
        assert response.status_code == 302
        assert (
            response["Location"]
            == TargetService.objects.get(slug=DEMO_TARGET_SLUG).get_absolute_url()
        )
        assert mode == "fast"
        assert AuditEvent.objects.filter(action="target.demo_mode").exists()
    else:
        assert response.status_code == 403
        assert mode == "slow"


def test_the_demo_target_page_offers_the_switch(login, demo, make_user):
    _state(demo)
    engineer = make_user("eng", ("dev", Membership.ENGINEER))
    page = login(engineer).get(reverse("target_detail", args=[DEMO_TARGET_SLUG])).content.decode()
    assert "slow mode" in page and "Switch to fast mode" in page


def test_without_a_running_demo_the_switch_says_so(login, demo, make_user):
    engineer = make_user("eng", ("dev", Membership.ENGINEER))
    client = login(engineer)
    page = client.get(reverse("target_detail", args=[DEMO_TARGET_SLUG])).content.decode()
    assert "Switch to fast mode" not in page
    response = client.post(reverse("demo_target_mode"), {"mode": "fast"}, follow=True)
    assert "start Kaizen with ./kaizen up" in response.content.decode()


def test_both_demo_shops_allow_writes_with_the_demos_key(demo):
    state = demo_target.DemoState(
        var_dir=str(demo), database_url="sqlite+aiosqlite:////tmp/x.sqlite3", api_key="k-123"
    )
    demo_target.register(state)
    demo_target.register(state)  # a second start changes nothing

    shop = TargetService.objects.get(slug=DEMO_TARGET_SLUG)
    twin = TargetService.objects.get(slug=demo_target.FIXED_SLUG)
    for target in (shop, twin):
        assert target.allows_writes
        assert (target.auth_header_name, target.auth_header_value) == ("X-API-Key", "k-123")
    assert demo_target.environment(state) == {"SHOP_API_KEY": "k-123"}
    assert AuditEvent.objects.filter(action="target.edit", target=shop).count() == 1


def test_a_new_demo_target_is_made_allowing_writes_and_others_are_not(demo, target):
    assert TargetService.objects.get(slug=DEMO_TARGET_SLUG).allows_writes
    assert target.allows_writes is False  # off by default
