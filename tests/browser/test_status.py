"""In a real browser, with a real Celery worker: the status page and its broker panel."""

import pytest

from portal.models import WorkerBeat
from tests.conftest import PASSWORD
from tests.optimizations.workers import Worker, broker_settings, purge, use_broker, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_status_page_shows_a_real_worker_and_loads_the_broker_panel(
    browser_page, live_server, viewer, tmp_path
):
    page = browser_page
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    url, options = broker_settings("filesystem", tmp_path)
    with use_broker(url, options):
        purge()
        worker = Worker(url, tmp_path, queue="analysis")
        try:
            worker.wait_ready()
            name = wait_for(
                lambda: (
                    WorkerBeat.objects.filter(name__startswith=worker.name)
                    .values_list("name", flat=True)
                    .first()
                ),
                30,
                "the worker's heartbeat row",
            )
            page.goto(live_server.url + "/login/")
            page.fill("#id_username", viewer.username)
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(live_server.url + "/")

            page.goto(live_server.url + "/status/")
            row = page.locator("#status-workers tr", has_text=name)
            assert "alive" in row.text_content()
            # The broker panel replaces its "checking…" once the broker answered.
            page.wait_for_selector("#status-broker .badge.good")
            assert page.locator("#status-broker:has-text('checking')").count() == 0
            assert page.locator("#status-broker td:has-text('analysis')").count() == 1
        finally:
            worker.stop()
    page.reload()
    assert "stopped" in page.locator("#status-workers tr", has_text=name).text_content()
    assert errors == []
