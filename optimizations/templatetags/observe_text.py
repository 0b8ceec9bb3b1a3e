"""Continuous observation's stored English on the pages, in the page's language
(optimizations.observe.texts)."""

from django import template

from optimizations.observe import texts

register = template.Library()


@register.filter
def observed(text) -> str:
    """A sentence the burn-rate rules, the minute check or an incident's timeline stored."""
    return texts.stored(text) if isinstance(text, str) else text


@register.filter
def rule_name(name) -> str:
    """A burn-rate rule's name: the default rules' names translated, others as written."""
    return texts.rule_name(name) if isinstance(name, str) else name


@register.filter
def alert_kind(value) -> str:
    """page or ticket."""
    return texts.kind(value) if isinstance(value, str) else value


@register.filter
def event_source(value) -> str:
    """Where events came from: minute checks, Prometheus, traces."""
    return texts.source(value) if isinstance(value, str) else value


@register.filter
def objective_label(key) -> str:
    """An SLO with an error budget by its key (availability_pct…), in the page's language."""
    return texts.objective_label(key) if isinstance(key, str) else key
