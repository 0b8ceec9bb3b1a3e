"""The form of a target service: where it lives, how to reach it, its SLOs."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from departments.models import Department
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.dbscan.connect import check_database_url
from optimizations.analyzers.netguard import HostNotAllowed, check_url
from optimizations.models import TargetService
from optimizations.targets import slo
from optimizations.targets.crypto import CredentialUnreadable, mask_secret
from optimizations.work.actions import TARGET_FIELDS


class TargetForm(forms.ModelForm):
    """Register or edit a target. Credentials are write-only: blank keeps what is stored."""

    database_url = forms.CharField(
        label=_("Database URL"),
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "postgresql://user:password@host:5432/db — read-only access is enough. Kept encrypted."
        ),
    )
    clear_database_url = forms.BooleanField(required=False, label=_("Forget the database URL"))
    auth_header_value = forms.CharField(
        required=False,
        max_length=2000,
        label=_("Auth header value"),
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Sent with every request to the API, e.g. “Bearer …”. Kept encrypted."),
    )
    clear_auth_header = forms.BooleanField(required=False, label=_("Forget the auth header"))

    class Meta:
        model = TargetService
        # Everything do_update_target writes but the thresholds (their own
        # fields below) and the baseline (pinned from a run's page).
        fields = [name for name in TARGET_FIELDS if name not in ("slo", "baseline_run")]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        labels = {
            "name": _("Name"),
            "slug": _("Short name"),
            "base_url": _("Base URL"),
            "owner_department": _("Owner department"),
            "environment": _("Environment"),
            "description": _("Description"),
            "health_path": _("Health path"),
            "openapi_path": _("OpenAPI path"),
            "metrics_path": _("Metrics path"),
            "source_location": _("Source location"),
            "auth_header_name": _("Auth header name"),
            "allows_writes": _("Allows writes"),
            "max_rate": _("Max rate"),
            "max_duration": _("Max duration"),
            "expected_rps": _("Expected peak load"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner_department"].queryset = Department.objects.filter(
            code__in=Department.ENGINEERING
        )
        target = self.instance
        # The slug names the target in its addresses; a new target's comes from its name
        # (the view fills it in when empty, and the page shows it while the name is typed).
        self.fields["slug"].help_text = gettext(
            "Lower-case letters, digits and hyphens, used in the target's web address. "
            "Made from the name when left empty."
        )
        self.fields["slug"].widget.attrs["data-slug-from"] = self["name"].auto_id
        if not target.pk:
            self.fields["slug"].required = False
        if target.pk and target.database_url_encrypted:
            self.fields["database_url"].help_text = gettext(
                "Stored: %(shown)s. A new value replaces it; an empty field keeps it."
            ) % {"shown": target.database_url_masked()}
        if target.pk and target.auth_header_value_encrypted:
            try:
                shown = mask_secret(target.auth_header_value)
            except CredentialUnreadable:
                shown = gettext("(unreadable: enter it again)")
            self.fields["auth_header_value"].help_text = gettext(
                "Stored: %(shown)s. A new value replaces it; an empty field keeps it."
            ) % {"shown": shown}
        current = target.thresholds() if target.pk else slo.defaults()
        for threshold in slo.THRESHOLDS:
            self.fields[f"slo_{threshold.key}"] = forms.FloatField(
                label=f"{gettext(threshold.label)} ({threshold.unit})",
                initial=current[threshold.key],
                min_value=0,
                max_value=threshold.upper_bound,  # a percentage: 1 is 1 %, at most 100
                help_text=gettext(threshold.help)
                if threshold.help
                else gettext("Default %(value)s") % {"value": f"{threshold.default:g}"},
            )

    def slo_fields(self):
        return [self[f"slo_{t.key}"] for t in slo.THRESHOLDS]

    def _forget_value(self, name: str) -> None:
        """Render the field empty again: its submitted value held a credential."""
        # A QueryDict (or a test's dict): both copy; the stubs type data as a read-only Mapping.
        data = self.data.copy()  # type: ignore[attr-defined]
        data[self.add_prefix(name)] = ""
        self.data = data

    def clean_base_url(self):
        url = self.cleaned_data["base_url"]
        if urlsplit(url).password is not None:
            # Messages name the problem, never the value, and the field is not filled
            # in again with it: it holds a secret.
            self._forget_value("base_url")
            raise forms.ValidationError(
                _(
                    "Put no credentials in the base URL: give them as the auth header below, "
                    "which is stored encrypted and never shown."
                )
            )
        try:
            check_url(url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
        except HostNotAllowed as exc:
            raise forms.ValidationError(str(exc)) from None
        return url.rstrip("/")

    def clean_database_url(self):
        url = self.cleaned_data["database_url"].strip()
        if not url:
            return ""
        # libpq's own reading of the URL: hosts in the query string, host lists and
        # socket paths are checked too. The message never repeats the URL.
        try:
            check_database_url(url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
        except AnalysisError as exc:
            raise forms.ValidationError(str(exc)) from None
        return url

    def clean_source_location(self):
        location = self.cleaned_data["source_location"].strip()
        if not location:
            return ""
        if "://" in location or location.startswith("git@"):
            host_url = location if "://" in location else "ssh://" + location.replace(":", "/", 1)
            if urlsplit(host_url).password is not None:
                self._forget_value("source_location")
                raise forms.ValidationError(
                    _(
                        "Put no password or token in the git URL: it is stored and shown in clear. "
                        "Give the workers read access (a deploy key) or use a local checkout."
                    )
                )
            try:
                check_url(host_url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
            except HostNotAllowed as exc:
                raise forms.ValidationError(str(exc)) from None
            return location
        from pathlib import Path

        if not Path(location).is_dir():
            raise forms.ValidationError(
                _("That is not a directory on this machine (give a git URL otherwise).")
            )
        return location

    def thresholds(self) -> dict:
        """The thresholds that differ from DESIGN.md's defaults."""
        values = {}
        for threshold in slo.THRESHOLDS:
            value = self.cleaned_data.get(f"slo_{threshold.key}")
            if value is not None and value != threshold.default:
                values[threshold.key] = value
        return values

    def credentials(self) -> dict:
        """{"database_url": new or "" to forget, "auth_header_value": …}, only what changed."""
        changes = {}
        data = self.cleaned_data
        if data.get("clear_database_url"):
            changes["database_url"] = ""
        elif data.get("database_url"):
            changes["database_url"] = data["database_url"]
        if data.get("clear_auth_header"):
            changes["auth_header_value"] = ""
        elif data.get("auth_header_value"):
            changes["auth_header_value"] = data["auth_header_value"]
        return changes

    def model_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}
