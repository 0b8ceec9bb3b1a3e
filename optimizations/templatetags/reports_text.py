"""The comparison rule's words on the report pages, in the page's language
(optimizations.reports.texts)."""

from django import template
from django.utils.translation import gettext

from optimizations.reports import texts
from portal.i18n import Phrase

register = template.Library()


@register.filter
def comparison_reasons(comparison) -> str:
    """Why the rule said what it said (``Comparison.reasons``), joined with "; "."""
    return texts.reasons(comparison).translated(gettext)


@register.filter
def comparison_interval(comparison) -> str:
    """``Comparison.interval_text``: figures, or the sentence saying there is none."""
    text = texts.interval_text(comparison)
    return text.translated(gettext) if isinstance(text, Phrase) else text


@register.filter
def evidence_label(level) -> str:
    """An evidence level (verified, measured, estimated) as a word of the page's language."""
    word = texts.EVIDENCE.get(level)
    return word.translated(gettext) if word is not None else level
