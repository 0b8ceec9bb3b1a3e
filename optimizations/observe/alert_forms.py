"""The forms of a target's continuous sources and burn-rate alert rules."""

from __future__ import annotations

import datetime

from django import forms
from django.utils.translation import gettext_lazy as _

from optimizations.analyzers.base import MOST_SEVERE_FIRST
from optimizations.analyzers.observe import burnrate
from optimizations.observe import sources


class SourcesForm(forms.Form):
    """A Prometheus server and a PromQL expression per figure (empty: not read)."""

    prometheus_url = forms.URLField(
        required=False,
        max_length=300,
        label=_("Prometheus server"),
        help_text=_(
            "Its base URL (the one whose /api/v1/query answers); the target's allow-list "
            "applies to it."
        ),
    )

    def __init__(self, *args, defaults: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for query in sources.QUERIES:
            self.fields[f"query_{query.key}"] = forms.CharField(
                required=False,
                max_length=2000,
                label=query.label,
                widget=forms.Textarea(attrs={"rows": 2}),
                help_text=_("Demo default: %(expr)s") % {"expr": (defaults or {})[query.key]}
                if defaults
                else "",
            )

    def queries(self) -> dict[str, str]:
        return {
            query.key: self.cleaned_data[f"query_{query.key}"].strip() for query in sources.QUERIES
        }


class RuleForm(forms.Form):
    """One burn-rate rule: fire when the burn rate is at or above it over both windows."""

    name = forms.CharField(max_length=60, label=_("Name"))
    severity = forms.ChoiceField(
        choices=[(burnrate.PAGE, _("page")), (burnrate.TICKET, _("ticket"))], label=_("Kind")
    )
    burn_rate = forms.FloatField(min_value=0.01, max_value=10_000, label=_("Burn rate (×)"))
    long_window = forms.IntegerField(
        min_value=2, max_value=60 * 24 * 31, label=_("Long window (minutes)")
    )
    short_window = forms.IntegerField(
        min_value=1, max_value=60 * 24 * 31, label=_("Short window (minutes)")
    )
    route = forms.ChoiceField(
        choices=[(name, name) for name in MOST_SEVERE_FIRST],
        label=_("Incident severity"),
        help_text=_("Decides who is told, how and when (critical pages at any hour)."),
    )

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        try:
            burnrate.AlertRule(
                data["name"],
                data["severity"],
                data["burn_rate"],
                datetime.timedelta(minutes=data["long_window"]),
                datetime.timedelta(minutes=data["short_window"]),
            )
        except ValueError:
            raise forms.ValidationError(
                _("The short window must be shorter than the long one.")
            ) from None
        return data

    def as_rule(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "severity": data["severity"],
            "burn_rate": data["burn_rate"],
            "long_window_s": data["long_window"] * 60,
            "short_window_s": data["short_window"] * 60,
            "route": data["route"],
        }


class BaseRuleFormSet(forms.BaseFormSet):
    def clean(self):
        super().clean()
        names = [
            form.cleaned_data["name"]
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        if len(names) != len(set(names)):
            raise forms.ValidationError(_("Each rule needs a name of its own."))
        if not names:
            raise forms.ValidationError(_("Keep at least one rule."))

    def rules(self) -> list[dict]:
        return [
            form.as_rule()
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]


RuleFormSet = forms.formset_factory(
    RuleForm, formset=BaseRuleFormSet, extra=1, can_delete=True, max_num=12, validate_max=True
)


def initial_rules(rules: list[dict]) -> list[dict]:
    return [
        {
            "name": rule["name"],
            "severity": rule["severity"],
            "burn_rate": rule["burn_rate"],
            "long_window": int(rule["long_window_s"]) // 60,
            "short_window": int(rule["short_window_s"]) // 60,
            "route": rule["route"],
        }
        for rule in rules
    ]
