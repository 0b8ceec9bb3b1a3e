"""Burn-rate alerts and error budgets from stored events, judged at an injected moment."""

import datetime
import io
import json

import pytest
from django.core.management import call_command

from optimizations.analyzers.observe import burnrate
from optimizations.models import Incident, Measurement, ObserveSettings, Trace
from optimizations.observe import alerting, budgets, incidents, panel
from optimizations.observe.sources import settings_of
from portal.models import AuditEvent

NOW = datetime.datetime(2026, 12, 7, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture
def calls(monkeypatch):
    """What the alerts asked of the incidents (their own tests cover what happens next)."""
    seen = []
    monkeypatch.setattr(
        incidents,
        "open_from_alert",
        lambda target, source, key, summary, severity="high": seen.append(
            ("open", target.slug, source, key, severity, summary)
        ),
    )
    monkeypatch.setattr(
        incidents,
        "resolve_from_alert",
        lambda target, source, key: seen.append(("resolve", target.slug, source, key)),
    )
    return seen


def checks(target, minutes_up: int, minutes_down: int, end=NOW):
    """Minute checks up, then down, the last one a minute before ``end``."""
    total = minutes_up + minutes_down
    Measurement.objects.bulk_create(
        Measurement(
            target=target,
            name="availability.up",
            value=1.0 if index < minutes_up else 0.0,
            unit="bool",
            measured_at=end - datetime.timedelta(minutes=total - index),
        )
        for index in range(total)
    )


def test_a_target_that_stops_fires_the_page_and_ticket_alerts_and_recovers(target, calls):
    checks(target, 120, 0)
    quiet = alerting.evaluate_target(target, NOW)
    assert quiet["availability_pct:fast burn"]["verdict"] == "pass"
    assert calls == []

    checks(target, 0, 2, end=NOW + datetime.timedelta(minutes=2))
    later = NOW + datetime.timedelta(minutes=2)
    fired = alerting.evaluate_target(target, later)

    assert fired["availability_pct:fast burn"]["verdict"] == "fail"
    # 2 bad of 60 checks over the hour: 3.3 % bad against a 0.1 % allowance.
    assert "33.3× over 1 h" in fired["availability_pct:fast burn"]["reason"]
    # As in the SRE workbook: fast or slow burn is one page alert, the steady burn a ticket.
    opened = [call for call in calls if call[0] == "open"]
    assert [(c[2], c[3], c[4]) for c in opened] == [
        ("burn-rate", "availability_pct:page", "critical"),
        ("burn-rate", "availability_pct:ticket", "medium"),
    ]
    assert "Orders API" in opened[0][5]
    assert "fast burn: burn rate 33.3×" in opened[0][5] and "slow burn: " in opened[0][5]

    # Still firing a minute later: no second incident.
    checks(target, 0, 1, end=later + datetime.timedelta(minutes=1))
    alerting.evaluate_target(target, later + datetime.timedelta(minutes=1))
    assert len([c for c in calls if c[0] == "open"]) == 2

    # Six good minutes: the 5-minute window is clean, the fast burn quiet; the 30-minute
    # window still holds the bad minutes, so the page alert goes on (the slow burn).
    back = later + datetime.timedelta(minutes=7)
    checks(target, 6, 0, end=back)
    judged = alerting.evaluate_target(target, back)
    assert judged["availability_pct:fast burn"]["verdict"] == "pass"
    assert judged["availability_pct:slow burn"]["verdict"] == "fail"
    assert [c for c in calls if c[0] == "resolve"] == []

    # Thirty clean minutes: the slow burn is quiet too, the page alert resolves; the
    # steady burn's 6-hour window keeps the ticket open.
    clean = later + datetime.timedelta(minutes=31)
    checks(target, 24, 0, end=clean)
    judged = alerting.evaluate_target(target, clean)
    assert judged["availability_pct:slow burn"]["verdict"] == "pass"
    assert [c for c in calls if c[0] == "resolve"] == [
        ("resolve", "orders-api", "burn-rate", "availability_pct:page")
    ]


def test_no_events_is_incomplete_and_changes_nothing(target, calls):
    judged = alerting.evaluate_target(target, NOW)

    assert {entry["verdict"] for entry in judged.values()} == {"incomplete"}
    assert "send its traces" in judged["p99_ms:fast burn"]["reason"]
    assert calls == []


def test_edited_rules_are_judged_and_audited(target, manager, calls):
    rule = burnrate.AlertRule(
        "live", burnrate.PAGE, 2.0, datetime.timedelta(minutes=10), datetime.timedelta(minutes=2)
    )
    alerting.do_save_rules(manager, target, [{**rule.as_dict(), "route": "high"}])
    checks(target, 9, 1)

    judged = alerting.evaluate_target(target, NOW)

    assert list(judged) == ["availability_pct:live", "error_rate_pct:live", "p99_ms:live"]
    assert calls[0][:5] == ("open", "orders-api", "burn-rate", "availability_pct:page", "high")
    event = AuditEvent.objects.get(action="alerts.rules")
    assert event.actor == manager and event.target == target
    assert "fast burn" in event.changes["rules"][0] and "live" in event.changes["rules"][1]


def test_a_rule_with_a_short_window_longer_than_its_long_one_is_refused(target, manager):
    with pytest.raises(ValueError, match="shorter than the long one"):
        alerting.do_save_rules(
            manager,
            target,
            [
                {
                    "name": "odd",
                    "severity": "page",
                    "burn_rate": 2,
                    "long_window_s": 60,
                    "short_window_s": 600,
                }
            ],
        )
    assert settings_of(target).rules == []


def test_budgets_count_minute_checks_traces_and_prometheus_events(target):
    checks(target, 998, 2)  # 2 bad of 1000 at 99.9 %: the allowance is 1, twice spent
    for index in range(100):
        Trace.objects.create(
            target=target,
            trace_id=f"{index:032x}",
            received_at=NOW,
            started_at=NOW - datetime.timedelta(minutes=30, seconds=index),
            endpoint="GET /items",
            duration_ms=900.0 if index < 1 else 20.0,
            error=False,
        )
    for minute, (requests, errors) in enumerate([(100, 0), (100, 1)]):
        at = NOW - datetime.timedelta(minutes=10 - minute)
        for name, value in (("events.requests", requests), ("events.errors", errors)):
            Measurement.objects.create(
                target=target,
                name=name,
                value=value,
                unit="count",
                measured_at=at,
                labels={"source": "prometheus"},
            )

    rows = {row.key: row for row in budgets.budgets(target, NOW)}

    assert rows["availability_pct"].source == "minute-check"
    assert rows["availability_pct"].remaining_pct == -100.0
    assert rows["availability_pct"].budget.verdict == "fail"
    # Error rate: Prometheus's events first (1 bad of 200 at 99 %: half the budget).
    assert rows["error_rate_pct"].source == "prometheus"
    assert rows["error_rate_pct"].remaining_pct == 50.0
    # Latency: no Prometheus events for it, so the traces (1 slow of 100 at 99 %: all spent).
    assert rows["p99_ms"].source == "traces"
    assert rows["p99_ms"].remaining_pct == 0.0
    assert rows["p99_ms"].objective == "99 % of requests ≤ 500 ms"


def test_the_budget_is_this_months(target):
    checks(target, 0, 5, end=NOW.replace(day=1, hour=0, minute=2))

    (availability,) = [r for r in budgets.budgets(target, NOW) if r.key == "availability_pct"]

    assert availability.budget.total == 2  # 00:00 and 00:01 of the 1st; the rest last month


def test_status_gives_the_pages_figures(target, calls):
    checks(target, 60, 0)
    alerting.evaluate_target(target, NOW)
    ObserveSettings.objects.filter(target=target).update(prometheus_url="http://127.0.0.1:9")

    status = panel.status(target)

    assert status["sources"] == ["minute-check", "metrics", "prometheus"]
    assert status["traces_received"] == 0
    assert status["open_alerts"] == []
    assert status["budgets"][0] == {
        "slo": "availability_pct",
        "objective": "99.9 % of minute checks up",
        "source": "minute-check",
        "good": 60,
        "bad": 0,
        "remaining_pct": 100.0,
        "verdict": "pass",
    }


def test_the_status_command_prints_what_the_pages_show(target, calls):
    checks(target, 58, 2)
    alerting.evaluate_target(target, NOW)
    out = io.StringIO()

    call_command("observability", "status", "--json", stdout=out)

    (entry,) = json.loads(out.getvalue())["targets"]
    assert entry == panel.status(target)
    assert entry["target"] == "orders-api"
    assert [alert["rule"] for alert in entry["open_alerts"]] == [
        "fast burn",
        "slow burn",
        "steady burn",
    ]
    assert entry["budgets"][0]["remaining_pct"] == pytest.approx(-3233.3, abs=0.1)

    text = io.StringIO()
    call_command("observability", "status", "--target", "orders-api", stdout=text)
    assert "FIRING availability_pct · fast burn" in text.getvalue()
    assert "budget 99.9 % of minute checks up: -3233.3 % left (fail), from minute-check" in (
        text.getvalue()
    )


def test_a_firing_rule_opens_a_real_incident_and_quiet_resolves_it(target, dev_engineer):
    checks(target, 120, 0)
    alerting.evaluate_target(target, NOW)
    later = NOW + datetime.timedelta(minutes=2)
    checks(target, 0, 2, end=later)

    alerting.evaluate_target(target, later)

    opened = Incident.objects.get(source="burn-rate", key="availability_pct:page")
    assert opened.target == target and opened.severity == "critical" and opened.is_open
    assert "fast burn" in opened.detail
    assert Incident.objects.filter(source="burn-rate", ended_at__isnull=True).count() == 2

    back = later + datetime.timedelta(minutes=31)
    checks(target, 29, 0, end=back)
    alerting.evaluate_target(target, back)

    opened.refresh_from_db()
    assert not opened.is_open
    still = Incident.objects.get(source="burn-rate", key="availability_pct:ticket")
    assert still.is_open
