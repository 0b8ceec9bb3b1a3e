"""Who may do what with runbooks and training, for every write view and every persona."""

import pytest
from django.urls import reverse

from departments import actions
from departments.models import TrainingGate
from tests.conftest import PERSONAS
from tests.departments.conftest import days

HR = {"hr_editor"}
PROPOSERS = {"manager", "dev_engineer", "qa_engineer", "strategist", "hr_editor"}
RUNNERS = {"manager", "dev_engineer", "qa_engineer", "strategist"}
EVERYONE = set(PERSONAS)


@pytest.fixture
def everyone(request):
    return {name: request.getfixturevalue(name) for name in PERSONAS}


def _requests(runbook, module, target, everyone):
    """(name, method, url, data, personas allowed) for every write view of this app."""
    slug = runbook.slug
    proposal = actions.do_propose_runbook_edit(
        everyone["dev_engineer"], runbook, title="t", body="b"
    )
    actions.do_save_runbook(everyone["hr_editor"], runbook, title=runbook.title, body="v2")
    assignment, _ = actions.do_assign_training(
        everyone["hr_editor"], module, user=everyone["viewer"], due_date=days(7)
    )
    gate = TrainingGate.objects.create(target=target, module=module)
    return [
        ("runbook templates", "get", reverse("runbook_new"), {}, HR),
        ("runbook create", "post", reverse("runbook_create"), {}, HR),
        ("runbook edit", "post", reverse("runbook_edit", args=[slug]), {}, PROPOSERS),
        ("runbook preview", "post", reverse("runbook_preview"), {"body": "x"}, PROPOSERS),
        ("runbook reviewed", "post", reverse("runbook_reviewed", args=[slug]), {}, HR),
        ("runbook restore", "post", reverse("runbook_restore", args=[slug, 1]), {}, HR),
        (
            "proposal approve",
            "post",
            reverse("runbook_approve", args=[slug, proposal.number]),
            {},
            HR,
        ),
        (
            "proposal reject",
            "post",
            reverse("runbook_reject", args=[slug, proposal.number]),
            {},
            HR,
        ),
        ("run a step", "post", reverse("runbook_run_step", args=[slug, 1]), {}, RUNNERS),
        ("module create", "post", reverse("training_module_create"), {}, HR),
        ("module edit", "post", reverse("training_module_edit", args=[module.slug]), {}, HR),
        ("assign", "post", reverse("training_assign", args=[module.slug]), {}, HR),
        (
            "withdraw",
            "post",
            reverse("training_assignment_withdraw", args=[assignment.pk]),
            {},
            HR,
        ),
        ("gate add", "post", reverse("training_gate_add", args=[module.slug]), {}, HR),
        ("gate remove", "post", reverse("training_gate_remove", args=[gate.pk]), {}, HR),
        ("start training", "post", reverse("training_start", args=[module.slug]), {}, EVERYONE),
        ("take training", "post", reverse("training_take", args=[module.slug]), {}, EVERYONE),
        ("dashboard", "get", reverse("training_dashboard"), {}, {"manager", "hr_editor"}),
    ]


def test_every_write_view_refuses_whoever_its_role_does_not_allow(
    client, make_runbook, module, target, everyone
):
    runbook = make_runbook(
        body="```kaizen-run kind=probe target=orders-api\n```\n", targets=[target]
    )
    for name, method, url, data, allowed in _requests(runbook, module, target, everyone):
        for persona, user in everyone.items():
            client.force_login(user)
            response = getattr(client, method)(url, data)
            if persona in allowed:
                assert response.status_code != 403, f"{persona} was refused {name}"
            else:
                assert response.status_code == 403, f"{persona} was allowed {name}"


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_runbooks_and_training(client, persona, runbook, module):
    actions.do_save_runbook(persona, runbook, title=runbook.title, body="v2")
    client.force_login(persona)
    urls = [
        reverse("runbook_list"),
        reverse("runbook_list") + "?q=pool",
        reverse("runbook_reviews"),
        reverse("runbook_coverage"),
        runbook.get_absolute_url(),
        reverse("runbook_history", args=[runbook.slug]),
        reverse("runbook_diff", args=[runbook.slug]),
        reverse("runbook_revision", args=[runbook.slug, 1]),
        reverse("training_mine"),
        reverse("training_module_list"),
        module.get_absolute_url(),
    ]
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_a_viewer_sees_no_edit_buttons_and_an_engineer_is_offered_a_proposal(
    client, runbook, viewer, dev_engineer, hr_editor
):
    edit_url = reverse("runbook_edit", args=[runbook.slug])
    client.force_login(viewer)
    assert edit_url not in client.get(runbook.get_absolute_url()).content.decode()
    client.force_login(dev_engineer)
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert edit_url in page and "Propose a change" in page
    assert "Mark reviewed" not in page
    client.force_login(hr_editor)
    page = client.get(runbook.get_absolute_url()).content.decode()
    assert ">Edit</a>" in page and "Mark reviewed" in page


def test_anonymous_users_go_to_login(client, runbook, module):
    for url in [reverse("runbook_list"), runbook.get_absolute_url(), reverse("training_mine")]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")
