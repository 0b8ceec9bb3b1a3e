"""Runbooks of a target are flagged "review needed" when an initiative on it finishes
phase 2 or 3, and their owners are told; overdue reviews show in lists."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from departments.actions import flag_runbooks_for_review
from departments.models import Runbook
from optimizations.models import Phase, TargetService
from optimizations.work.actions import do_set_phase_status
from portal.models import AuditEvent, Notification


@pytest.fixture
def other_target(departments):
    return TargetService.objects.create(
        name="Billing API",
        slug="billing-api",
        base_url="http://127.0.0.1:8200",
        owner_department=departments["dev"],
    )


@pytest.mark.parametrize(("number", "flagged"), [(1, False), (2, True), (3, True), (4, False)])
def test_only_finishing_phase_2_or_3_flags_runbooks(initiative, runbook, manager, number, flagged):
    phase = initiative.phases.get(number=number)
    flag_runbooks_for_review(initiative, phase, manager)
    runbook.refresh_from_db()
    assert runbook.review_needed is flagged


def test_the_flag_names_the_initiative_and_phase_and_is_audited(initiative, runbook, manager):
    phase = initiative.phases.get(number=2)
    flag_runbooks_for_review(initiative, phase, manager)
    runbook.refresh_from_db()
    assert "Phase 2 (Implementation)" in runbook.review_reason
    assert initiative.title in runbook.review_reason
    event = AuditEvent.objects.get(action="runbook.review_needed")
    assert (event.actor, event.initiative, event.target) == (manager, initiative, initiative.target)


def test_only_live_runbooks_of_that_target_are_flagged(
    initiative, make_runbook, other_target, target, manager
):
    ours = make_runbook("Ours", targets=[target])
    archived = make_runbook("Archived", targets=[target], status=Runbook.ARCHIVED)
    theirs = make_runbook("Theirs", targets=[other_target])
    untagged = make_runbook("Untagged")
    flagged = flag_runbooks_for_review(initiative, initiative.phases.get(number=3), manager)
    assert flagged == [ours]
    for runbook in (archived, theirs, untagged):
        runbook.refresh_from_db()
        assert not runbook.review_needed


def test_owners_get_one_mail_listing_their_runbooks(
    initiative,
    make_runbook,
    target,
    hr_editor,
    manager,
    mailoutbox,
    django_capture_on_commit_callbacks,
):
    make_runbook("Pool exhaustion", targets=[target], owner=hr_editor)
    make_runbook("Slow queries", targets=[target], owner=hr_editor)
    with django_capture_on_commit_callbacks(execute=True):
        flag_runbooks_for_review(initiative, initiative.phases.get(number=2), manager)
    (mail,) = mailoutbox
    assert mail.to == [hr_editor.email]
    assert "2 runbooks to review" in mail.subject
    assert "Pool exhaustion" in mail.body and "Slow queries" in mail.body
    # The same words wait in the owner's inbox in the portal.
    (note,) = Notification.objects.filter(user=hr_editor)
    assert note.subject == mail.subject and note.url == reverse("runbook_reviews")


def test_a_runbook_already_flagged_keeps_its_reason_and_is_not_mailed_again(
    initiative, runbook, manager, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        flag_runbooks_for_review(initiative, initiative.phases.get(number=2), manager)
        flag_runbooks_for_review(initiative, initiative.phases.get(number=3), manager)
    runbook.refresh_from_db()
    assert "Phase 2" in runbook.review_reason
    assert len(mailoutbox) == 1


def test_finishing_phase_2_on_the_board_flags_the_targets_runbooks(initiative, runbook, manager):
    phase = initiative.phases.get(number=2)
    do_set_phase_status(manager, phase, Phase.DONE)
    runbook.refresh_from_db()
    assert runbook.review_needed


def test_a_review_date_in_the_past_shows_an_overdue_badge_and_is_listed(login, runbook, viewer):
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    Runbook.objects.filter(pk=runbook.pk).update(next_review_date=yesterday)
    client = login(viewer)
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert "review overdue" in page
    reviews = client.get(reverse("runbook_reviews")).content.decode()
    assert f'id="runbook-{runbook.pk}"' in reviews.split('id="needed"')[0]
    listed = client.get(reverse("runbook_list"), {"review": "due"}).content.decode()
    assert f'id="runbook-{runbook.pk}"' in listed
