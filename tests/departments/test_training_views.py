"""The training pages: HR assigns, a person takes the quiz, the dashboard shows it."""

from django.urls import reverse

from departments import actions
from departments.models import Membership, TrainingGate, TrainingModule, TrainingRecord
from departments.tasks import refresh_training_states, update_training_states
from tests.departments.conftest import days


def test_hr_creates_a_module_and_a_wrong_quiz_is_refused_with_its_line(
    login, hr_editor, departments, runbook
):
    client = login(hr_editor)
    data = {
        "title": "Pool sizing",
        "summary": "",
        "status": "published",
        "owner_department": departments["hr"].pk,
        "content": "# Read this",
        "quiz": "? q\n+ a\n* c",
        "pass_mark": "80",
        "recertify_after_days": "",
        "runbooks": [runbook.pk],
    }
    response = client.post(reverse("training_module_create"), data)
    assert response.status_code == 200 and "line 3" in response.content.decode()
    data["quiz"] = "? q\n+ a\n- b"
    response = client.post(reverse("training_module_create"), data)
    module = TrainingModule.objects.get()
    assert response["Location"] == module.get_absolute_url()
    assert list(module.runbooks.all()) == [runbook]


def test_a_module_can_start_from_a_runbook(login, hr_editor, runbook):
    page = login(hr_editor).get(reverse("training_module_create"), {"runbook": runbook.slug})
    assert f"Read the runbook [{runbook.title}]({runbook.get_absolute_url()})" in (
        page.content.decode()
    )


def test_hr_assigns_a_module_to_a_department_with_a_due_date(
    login, module, hr_editor, departments, qa_engineer
):
    response = login(hr_editor).post(
        reverse("training_assign", args=[module.slug]),
        {"department": departments["qa"].pk, "due_date": days(10).isoformat()},
    )
    assert response["Location"] == module.get_absolute_url()
    record = TrainingRecord.objects.get()
    assert (record.user, record.due_date, record.state) == (qa_engineer, days(10), "assigned")
    page = login(hr_editor).get(module.get_absolute_url()).content.decode()
    assert "Quality assurance" in page and "0 / 1" in page


def test_an_assignment_in_the_past_or_without_audience_is_refused(
    login, module, hr_editor, departments, qa_engineer
):
    client = login(hr_editor)
    client.post(
        reverse("training_assign", args=[module.slug]),
        {"department": departments["qa"].pk, "due_date": days(-1).isoformat()},
    )
    client.post(reverse("training_assign", args=[module.slug]), {"due_date": days(3).isoformat()})
    client.post(
        reverse("training_assign", args=[module.slug]),
        {"user": qa_engineer.pk, "role": "engineer", "due_date": days(3).isoformat()},
    )
    assert not TrainingRecord.objects.exists()


def test_a_draft_module_is_not_assigned(login, make_module, hr_editor, qa_engineer):
    module = make_module(status=TrainingModule.DRAFT)
    login(hr_editor).post(
        reverse("training_assign", args=[module.slug]),
        {"user": qa_engineer.pk, "due_date": days(3).isoformat()},
    )
    assert not TrainingRecord.objects.exists()


def test_a_qa_engineer_takes_the_quiz_and_passes(login, module, hr_editor, qa_engineer):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(7))
    client = login(qa_engineer)
    mine = client.get(reverse("training_mine")).content.decode()
    assert module.title in mine and "Start" in mine

    response = client.post(reverse("training_start", args=[module.slug]))
    assert response["Location"] == reverse("training_take", args=[module.slug])
    page = client.get(response["Location"]).content.decode()
    assert 'id="question-1"' in page and 'type="radio"' in page and 'type="checkbox"' in page

    wrong = client.post(
        reverse("training_take", args=[module.slug]), {"quiz-q1": "1", "quiz-q2": ["1"]}
    ).content.decode()
    assert "Not passed yet" in wrong and "max_overflow: extra connections" in wrong

    right = client.post(
        reverse("training_take", args=[module.slug]), {"quiz-q1": "2", "quiz-q2": ["1", "2"]}
    ).content.decode()
    assert "Passed" in right and 'id="completed"' in right
    record = TrainingRecord.objects.get()
    assert record.state == "completed" and record.attempts.count() == 2


def test_an_unanswered_question_is_asked_for(login, module, qa_engineer):
    client = login(qa_engineer)
    client.post(reverse("training_start", args=[module.slug]))
    page = client.post(reverse("training_take", args=[module.slug]), {"quiz-q1": "2"})
    assert "Answer this question." in page.content.decode()
    assert not TrainingRecord.objects.filter(state="completed").exists()


def test_taking_without_starting_sends_you_to_start(login, module, viewer):
    response = login(viewer).get(reverse("training_take", args=[module.slug]))
    assert response["Location"] == module.get_absolute_url()


def test_a_module_without_quiz_is_completed_with_evidence(login, make_module, viewer):
    module = make_module("Incident roles", quiz="")
    client = login(viewer)
    client.post(reverse("training_start", args=[module.slug]))
    response = client.post(
        reverse("training_take", args=[module.slug]), {"evidence": "Shadowed on-call."}
    )
    assert response["Location"] == reverse("training_mine")
    assert TrainingRecord.objects.get().evidence == "Shadowed on-call."


def test_the_dashboard_shows_completion_by_department_and_the_overdue_people(
    login, module, hr_editor, departments, qa_engineer, make_user
):
    late = make_user("quinn", ("qa", Membership.ENGINEER), first_name="Quinn")
    actions.do_assign_training(hr_editor, module, department=departments["qa"], due_date=days(1))
    record = TrainingRecord.objects.get(user=qa_engineer)
    actions.do_submit_quiz(qa_engineer, record, {1: {2}, 2: {1, 2}})
    TrainingRecord.objects.filter(user=late).update(due_date=days(-1))
    update_training_states()

    page = login(hr_editor).get(reverse("training_dashboard")).content.decode()
    qa_row = page.split('id="department-qa"')[1].split("</tr>")[0]
    assert "1 of 2" in qa_row and 'aria-valuenow="50"' in qa_row
    overdue = page.split('id="overdue"')[1].split("</section>")[0]
    assert "Quinn" in overdue and module.title in overdue
    assert "aiko" in page.split("Recently completed")[1]


def test_the_dashboard_costs_the_same_queries_for_many_people(
    login,
    make_module,
    hr_editor,
    departments,
    make_user,
    queries_of,
    django_assert_max_num_queries,
):
    client = login(hr_editor)

    def assign_overdue(module):
        actions.do_assign_training(
            hr_editor, module, department=departments["qa"], due_date=days(1)
        )
        TrainingRecord.objects.update(due_date=days(-1))
        update_training_states()

    make_user("person0", ("qa", Membership.ENGINEER))
    assign_overdue(make_module("First"))
    baseline = queries_of(client, reverse("training_dashboard"))
    for n in range(1, 25):
        make_user(f"person{n}", ("qa", Membership.ENGINEER), first_name=f"P{n}")
    assign_overdue(make_module("Second"))
    update_training_states()
    with django_assert_max_num_queries(baseline):
        page = client.get(reverse("training_dashboard")).content.decode()
    # person0 is overdue on both modules, the 24 newcomers on the second one.
    assert page.count('id="training-') == 26


def test_my_training_and_the_module_list_are_flat_in_queries(
    login, make_module, hr_editor, qa_engineer, queries_of, django_assert_max_num_queries
):
    client = login(qa_engineer)

    def assign(n):
        module = make_module(f"Module {n}")
        actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(n + 1))

    assign(0)
    mine = queries_of(client, reverse("training_mine"))
    listed = queries_of(client, reverse("training_module_list"))
    for n in range(1, 12):
        assign(n)
    with django_assert_max_num_queries(mine):
        assert client.get(reverse("training_mine")).content.decode().count('id="training-') == 12
    with django_assert_max_num_queries(listed):
        assert client.get(reverse("training_module_list")).status_code == 200


def test_hr_requires_a_module_for_load_tests_on_a_target(login, module, hr_editor, target):
    client = login(hr_editor)
    client.post(reverse("training_gate_add", args=[module.slug]), {"target": target.pk})
    gate = TrainingGate.objects.get()
    assert (gate.target, gate.module, gate.job_kind) == (target, module, "benchmark")
    page = client.get(module.get_absolute_url()).content.decode()
    assert f'id="gate-{gate.pk}"' in page and target.name in page
    client.post(reverse("training_gate_remove", args=[gate.pk]))
    assert not TrainingGate.objects.exists()


def test_the_celery_task_runs_the_refresh(module, hr_editor, qa_engineer):
    actions.do_assign_training(hr_editor, module, user=qa_engineer, due_date=days(1))
    TrainingRecord.objects.update(due_date=days(-1))
    assert refresh_training_states.name == "departments.tasks.refresh_training_states"
    assert refresh_training_states.run() == {"overdue": 1, "recertified": 0, "joined": 0}
