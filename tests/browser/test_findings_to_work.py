"""In a real browser: findings become tasks in bulk, a task opens in place, a gate is overridden."""

import datetime

import pytest
from django.utils import timezone

from optimizations.models import Finding, GateSignoff, Phase, PhaseTask
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _findings(target):
    now = timezone.now()
    for n, (rule, source, category) in enumerate(
        [
            ("FSA102", "code", "performance"),
            ("db.pool_usage", "db", "architecture"),
            ("sec.cors", "security", "security"),
        ]
    ):
        Finding.objects.create(
            target=target,
            source=source,
            rule_id=rule,
            severity="high",
            category=category,
            title=f"{rule} problem",
            location=f"routes.py:{n + 1}",
            fingerprint=rule,
            first_seen_at=now - datetime.timedelta(hours=1),
            last_seen_at=now,
        )


def _sign_in(page, live_server, user):
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_a_manager_turns_findings_into_tasks_and_overrides_a_gate(
    browser_page, live_server, initiative, manager, target
):
    _findings(target)
    page = browser_page
    _sign_in(page, live_server, manager)

    page.goto(f"{live_server.url}/initiatives/{initiative.pk}/findings/")
    # The reason field belongs to "Set status"; it is hidden while "Make tasks" is chosen.
    assert not page.is_visible("input[name=reason]")
    page.check("[data-check-all]")
    assert page.locator("input[name=findings]:checked").count() == 3
    page.click("text=Apply to the chosen findings")
    page.wait_for_selector(".message-success")
    assert "Made 3 tasks" in page.text_content(".message-success")
    tasks = {t.department.code: t for t in PhaseTask.objects.filter(finding__isnull=False)}
    assert {code: t.phase.number for code, t in tasks.items()} == {
        "dev": 2,
        "strategy": 3,
        "qa": 4,
    }

    page.goto(live_server.url + initiative.get_absolute_url())
    dev_task = tasks["dev"]
    page.click(f"#task-{dev_task.pk} button:has-text('Edit')")
    page.wait_for_selector(f"#id_t{dev_task.pk}-status")
    page.select_option(f"#id_t{dev_task.pk}-status", "doing")
    page.wait_for_function(
        f"document.querySelector('#task-{dev_task.pk}').classList.contains('doing')"
    )

    first = initiative.phases.get(number=1)
    gate = f"#phase-{first.pk}-gate"
    # Evidence missing (no benchmark yet): the gate's verdict is not pass.
    page.wait_for_selector(f"{gate} .badge.verdict-fail, {gate} .badge.verdict-incomplete")
    page.click(f"{gate} summary")
    page.click(f"{gate} button[type=submit]")
    page.wait_for_selector(f"{gate} [role=alert]")
    assert "give a reason for the override" in page.text_content(f"{gate} [role=alert]")
    page.check(f"{gate} input[name=override]")
    page.fill(f"{gate} textarea[name=override_reason]", "Measured by hand before Kaizen")
    page.click(f"{gate} button[type=submit]")
    page.wait_for_selector(f"{gate} .overridden")
    first.refresh_from_db()
    assert first.status == Phase.DONE
    assert GateSignoff.objects.get().override_reason == "Measured by hand before Kaizen"
