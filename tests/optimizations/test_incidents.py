"""Incidents people run: opened and resolved by alerts, acknowledged, assigned, escalated
(with an injected clock), noted, resolved, written up; routing to the department and HR;
the Alertmanager receiver; MTTA and MTTR."""

from __future__ import annotations

import datetime
import json

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from departments.models import Membership, Runbook
from optimizations.jobs import availability
from optimizations.models import (
    Delivery,
    Incident,
    IncidentEvent,
    PhaseTask,
    Postmortem,
)
from optimizations.observe import channels, incidents, metrics
from portal.models import AuditEvent, Notification
from portal.tokens import do_create_token
from tests.conftest import PERSONAS
from tests.optimizations.workers import free_port

NOW = timezone.make_aware(datetime.datetime(2026, 11, 16, 10, 0))  # a Monday, 10:00
RESPONDERS = {"manager", "dev_engineer", "qa_engineer", "strategist", "hr_editor"}


def minutes(n: float) -> datetime.timedelta:
    return datetime.timedelta(minutes=n)


@pytest.fixture
def hr_manager(make_user):
    return make_user("hana", ("hr", Membership.MANAGER))


@pytest.fixture
def incident(target, manager, dev_engineer, hr_editor):
    return incidents.open_from_alert(
        target, "burn-rate", "availability/fast", "Orders API burns its budget", "high", now=NOW
    )


def kinds(incident) -> list[str]:
    return list(incident.events.values_list("kind", flat=True))


# --- opened and resolved by alerts ---------------------------------------------------


def test_an_alert_opens_one_incident_however_often_it_fires(incident, target):
    again = incidents.open_from_alert(
        target, "burn-rate", "availability/fast", "still burning", "critical", now=NOW + minutes(1)
    )
    assert again.pk == incident.pk
    assert Incident.objects.count() == 1
    assert kinds(incident) == ["opened", "notified"]
    opened = incident.events.get(kind="opened")
    assert opened.data["source"] == "burn-rate" and opened.data["key"] == "availability/fast"
    assert AuditEvent.objects.filter(action="incident.open", target=target).count() == 1


def test_the_owning_department_and_hr_hear_of_it_on_inbox_and_email(
    incident, manager, dev_engineer, hr_editor, qa_engineer
):
    told = set(Notification.objects.values_list("user__username", flat=True))
    assert told == {manager.username, dev_engineer.username, hr_editor.username}
    assert sorted(message.to[0] for message in mail.outbox) == sorted(
        f"{name}@example.com" for name in told
    )
    log = Delivery.objects.filter(incident=incident)
    assert log.filter(channel="inbox", status="delivered").count() == 3
    assert log.filter(channel="email", status="delivered").count() == 3


def test_severity_and_quiet_hours_choose_the_channels(settings):
    assert channels.channels_for("high", NOW) == ("inbox", "email", "webhook")
    assert channels.channels_for("medium", NOW) == ("inbox", "webhook")
    assert channels.channels_for("low", NOW) == ("inbox",)
    settings.KAIZEN_ALERT_QUIET_HOURS = "22-7"
    night = NOW.replace(hour=23)
    assert channels.channels_for("high", night) == ("inbox",)
    assert channels.channels_for("critical", night) == ("inbox", "email", "webhook")
    assert channels.channels_for("high", NOW) == ("inbox", "email", "webhook")


def test_a_cleared_alert_resolves_it_once(incident, target):
    assert incidents.resolve_from_alert(target, "burn-rate", "other") is None
    resolved = incidents.resolve_from_alert(
        target, "burn-rate", "availability/fast", now=NOW + minutes(30)
    )
    assert resolved.pk == incident.pk
    incident.refresh_from_db()
    assert incident.ended_at == NOW + minutes(30)
    assert kinds(incident)[-2:] == ["resolved", "notified"]
    assert incidents.resolve_from_alert(target, "burn-rate", "availability/fast") is None
    # The same alert firing later is a new incident.
    later = incidents.open_from_alert(
        target, "burn-rate", "availability/fast", "again", now=NOW + minutes(60)
    )
    assert later.pk != incident.pk


# --- what people do, with an injected clock -------------------------------------------


def test_acknowledge_assign_note_resolve_are_on_the_timeline(incident, dev_engineer, hr_editor):
    assert incidents.do_acknowledge(hr_editor, incident, NOW + minutes(2))
    assert not incidents.do_acknowledge(dev_engineer, incident, NOW + minutes(3))
    assert incidents.do_assign(hr_editor, incident, dev_engineer, NOW + minutes(4))
    assert Notification.objects.filter(user=dev_engineer, subject__contains="is yours").exists()
    incidents.do_add_note(dev_engineer, incident, "Pool exhausted; restarting", NOW + minutes(5))
    assert incidents.do_resolve(dev_engineer, incident, NOW + minutes(20))
    assert not incidents.do_resolve(dev_engineer, incident, NOW + minutes(21))
    assert kinds(incident) == [
        "opened",
        "notified",
        "acknowledged",
        "assigned",
        "note",
        "resolved",
        "notified",
    ]
    incident.refresh_from_db()
    assert incident.acknowledged_by == hr_editor and incident.assignee == dev_engineer
    assert not incidents.do_acknowledge(hr_editor, incident)  # over: nothing to acknowledge


def test_unacknowledged_after_n_minutes_goes_to_the_departments_managers(
    incident, manager, settings
):
    settings.KAIZEN_INCIDENT_ESCALATE_MINUTES = 15
    assert incidents.escalate_overdue(NOW + minutes(14)) == 0
    before = Notification.objects.filter(user=manager).count()
    assert incidents.escalate_overdue(NOW + minutes(15)) == 1
    assert Notification.objects.filter(user=manager).count() == before + 1
    escalated = incident.events.get(kind="escalated")
    assert escalated.data["managers"] == [manager.username]
    assert "within 15 minutes" in escalated.text
    assert incidents.escalate_overdue(NOW + minutes(60)) == 0  # once


def test_an_acknowledged_incident_does_not_escalate(incident, hr_editor):
    incidents.do_acknowledge(hr_editor, incident, NOW + minutes(1))
    assert incidents.escalate_overdue(NOW + minutes(120)) == 0


# --- the postmortem --------------------------------------------------------------------


def test_the_postmortem_starts_from_hrs_template_created_if_absent(incident, hr_editor):
    assert not Runbook.objects.filter(template_key="postmortem").exists()
    text = incidents.postmortem_template(hr_editor, incident)
    runbook = Runbook.objects.get(template_key="postmortem")
    assert runbook.status == Runbook.PUBLISHED and runbook.owner_department.code == "hr"
    assert "# Postmortem — Orders API" in text
    assert f"Incident #{incident.pk}: Orders API burns its budget" in text
    incidents.postmortem_template(hr_editor, incident)
    assert Runbook.objects.filter(template_key="postmortem").count() == 1


def test_action_items_become_tasks_of_the_open_initiative(incident, initiative, hr_editor):
    incidents.do_write_postmortem(
        hr_editor, incident, "body", ["Alert on pool use", "", "Add an index"], NOW
    )
    tasks = PhaseTask.objects.filter(
        phase__initiative=initiative, description__startswith="From the postmortem"
    ).order_by("pk")
    assert [task.title for task in tasks] == ["Alert on pool use", "Add an index"]
    assert all(task.department == incident.target.owner_department for task in tasks)
    # Rewriting keeps the items it has and adds the new one only.
    incidents.do_write_postmortem(hr_editor, incident, "body 2", ["Add an index", "Drill"], NOW)
    assert tasks.all().count() == 3  # .all(): a fresh query, not the evaluated list
    assert Postmortem.objects.get().body == "body 2"
    assert incident.events.filter(kind="postmortem").count() == 2


def test_without_an_open_initiative_action_items_are_follow_ups(incident, hr_editor):
    postmortem = incidents.do_write_postmortem(hr_editor, incident, "body", ["Drill"], NOW)
    action = postmortem.actions.get()
    assert action.task is None and not action.done
    assert not PhaseTask.objects.filter(description__startswith="From the postmortem").exists()
    assert "1 follow-up(s) on the incident" in incident.events.get(kind="postmortem").text


# --- the pages, per role ---------------------------------------------------------------


WRITES = [
    ("incident_acknowledge", {}),
    ("incident_escalate", {}),
    ("incident_note", {"text": "looking"}),
    ("incident_resolve", {}),
]


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
@pytest.mark.parametrize(("name", "data"), WRITES)
def test_each_transition_by_role(login, persona, incident, name, data, request):
    client = login(persona)
    response = client.post(reverse(name, args=[incident.pk]), data)
    allowed = request.node.callspec.params["persona"] in RESPONDERS
    assert response.status_code == (302 if allowed else 403)
    assert incident.events.exclude(kind__in=("opened", "notified")).exists() == allowed


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_assign_and_postmortem_by_role(login, persona, incident, dev_engineer, request):
    client = login(persona)
    allowed = request.node.callspec.params["persona"] in RESPONDERS
    response = client.post(
        reverse("incident_assign", args=[incident.pk]), {"assignee": dev_engineer.pk}
    )
    assert response.status_code == (302 if allowed else 403)
    response = client.get(reverse("incident_postmortem", args=[incident.pk]))
    assert response.status_code == (200 if allowed else 403)
    response = client.post(
        reverse("incident_postmortem", args=[incident.pk]),
        {"body": "what happened", "action_items": "Drill"},
    )
    assert response.status_code == (302 if allowed else 403)
    assert Postmortem.objects.exists() == allowed


def test_only_responders_can_be_assigned(login, incident, viewer, qa_engineer, hr_editor):
    client = login(hr_editor)
    for person in (viewer, qa_engineer):  # qa is not the target's department
        response = client.post(
            reverse("incident_assign", args=[incident.pk]),
            {"assignee": person.pk},
            headers={"HX-Request": "true"},
        )
        assert response.status_code == 200 and 'class="errorlist' in response.content.decode()
    assert Incident.objects.get().assignee is None


def test_htmx_answers_the_incident_panel(login, incident, hr_editor):
    response = login(hr_editor).post(
        reverse("incident_acknowledge", args=[incident.pk]), headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert body.strip().startswith(f'<div id="incident-{incident.pk}">')
    assert "Acknowledged by tomas" in body and "<html" not in body


def test_the_pages_read_in_bounded_queries(
    login, incident, viewer, hr_editor, django_assert_max_num_queries
):
    incidents.do_add_note(hr_editor, incident, "note")
    client = login(viewer)
    with django_assert_max_num_queries(20):
        page = client.get(reverse("incident_list"))
    assert f'id="incident-row-{incident.pk}"' in page.content.decode()
    with django_assert_max_num_queries(25):
        page = client.get(incident.get_absolute_url()).content.decode()
    assert "Orders API burns its budget" in page and 'data-kind="note"' in page
    assert 'id="acknowledge"' not in page  # a viewer sees no buttons
    with django_assert_max_num_queries(20):
        page = client.get(reverse("delivery_log")).content.decode()
    assert 'id="deliveries"' in page


# --- Alertmanager ---------------------------------------------------------------------


def alertmanager(status, *, target="orders-api", fingerprint="a1b2", severity="critical"):
    alert = {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "kaizen_target": target, "severity": severity},
        "annotations": {"summary": "5xx above 5 %"},
        "startsAt": "2026-11-16T09:58:00Z",
        "endsAt": "2026-11-16T10:20:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }
    return json.dumps(
        {"version": "4", "status": status, "receiver": "kaizen", "alerts": [alert]}
    ).encode()


@pytest.fixture
def token(hr_editor):
    return do_create_token(hr_editor, "alertmanager")[1]


def post(client, body, key):
    return client.post(
        reverse("alertmanager_receiver"),
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {key}"},
    )


def test_alertmanager_firing_opens_and_resolved_resolves(client, target, token, manager):
    answer = post(client, alertmanager("firing"), token).json()
    incident = Incident.objects.get()
    assert answer == {"opened": [incident.pk], "resolved": [], "ignored": []}
    assert incident.source == "alertmanager" and incident.key == "HighErrorRate/a1b2"
    assert incident.severity == "critical"
    assert incident.started_at == datetime.datetime(2026, 11, 16, 9, 58, tzinfo=datetime.UTC)
    assert incident.events.get(kind="opened").data["labels"]["severity"] == "critical"
    assert post(client, alertmanager("firing"), token).json()["opened"] == [incident.pk]
    assert Incident.objects.count() == 1  # repeated notifications change nothing
    answer = post(client, alertmanager("resolved"), token).json()
    assert answer["resolved"] == [incident.pk]
    incident.refresh_from_db()
    assert incident.ended_at == datetime.datetime(2026, 11, 16, 10, 20, tzinfo=datetime.UTC)


def test_alertmanager_ignores_alerts_without_a_known_target(client, target, token):
    answer = post(client, alertmanager("firing", target="nope"), token).json()
    assert answer["opened"] == [] and "kaizen_target" in answer["ignored"][0]["reason"]
    assert not Incident.objects.exists()


def test_alertmanager_needs_a_token_of_a_responder(client, target, viewer):
    assert post(client, alertmanager("firing"), "").status_code == 401
    assert post(client, alertmanager("firing"), "kz_wrong").status_code == 401
    viewer_key = do_create_token(viewer, "x")[1]
    assert post(client, alertmanager("firing"), viewer_key).status_code == 403
    assert not Incident.objects.exists()


def test_alertmanager_refuses_what_is_not_its_payload(client, token):
    assert post(client, b"{", token).status_code == 400
    assert post(client, b'{"alerts": 3}', token).status_code == 400


# --- MTTA and MTTR ------------------------------------------------------------------


def test_mtta_and_mttr_per_month_and_quarter(target, hr_editor):
    def make(key, started, ack_after=None, resolve_after=None):
        incident = incidents.open_from_alert(target, "test", key, key, "low", now=started)
        if ack_after is not None:
            incidents.do_acknowledge(hr_editor, incident, started + minutes(ack_after))
        if resolve_after is not None:
            incidents.do_resolve(hr_editor, incident, started + minutes(resolve_after))

    make("a", NOW, ack_after=4, resolve_after=30)
    make("b", NOW + minutes(90), ack_after=10, resolve_after=90)
    make("c", NOW + minutes(200))  # still open, unacknowledged
    make("d", NOW - datetime.timedelta(days=40), ack_after=1, resolve_after=5)  # October
    november = metrics.summary(metrics.month_of(NOW))
    assert november == {
        "period": "2026-11",
        "incidents": 3,
        "acknowledged": 2,
        "resolved": 2,
        "mtta_minutes": 7.0,
        "mttr_minutes": 60.0,
    }
    quarter = metrics.summary(metrics.quarter_of(NOW))
    assert quarter["period"] == "2026-Q4" and quarter["incidents"] == 4
    assert quarter["mtta_minutes"] == 5.0 and quarter["mttr_minutes"] == round(125 / 3, 1)
    assert [row["period"] for row in metrics.by_month(NOW, 3)] == ["2026-11", "2026-10", "2026-09"]
    assert [row["period"] for row in metrics.by_quarter(NOW, 2)] == ["2026-Q4", "2026-Q3"]
    assert metrics.parse_quarter("2026-Q4") == metrics.quarter_of(NOW)
    by_target = metrics.breakdown(metrics.quarter_of(NOW))["target"]
    assert by_target == [
        {
            "key": "orders-api",
            "label": "Orders API",
            "incidents": 4,
            "mtta_minutes": 5.0,
            "mttr_minutes": round(125 / 3, 1),
        }
    ]


def test_the_minute_checks_incidents_go_through_the_same_functions(target, dev_engineer):
    target.base_url = f"http://127.0.0.1:{free_port()}"
    target.save()
    for step in range(3):
        availability.check_target(target, NOW + minutes(step))
    incident = Incident.objects.get()
    assert (incident.source, incident.key, incident.severity) == (
        "minute-check",
        "down",
        "critical",
    )
    assert incident.started_at == NOW
    assert kinds(incident) == ["opened", "notified"]
    assert IncidentEvent.objects.filter(kind="opened").count() == 1


def test_the_portfolio_shows_incidents_per_month_and_quarter(login, target, hr_editor, viewer):
    incident = incidents.open_from_alert(target, "test", "k", "down", now=NOW)
    incidents.do_acknowledge(hr_editor, incident, NOW + minutes(6))
    incidents.do_resolve(hr_editor, incident, NOW + minutes(45))
    recent = metrics.recent(NOW, months=2, quarters=2)
    assert [row["period"] for row in recent["months"]] == ["2026-11", "2026-10"]
    assert recent["months"][0] == metrics.summary(metrics.month_of(NOW))
    assert recent["quarters"][0]["mtta_minutes"] == 6.0
    assert recent["quarters"][0]["mttr_minutes"] == 45.0
    client = login(viewer)
    page = client.get(reverse("portfolio")).content.decode()
    assert f'hx-get="{reverse("portfolio_incidents")}"' in page  # loaded after the page
    panel = client.get(reverse("portfolio_incidents"), headers={"HX-Request": "true"})
    body = panel.content.decode()
    assert body.strip().startswith('<section class="panel" id="portfolio-incidents">')
    assert f'id="incidents-{metrics.month_of(timezone.now()).label}"' in body
    whole = client.get(reverse("portfolio_incidents")).content.decode()
    assert "<html" in whole and 'id="portfolio-incidents"' in whole
