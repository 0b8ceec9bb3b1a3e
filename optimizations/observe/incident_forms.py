"""Forms of the incident page and the webhook settings."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from departments.models import Department, Membership, Runbook
from optimizations.analyzers.netguard import NOTIFY_SETTING, HostNotAllowed, check_host
from optimizations.models import WebhookEndpoint
from optimizations.targets.crypto import encrypt


def responder_choices(incident):
    """Who an incident can be given to: the owning department's managers and engineers
    and HR's editors and managers."""
    return (
        get_user_model()
        .objects.filter(
            is_active=True,
            # One membership must match both (a chained filter would mix two).
            memberships__role__in=(Membership.MANAGER, Membership.ENGINEER, Membership.EDITOR),
            memberships__department_id__in=[
                incident.target.owner_department_id,
                *Department.objects.filter(code=Department.HR).values_list("pk", flat=True),
            ],
        )
        .distinct()
        .order_by("username")
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(),
        label=_("Assignee"),
        empty_label=_("Choose a person"),
        widget=forms.Select(attrs={"aria-label": _("Assignee")}),
    )

    def __init__(self, *args, incident, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = responder_choices(incident)


class NoteForm(forms.Form):
    text = forms.CharField(
        label=_("Note"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3, "aria-label": _("Note")}),
    )


class RunbookForm(forms.Form):
    runbook = forms.ModelChoiceField(
        queryset=Runbook.objects.exclude(status=Runbook.ARCHIVED).order_by("title"),
        label=_("Runbook"),
        empty_label=_("Choose a runbook"),
        widget=forms.Select(attrs={"aria-label": _("Runbook")}),
    )


class PostmortemForm(forms.Form):
    body = forms.CharField(label=_("Postmortem"), widget=forms.Textarea(attrs={"rows": 18}))
    action_items = forms.CharField(
        label=_("Action items"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_(
            "One per line. Each becomes a task of the target's open initiative, or a "
            "follow-up on this incident when none is open."
        ),
    )

    def items(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["action_items"].splitlines()]


class WebhookForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    url = forms.URLField(
        label=_("URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("Its host must be on KAIZEN_ALLOWED_NOTIFY_HOSTS."),
    )
    flavour = forms.ChoiceField(label=_("Format"), choices=WebhookEndpoint.FLAVOURS)
    secret = forms.CharField(
        label=_("Signing secret"),
        min_length=16,
        max_length=200,
        widget=forms.PasswordInput,
        help_text=_(
            "Requests carry X-Kaizen-Signature: t=<unix time>,v1=<HMAC-SHA256 of "
            "“<t>.<body>” with this secret, hex>."
        ),
    )
    department = forms.ModelChoiceField(
        queryset=Department.objects.all(),
        required=False,
        label=_("Department"),
        empty_label=_("All departments"),
        help_text=_("Only incidents of this department's targets (empty: all)."),
    )
    min_severity = forms.ChoiceField(
        label=_("Lowest severity"),
        choices=[(name, name) for name in ("critical", "high", "medium", "low", "info")],
        initial="high",
    )

    def clean_url(self):
        url = self.cleaned_data["url"]
        parts = urlsplit(url)
        try:
            check_host(
                parts.hostname or "",
                settings.KAIZEN_ALLOWED_NOTIFY_HOSTS,
                parts.port,
                setting=NOTIFY_SETTING,
            )
        except HostNotAllowed as error:
            raise forms.ValidationError(str(error)) from None
        return url

    def endpoint_fields(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "url": data["url"],
            "flavour": data["flavour"],
            "secret_encrypted": encrypt(data["secret"]),
            "department": data["department"],
            "min_severity": data["min_severity"],
        }
