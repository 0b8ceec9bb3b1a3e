"""Training: assignment to people, departments and roles; states over time; the quiz;
recertification; late joiners; withdrawing."""

import datetime

import pytest
from django.utils import timezone

from departments import actions
from departments.models import Membership, QuizAttempt, TrainingRecord
from departments.quiz import QuizError, parse, score
from departments.tasks import update_training_states
from tests.departments.conftest import QUIZ, days

RIGHT = {1: {2}, 2: {1, 2}}
WRONG = {1: {1}, 2: {1}}


def records(module):
    return {
        r.user.username: r.state
        for r in TrainingRecord.objects.filter(module=module, current=True).select_related("user")
    }


def test_assigning_to_a_department_gives_each_member_a_record(
    module, hr_editor, qa_engineer, make_user
):
    other_qa = make_user("quinn", ("qa", Membership.VIEWER))
    assignment, count = actions.do_assign_training(
        hr_editor, module, department=qa_engineer.memberships.get().department, due_date=days(14)
    )
    assert count == 2
    assert records(module) == {"aiko": "assigned", "quinn": "assigned"}
    record = TrainingRecord.objects.get(user=other_qa)
    assert (record.due_date, record.assignment) == (days(14), assignment)


def test_assigning_to_a_role_reaches_that_role_in_every_department(
    module, hr_editor, dev_engineer, qa_engineer, strategist, viewer
):
    actions.do_assign_training(hr_editor, module, role=Membership.ENGINEER, due_date=days(7))
    assert records(module) == {"devon": "assigned", "aiko": "assigned", "ravi": "assigned"}


def test_assigning_to_a_role_in_a_department(module, hr_editor, departments, make_user):
    make_user("qe", ("qa", Membership.ENGINEER))
    make_user("qv", ("qa", Membership.VIEWER))
    make_user("de", ("dev", Membership.ENGINEER))
    assignment, _ = actions.do_assign_training(
        hr_editor, module, department=departments["qa"], role=Membership.ENGINEER, due_date=days(7)
    )
    assert records(module) == {"qe": "assigned"}
    assert assignment.audience() == "engineers of Quality assurance"


def test_a_second_assignment_does_not_duplicate_a_persons_record(
    module, hr_editor, qa_engineer, departments
):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(7))
    _, count = actions.do_assign_training(
        hr_editor, module, department=departments["qa"], due_date=days(30)
    )
    assert count == 0
    assert TrainingRecord.objects.filter(user=qa_engineer).count() == 1


def test_an_assignment_needs_an_audience(module, hr_editor):
    with pytest.raises(ValueError):
        actions.do_assign_training(hr_editor, module, due_date=days(7))


def test_starting_moves_assigned_to_in_progress_once(module, hr_editor, qa_engineer):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(7))
    first = actions.do_start_training(qa_engineer, module)
    started = first.started_at
    again = actions.do_start_training(qa_engineer, module)
    assert (again.pk, again.state, again.started_at) == (first.pk, "in_progress", started)


def test_anybody_may_take_a_published_module_unassigned(module, viewer):
    record = actions.do_start_training(viewer, module)
    assert record.state == "in_progress" and record.assignment is None
    assert record.due_date == days(actions.GRACE_DAYS)


def test_passing_the_quiz_completes_the_training_with_the_result_as_evidence(module, qa_engineer):
    record = actions.do_start_training(qa_engineer, module)
    attempt, result = actions.do_submit_quiz(qa_engineer, record, RIGHT)
    record.refresh_from_db()
    assert result.passed and (result.correct, result.total, result.percent) == (2, 2, 100)
    assert record.state == "completed" and record.score == 100
    assert record.completed_at is not None and record.expires_at is None
    assert f"attempt #{attempt.pk}" in record.evidence and "2 of 2 right" in record.evidence


def test_failing_the_quiz_keeps_the_attempt_and_the_training_open(module, qa_engineer):
    record = actions.do_start_training(qa_engineer, module)
    attempt, result = actions.do_submit_quiz(qa_engineer, record, WRONG)
    record.refresh_from_db()
    assert not result.passed and result.percent == 0
    assert record.state == "in_progress"
    assert QuizAttempt.objects.get() == attempt and attempt.answers == {"1": [1], "2": [1]}
    # A second try that passes completes it.
    actions.do_submit_quiz(qa_engineer, record, RIGHT)
    record.refresh_from_db()
    assert record.state == "completed" and record.attempts.count() == 2


def test_a_completed_training_takes_no_more_submissions(module, qa_engineer):
    record = actions.do_start_training(qa_engineer, module)
    actions.do_submit_quiz(qa_engineer, record, RIGHT)
    with pytest.raises(TrainingRecord.IllegalTransition):
        actions.do_submit_quiz(qa_engineer, record, RIGHT)


def test_a_module_without_quiz_is_completed_in_the_persons_own_words(make_module, viewer):
    module = make_module("Incident roles", quiz="")
    record = actions.do_start_training(viewer, module)
    actions.do_complete_training(viewer, record, "Shadowed the on-call for a week.")
    record.refresh_from_db()
    assert (record.state, record.evidence) == ("completed", "Shadowed the on-call for a week.")


def test_a_module_with_a_quiz_cannot_be_completed_without_it(module, viewer):
    record = actions.do_start_training(viewer, module)
    with pytest.raises(TrainingRecord.IllegalTransition):
        actions.do_complete_training(viewer, record, "trust me")


# --- time ------------------------------------------------------------------------


def at(day_offset: int) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(days=day_offset)


def test_open_training_becomes_overdue_the_day_after_its_due_date(
    module, hr_editor, qa_engineer, dev_engineer
):
    actions.do_assign_training(hr_editor, module, role=Membership.ENGINEER, due_date=days(10))
    actions.do_start_training(dev_engineer, module)

    assert update_training_states(now=at(10)) == {"overdue": 0, "recertified": 0, "joined": 0}
    assert update_training_states(now=at(11))["overdue"] == 2

    late = TrainingRecord.objects.get(user=dev_engineer)
    assert late.state == "overdue" and late.overdue_at is not None
    assert late.started_at is not None  # the start stays recorded
    # A second run the same day changes nothing.
    assert update_training_states(now=at(11))["overdue"] == 0


def test_overdue_training_can_still_be_completed(module, hr_editor, qa_engineer):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(1))
    update_training_states(now=at(2))
    record = TrainingRecord.objects.get(user=qa_engineer)
    assert record.state == "overdue"
    actions.do_submit_quiz(qa_engineer, record, RIGHT)
    record.refresh_from_db()
    assert record.state == "completed" and record.overdue_at is not None


def test_completed_training_never_becomes_overdue(module, hr_editor, qa_engineer):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(1))
    actions.do_submit_quiz(qa_engineer, TrainingRecord.objects.get(), RIGHT)
    update_training_states(now=at(30))
    assert TrainingRecord.objects.get().state == "completed"


def test_a_completion_expires_after_the_recertification_period_and_is_assigned_again(
    make_module, hr_editor, qa_engineer
):
    module = make_module(recertify_after_days=90)
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(7))
    first = TrainingRecord.objects.get()
    actions.do_submit_quiz(qa_engineer, first, RIGHT)
    first.refresh_from_db()
    assert first.expires_at == first.completed_at + datetime.timedelta(days=90)
    assert first.is_valid_completion(now=at(89))

    assert update_training_states(now=at(89))["recertified"] == 0
    counts = update_training_states(now=at(91))
    assert counts["recertified"] == 1

    first.refresh_from_db()
    assert not first.current and first.state == "completed"  # kept as history
    assert not first.is_valid_completion(now=at(91))
    renewal = TrainingRecord.objects.get(current=True)
    assert renewal.state == "assigned" and renewal.recertification_of == first
    assert renewal.due_date == (at(91) + datetime.timedelta(days=actions.GRACE_DAYS)).date()
    # And the renewal goes overdue like any other training.
    assert update_training_states(now=at(91 + actions.GRACE_DAYS + 1))["overdue"] == 1


def test_people_who_join_a_department_later_get_the_assignment(
    module, hr_editor, departments, make_user
):
    actions.do_assign_training(hr_editor, module, department=departments["qa"], due_date=days(30))
    newcomer = make_user("nina", ("qa", Membership.ENGINEER))
    assert update_training_states(now=at(1))["joined"] == 1
    assert TrainingRecord.objects.get(user=newcomer).due_date == days(30)
    # Joining after the due date leaves the grace period to do it.
    late = make_user("lars", ("qa", Membership.ENGINEER))
    update_training_states(now=at(40))
    assert (
        TrainingRecord.objects.get(user=late).due_date
        == (at(40) + datetime.timedelta(days=actions.GRACE_DAYS)).date()
    )


def test_withdrawing_removes_unfinished_records_and_keeps_completions(
    module, hr_editor, departments, qa_engineer, make_user
):
    make_user("quinn", ("qa", Membership.ENGINEER))
    assignment, _ = actions.do_assign_training(
        hr_editor, module, department=departments["qa"], due_date=days(7)
    )
    actions.do_submit_quiz(qa_engineer, TrainingRecord.objects.get(user=qa_engineer), RIGHT)
    removed = actions.do_withdraw_assignment(hr_editor, assignment)
    assert removed == 1
    assert records(module) == {"aiko": "completed"}
    # Withdrawn assignments reach no newcomers.
    make_user("nina", ("qa", Membership.ENGINEER))
    assert update_training_states()["joined"] == 0


# --- the quiz format --------------------------------------------------------------


def test_the_quiz_text_parses_into_questions():
    first, second = parse(QUIZ)
    assert first.text.startswith("Which pool setting")
    assert [c.correct for c in first.choices] == [False, True, False]
    assert first.explanation.startswith("max_overflow")
    assert second.multiple and second.correct_numbers() == {1, 2}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("- a choice first", "write the question"),
        ("? q\n- a\n- b", "no right choice"),
        ("? q\n+ only one", "at least two choices"),
        ("? q\n+ a\n- b\n* c", "start the line with"),
        ("?\n+ a\n- b", "no text"),
    ],
)
def test_a_wrong_quiz_says_which_line(text, error):
    with pytest.raises(QuizError, match=error):
        parse(text)


def test_a_multiple_answer_question_needs_exactly_the_right_choices():
    questions = parse(QUIZ)
    assert score(questions, {1: {2}, 2: {1}}, 50).verdicts == {1: True, 2: False}
    assert score(questions, {1: {2}, 2: {1, 2, 3}}, 50).verdicts[2] is False


def test_the_score_rounds_down_so_a_near_miss_does_not_pass():
    questions = parse("\n\n".join(f"? q{n}\n+ a\n- b" for n in range(3)))
    result = score(questions, {1: {1}, 2: {1}, 3: {2}}, 67)
    assert (result.percent, result.passed) == (66, False)


def test_people_hear_of_new_training_and_of_recertification(
    make_module, hr_editor, qa_engineer, mailoutbox, django_capture_on_commit_callbacks
):
    module = make_module(recertify_after_days=30)
    with django_capture_on_commit_callbacks(execute=True):
        actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(7))
    assert [m.to for m in mailoutbox] == [[qa_engineer.email]]
    assert "training to take" in mailoutbox[0].subject
    assert module.get_absolute_url() in mailoutbox[0].body

    actions.do_submit_quiz(qa_engineer, TrainingRecord.objects.get(), RIGHT)
    with django_capture_on_commit_callbacks(execute=True):
        update_training_states(now=at(31))
    assert "time to recertify" in mailoutbox[1].subject
    assert qa_engineer.notifications.count() == 2
