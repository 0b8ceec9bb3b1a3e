"""Who may do what, checked server-side for every write view and every persona."""

import pytest
from django.urls import reverse

from departments.models import Membership
from optimizations.models import PhaseTask
from tests.conftest import PERSONAS

ENGINEERS = {"dev_engineer", "qa_engineer", "strategist"}


def _task(initiative, department):
    return PhaseTask.objects.filter(
        phase__initiative=initiative, department__code=department
    ).first()


def _requests(initiative, target, departments, personas):
    """(name, method, url, data, personas allowed) for every write view."""
    phase = initiative.phases.get(number=2)
    hr_task = PhaseTask.objects.create(
        phase=phase, title="Write runbook", department=departments["hr"]
    )
    dev_task, qa_task, strategy_task = (
        _task(initiative, code) for code in ("dev", "qa", "strategy")
    )
    membership = Membership.objects.get(user=personas["viewer"])
    task_data = lambda task: {f"t{task.pk}-status": "doing", f"t{task.pk}-logged_hours": "1"}  # noqa: E731
    return [
        ("initiative create", "post", reverse("initiative_create"), {}, {"manager"}),
        (
            "initiative edit",
            "post",
            reverse("initiative_edit", args=[initiative.pk]),
            {},
            {"manager"},
        ),
        (
            "phase status",
            "post",
            reverse("phase_status", args=[phase.pk]),
            {"status": "active"},
            {"manager"},
        ),
        (
            "task create",
            "post",
            reverse("task_create", args=[phase.pk]),
            {"title": "x", "department": departments["dev"].pk},
            {"manager"},
        ),
        (
            "dev task",
            "post",
            reverse("task_update", args=[dev_task.pk]),
            task_data(dev_task),
            {"manager", "dev_engineer"},
        ),
        (
            "qa task",
            "post",
            reverse("task_update", args=[qa_task.pk]),
            task_data(qa_task),
            {"manager", "qa_engineer"},
        ),
        (
            "strategy task",
            "post",
            reverse("task_update", args=[strategy_task.pk]),
            task_data(strategy_task),
            {"manager", "strategist"},
        ),
        (
            "hr task",
            "post",
            reverse("task_update", args=[hr_task.pk]),
            task_data(hr_task),
            {"manager", "hr_editor"},
        ),
        ("target create", "post", reverse("target_create"), {}, {"manager"} | ENGINEERS),
        (
            "target edit",
            "post",
            reverse("target_edit", args=[target.slug]),
            {},
            {"manager"} | ENGINEERS,
        ),
        ("person add", "post", reverse("person_add"), {}, {"manager"}),
        ("membership set", "post", reverse("membership_set"), {}, {"manager"}),
        (
            "membership remove",
            "post",
            reverse("membership_remove", args=[membership.pk]),
            {},
            {"manager"},
        ),
        ("audit list", "get", reverse("audit_list"), {}, {"manager"}),
    ]


@pytest.fixture
def everyone(request):
    return {name: request.getfixturevalue(name) for name in PERSONAS}


def test_every_write_view_refuses_whoever_its_role_does_not_allow(
    client, initiative, target, departments, everyone
):
    for name, method, url, data, allowed in _requests(initiative, target, departments, everyone):
        for persona, user in everyone.items():
            client.force_login(user)
            response = getattr(client, method)(url, data)
            if persona in allowed:
                assert response.status_code != 403, f"{persona} was refused {name}"
            else:
                assert response.status_code == 403, f"{persona} was allowed {name}"


READ_PAGES = [
    ("dashboard", []),
    ("initiative_list", []),
    ("target_list", []),
    ("department_list", []),
    ("people", []),
    ("profile", []),
]


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_every_page(client, persona, initiative, target):
    client.force_login(persona)
    urls = [reverse(name, args=args) for name, args in READ_PAGES] + [
        initiative.get_absolute_url(),
        target.get_absolute_url(),
        reverse("department_detail", args=["qa"]),
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_anonymous_users_go_to_login(client, initiative, target):
    for url in ["/", initiative.get_absolute_url(), target.get_absolute_url(), "/people/"]:
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_a_viewer_sees_tasks_read_only_and_an_engineer_sees_their_own_editable(
    client, initiative, viewer, dev_engineer
):
    dev_task = _task(initiative, "dev")
    qa_task = _task(initiative, "qa")
    client.force_login(viewer)
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert f'hx-post="/tasks/{dev_task.pk}/"' not in page
    client.force_login(dev_engineer)
    page = client.get(initiative.get_absolute_url()).content.decode()
    assert f'hx-post="/tasks/{dev_task.pk}/"' in page
    assert f'hx-post="/tasks/{qa_task.pk}/"' not in page
