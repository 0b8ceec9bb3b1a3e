"""Burn-rate alert rules per target, evaluated every minute on the maintenance queue.

Each target has the SRE workbook's multiwindow, multi-burn-rate rules
(optimizations.analyzers.observe.burnrate.DEFAULT_RULES) until someone edits them:
windows, burn rates and the route — the incident severity a firing rule opens with,
which decides who is told how (optimizations.observe.channels). Every edit is an
audited write (portal.audit), the rules' history.

Every rule is judged for every SLO with a budget (optimizations.observe.budgets). As in
the SRE workbook, the rules of one kind are one alert: the page alert of an SLO fires
when its fast or its slow burn does, the ticket alert when the steady burn does. An
alert that starts firing opens an incident (``incidents.open_from_alert``, source
``burn-rate``, key ``<slo>:<page|ticket>``, the most severe route of its firing rules);
once none of its rules fires it is resolved. A rule whose windows saw no events is
incomplete and changes nothing: no data is not recovery.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.utils import timezone

from optimizations.analyzers.base import FAIL, MOST_SEVERE_FIRST, PASS
from optimizations.analyzers.observe import burnrate
from optimizations.models import ObserveSettings, TargetService
from optimizations.observe import budgets, incidents
from optimizations.observe.sources import settings_of
from portal.audit import describe_changes, record

logger = logging.getLogger(__name__)

SOURCE = "burn-rate"
DEFAULT_ROUTES = {burnrate.PAGE: "critical", burnrate.TICKET: "medium"}


def default_rules() -> list[dict]:
    return [
        {**rule.as_dict(), "route": DEFAULT_ROUTES[rule.severity]}
        for rule in burnrate.DEFAULT_RULES
    ]


def rules_of(observe: ObserveSettings) -> list[tuple[burnrate.AlertRule, str]]:
    """The target's rules and the incident severity each opens with."""
    stored = observe.rules or default_rules()
    rules = []
    for data in stored:
        rule = burnrate.AlertRule.from_dict(data)
        rules.append((rule, str(data.get("route") or DEFAULT_ROUTES[rule.severity])))
    return rules


def alert_key(slo_key: str, rule: burnrate.AlertRule) -> str:
    return f"{slo_key}:{rule.name}"


def evaluate_target(target: TargetService, now=None) -> dict:
    """Judge every rule of every budgeted SLO now; open and resolve incidents on changes.
    The judgement is kept on the settings (what the pages and the status command show)."""
    now = now or timezone.now()
    observe = settings_of(target)
    rules = rules_of(observe)
    longest = max((rule.long_window for rule, _route in rules), default=datetime.timedelta(0))
    previous = observe.evaluation or {}
    evaluation: dict[str, dict] = {}
    for objective in budgets.OBJECTIVES:
        buckets, source = budgets.events(target, objective.key, now - longest, now)
        states = burnrate.evaluate(
            buckets,
            budgets.objective_of(target, objective.key),
            [rule for rule, _route in rules],
            clock=lambda: now,
        )
        for state, (_rule, route) in zip(states, rules, strict=True):
            key = alert_key(objective.key, state.rule)
            before = previous.get(key) or {}
            since = before.get("since") if before.get("verdict") == state.verdict else None
            evaluation[key] = {
                "slo": objective.key,
                "rule": state.rule.name,
                "kind": state.rule.severity,
                "verdict": state.verdict,
                "reason": state.reason,
                "source": source,
                "route": route,
                "since": since or now.isoformat(),
            }
    _open_and_resolve(target, previous, evaluation)
    spent = [row.as_dict() for row in budgets.budgets(target, now)]
    ObserveSettings.objects.filter(pk=observe.pk).update(
        evaluation=evaluation, budgets=spent, evaluated_at=now
    )
    return evaluation


def _groups(evaluation: dict[str, dict]) -> dict[str, list[dict]]:
    """The rules of one SLO and kind are one alert, as in the SRE workbook: the page
    alert fires when the fast or the slow burn does, the ticket when the steady one does."""
    groups: dict[str, list[dict]] = {}
    for entry in evaluation.values():
        groups.setdefault(f"{entry['slo']}:{entry.get('kind', entry['rule'])}", []).append(entry)
    return groups


def _open_and_resolve(target, previous: dict[str, dict], evaluation: dict[str, dict]) -> None:
    """One incident per alert (SLO and kind): opened when one of its rules starts firing,
    resolved when none fires and one has events to say so (no events is no recovery)."""
    before = _groups(previous)
    for key, entries in _groups(evaluation).items():
        was_firing = any(entry["verdict"] == FAIL for entry in before.get(key, []))
        burning = [entry for entry in entries if entry["verdict"] == FAIL]
        if burning and not was_firing:
            objective = next(o for o in budgets.OBJECTIVES if o.key == entries[0]["slo"])
            severity = max((entry["route"] for entry in burning), key=MOST_SEVERE_FIRST[::-1].index)
            why = "; ".join(f"{entry['rule']}: {entry['reason']}" for entry in burning)
            summary = (
                f"{target.name}: {objective.label} budget burning "
                f"({budgets.describe(target, objective.key)}) — {why}"
            )
            incidents.open_from_alert(target, SOURCE, key, summary, severity)
        elif was_firing and not burning and any(e["verdict"] == PASS for e in entries):
            incidents.resolve_from_alert(target, SOURCE, key)
    # Alerts removed by an edit of the rules while firing: their incidents resolve too.
    now_keys = set(_groups(evaluation))
    for key, entries in before.items():
        if key not in now_keys and any(entry["verdict"] == FAIL for entry in entries):
            incidents.resolve_from_alert(target, SOURCE, key)


def evaluate_all(now=None) -> int:
    now = now or timezone.now()
    judged = 0
    for target in TargetService.objects.all():
        try:
            evaluate_target(target, now)
            judged += 1
        except Exception:  # one broken target must not stop the others' alerts
            logger.exception("burn-rate evaluation of %s failed", target.slug)
    return judged


def firing(observe: ObserveSettings) -> list[dict]:
    return [entry for entry in (observe.evaluation or {}).values() if entry["verdict"] == FAIL]


def do_save_rules(actor, target: TargetService, rules: list[dict]) -> ObserveSettings:
    """Replace the target's rules (each checked by AlertRule), audited with what changed."""
    for data in rules:
        burnrate.AlertRule.from_dict(data)
    with transaction.atomic():
        observe = ObserveSettings.objects.select_for_update().get(pk=settings_of(target).pk)
        before = {"rules": observe.rules or default_rules()}
        observe.rules = rules
        observe.save(update_fields=["rules", "updated_at"])
        changes = describe_changes(before, {"rules": rules})
        record(
            actor,
            "alerts.rules",
            observe,
            f"Alert rules of {target.name}: {len(rules)} rule(s)",
            changes=changes,
            target=target,
        )
    return observe


def do_save_sources(actor, target: TargetService, prometheus_url: str, queries: dict) -> None:
    """Set the target's Prometheus server and expressions, audited."""
    with transaction.atomic():
        observe = ObserveSettings.objects.select_for_update().get(pk=settings_of(target).pk)
        before = {"prometheus_url": observe.prometheus_url, "queries": observe.queries}
        observe.prometheus_url = prometheus_url
        observe.queries = {key: value for key, value in queries.items() if value}
        observe.save(update_fields=["prometheus_url", "queries", "updated_at"])
        after = {"prometheus_url": observe.prometheus_url, "queries": observe.queries}
        record(
            actor,
            "alerts.sources",
            observe,
            f"Continuous sources of {target.name}",
            changes=describe_changes(before, after),
            target=target,
        )
