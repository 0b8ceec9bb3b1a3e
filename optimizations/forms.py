"""Forms for initiatives, tasks and targets."""

from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model

from departments.models import Department
from optimizations import slo
from optimizations.actions import TARGET_FIELDS
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.dbscan.connect import check_database_url
from optimizations.analyzers.netguard import HostNotAllowed, check_url
from optimizations.models import Initiative, Phase, PhaseTask, Schedule, TargetService

ALL_FOCUS = sorted({tag for tags in Initiative.FOCUS_BY_MODE.values() for tag in tags})


class DateInput(forms.DateInput):
    input_type = "date"


class InitiativeForm(forms.ModelForm):
    focus = forms.MultipleChoiceField(
        choices=[(tag, tag) for tag in ALL_FOCUS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Narrows the run mode (performance: fastapi, sqlalchemy, async; "
        "quality: testing, security, validation; strategy: architecture, monitoring, scaling).",
    )

    class Meta:
        model = Initiative
        fields = [
            "title",
            "target",
            "run_mode",
            "focus",
            "owner",
            "status",
            "start_date",
            "target_date",
            "description",
        ]
        widgets = {
            "start_date": DateInput,
            "target_date": DateInput,
            "description": forms.Textarea(attrs={"rows": 4}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        self.fields["target"].queryset = TargetService.objects.order_by("name")

    def clean(self):
        data = super().clean()
        mode, focus = data.get("run_mode"), data.get("focus") or []
        allowed = Initiative.FOCUS_BY_MODE.get(mode, ())
        wrong = [tag for tag in focus if tag not in allowed]
        if wrong:
            self.add_error(
                "focus",
                f"{', '.join(wrong)} does not apply to {mode} mode"
                + (f" (use {', '.join(allowed)})" if allowed else " (it takes no focus)"),
            )
        start, end = data.get("start_date"), data.get("target_date")
        if start and end and end < start:
            self.add_error("target_date", "The target date is before the start date.")
        return data


class PhaseStatusForm(forms.Form):
    status = forms.ChoiceField(choices=Phase.STATUSES)


class TaskUpdateForm(forms.ModelForm):
    """The inline edit of a task on the initiative page."""

    class Meta:
        model = PhaseTask
        fields = ["status", "assignee", "logged_hours"]

    def __init__(self, *args, assignees=None, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True)
        if assignees is not None:
            # The department's members, and whoever holds the task now.
            people = {user.pk: user for user in assignees}
            current = self.instance.assignee if self.instance.assignee_id else None
            if current is not None:
                people.setdefault(current.pk, current)
            users = users.filter(pk__in=people)
            # Choices given as a list render without a query per task card;
            # the queryset above still validates what comes back.
            self.fields["assignee"].queryset = users
            self.fields["assignee"].choices = [("", "— nobody —")] + [
                (user.pk, user.get_full_name() or user.username)
                for user in sorted(people.values(), key=lambda u: u.username)
            ]
        else:
            self.fields["assignee"].queryset = users.order_by("username")

    def clean_logged_hours(self):
        hours = self.cleaned_data["logged_hours"]
        if hours is None or hours < 0:
            raise forms.ValidationError("Hours cannot be negative.")
        return hours


class TaskCreateForm(forms.ModelForm):
    class Meta:
        model = PhaseTask
        fields = ["title", "department", "assignee", "estimate_hours", "due_date", "description"]
        widgets = {"due_date": DateInput, "description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = get_user_model().objects.filter(is_active=True)


class TargetForm(forms.ModelForm):
    """Register or edit a target. Credentials are write-only: blank keeps what is stored."""

    database_url = forms.CharField(
        required=False,
        max_length=1000,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="postgresql://user:password@host:5432/db — read-only access is enough. "
        "Stored encrypted; leave blank to keep the stored one.",
    )
    clear_database_url = forms.BooleanField(required=False, label="Forget the database URL")
    auth_header_value = forms.CharField(
        required=False,
        max_length=2000,
        label="Auth header value",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Sent with every request to the API, e.g. “Bearer …”. Stored encrypted; "
        "leave blank to keep the stored one.",
    )
    clear_auth_header = forms.BooleanField(required=False, label="Forget the auth header")

    class Meta:
        model = TargetService
        # Everything do_update_target writes but the thresholds (their own
        # fields below) and the baseline (pinned from a run's page).
        fields = [name for name in TARGET_FIELDS if name not in ("slo", "baseline_run")]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner_department"].queryset = Department.objects.filter(
            code__in=Department.ENGINEERING
        )
        target = self.instance
        if target.pk and target.database_url_encrypted:
            self.fields[
                "database_url"
            ].help_text = f"Stored: {target.database_url_masked()}. Leave blank to keep it."
        if target.pk and target.auth_header_value_encrypted:
            from optimizations.crypto import CredentialUnreadable, mask_secret

            try:
                shown = mask_secret(target.auth_header_value)
            except CredentialUnreadable:
                shown = "(unreadable: enter it again)"
            self.fields["auth_header_value"].help_text = f"Stored: {shown}. Leave blank to keep it."
        current = target.thresholds() if target.pk else slo.defaults()
        for threshold in slo.THRESHOLDS:
            self.fields[f"slo_{threshold.key}"] = forms.FloatField(
                label=f"{threshold.label} ({threshold.unit})",
                initial=current[threshold.key],
                min_value=0,
                max_value=threshold.upper_bound,  # a percentage: 1 is 1 %, at most 100
                help_text=threshold.help or f"Default {threshold.default:g}",
            )

    def slo_fields(self):
        return [self[f"slo_{t.key}"] for t in slo.THRESHOLDS]

    def _forget_value(self, name: str) -> None:
        """Render the field empty again: its submitted value held a credential."""
        self.data = self.data.copy()
        self.data[self.add_prefix(name)] = ""

    def clean_base_url(self):
        url = self.cleaned_data["base_url"]
        if urlsplit(url).password is not None:
            # Messages name the problem, never the value, and the field is not filled
            # in again with it: it holds a secret.
            self._forget_value("base_url")
            raise forms.ValidationError(
                "Put no credentials in the base URL: give them as the auth header below, "
                "which is stored encrypted and never shown."
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
                    "Put no password or token in the git URL: it is stored and shown in clear. "
                    "Give the workers read access (a deploy key) or use a local checkout."
                )
            try:
                check_url(host_url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
            except HostNotAllowed as exc:
                raise forms.ValidationError(str(exc)) from None
            return location
        from pathlib import Path

        if not Path(location).is_dir():
            raise forms.ValidationError(
                "That is not a directory on this machine (give a git URL otherwise)."
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


class RunForm(forms.Form):
    """Start a run of a mode (with focus) on a target."""

    mode = forms.ChoiceField(choices=Initiative.RUN_MODES, initial=Initiative.PERFORMANCE)
    focus = forms.MultipleChoiceField(
        choices=[(tag, tag) for tag in ALL_FOCUS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )
    initiative = forms.IntegerField(required=False, widget=forms.HiddenInput)
    phase = forms.IntegerField(required=False, widget=forms.HiddenInput)
    task = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def clean(self):
        data = super().clean()
        mode, focus = data.get("mode"), data.get("focus") or []
        allowed = Initiative.FOCUS_BY_MODE.get(mode, ())
        wrong = [tag for tag in focus if tag not in allowed]
        if wrong:
            raise forms.ValidationError(
                f"{', '.join(wrong)} does not apply to {mode} mode"
                + (f" (use {', '.join(allowed)})." if allowed else " (it takes no focus).")
            )
        return data


def params_form_class(declared, defaults=None):
    """A form generated from an analyzer's declared parameters (defaults, bounds, help)."""
    fields = {}
    defaults = defaults or {}
    for param in declared:
        label = param.label or param.name.replace("_", " ").capitalize()
        common = {"label": label, "help_text": param.help, "required": param.required}
        initial = defaults.get(param.name, param.default)
        if param.type == "int":
            field = forms.IntegerField(
                min_value=param.min, max_value=param.max, initial=initial, **common
            )
        elif param.type == "float":
            field = forms.FloatField(
                min_value=param.min, max_value=param.max, initial=initial, **common
            )
        elif param.type == "bool":
            field = forms.BooleanField(initial=bool(initial), **{**common, "required": False})
        elif param.type == "choice":
            field = forms.ChoiceField(
                choices=[(choice, choice) for choice in param.choices], initial=initial, **common
            )
        elif param.type == "list":
            field = forms.CharField(
                initial=", ".join(initial or []),
                **{**common, "help_text": (param.help + " (comma-separated)").strip()},
            )
        elif param.type in ("text", "json"):
            field = forms.CharField(
                widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
                initial="" if initial is None else initial,
                **common,
            )
        else:
            field = forms.CharField(initial=initial or "", **common)
        if not param.required:
            field.required = False
        fields[param.name] = field
    return type("ParamsForm", (forms.Form,), fields)


def params_from_form(declared, cleaned: dict) -> dict:
    """The values a person changed from the defaults, ready for validate_params."""
    import json

    values = {}
    for param in declared:
        value = cleaned.get(param.name)
        if value in (None, "") and param.type != "bool":
            continue
        if param.type == "json" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise forms.ValidationError(f"{param.name}: not valid JSON ({error})") from None
        if param.type == "list" and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if value != param.default:
            values[param.name] = value
    return values


class ScheduleForm(forms.ModelForm):
    focus = forms.MultipleChoiceField(
        choices=[(tag, tag) for tag in ALL_FOCUS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Schedule
        fields = ["name", "mode", "focus", "cron", "initiative", "enabled"]
        help_texts = {
            "cron": "Five fields: minute hour day-of-month month day-of-week, "
            "e.g. “0 2 1 * *” = the 1st of every month at 02:00 (portal time zone).",
        }

    def __init__(self, *args, target=None, **kwargs):
        super().__init__(*args, **kwargs)
        target = target or self.instance.target
        self.fields["initiative"].queryset = Initiative.objects.filter(target=target)
        self.fields["mode"].choices = Initiative.RUN_MODES

    def clean_cron(self):
        from optimizations import cron

        expression = " ".join(self.cleaned_data["cron"].split())
        try:
            cron.parse(expression)
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        return expression

    def clean(self):
        data = super().clean()
        allowed = Initiative.FOCUS_BY_MODE.get(data.get("mode"), ())
        wrong = [tag for tag in data.get("focus") or [] if tag not in allowed]
        if wrong:
            self.add_error("focus", f"{', '.join(wrong)} does not apply to this mode")
        return data
