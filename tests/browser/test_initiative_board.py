"""In a real browser: log in, open an initiative, change a task, see the phase progress move."""

import pytest

from optimizations.models import PhaseTask
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_task_status_change_updates_the_phase_progress_in_place(
    browser_page, live_server, initiative, qa_engineer
):
    page = browser_page
    task = PhaseTask.objects.get(phase__initiative=initiative, title="Analyze performance")
    progress = f"#phase-{task.phase_id}-progress"

    page.goto(live_server.url + "/login/")
    page.fill("#id_username", qa_engineer.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + "/")

    page.goto(live_server.url + initiative.get_absolute_url())
    assert page.text_content(f"{progress} .value").strip() == "0 %"
    page.evaluate("window.kaizenMarker = 'same page'")

    page.select_option(f"#id_t{task.pk}-status", "done")
    page.wait_for_function(
        f"document.querySelector('{progress} .value').textContent.trim() === '57 %'"
    )
    # No reload happened: the marker set on the page is still there.
    assert page.evaluate("window.kaizenMarker") == "same page"
    page.wait_for_selector(f"#task-{task.pk}.done")
    task.refresh_from_db()
    assert task.status == PhaseTask.DONE


def test_a_wrong_password_reads_well(browser_page, live_server, qa_engineer):
    page = browser_page
    page.goto(live_server.url + "/login/")
    page.fill("#id_username", qa_engineer.username)
    page.fill("#id_password", "not the password")
    page.click("button[type=submit]")
    assert "did not match" in page.text_content(".message-error")
