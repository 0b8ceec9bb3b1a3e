"""HR's demo content loads, renders cleanly, and its steps and quiz are well-formed."""

import pytest
from django.urls import reverse

from departments.demo_content import load_runbooks_and_training
from departments.markdown import render
from departments.models import Membership, Runbook, TrainingModule, TrainingRecord
from departments.quiz import parse
from departments.runbook_templates import TEMPLATES
from portal.demo import load_demo


@pytest.fixture
def demo(make_user, target, topics):
    users = {
        "hr.editor": make_user("hr.editor", ("hr", Membership.EDITOR)),
        "hr.manager": make_user("hr.manager", ("hr", Membership.MANAGER)),
        "dev.engineer": make_user("dev.engineer", ("dev", Membership.ENGINEER)),
    }
    load_runbooks_and_training(users, target)
    return users


def test_the_demo_has_the_five_runbooks_and_a_module_with_a_quiz(demo, target):
    assert set(Runbook.objects.values_list("title", flat=True)) == {
        "Connection-pool exhaustion",
        "Slow-query triage",
        "Rolling out an index with CREATE INDEX CONCURRENTLY",
        "Running a load test safely",
        "Incident response — Shop API",
    }
    assert all(list(r.targets.all()) == [target] for r in Runbook.objects.all())
    module = TrainingModule.objects.get()
    assert len(parse(module.quiz)) == 5 and module.pass_mark == 80
    assert TrainingRecord.objects.get().user == demo["dev.engineer"]


def test_every_demo_step_is_well_formed(demo):
    steps = [
        step
        for runbook in Runbook.objects.select_related("current_revision")
        for step in render(runbook.current_revision.body).steps
    ]
    assert {step.kind for step in steps} == {"db_scan", "benchmark", "probe"}
    assert all(not step.error and step.target == "shop-api" for step in steps)


def test_the_demo_shows_history_a_waiting_proposal_and_an_overdue_review(demo):
    pool = Runbook.objects.get(slug="connection-pool-exhaustion")
    assert pool.revisions.count() == 2
    slow = Runbook.objects.get(slug="slow-query-triage")
    assert slow.review_overdue()
    assert slow.revisions.get(state="proposed").author == demo["dev.engineer"]


def test_the_training_links_reach_the_demo_runbooks(demo, login):
    module = TrainingModule.objects.get()
    client = login(demo["dev.engineer"])
    for slug in ("running-a-load-test-safely", "connection-pool-exhaustion"):
        assert f"/runbooks/{slug}/" in module.content
        assert client.get(reverse("runbook_detail", args=[slug])).status_code == 200


@pytest.mark.parametrize("key", sorted(TEMPLATES))
def test_every_hr_template_renders_and_names_the_service(key):
    title, body = TEMPLATES[key].fill("Orders API")
    assert "Orders API" in title and "{service}" not in body
    assert render(body).html.count("<h2>") >= 3


def test_the_portal_demo_loads_the_runbooks_and_training(departments, topics):
    assert load_demo("demo-password-42", "http://127.0.0.1:8100")
    assert Runbook.objects.count() == 5 and TrainingModule.objects.count() == 1
    # The module goes to Development's engineers.
    assert [r.user.username for r in TrainingRecord.objects.all()] == ["dev.engineer"]
