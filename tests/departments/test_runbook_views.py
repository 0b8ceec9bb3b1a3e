"""The runbook pages: list and search, templates, editing, proposals, history, diff, restore."""

import pytest
from django.urls import reverse

from departments import actions
from departments.models import Runbook, RunbookRevision, RunbookStepRun
from optimizations.models import Run, TargetService
from portal.models import AuditEvent


def htmx(client, method, url, data=None):
    return getattr(client, method)(url, data or {}, headers={"HX-Request": "true"})


def test_the_list_costs_the_same_queries_for_3_or_30_runbooks(
    login, make_runbook, target, viewer, queries_of, django_assert_max_num_queries
):
    client = login(viewer)
    for n in range(3):
        make_runbook(f"Runbook {n}", targets=[target], topic_slugs=["monitoring", "compliance"])
    baseline = queries_of(client, reverse("runbook_list"))
    for n in range(3, 30):
        make_runbook(f"Runbook {n}", targets=[target], topic_slugs=["monitoring", "compliance"])
    with django_assert_max_num_queries(baseline):
        page = client.get(reverse("runbook_list")).content.decode()
    assert page.count('id="runbook-') == 30
    with django_assert_max_num_queries(baseline + 1):  # the snippets' bodies, in one query
        client.get(reverse("runbook_list"), {"q": "runbook"})


def test_searching_answers_htmx_with_the_results_fragment(login, make_runbook, viewer):
    make_runbook("Slow-query triage", body="Use EXPLAIN (ANALYZE, BUFFERS) on the statement.")
    make_runbook("Incident response", body="Page the on-call.")
    response = htmx(login(viewer), "get", reverse("runbook_list"), {"q": "explain"})
    body = response.content.decode()
    assert "<html" not in body and 'id="results"' in body
    assert "Slow-query triage" in body and "Incident response" not in body
    assert "<mark>" in body  # the matched word is highlighted in the snippet


def test_filters_narrow_the_list(login, make_runbook, target, viewer):
    make_runbook("Pool", targets=[target], topic_slugs=["connection-pool-exhaustion"], phases=[2])
    make_runbook("Compliance", topic_slugs=["compliance"], phases=[4], status=Runbook.DRAFT)
    make_runbook("Old", status=Runbook.ARCHIVED)
    client = login(viewer)

    def titles(**params):
        page = client.get(reverse("runbook_list"), params).content.decode()
        # The runbook's own link (the navigation has a "Compliance" link too).
        return {t for t in ("Pool", "Compliance", "Old") if f'/{t.lower()}/">{t}</a>' in page}

    assert titles() == {"Pool", "Compliance"}
    assert titles(target=target.slug) == {"Pool"}
    assert titles(topic="compliance") == {"Compliance"}
    assert titles(phase="4") == {"Compliance"}
    assert titles(status="archived") == {"Old"}


def test_hr_starts_a_runbook_from_a_template_for_a_target(login, hr_editor, target, topics):
    client = login(hr_editor)
    page = client.get(reverse("runbook_new"), {"target": target.slug}).content.decode()
    assert f"template=incident-response&target={target.slug}" in page
    form = client.get(
        reverse("runbook_create"), {"template": "operations-manual", "target": target.slug}
    ).content.decode()
    assert "Operations manual — Orders API" in form
    assert "## Deploying" in form


def test_creating_a_runbook_saves_revision_1_and_its_tags(
    login, hr_editor, target, topics, departments
):
    response = login(hr_editor).post(
        reverse("runbook_create") + "?template=incident-response",
        {
            "title": "Incident response — Orders API",
            "body": "# Incident response\n",
            "note": "From the template",
            "status": "published",
            "owner_department": departments["hr"].pk,
            "owner": hr_editor.pk,
            "topics": [topics["incident-response"].pk],
            "targets": [target.pk],
            "phases": ["3"],
            "review_interval_days": "90",
        },
    )
    runbook = Runbook.objects.get()
    assert response.status_code == 302 and response["Location"] == runbook.get_absolute_url()
    assert runbook.slug == "incident-response-orders-api"
    assert runbook.template_key == "incident-response"
    assert list(runbook.targets.all()) == [target] and runbook.phases == [3]
    assert runbook.next_review_date is not None
    assert runbook.current_revision.note == "From the template"


def _edit_data(runbook, body, **extra):
    data = {
        "title": runbook.title,
        "body": body,
        "note": "changed",
        "status": runbook.status,
        "owner_department": runbook.owner_department_id,
        "owner": runbook.owner_id or "",
        "topics": [t.pk for t in runbook.topics.all()],
        "targets": [t.pk for t in runbook.targets.all()],
        "phases": [str(n) for n in runbook.phases],
        "review_interval_days": runbook.review_interval_days,
        "next_review_date": runbook.next_review_date.isoformat()
        if runbook.next_review_date
        else "",
    }
    data.update(extra)
    return data


def test_hr_editing_saves_a_new_current_revision(login, runbook, hr_editor):
    response = login(hr_editor).post(
        reverse("runbook_edit", args=[runbook.slug]), _edit_data(runbook, "# New steps\n")
    )
    runbook.refresh_from_db()
    assert response.status_code == 302
    assert runbook.current_revision.number == 2 and runbook.current_revision.body == "# New steps\n"


def test_an_engineers_edit_becomes_a_proposal_that_hr_approves(
    login, runbook, dev_engineer, hr_editor
):
    client = login(dev_engineer)
    page = client.get(reverse("runbook_edit", args=[runbook.slug])).content.decode()
    assert "Propose this change" in page and 'name="status"' not in page
    response = client.post(
        reverse("runbook_edit", args=[runbook.slug]),
        {"title": runbook.title, "body": "# Better\n", "note": "clearer"},
    )
    proposal = RunbookRevision.objects.get(state="proposed")
    assert response["Location"] == proposal.get_absolute_url()
    runbook.refresh_from_db()
    assert runbook.current_revision.number == 1

    client = login(hr_editor)
    review = client.get(proposal.get_absolute_url()).content.decode()
    assert "Approve and publish" in review and "<ins>Better</ins>" in review
    reviews = client.get(reverse("runbook_reviews")).content.decode()
    assert f'id="proposal-{proposal.pk}"' in reviews
    client.post(reverse("runbook_approve", args=[runbook.slug, proposal.number]), {"note": "ok"})
    runbook.refresh_from_db()
    assert runbook.current_revision.body == "# Better\n"
    assert runbook.current_revision.author == dev_engineer


def test_proposing_the_unchanged_text_is_refused_with_a_reason(login, runbook, dev_engineer):
    response = login(dev_engineer).post(
        reverse("runbook_edit", args=[runbook.slug]),
        {"title": runbook.title, "body": runbook.current_revision.body},
    )
    assert response.status_code == 200
    assert "change something to propose it" in response.content.decode()
    assert not RunbookRevision.objects.filter(state="proposed").exists()


def test_a_stale_proposal_warns_hr_before_approval(login, runbook, dev_engineer, hr_editor):
    proposal = actions.do_propose_runbook_edit(dev_engineer, runbook, title="t", body="p")
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="meanwhile")
    page = login(hr_editor).get(proposal.get_absolute_url()).content.decode()
    assert "Written against r1; the runbook is at r3 now" in page


def test_the_diff_compares_any_two_revisions(login, runbook, hr_editor, viewer):
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="# Steps\n\n1. Wait.\n")
    actions.do_save_runbook(hr_editor, runbook, title="Renamed", body="# Steps\n\n1. Act.\n")
    client = login(viewer)
    latest = client.get(reverse("runbook_diff", args=[runbook.slug])).content.decode()
    assert "Changes r2 → r3" in latest and "<del>Wait</del>" in latest
    assert "Renamed" in latest
    chosen = client.get(
        reverse("runbook_diff", args=[runbook.slug]), {"from": 1, "to": 3}
    ).content.decode()
    assert "Changes r1 → r3" in chosen and "<del>Look</del>" in chosen
    assert "Restore r1" not in chosen  # a viewer is not offered the restore
    assert client.get(reverse("runbook_diff", args=[runbook.slug]), {"from": 9}).status_code == 404


def test_the_last_change_skips_proposals_between_saved_revisions(
    login, runbook, hr_editor, dev_engineer
):
    actions.do_propose_runbook_edit(dev_engineer, runbook, title=runbook.title, body="idea")
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="# Steps\n\n1. Act.\n")
    page = login(hr_editor).get(reverse("runbook_diff", args=[runbook.slug])).content.decode()
    assert "Changes r1 → r3" in page


def test_restoring_from_the_history_page(login, runbook, hr_editor):
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="v2")
    client = login(hr_editor)
    history = client.get(reverse("runbook_history", args=[runbook.slug])).content.decode()
    assert f'action="{reverse("runbook_restore", args=[runbook.slug, 1])}"' in history
    response = client.post(reverse("runbook_restore", args=[runbook.slug, 1]))
    assert response["Location"] == runbook.get_absolute_url()
    runbook.refresh_from_db()
    assert runbook.current_revision.number == 3
    assert runbook.current_revision.body == runbook.revisions.get(number=1).body


def test_the_preview_renders_sanitised_html(login, hr_editor):
    response = htmx(
        login(hr_editor),
        "post",
        reverse("runbook_preview"),
        {"body": "**bold** <img src=x onerror=alert(1)>"},
    )
    body = response.content.decode()
    assert 'id="preview"' in body and "<strong>bold</strong>" in body
    assert "onerror" not in body


def test_mark_reviewed_swaps_the_review_panel(login, runbook, hr_editor):
    Runbook.objects.filter(pk=runbook.pk).update(review_needed=True, review_reason="changed")
    response = htmx(login(hr_editor), "post", reverse("runbook_reviewed", args=[runbook.slug]))
    body = response.content.decode()
    assert f'id="runbook-{runbook.pk}-review"' in body and "<html" not in body
    assert "Review needed" not in body


def test_an_engineer_runs_a_step_and_the_run_shows_in_the_runbooks_history(
    login, make_runbook, target, dev_engineer
):
    runbook = make_runbook(
        body="Check it:\n\n```kaizen-run kind=probe\nlabel: Probe it\ntimeout: 2\n```\n",
        targets=[target],
    )
    client = login(dev_engineer)
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert 'id="step-1"' in page and "Probe it" in page and "<code>timeout=2</code>" in page
    assert target.name in page  # the runbook's only target is the step's
    assert f'hx-post="{reverse("runbook_run_step", args=[runbook.slug, 1])}"' in page

    response = htmx(client, "post", reverse("runbook_run_step", args=[runbook.slug, 1]))

    assert response.status_code == 200
    run = Run.objects.get()
    assert (run.trigger, run.target, run.triggered_by) == ("runbook", target, dev_engineer)
    job = run.jobs.get()
    assert job.kind == "probe" and job.params["timeout"] == 2.0
    body = response.content.decode()
    assert f"Started run #{run.pk}." in body and run.get_absolute_url() in body
    step_run = RunbookStepRun.objects.get()
    assert (step_run.runbook, step_run.step_index, step_run.run) == (runbook, 1, run)
    # The page's run history is refreshed out of band.
    assert f'id="runbook-{runbook.pk}-runs" hx-swap-oob="true"' in body
    assert f'id="step-run-{step_run.pk}"' in body
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert f'id="step-run-{step_run.pk}"' in page and f"run #{run.pk}" in page
    assert AuditEvent.objects.filter(action="runbook.step", object_id=str(runbook.pk)).exists()


def test_a_plain_post_of_a_step_goes_to_the_run(login, make_runbook, target, qa_engineer):
    runbook = make_runbook(body="```kaizen-run kind=probe\n```", targets=[target])
    response = login(qa_engineer).post(reverse("runbook_run_step", args=[runbook.slug, 1]))
    assert response["Location"] == Run.objects.get().get_absolute_url()


def test_a_step_the_engine_refuses_says_why_and_starts_nothing(
    login, make_runbook, target, dev_engineer
):
    # The demo target has no source tree: a code scan cannot run on it.
    runbook = make_runbook(body="```kaizen-run kind=code_scan\n```", targets=[target])
    client = login(dev_engineer)
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert 'id="step-1"' in page
    response = htmx(client, "post", reverse("runbook_run_step", args=[runbook.slug, 1]))
    assert response.status_code == 422
    assert "source location" in response.content.decode()
    assert not Run.objects.exists() and not RunbookStepRun.objects.exists()
    assert client.post(reverse("runbook_run_step", args=[runbook.slug, 2])).status_code == 404


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("```kaizen-run kind=probe target=nowhere\n```", "No target “nowhere”."),
        ("```kaizen-run kind=probe\n```", "this runbook has no single target"),
        ("```kaizen-run kind=teleport target=orders-api\n```", "unknown kind"),
        (
            "```kaizen-run kind=probe target=orders-api\nbogus: 1\n```",
            # The preflight's words, as the target page, the API and the CLI say them.
            "unknown parameter of probe: Target probe has no parameter bogus",
        ),
        (
            "```kaizen-run kind=probe target=orders-api\ntimeout: soon\n```",
            "timeout: expected float",
        ),
    ],
)
def test_a_step_that_cannot_run_says_why(login, make_runbook, target, viewer, body, problem):
    runbook = make_runbook(body=body)
    page = login(viewer).get(runbook.get_absolute_url()).content.decode()
    assert problem in page


def test_step_parameters_are_escaped_on_the_page(login, make_runbook, viewer):
    runbook = make_runbook(body='```kaizen-run kind=probe label="<script>alert(1)</script>"\n```')
    page = login(viewer).get(runbook.get_absolute_url()).content.decode()
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


def test_coverage_shows_which_standard_runbooks_a_target_has(
    login, make_runbook, target, hr_editor
):
    make_runbook("Pool", targets=[target], topic_slugs=["connection-pool-exhaustion"])
    make_runbook("IR draft", targets=[target], topic_slugs=["incident-response"], status="draft")
    page = login(hr_editor).get(reverse("runbook_coverage")).content.decode()
    row = page.split(f'id="coverage-{target.slug}"')[1].split("</tr>")[0]
    assert "✓ Pool" in row and "draft: IR draft" in row
    assert row.count(">missing<") == 4  # a draft does not count
    assert "<strong>1</strong> / 5" in row
    assert f"target={target.slug}&topic=operations-manual&template=operations-manual" in row


def test_coverage_costs_the_same_queries_for_more_targets_and_runbooks(
    login, make_runbook, target, departments, hr_editor, queries_of, django_assert_max_num_queries
):
    client = login(hr_editor)
    make_runbook("Pool", targets=[target], topic_slugs=["connection-pool-exhaustion"])
    baseline = queries_of(client, reverse("runbook_coverage"))
    for n in range(10):
        other = TargetService.objects.create(
            name=f"API {n}",
            slug=f"api-{n}",
            base_url="http://127.0.0.1:9000",
            owner_department=departments["dev"],
        )
        make_runbook(f"IR {n}", targets=[other], topic_slugs=["incident-response"])
    with django_assert_max_num_queries(baseline):
        page = client.get(reverse("runbook_coverage")).content.decode()
    assert page.count('id="coverage-') == 11
