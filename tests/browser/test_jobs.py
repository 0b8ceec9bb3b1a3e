"""In a real browser, with a real Celery worker: run an analysis, watch it, cancel, re-run."""

import pytest

from optimizations.models import Job, Run
from tests.conftest import PASSWORD
from tests.optimizations.workers import StubTarget, Worker, broker_settings, purge, use_broker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def worker(tmp_path):
    url, options = broker_settings("filesystem", tmp_path)
    with use_broker(url, options):
        purge()
        process = Worker(url, tmp_path)
        try:
            process.wait_ready()
            yield process
        finally:
            process.stop()


def test_run_watch_cancel_and_rerun(browser_page, live_server, worker, target, qa_engineer):
    page = browser_page
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    server = StubTarget(slow_seconds=20)
    try:
        target.base_url = server.url
        target.save()
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", qa_engineer.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")

        # Run the strategy mode (its monitoring focus is the probe alone).
        page.goto(live_server.url + target.get_absolute_url())
        page.select_option("#id_mode", "strategy")
        page.check("input[name=focus][value=monitoring]")
        page.click("#run-analysis button[type=submit]")
        page.wait_for_url("**/runs/*/")
        run = Run.objects.latest("pk")
        job = run.jobs.get()

        # The job page shows the probe working, live: its log grows without a reload.
        page.goto(live_server.url + job.get_absolute_url())
        page.evaluate("window.kaizenMarker = 'same page'")
        page.wait_for_selector(f"#job-{job.pk}-log .logline:has-text('OpenAPI 3.1.0')")
        assert page.evaluate("window.kaizenMarker") == "same page"
        assert "Running" in page.text_content(f"#job-{job.pk}-status")

        # Cancel mid-way: the worker stops within a second or two.
        page.click("text=Cancel")
        page.wait_for_selector(f"#job-{job.pk}-status .badge.cancelled", timeout=15_000)
        job.refresh_from_db()
        assert job.status == Job.CANCELLED

        # Re-run it; with a fast target it now succeeds.
        server.release.set()
        page.click("text=Re-run")
        page.wait_for_url("**/jobs/*/")
        page.wait_for_selector(".badge.succeeded", timeout=30_000)
        assert "What the probe found" in page.content()

        # Both are in the history.
        page.goto(live_server.url + f"/jobs/?target={target.slug}")
        rows = page.locator("#results tbody tr")
        assert rows.count() == 2
        assert "Cancelled" in rows.nth(1).text_content()
        assert "Succeeded" in rows.nth(0).text_content()
        # Watching it live logged nothing in the console (no oob swap without a target).
        assert errors == []
    finally:
        server.close()


def test_a_single_job_from_its_form_opens_its_page_and_the_polling_stops_at_the_end(
    browser_page, live_server, worker, target, qa_engineer
):
    """The htmx form answers with django-htmx's client redirect (HX-Redirect), and the
    job page's poll ends with HttpResponseStopPolling once the job has ended."""
    page = browser_page
    server = StubTarget()
    try:
        target.base_url = server.url
        target.save()
        page.goto(live_server.url + "/login/")
        page.fill("#id_username", qa_engineer.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(live_server.url + "/")

        page.goto(live_server.url + target.get_absolute_url())
        page.click(f"a[href='/targets/{target.slug}/jobs/probe/']")
        page.wait_for_selector("form#job-params button[type=submit]")
        polls = []
        page.on(
            "response",
            lambda response: polls.append(response.status) if "/live/" in response.url else None,
        )
        page.click("form#job-params button[type=submit]")
        page.wait_for_url("**/jobs/*/")
        job = Job.objects.get(target=target, kind="probe")
        assert page.url == live_server.url + job.get_absolute_url()
        page.wait_for_selector(f"#job-{job.pk}-status .badge.succeeded", timeout=30_000)
        page.wait_for_function("() => !document.querySelector('[hx-trigger^=\"every\"]')")
        assert polls and polls[-1] == 286
        asked = len(polls)
        # Polls came every second while it ran; after the 286 none follows.
        page.wait_for_timeout(2_500)
        assert len(polls) == asked
    finally:
        server.close()
