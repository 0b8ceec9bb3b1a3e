"""Every save is a revision; restore and approval add revisions; nothing is ever lost."""

import re

import pytest

from departments import actions
from departments.diffs import diff
from departments.models import Runbook, RunbookRevision
from portal.models import AuditEvent


def history(runbook):
    return list(
        runbook.revisions.order_by("number").values_list("number", "state", "title", "body")
    )


def test_creating_a_runbook_makes_revision_1_current(runbook, hr_editor):
    revision = runbook.current_revision
    assert (revision.number, revision.state, revision.author) == (1, "accepted", hr_editor)
    assert revision.body == "# Steps\n\n1. Look.\n"
    assert AuditEvent.objects.filter(action="runbook.create", object_id=str(runbook.pk)).exists()


def test_a_published_runbook_gets_a_review_date_from_its_interval(make_runbook):
    runbook = make_runbook(review_interval_days=30)
    assert runbook.next_review_date is not None
    assert (runbook.next_review_date - runbook.created_at.date()).days == 30


def test_each_save_adds_a_revision_and_saving_the_same_text_adds_none(runbook, hr_editor):
    second = actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="v2", note="x")
    assert second.number == 2
    assert actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="v2") is None
    runbook.refresh_from_db()
    assert runbook.current_revision == second
    assert [n for n, *_ in history(runbook)] == [1, 2]


def test_a_title_change_is_a_revision_too(runbook, hr_editor):
    actions.do_save_runbook(
        hr_editor, runbook, title="Pool exhaustion", body="# Steps\n\n1. Look.\n"
    )
    runbook.refresh_from_db()
    assert runbook.title == "Pool exhaustion"
    assert runbook.current_revision.number == 2


def test_restoring_adds_a_copy_and_keeps_every_revision(runbook, hr_editor):
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="v2")
    actions.do_save_runbook(hr_editor, runbook, title="Renamed", body="v3")
    before = history(runbook)
    first = runbook.revisions.get(number=1)

    restored = actions.do_restore_revision(hr_editor, first)

    runbook.refresh_from_db()
    assert restored.number == 4 and restored.copy_of == first
    assert (restored.title, restored.body) == (first.title, first.body)
    assert runbook.current_revision == restored and runbook.title == first.title
    # Nothing was changed or removed: the old history is a prefix of the new one.
    assert history(runbook)[:3] == before
    assert restored.note == "Restored revision 1"


def test_restoring_then_restoring_back_loses_nothing(runbook, hr_editor):
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="v2")
    actions.do_restore_revision(hr_editor, runbook.revisions.get(number=1))
    actions.do_restore_revision(hr_editor, runbook.revisions.get(number=2))
    runbook.refresh_from_db()
    assert [body for *_, body in history(runbook)] == [
        "# Steps\n\n1. Look.\n",
        "v2",
        "# Steps\n\n1. Look.\n",
        "v2",
    ]
    assert runbook.current_revision.body == "v2"


def test_proposals_cannot_be_restored_they_are_approved(runbook, dev_engineer, hr_editor):
    proposal = actions.do_propose_runbook_edit(dev_engineer, runbook, title="t", body="p")
    with pytest.raises(ValueError):
        actions.do_restore_revision(hr_editor, proposal)


def test_an_engineers_proposal_waits_and_does_not_change_the_runbook(runbook, dev_engineer):
    proposal = actions.do_propose_runbook_edit(
        dev_engineer, runbook, title=runbook.title, body="better", note="clearer"
    )
    runbook.refresh_from_db()
    assert proposal.state == RunbookRevision.PROPOSED
    assert proposal.based_on.number == 1
    assert runbook.current_revision.number == 1


def test_approving_a_proposal_adds_it_as_the_newest_revision(runbook, dev_engineer, hr_editor):
    proposal = actions.do_propose_runbook_edit(
        dev_engineer, runbook, title=runbook.title, body="better", note="clearer"
    )
    actions.do_save_runbook(hr_editor, runbook, title=runbook.title, body="meanwhile")

    accepted = actions.do_approve_revision(hr_editor, proposal, "thanks")

    runbook.refresh_from_db()
    proposal.refresh_from_db()
    assert (accepted.number, accepted.body, accepted.author) == (4, "better", dev_engineer)
    assert (accepted.reviewed_by, accepted.review_note, accepted.copy_of) == (
        hr_editor,
        "thanks",
        proposal,
    )
    assert proposal.state == RunbookRevision.APPROVED and proposal.reviewed_by == hr_editor
    assert runbook.current_revision == accepted
    # The revision saved meanwhile stays in the history.
    assert runbook.revisions.filter(body="meanwhile").exists()


def test_a_rejected_proposal_stays_in_the_history(runbook, dev_engineer, hr_editor):
    proposal = actions.do_propose_runbook_edit(dev_engineer, runbook, title="t", body="p")
    actions.do_reject_revision(hr_editor, proposal, "not accurate")
    proposal.refresh_from_db()
    runbook.refresh_from_db()
    assert (proposal.state, proposal.review_note) == (RunbookRevision.REJECTED, "not accurate")
    assert runbook.current_revision.number == 1
    with pytest.raises(ValueError):
        actions.do_approve_revision(hr_editor, proposal)


def test_a_proposal_mails_the_runbook_owner(
    runbook, dev_engineer, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_propose_runbook_edit(dev_engineer, runbook, title="t", body="p", note="why")
    (mail,) = mailoutbox
    assert mail.to == [runbook.owner.email]
    assert "waits for your review" in mail.subject and "why" in mail.body


def test_settings_changes_are_audited_with_what_changed(runbook, hr_editor, topics, target):
    changes = actions.do_update_runbook_settings(
        hr_editor,
        runbook,
        status=Runbook.ARCHIVED,
        topics=[topics["monitoring"]],
        phases=[3, 2, 3],
    )
    runbook.refresh_from_db()
    assert runbook.phases == [2, 3]
    assert changes["status"] == ["published", "archived"]
    assert changes["topics"] == ["Connection-pool exhaustion", "Monitoring"]
    event = AuditEvent.objects.get(action="runbook.settings")
    assert event.changes == changes


def test_marking_reviewed_clears_the_flag_and_sets_the_next_date(runbook, hr_editor):
    Runbook.objects.filter(pk=runbook.pk).update(review_needed=True, review_reason="x")
    runbook.refresh_from_db()
    actions.do_mark_runbook_reviewed(hr_editor, runbook)
    runbook.refresh_from_db()
    assert not runbook.review_needed and runbook.review_reason == ""
    assert runbook.last_reviewed_at is not None
    assert (runbook.next_review_date - runbook.last_reviewed_at.date()).days == 180


def test_the_diff_marks_changed_words_and_folds_unchanged_lines():
    old = "\n".join(f"line {n}" for n in range(1, 21)) + "\nset pool_size = 5\n"
    new = "\n".join(f"line {n}" for n in range(1, 21)) + "\nset pool_size = 20\nnew line\n"
    result = diff(old, new)
    kinds = [row.kind for row in result.rows]
    assert kinds[0] == "fold" and result.rows[0].folded == 17
    assert kinds[-2:] == ["change", "add"]
    change = result.rows[-2]
    assert "<del>5</del>" in change.old and "<ins>20</ins>" in change.new
    assert (result.added, result.removed) == (2, 1)


def test_the_diff_escapes_html_in_the_text():
    result = diff("<b>old</b>", "<script>x</script>")
    row = result.rows[0]
    assert "<script" not in row.new and "&lt;" in row.new
    assert set(re.findall(r"</?(\w+)", row.new)) == {"ins"}


def test_identical_texts_have_no_changes():
    assert diff("a\nb", "a\nb").unchanged
