"""Forms for initiatives, their phases and tasks."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from optimizations.models import Initiative, Phase, PhaseTask, TargetService
from portal.widgets import DateInput


class InitiativeForm(forms.ModelForm):
    focus = forms.MultipleChoiceField(
        label=_("Focus"),
        choices=[(tag, tag) for tag in Initiative.ALL_FOCUS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Narrows the run mode (performance: fastapi, sqlalchemy, async; "
            "quality: testing, security, validation; strategy: architecture, monitoring, scaling)."
        ),
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
        labels = {
            "title": _("Title"),
            "target": _("Target"),
            "run_mode": _("Run mode"),
            "owner": _("Owner"),
            "status": _("Status"),
            "start_date": _("Start date"),
            "target_date": _("Target date"),
            "description": _("Description"),
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
            if allowed:
                message = gettext("%(wrong)s does not apply to %(mode)s mode (use %(allowed)s).")
            else:
                message = gettext("%(wrong)s does not apply to %(mode)s mode (it takes no focus).")
            self.add_error(
                "focus",
                message % {"wrong": ", ".join(wrong), "mode": mode, "allowed": ", ".join(allowed)},
            )
        start, end = data.get("start_date"), data.get("target_date")
        if start and end and end < start:
            self.add_error("target_date", _("The target date is before the start date."))
        return data


class PhaseStatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Status"), choices=Phase.STATUSES)


class TaskUpdateForm(forms.ModelForm):
    """The inline edit of a task on the initiative page."""

    class Meta:
        model = PhaseTask
        fields = ["status", "assignee", "logged_hours"]
        labels = {
            "status": _("Status"),
            "assignee": _("Assignee"),
            "logged_hours": _("Logged hours"),
        }

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
            self.fields["assignee"].choices = [("", gettext("— nobody —"))] + [
                (user.pk, user.get_full_name() or user.username)
                for user in sorted(people.values(), key=lambda u: u.username)
            ]
        else:
            self.fields["assignee"].queryset = users.order_by("username")

    def clean_logged_hours(self):
        hours = self.cleaned_data["logged_hours"]
        if hours is None or hours < 0:
            raise forms.ValidationError(_("Hours cannot be negative."))
        return hours


class TaskCreateForm(forms.ModelForm):
    class Meta:
        model = PhaseTask
        fields = ["title", "department", "assignee", "estimate_hours", "due_date", "description"]
        widgets = {"due_date": DateInput, "description": forms.Textarea(attrs={"rows": 2})}
        labels = {
            "title": _("Title"),
            "department": _("Department"),
            "assignee": _("Assignee"),
            "estimate_hours": _("Estimate (hours)"),
            "due_date": _("Due date"),
            "description": _("Description"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = get_user_model().objects.filter(is_active=True)
