"""Incidents in departments' pages: a runbook's steps run for an incident land on its
timeline, and HR's quarterly operations review (incidents, MTTA, MTTR, alerts by target
and department, the compliance register's changes)."""

from __future__ import annotations

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from departments import compliance
from departments.models import Control
from optimizations.models import Run
from optimizations.observe import incidents
from tests.conftest import PERSONAS

NOW = timezone.make_aware(datetime.datetime(2026, 11, 16, 10, 0))
STEP = "```kaizen-run kind=benchmark\nrate: 5\nduration: 5\n```"


@pytest.fixture
def incident(target):
    return incidents.open_from_alert(target, "test", "down", "Orders API is down", now=NOW)


def test_a_step_run_for_an_incident_goes_on_its_timeline(
    login, make_runbook, target, incident, dev_engineer, broker_up
):
    runbook = make_runbook(body=STEP, targets=[target])
    incidents.do_link_runbook(dev_engineer, incident, runbook)
    client = login(dev_engineer)
    page = client.get(f"{runbook.get_absolute_url()}?incident={incident.pk}").content.decode()
    assert 'id="for-incident"' in page
    assert f'<input type="hidden" name="incident" value="{incident.pk}">' in page
    response = client.post(
        reverse("runbook_run_step", args=[runbook.slug, 1]),
        {"incident": incident.pk},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200
    run = Run.objects.get()
    event = incident.events.get(kind="step_run")
    assert event.actor == dev_engineer and event.data["run"] == run.pk
    detail = client.get(incident.get_absolute_url()).content.decode()
    assert f'href="{reverse("run_detail", args=[run.pk])}"' in detail
    assert f'href="{runbook.get_absolute_url()}?incident={incident.pk}"' in detail


def test_a_step_run_without_an_incident_touches_no_timeline(
    login, make_runbook, target, incident, dev_engineer, broker_up
):
    runbook = make_runbook(body=STEP, targets=[target])
    login(dev_engineer).post(reverse("runbook_run_step", args=[runbook.slug, 1]))
    assert Run.objects.count() == 1
    assert not incident.events.filter(kind="step_run").exists()


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_reads_the_operations_review(login, persona, incident):
    assert login(persona).get(reverse("operations_review")).status_code == 200


def test_the_review_shows_the_quarters_figures_and_the_registers_changes(
    login, target, hr_editor, django_assert_max_num_queries
):
    for key, ack, end in (("a", 4, 30), ("b", 10, 90)):
        incident = incidents.open_from_alert(target, "burn-rate", key, key, "low", now=NOW)
        incidents.do_acknowledge(hr_editor, incident, NOW + datetime.timedelta(minutes=ack))
        incidents.do_resolve(hr_editor, incident, NOW + datetime.timedelta(minutes=end))
    control = Control.objects.create(
        slug="allow",
        statement="Allow-lists narrow",
        department=target.owner_department,
        recurrence=Control.QUARTERLY,
        source="allow_lists",
    )
    compliance.evaluate(control, NOW)
    client = login(hr_editor)
    with django_assert_max_num_queries(40):
        page = client.get(reverse("operations_review"), {"quarter": "2026-Q4"}).content.decode()
    assert 'id="review-incidents">2<' in page
    assert 'id="review-mtta">7.0 min<' in page and 'id="review-mttr">60.0 min<' in page
    assert 'id="by-target"' in page and "Orders API" in page
    assert 'id="by-department"' in page and target.owner_department.name in page
    assert 'id="compliance-changes"' in page and 'id="change-allow"' in page
    # Resolved without a postmortem: both, until one is written.
    assert page.count('href="/incidents/') >= 2
    assert 'id="without-postmortem"' in page
    bad = client.get(reverse("operations_review"), {"quarter": "2026-Q9"})
    assert bad.status_code == 200 and "is not a quarter" in bad.content.decode()
