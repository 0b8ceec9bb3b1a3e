"""The alerts page of a target: everyone signed in reads it; managers and engineers change
the sources and rules, each change audited (the rules' history)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Measurement, ObserveSettings
from optimizations.observe import alerting, budgets, incidents
from portal import access
from portal.models import AuditEvent

EDITORS = ["manager", "dev_engineer", "qa_engineer", "strategist"]
READERS = ["hr_editor", "viewer", "outsider"]


def rules_post(*rules):
    data = {
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "12",
    }
    for index, rule in enumerate(rules):
        data.update({f"rules-{index}-{key}": value for key, value in rule.items()})
    return data


LIVE = {
    "name": "live",
    "severity": "page",
    "burn_rate": "2",
    "long_window": "10",
    "short_window": "2",
    "route": "high",
}


@pytest.mark.parametrize("persona", EDITORS + READERS, indirect=True)
def test_everyone_signed_in_reads_the_page(login, persona, target):
    page = login(persona).get(reverse("target_alerts", args=[target.slug]))

    assert page.status_code == 200
    body = page.content.decode()
    assert "fast burn" in body and "Error budget left this month" in body
    # The editor's fields only for those who may save them.
    assert ('name="rules-0-burn_rate"' in body) == access.can_edit_targets(persona)


@pytest.mark.parametrize("persona", EDITORS, indirect=True)
def test_managers_and_engineers_save_rules(login, persona, target):
    answer = login(persona).post(
        reverse("target_alert_rules", args=[target.slug]), rules_post(LIVE)
    )

    assert answer.status_code == 302
    observe = ObserveSettings.objects.get(target=target)
    assert observe.rules == [
        {
            "name": "live",
            "severity": "page",
            "burn_rate": 2.0,
            "long_window_s": 600,
            "short_window_s": 120,
            "route": "high",
        }
    ]
    event = AuditEvent.objects.get(action="alerts.rules")
    assert event.actor == persona
    history = login(persona).get(reverse("target_alerts", args=[target.slug])).content.decode()
    assert f"alert-change-{event.pk}" in history


@pytest.mark.parametrize("persona", READERS, indirect=True)
def test_others_may_not_change_rules_or_sources(login, persona, target):
    client = login(persona)

    rules = client.post(reverse("target_alert_rules", args=[target.slug]), rules_post(LIVE))
    sources = client.post(
        reverse("target_alert_sources", args=[target.slug]),
        {"prometheus_url": "http://127.0.0.1:9090"},
    )

    assert rules.status_code == sources.status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="alerts.").exists()


def test_a_short_window_longer_than_the_long_one_is_refused(login, manager, target):
    odd = {**LIVE, "long_window": "5", "short_window": "30"}

    answer = login(manager).post(reverse("target_alert_rules", args=[target.slug]), rules_post(odd))

    assert answer.status_code == 400
    assert "The short window must be shorter than the long one." in answer.content.decode()
    assert not AuditEvent.objects.filter(action="alerts.rules").exists()


def test_sources_are_saved_and_audited(login, dev_engineer, target):
    answer = login(dev_engineer).post(
        reverse("target_alert_sources", args=[target.slug]),
        {"prometheus_url": "http://127.0.0.1:9090", "query_pool_use_pct": "max(db_pool_use)"},
    )

    assert answer.status_code == 302
    observe = ObserveSettings.objects.get(target=target)
    assert observe.prometheus_url == "http://127.0.0.1:9090"
    assert observe.queries == {"pool_use_pct": "max(db_pool_use)"}
    event = AuditEvent.objects.get(action="alerts.sources")
    assert event.changes["prometheus_url"] == ["", "http://127.0.0.1:9090"]


def test_the_slo_board_shows_budgets_beside_the_benchmark(
    login, viewer, target, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(incidents, "open_from_alert", lambda *args, **kwargs: None)
    alerting.evaluate_target(target)
    client = login(viewer)
    page = client.get(reverse("target_slo", args=[target.slug]))
    assert 'id="slo-continuous" hx-get=' in page.content.decode()

    with django_assert_max_num_queries(6):  # session, user, target, settings, figures
        page = client.get(
            reverse("target_slo", args=[target.slug]),
            HTTP_HX_REQUEST="true",
            HTTP_HX_TARGET="slo-continuous",
        )

    assert page.status_code == 200
    body = page.content.decode()
    assert 'id="budget-availability_pct"' in body
    assert 'id="budget-error_rate_pct"' in body
    assert "99 % of requests ≤ 500 ms" in body


@pytest.mark.parametrize("changes", [1, 15])
def test_the_alerts_page_reads_a_bounded_number_of_queries(
    login, manager, target, changes, django_assert_max_num_queries
):
    for index in range(changes):
        alerting.do_save_rules(
            manager,
            target,
            [
                {
                    "name": f"rule {index}",
                    "severity": "page",
                    "burn_rate": 2,
                    "long_window_s": 600,
                    "short_window_s": 60,
                    "route": "high",
                }
            ],
        )
    client = login(manager)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("target_alerts", args=[target.slug]))
    assert page.content.decode().count('id="alert-change-') == changes


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_budget_spent_many_times_over_reads_as_exhausted_not_as_a_large_negative_percentage(
    login, viewer, target, monkeypatch, language
):
    monkeypatch.setattr(incidents, "open_from_alert", lambda *args, **kwargs: None)
    now = timezone.now()
    start = budgets.month_start(now)
    # 58 checks up and 2 down this month at 99.9 %: the budget (0.06 of a check) spent 33.3×.
    Measurement.objects.bulk_create(
        Measurement(
            target=target,
            name="availability.up",
            value=1.0 if index < 58 else 0.0,
            unit="bool",
            measured_at=start + (now - start) * index / 60,
        )
        for index in range(60)
    )
    rows = {row.key: row for row in budgets.budgets(target, now)}
    spent = rows["availability_pct"].spent_times
    assert rows["availability_pct"].remaining_pct == -3233.3
    assert spent == 33.3
    alerting.evaluate_target(target, now)
    client = login(viewer)
    client.cookies["django_language"] = language
    body = client.get(
        reverse("target_slo", args=[target.slug]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="slo-continuous",
        HTTP_ACCEPT_LANGUAGE=language,
    ).content.decode()
    row = body[body.index('id="budget-availability_pct"') :].split("</tr>")[0]
    expected = {
        "en": f"exhausted: {spent}× the budget spent",
        "ja": f"使い切り：予算の {spent} 倍を消費",
    }[language]
    assert expected in row
    assert f">{rows['availability_pct'].remaining_pct}\xa0%<" not in row
