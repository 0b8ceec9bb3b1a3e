"""The dashboard: active initiatives with phase progress, my tasks, open work, overdue."""

import datetime

import pytest
from django.urls import reverse

from optimizations.models import PhaseTask


def test_the_dashboard_shows_active_initiatives_with_a_bar_per_phase(login, initiative, manager):
    page = login(manager).get(reverse("dashboard")).content.decode()
    assert initiative.title in page
    assert page.count('role="progressbar"') == 4


def test_my_open_tasks_are_mine_and_open(login, initiative, qa_engineer):
    mine = PhaseTask.objects.get(phase__initiative=initiative, title="Analyze performance")
    mine.assignee = qa_engineer
    mine.save()
    done = PhaseTask.objects.get(phase__initiative=initiative, title="Find bottlenecks")
    done.assignee, done.status = qa_engineer, PhaseTask.DONE
    done.save()
    response = login(qa_engineer).get(reverse("dashboard"))
    assert [t.title for t in response.context["my_tasks"]] == ["Analyze performance"]


def test_open_work_per_department_counts_open_tasks(login, initiative, manager):
    response = login(manager).get(reverse("dashboard"))
    counts = {d.code: (d.open_count, d.open_hours) for d in response.context["departments"]}
    # The standard plan: qa 4 tasks (16+12+16+12 h), dev 3 (24+24+16), strategy 2 (16+12), hr 0.
    assert counts == {"dev": (3, 64), "qa": (4, 56), "strategy": (2, 28), "hr": (0, 0)}


def test_overdue_tasks_and_phases_are_listed(login, make_initiative, manager):
    past = datetime.date.today() - datetime.timedelta(days=40)
    make_initiative(start_date=past, target_date=past + datetime.timedelta(days=20))
    response = login(manager).get(reverse("dashboard"))
    assert len(response.context["overdue_phases"]) == 4
    assert len(response.context["overdue_tasks"]) == 9


@pytest.mark.parametrize("initiatives", [1, 50])
def test_the_dashboard_costs_the_same_queries_for_1_and_50_initiatives(
    login, make_initiative, qa_engineer, initiatives, django_assert_max_num_queries
):
    past = datetime.date.today() - datetime.timedelta(days=40)
    for n in range(initiatives):
        initiative = make_initiative(title=f"Initiative {n}", start_date=past)
        PhaseTask.objects.filter(phase__initiative=initiative).update(
            assignee=qa_engineer, due_date=past
        )
    client = login(qa_engineer)
    with django_assert_max_num_queries(14):
        assert client.get(reverse("dashboard")).status_code == 200
