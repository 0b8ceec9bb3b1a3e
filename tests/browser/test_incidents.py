"""In a real browser: an HR editor runs an incident — acknowledge, assign, resolve — and
writes its postmortem, whose action item becomes a task of the target's open initiative."""

from pprint import pformat

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from departments.models import Topic
from departments.runbook_templates import ensure_topics
from optimizations.models import Incident, PhaseTask, TargetService
from optimizations.observe import incidents
from portal.demo import DEMO_TARGET_SLUG, load_demo
from tests.browser.test_pages import WIDTHS, problems_on
from tests.browser.test_runbooks import sign_in
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_acknowledge_assign_resolve_and_write_the_postmortem(
    browser_page, live_server, departments, hr_editor, dev_engineer, initiative, target
):
    incident = incidents.open_from_alert(
        target, "burn-rate", "availability/fast", "Orders API burns its error budget", "high"
    )
    page = browser_page
    sign_in(page, live_server, hr_editor)

    page.click("nav >> text=Incidents")
    page.click(f"#incident-row-{incident.pk} >> text=Orders API burns its error budget")
    page.wait_for_selector("#timeline [data-kind='opened']")

    # Each action swaps the incident's panel in place (htmx), the page stays.
    page.click("#acknowledge")
    page.wait_for_selector("#incident-state >> text=Acknowledged by tomas")
    page.select_option("#assign-form select[name='assignee']", label=dev_engineer.username)
    page.click("#assign-form button:has-text('Assign')")
    page.wait_for_selector("#incident-state >> text=Assigned to devon")
    page.click("#resolve")
    page.wait_for_selector("#incident-state >> text=Resolved at")
    assert not page.is_visible("#acknowledge") and not page.is_visible("#resolve")
    kinds = page.eval_on_selector_all("#timeline li", "items => items.map(i => i.dataset.kind)")
    assert [kind for kind in kinds if kind != "notified"] == [
        "opened",
        "acknowledged",
        "assigned",
        "resolved",
    ]

    page.click("#postmortem-link")
    body = page.input_value("#id_body")
    assert "# Postmortem — Orders API" in body  # from HR's template, filled in
    page.fill("#id_action_items", "Alert on connection-pool use above 80 %")
    page.click("button:has-text('Save the postmortem')")
    page.wait_for_selector("#postmortem >> text=Alert on connection-pool use above 80 %")
    assert page.is_visible(".message-success")
    task = PhaseTask.objects.get(title="Alert on connection-pool use above 80 %")
    assert task.phase.initiative == initiative
    incident = Incident.objects.get()
    assert incident.acknowledged_by == hr_editor and incident.assignee == dev_engineer
    assert incident.ended_at is not None and incident.postmortem.author == hr_editor
    assert page.is_visible("#timeline [data-kind='postmortem']")


@pytest.fixture
def demo_target(departments):
    # A transactional test flushes what the data migrations made; put the topics back.
    ensure_topics(Topic)
    load_demo(PASSWORD, "http://127.0.0.1:9")
    return TargetService.objects.get(slug=DEMO_TARGET_SLUG)


@pytest.mark.parametrize("language", ["en", "ja"])
@pytest.mark.parametrize("width", sorted(WIDTHS))
def test_the_incident_pages_fit_have_no_console_error_and_are_axe_clean(
    browser_page, live_server, demo_target, width, language
):
    target = demo_target
    incident = incidents.open_from_alert(target, "burn-rate", "k", "Demo shop burns", "high")
    incidents.do_add_note(None, incident, "Looking at the pool")
    incidents.do_write_postmortem(None, incident, "What happened", ["Drill"])
    page = browser_page
    page.set_extra_http_headers({"Accept-Language": language})
    page.set_viewport_size(dict(zip(("width", "height"), WIDTHS[width], strict=True)))
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server, get_user_model().objects.get(username="dev.manager"))
    report = {}
    for name, path in {
        "incidents": reverse("incident_list"),
        "incident": incident.get_absolute_url(),
        "postmortem": reverse("incident_postmortem", args=[incident.pk]),
        "deliveries": reverse("delivery_log"),
        "operations review": reverse("operations_review"),
        "portfolio incidents": reverse("portfolio_incidents"),
    }.items():
        found = problems_on(page, live_server.url + path, errors)
        if found:
            report[name] = found
    assert report == {}, pformat(report, width=140)
