"""Small template filters for numbers and durations as people read them."""

import datetime
import json

from django import template
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from optimizations.jobs import schedules, verdicts
from optimizations.models import Job
from optimizations.models.results import SEVERITY_LABELS
from optimizations.work import plan, rule_texts
from portal.i18n import Phrase

register = template.Library()


@register.filter
def duration_short(value) -> str:
    """A timedelta (or seconds) as "4 min 12 s", "850 ms", "2 h 05 min"."""
    if value is None or value == "":
        return ""
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@register.filter
def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@register.filter
def get_item(mapping, key):
    try:
        return mapping.get(key)
    except AttributeError:
        return None


@register.filter
def is_scalar(value) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


@register.filter
def script_json(value: str):
    """A JSON string made safe inside <script type="application/json">."""
    from django.utils.safestring import mark_safe

    escaped = str(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return mark_safe(escaped)


@register.filter
def percent(value, digits=1):
    """A ratio (0.0123) as a percentage ("1.2 %")."""
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def split(value: str, separator: str = " ") -> list[str]:
    return str(value).split(separator)


@register.filter
def criterion_verdict(state) -> str:
    """A task criterion's state in the verdict vocabulary: met → pass, not met → fail,
    unknown → incomplete, not checked yet → pending."""
    return verdicts.from_check(state or "pending") or "pending"


@register.filter
def slo_verdict(state) -> str:
    """An SLO row's state as a verdict: pass, fail, or incomplete when it was not measured."""
    return {"pass": "pass", "fail": "fail"}.get(state, "incomplete")


# The verdict and comparison tokens stay English in the CLI, JSON and SARIF;
# pages show them in the reader's language (the CSS classes keep the token).
STATUS_LABELS = dict(Job.STATUSES)
VERDICT_LABELS = {
    "pass": _("pass"),
    "fail": _("fail"),
    "incomplete": _("incomplete"),
    "error": _("error"),
    "cancelled": _("cancelled"),
    "pending": _("pending"),
    "improved": _("improved"),
    "regressed": _("regressed"),
    "no change": _("no change"),
    "inconclusive": _("inconclusive"),
}


@register.filter
def severity_label(token) -> str:
    """A severity token (critical, high, medium, low, info) in the page's language."""
    return SEVERITY_LABELS.get(token, token)


@register.filter
def status_label(token) -> str:
    """A job's or run's status token (queued, running, succeeded…) in the page's language."""
    return STATUS_LABELS.get(token, token)


@register.filter
def verdict_label(token) -> str:
    """A verdict token (pass, fail, incomplete, error, cancelled, pending, or a comparison's
    improved, regressed, no change, inconclusive) in the page's language; others unchanged."""
    return VERDICT_LABELS.get(token, token)


@register.filter
def translated(value):
    """A string marked with gettext_noop where it is defined (a job kind's label, its
    description) in the page's language; text without a translation is shown as it is."""
    if isinstance(value, Phrase):
        return value.translated(gettext)
    return gettext(value) if isinstance(value, str) and value else value


@register.filter
def default_text(value):
    """Text Kaizen wrote as a default and stored in English — the standard plan's phase
    names, exit criteria, task titles and descriptions, the recurring reviews' names — in
    the page's language; a person's own text (a renamed phase) as written."""
    if isinstance(value, str) and (value in plan.DEFAULT_TEXTS or value in schedules.DEFAULT_NAMES):
        return gettext(value)
    return value


# A finding's analyzer texts in the page's language (optimizations.work.rule_texts).
@register.filter
def finding_title(finding) -> str:
    return rule_texts.title(finding)


@register.filter
def finding_why(finding) -> str:
    return rule_texts.why(finding)


@register.filter
def finding_fix(finding) -> str:
    return rule_texts.fix(finding)


@register.filter
def finding_title_translated(finding) -> bool:
    return rule_texts.translated_title(finding)


# The parameters that tell one job of a kind from another, in the order people read them;
# the history shows these on its one line per job, the rest on demand.
KEY_PARAMS = {
    "benchmark": ("mode", "rate", "start_rate", "connections", "duration"),
    "code_scan": ("focus", "rules", "source"),
    "db_scan": ("checks",),
    "security_scan": ("checks",),
    "integrity": ("probes",),
}


def _param_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@register.filter
def key_params(job, most: int = 3) -> list[tuple[str, str]]:
    """The two or three parameters that matter for a job of its kind, set ones only."""
    params = job.params or {}
    shown = [
        (name, _param_text(params[name]))
        for name in KEY_PARAMS.get(job.kind, ())
        if params.get(name) not in (None, "", [], {})
    ]
    return shown[:most]


@register.filter
def all_params(job) -> list[tuple[str, str]]:
    """Every parameter a job ran with, set ones only, as name and readable value."""
    params = job.params or {}
    return [
        (name, _param_text(value))
        for name, value in sorted(params.items())
        if value not in (None, "", [], {})
    ]


@register.simple_tag
def query_without(query, name: str) -> str:
    """The query string less ``name``, ending in "&" when anything is left (for paging)."""
    rest = query.copy()
    rest.pop(name, None)
    encoded = rest.urlencode()
    return encoded + "&" if encoded else ""
