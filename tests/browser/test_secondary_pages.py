"""The pages a person reaches by clicking from the main ones, at a phone's width.

The same checks as the main page matrix (tests/browser/test_pages.py): each page fits
375 px (a wide table scrolls inside its card), logs no console error and has no serious
or critical axe-core violation — here once, in English, as a manager (who sees every
form). Incidents and traces have their own browser tests at both widths.
"""

import datetime
from pprint import pformat

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from departments import actions
from departments.models import Control, Runbook, TrainingModule
from optimizations.jobs.kinds import KINDS
from optimizations.models import Finding, Job, JobLog
from tests.browser.test_pages import problems_on, sign_in
from tests.factories import benchmark_job

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STATUS_LOGGED = "Failed to load resource: the server responded with a status of"


def failed_job_with_a_log(target) -> Job:
    """A probe that failed after logging lines long enough to wrap on a phone."""
    run = target.runs.create(mode="custom")
    job = Job.objects.create(run=run, kind="probe", target=target)
    now = timezone.now()
    for seq in range(1, 41):
        JobLog.objects.create(
            job=job,
            seq=seq,
            at=now,
            level="warning" if seq % 10 == 0 else "info",
            message=f"http://127.0.0.1:8334/metrics did not answer within 5 s (attempt {seq})",
        )
    job.log_lines = 40
    job.save(update_fields=["log_lines"])
    job.fail("It ran past its time limit of 300 s and was stopped.")
    return job


def secondary_pages(target, initiative, job):
    finished = timezone.now() - datetime.timedelta(minutes=30)
    other = benchmark_job(target, finished=finished, initiative=initiative, verdict="pass")
    failed = failed_job_with_a_log(target)
    finding = Finding.objects.create(
        target=target,
        source="code",
        rule_id="FSA102",
        severity="high",
        category="performance",
        title="An N+1 query in GET /orders/{order_id}/items loads each item's category",
        location="shop_api/routes/orders_and_items.py:118",
        fingerprint="FSA102",
        first_seen_at=finished,
        last_seen_at=finished,
    )
    runbook = Runbook.objects.order_by("pk").first()
    module = TrainingModule.objects.order_by("pk").first()
    # Started, so its page shows the quiz (not a redirect to the module).
    actions.do_start_training(get_user_model().objects.get(username="dev.manager"), module)
    pages = {
        # Both sides chosen: the results table, wider than a phone, scrolls in its card.
        "compare": f"{reverse('compare')}?a={job.pk}&b={other.pk}",
        "run": job.run.get_absolute_url(),
        "failed job": failed.get_absolute_url(),
        "job log": reverse("job_log", args=[failed.pk]),
        "finding": reverse("finding_detail", args=[finding.pk]),
        "alerts": reverse("target_alerts", args=[target.slug]),
        "target edit": reverse("target_edit", args=[target.slug]),
        "new schedule": reverse("schedule_create", args=[target.slug]),
        # A phase's gate and a task open in place on the board (the main matrix); these are
        # the initiative's own other pages.
        "initiative settings": reverse("initiative_edit", args=[initiative.pk]),
        "initiative findings": reverse("initiative_findings", args=[initiative.pk]),
        "compliance register": reverse("compliance_register"),
        "control": reverse("compliance_control", args=[Control.objects.order_by("pk")[0].slug]),
        "runbook edit": reverse("runbook_edit", args=[runbook.slug]),
        "runbook history": reverse("runbook_history", args=[runbook.slug]),
        "runbook diff": reverse("runbook_diff", args=[runbook.slug]),
        "quiz": reverse("training_take", args=[module.slug]),
        "inbox": reverse("inbox"),
        "profile": reverse("profile"),
        "tokens": reverse("token_list"),
        "audit log": reverse("audit_list"),
        "people": reverse("people"),
        "not found": "/no-such-page/",
        # A manager of Development may not write runbooks (HR does): the 403 page.
        "forbidden": reverse("runbook_new"),
    }
    # Every kind's start form (a benchmark's has its own browser test of the fields).
    for kind in KINDS:
        pages[f"start {kind}"] = reverse("job_params", args=[target.slug, kind])
    return pages


def test_secondary_pages_fit_a_phone_have_no_console_error_and_are_axe_clean(
    browser_page, live_server, demo
):
    page = browser_page
    page.set_extra_http_headers({"Accept-Language": "en"})
    page.set_viewport_size({"width": 375, "height": 740})
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    sign_in(page, live_server.url, "dev.manager")

    report = {}
    for name, path in secondary_pages(*demo).items():
        found = problems_on(page, live_server.url + path, errors)
        if page.url != live_server.url + path:  # the page itself, not where it sends you
            found.append(f"redirected to {page.url}")
        if name in ("not found", "forbidden"):
            # Chromium logs the answer's status itself; the page must say it, nothing else.
            status = "404 (Not Found)" if name == "not found" else "403 (Forbidden)"
            found.remove(f"console: {STATUS_LOGGED} {status}")
        if found:
            report[name] = found
    assert report == {}, pformat(report, width=140)
