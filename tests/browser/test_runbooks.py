"""In a real browser: an HR editor edits a runbook, reads the diff and restores the old text."""

import pytest

from departments.actions import do_create_runbook
from departments.models import Runbook, Topic
from departments.runbook_templates import ensure_topics
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def make_runbook(departments, hr_editor):
    # A transactional test flushes what the data migrations made; put the topics back.
    ensure_topics(Topic)

    def make(title="Connection-pool exhaustion", body="", **fields):
        return do_create_runbook(
            hr_editor,
            title=title,
            body=body,
            owner_department=departments["hr"],
            owner=hr_editor,
            status=Runbook.PUBLISHED,
            **fields,
        )

    return make


def sign_in(page, live_server, user):
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")


def test_an_edit_shows_in_the_diff_and_the_old_revision_can_be_restored(
    browser_page, live_server, make_runbook, target, hr_editor
):
    runbook = make_runbook(
        body="# Pool exhaustion\n\n1. Check pool use.\n2. Restart the workers one at a time.\n",
        targets=[target],
    )
    page = browser_page
    sign_in(page, live_server, hr_editor)

    page.goto(live_server.url + runbook.get_absolute_url())
    page.click("text=Edit")
    body = page.input_value("#id_body")
    page.fill("#id_body", body.replace("one at a time", "all at once"))
    page.fill("#id_note", "Faster recovery")
    page.click("button:has-text('Preview')")
    page.wait_for_selector("#preview li:has-text('all at once')")
    page.click("button:has-text('Save')")
    page.wait_for_selector(".message-success:has-text('Saved as revision 2')")
    assert "all at once" in page.text_content(f"#runbook-{runbook.pk}-body")

    page.click("text=Last change")
    page.wait_for_selector("h1:has-text('Changes r1 → r2')")
    assert page.text_content("table.diff tr.change del") == "one at a time"
    assert page.text_content("table.diff tr.change ins") == "all at once"

    page.click("#restore-r1")
    page.wait_for_selector(".message-success:has-text('Revision 1 restored as revision 3')")
    assert "one at a time" in page.text_content(f"#runbook-{runbook.pk}-body")

    page.click("text=History")
    for number in (1, 2, 3):
        page.wait_for_selector(f"#revision-{number}")
    assert "Restored revision 1" in page.text_content("#revision-3")
    runbook = Runbook.objects.get(pk=runbook.pk)
    assert runbook.current_revision.number == 3
    assert runbook.revisions.count() == 3


def test_search_narrows_the_list_as_you_type(browser_page, live_server, make_runbook, viewer):
    make_runbook("Slow-query triage", body="Read the plan with EXPLAIN.")
    make_runbook("Incident response", body="Page the on-call.")
    page = browser_page
    sign_in(page, live_server, viewer)
    page.goto(live_server.url + "/runbooks/")
    page.evaluate("window.kaizenMarker = 'same page'")
    page.fill("input[name=q]", "explain")
    page.wait_for_function(
        "!document.querySelector('#results').textContent.includes('Incident response')"
    )
    assert "Slow-query triage" in page.text_content("#results")
    assert page.evaluate("window.kaizenMarker") == "same page"
    assert "q=explain" in page.url
