"""Outgoing webhooks: signed with HMAC-SHA256, retried with backoff, logged, allow-listed —
against a real receiver on loopback."""

from __future__ import annotations

import datetime
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations import tasks
from optimizations.management.commands.webhook_receiver import make_server
from optimizations.models import Delivery, WebhookEndpoint
from optimizations.observe import channels, incidents
from optimizations.targets.crypto import encrypt
from tests.conftest import PERSONAS

NOW = timezone.make_aware(datetime.datetime(2026, 11, 16, 10, 0))
SECRET = "s3cret-for-the-receiver"
MINUTES_20 = datetime.timedelta(minutes=20)


class Receiver:
    """A webhook receiver on loopback that answers the statuses it is given, in turn."""

    def __init__(self, statuses=(200,)):
        self.statuses = list(statuses)
        self.received: list[tuple[dict, bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = outer.statuses.pop(0) if len(outer.statuses) > 1 else outer.statuses[0]
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,)):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for server in made:
        server.close()


def endpoint(url, flavour=WebhookEndpoint.JSON, **fields):
    fields.setdefault("name", "ops")
    return WebhookEndpoint.objects.create(
        url=url, flavour=flavour, secret_encrypted=encrypt(SECRET), **fields
    )


def open_incident(target, severity="high"):
    return incidents.open_from_alert(target, "test", "k", "Orders API is down", severity, now=NOW)


def test_sign_and_verify():
    body = b'{"a":1}'
    header = channels.sign(SECRET, 1700000000, body)
    assert header.startswith("t=1700000000,v1=")
    assert channels.verify(SECRET, header, body)
    assert not channels.verify(SECRET, header, b'{"a":2}')
    assert not channels.verify("other", header, body)
    assert not channels.verify(SECRET, "t=x,v1=00", body)


def test_a_webhook_is_signed_and_delivered_by_the_sweep(target, receiver):
    server = receiver()
    endpoint(server.url)
    incident = open_incident(target)
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "pending" and not server.received  # sent after commit, by sweep
    assert channels.deliver_due(NOW) == 1
    headers, body = server.received[0]
    assert channels.verify(SECRET, headers["x-kaizen-signature"], body)
    assert headers["x-kaizen-signature"].startswith(f"t={int(NOW.timestamp())},")
    data = json.loads(body)
    assert data["event"] == "incident.opened"
    assert data["incident"]["id"] == incident.pk and data["incident"]["target"] == "orders-api"
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 1, 200)
    assert channels.deliver_due(NOW + datetime.timedelta(hours=1)) == 0  # never twice


def test_a_failed_attempt_is_retried_with_backoff_then_delivered(target, receiver):
    server = receiver([500, 503, 200])
    endpoint(server.url)
    open_incident(target)
    delivery = Delivery.objects.get(channel="webhook")
    assert channels.deliver_due(NOW) == 0
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.next_attempt_at == NOW + datetime.timedelta(seconds=30)
    assert "answered 500" in delivery.error
    assert channels.deliver_due(NOW + datetime.timedelta(seconds=29)) == 0  # not due yet
    assert len(server.received) == 1
    later = NOW + datetime.timedelta(seconds=30)
    assert channels.deliver_due(later) == 0
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == later + datetime.timedelta(seconds=120)
    assert channels.deliver_due(later + datetime.timedelta(seconds=120)) == 1
    delivery.refresh_from_db()
    assert delivery.status == "delivered" and delivery.attempts == 3
    # Every attempt signed the same body with its own timestamp.
    assert all(channels.verify(SECRET, h["x-kaizen-signature"], b) for h, b in server.received)


def test_after_the_last_attempt_the_delivery_has_failed(target, receiver):
    server = receiver([500])
    endpoint(server.url)
    open_incident(target)
    moment = NOW
    for wait in (0, *channels.BACKOFF):
        moment += datetime.timedelta(seconds=wait)
        channels.deliver_due(moment)
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "failed" and delivery.attempts == channels.MAX_ATTEMPTS
    assert delivery.next_attempt_at is None
    assert len(server.received) == channels.MAX_ATTEMPTS


def test_a_host_off_the_notify_allow_list_fails_at_once_with_the_reason(target, receiver, settings):
    server = receiver()
    endpoint(server.url)
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["10.9.9.0/24"]
    open_incident(target)
    channels.deliver_due(NOW)
    delivery = Delivery.objects.get(channel="webhook")
    assert delivery.status == "failed" and "KAIZEN_ALLOWED_NOTIFY_HOSTS" in delivery.error
    assert not server.received


def test_slack_flavour_severity_floor_and_department(target, receiver, departments):
    slack = receiver()
    endpoint(slack.url, WebhookEndpoint.SLACK)
    endpoint(receiver().url, min_severity="critical")
    endpoint(receiver().url, department=departments["qa"])
    open_incident(target, "high")
    assert Delivery.objects.filter(channel="webhook").count() == 1  # only the Slack one
    channels.deliver_due(NOW)
    data = json.loads(slack.received[0][1])
    assert data["text"].startswith("Kaizen: Orders API is down — Orders API is down <")
    assert data["kaizen"]["event"] == "incident.opened"


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_webhooks_are_added_by_managers_and_hr_editors(login, persona, request, receiver):
    allowed = request.node.callspec.params["persona"] in {"manager", "hr_editor"}
    response = login(persona).post(
        reverse("webhook_new"),
        {
            "name": "ops",
            "url": receiver().url,
            "flavour": "json",
            "secret": SECRET,
            "min_severity": "high",
        },
    )
    assert response.status_code == (302 if allowed else 403)
    assert WebhookEndpoint.objects.exists() == allowed
    if allowed:
        assert WebhookEndpoint.objects.get().secret() == SECRET


def test_the_webhook_form_refuses_a_host_off_the_allow_list(login, manager, settings):
    settings.KAIZEN_ALLOWED_NOTIFY_HOSTS = ["10.9.9.0/24"]
    response = login(manager).post(
        reverse("webhook_new"),
        {"name": "x", "url": "http://127.0.0.1:9/h", "flavour": "json", "secret": SECRET},
    )
    assert (
        response.status_code == 200 and "KAIZEN_ALLOWED_NOTIFY_HOSTS" in response.content.decode()
    )
    assert not WebhookEndpoint.objects.exists()


def test_the_local_receiver_checks_what_kaizen_sends(target):
    lines: list[str] = []
    server = make_server(0, SECRET, lines.append, now=lambda: NOW.timestamp())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        endpoint(f"http://127.0.0.1:{port}/")
        endpoint(f"http://127.0.0.1:{port}/", name="wrong")
        WebhookEndpoint.objects.filter(name="wrong").update(secret_encrypted=encrypt("other"))
        incident = open_incident(target)
        assert channels.deliver_due(NOW) == 1  # the right secret's delivery only
        assert sorted(lines) == [
            f"BAD signature · incident.opened #{incident.pk} orders-api: Orders API is down",
            f"signature ok · incident.opened #{incident.pk} orders-api: Orders API is down",
        ]
        wrong = Delivery.objects.get(endpoint__name="wrong")
        assert wrong.status == "pending" and wrong.response_status == 401
    finally:
        server.shutdown()
        server.server_close()


def test_the_maintenance_sweep_escalates_and_delivers(target, receiver, manager, settings):
    server = receiver()
    endpoint(server.url)
    incident = incidents.open_from_alert(
        target, "test", "k", "Orders API is down", "high", now=timezone.now() - MINUTES_20
    )
    settings.KAIZEN_INCIDENT_ESCALATE_MINUTES = 15
    # Run as beat runs it (the task's function, in this process).
    assert tasks.incident_sweep() == {"escalated": 1, "delivered": 2}
    assert [json.loads(body)["event"] for _headers, body in server.received] == [
        "incident.opened",
        "incident.escalated",
    ]
    assert incident.events.filter(kind="escalated").exists()
