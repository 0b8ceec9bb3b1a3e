"""The minute check: up or down, pool use and error rate from /metrics, incidents."""

import pytest
from django.core import mail

from optimizations.jobs import availability
from optimizations.models import Incident, Measurement
from optimizations.targets.crypto import encrypt
from portal.models import Notification
from tests.optimizations.workers import StubTarget, free_port

METRICS = """# HELP db_pool_size Pool size
db_pool_size 5
db_pool_max_overflow 5
db_pool_checked_out {checked_out}
http_requests_total{{route="/items",status="200"}} {ok}
http_requests_total{{route="/items",status="500"}} {errors}
"""


class MetricsTarget(StubTarget):
    def __init__(self):
        self.values = {"checked_out": 1, "ok": 100, "errors": 0}
        outer = self
        super().__init__()
        handler = self.server.RequestHandlerClass
        original = handler.do_GET

        def do_get(request):
            if request.path == "/metrics":
                body = METRICS.format(**outer.values).encode()
                return request._send(200, body, "text/plain")
            return original(request)

        handler.do_GET = do_get


@pytest.fixture
def owned(target, dev_engineer, manager):
    return target  # the dev department's engineer and manager own it


def test_an_up_target_is_measured_and_uptime_follows(owned):
    server = StubTarget()
    try:
        owned.base_url = server.url
        owned.save()
        assert availability.check_target(owned)["up"] is True
        assert Measurement.objects.get(target=owned, name="availability.up").value == 1
        assert availability.uptime(owned)["24 h"] == 100.0
    finally:
        server.close()


def test_three_minutes_down_open_an_incident_that_tells_the_owners_and_closes(owned, dev_engineer):
    owned.base_url = f"http://127.0.0.1:{free_port()}"
    owned.save()
    for _ in range(2):
        availability.check_target(owned)
    assert not Incident.objects.exists()  # two bad minutes are not yet an incident
    availability.check_target(owned)
    incident = Incident.objects.get()
    assert incident.kind == Incident.DOWN and incident.ended_at is None
    assert "connection was refused" in incident.detail
    assert Notification.objects.filter(user=dev_engineer, subject__contains="is down").exists()
    assert any("is down" in message.subject for message in mail.outbox)
    assert availability.uptime(owned)["24 h"] == 0.0
    server = StubTarget()
    try:
        owned.base_url = server.url
        owned.save()
        availability.check_target(owned)
    finally:
        server.close()
    incident.refresh_from_db()
    assert incident.ended_at is not None
    assert Notification.objects.filter(user=dev_engineer, subject__contains="recovered").exists()


def test_pool_use_and_error_rate_come_from_the_targets_metrics(owned):
    server = MetricsTarget()
    try:
        owned.base_url = server.url
        owned.save()
        availability.check_target(owned)
        server.values.update(checked_out=9, ok=190, errors=10)
        result = availability.check_target(owned)
    finally:
        server.close()
    assert result["pool_use_pct"] == pytest.approx(90.0)
    assert result["error_rate_pct"] == pytest.approx(10.0)  # 10 of the 100 new requests
    names = set(Measurement.objects.filter(target=owned).values_list("name", flat=True))
    assert {"metrics.pool_use", "metrics.error_rate", "availability.health_ms"} <= names


def test_a_pool_above_its_slo_for_three_minutes_is_an_incident(owned):
    server = MetricsTarget()
    server.values["checked_out"] = 9  # 90 % of size + overflow, above 80 %
    try:
        owned.base_url = server.url
        owned.save()
        for _ in range(3):
            availability.check_target(owned)
    finally:
        server.close()
    incident = Incident.objects.get(kind=Incident.SLO)
    assert incident.slo_key == "pool_use_pct" and "90 %" in incident.detail


def test_a_target_outside_the_allow_list_is_down_with_the_reason(owned, settings):
    settings.KAIZEN_ALLOWED_TARGET_HOSTS = ["10.0.0.0/8"]
    assert availability.check_target(owned)["up"] is False
    assert "not in KAIZEN_ALLOWED_TARGET_HOSTS" in availability.check_target(owned)["detail"]


def test_the_minute_check_does_not_follow_a_redirect_off_the_allow_list(owned, settings):
    # Nobody starts the minute check: it must hold the allow-list on its own, and never
    # hand the target's auth header to a host off it.
    from tests.analyzers.netguard_servers import ALLOWED, REFUSED, Recorder

    settings.KAIZEN_ALLOWED_TARGET_HOSTS = ["127.0.0.2/32"]
    allowed, refused = Recorder(ALLOWED), Recorder(REFUSED)
    try:
        allowed.redirect(owned.health_path, f"{refused.url}/steal")
        owned.base_url = allowed.url
        owned.auth_header_name = "Authorization"
        owned.auth_header_value_encrypted = encrypt("Bearer minute-secret")
        owned.save()
        outcome = availability.check_target(owned)
    finally:
        allowed.close()
        refused.close()
    assert outcome["up"] is False
    assert "not in KAIZEN_ALLOWED_TARGET_HOSTS" in outcome["detail"]
    assert refused.seen == []
    assert allowed.seen[0].headers["authorization"] == "Bearer minute-secret"
