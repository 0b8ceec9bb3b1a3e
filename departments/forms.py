"""Forms for people and memberships, runbooks and training."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model, password_validation
from django.core.validators import MinValueValidator
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from departments.actions import RUNBOOK_SETTINGS
from departments.compliance import SOURCE_CHOICES
from departments.models import Control, Department, Membership, Runbook, TrainingModule
from departments.quiz import QuizError
from departments.quiz import parse as parse_quiz
from optimizations.models import TargetService
from portal.widgets import DateInput


class PersonForm(forms.Form):
    """A manager adds a person with a first membership."""

    username = forms.RegexField(label=_("Username"), regex=r"^[\w.@+-]+$", max_length=150)
    first_name = forms.CharField(label=_("First name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Last name"), max_length=150, required=False)
    email = forms.EmailField(label=_("Email"), required=False)
    password = forms.CharField(
        label=_("Password"), widget=forms.PasswordInput, help_text=_("The person changes it later.")
    )
    department = forms.ModelChoiceField(label=_("Department"), queryset=Department.objects.all())
    role = forms.ChoiceField(label=_("Role"), choices=Membership.ROLES)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("Somebody already has this username."))
        return username

    def clean(self):
        data = super().clean()
        if data.get("password"):
            user = get_user_model()(
                username=data.get("username", ""),
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                email=data.get("email", ""),
            )
            try:
                password_validation.validate_password(data["password"], user)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return data


class MembershipForm(forms.Form):
    """Give a person a role in a department (adds or changes the membership)."""

    user = forms.ModelChoiceField(
        label=_("Person"),
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        empty_label=_("Choose a person…"),
    )
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.all(),
        empty_label=_("Choose a department…"),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Membership.ROLES, initial=Membership.ENGINEER)


# --- runbooks -------------------------------------------------------------------


class RunbookContentForm(forms.Form):
    """The text of a runbook: what a revision holds."""

    title = forms.CharField(label=_("Title"), max_length=200)
    body = forms.CharField(
        label=_("Text"),
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 26, "class": "markdown-source", "spellcheck": "true"}),
        help_text=_(
            "Markdown. A ```kaizen-run fenced block (kind=…, target=…, key: value lines) "
            "becomes a “run this” button."
        ),
    )
    note = forms.CharField(
        label=_("What changed"),
        max_length=300,
        required=False,
        help_text=_("One line for the history, e.g. “pool_size raised to 20 after the load test”."),
    )

    def clean_body(self):
        # Browsers send CRLF from a textarea; revisions keep one kind of line end,
        # so an unchanged text compares equal and diffs show only real changes.
        return self.cleaned_data["body"].replace("\r\n", "\n")


class RunbookForm(RunbookContentForm, forms.ModelForm):
    """HR's full form: the text and the runbook's owner, status, tags and review dates."""

    phases = forms.TypedMultipleChoiceField(
        label=_("Phases"),
        choices=Runbook.PHASES,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The initiative phases the runbook serves."),
    )

    class Meta:
        model = Runbook
        fields = [
            "title",
            "status",
            "owner_department",
            "owner",
            "topics",
            "targets",
            "phases",
            "next_review_date",
            "review_interval_days",
        ]
        labels = {
            "title": _("Title"),
            "status": _("Status"),
            "owner_department": _("Owner department"),
            "owner": _("Owner"),
            "topics": _("Topics"),
            "targets": _("Targets"),
            "next_review_date": _("Next review"),
            "review_interval_days": _("Review every (days)"),
        }
        widgets = {
            "topics": forms.CheckboxSelectMultiple,
            "targets": forms.CheckboxSelectMultiple,
            "next_review_date": DateInput,
        }
        help_texts = {
            "targets": _(
                "The services this runbook operates; it counts in their coverage when published."
            ),
            "next_review_date": _("Empty: set from the interval when published."),
        }

    field_order = [
        "title",
        "body",
        "note",
        "status",
        "owner_department",
        "owner",
        "topics",
        "targets",
        "phases",
        "next_review_date",
        "review_interval_days",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        self.fields["owner"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        self.fields["targets"].queryset = TargetService.objects.order_by("name")
        self.fields["review_interval_days"].validators.append(MinValueValidator(1))

    def content(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("title", "body", "note")}

    def settings(self) -> dict:
        return {name: self.cleaned_data[name] for name in RUNBOOK_SETTINGS}

    def settings_fields(self):
        return [self[name] for name in RUNBOOK_SETTINGS]


class ReviewNoteForm(forms.Form):
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


# --- training -------------------------------------------------------------------


class TrainingModuleForm(forms.ModelForm):
    class Meta:
        model = TrainingModule
        fields = [
            "title",
            "summary",
            "status",
            "owner_department",
            "content",
            "quiz",
            "pass_mark",
            "recertify_after_days",
            "runbooks",
        ]
        widgets = {
            "content": forms.Textarea(attrs={"rows": 18, "class": "markdown-source"}),
            "quiz": forms.Textarea(attrs={"rows": 12, "class": "markdown-source"}),
            "runbooks": forms.CheckboxSelectMultiple,
        }
        labels = {
            "title": _("Title"),
            "summary": _("Summary"),
            "status": _("Status"),
            "owner_department": _("Owner department"),
            "content": _("Content"),
            "quiz": _("Quiz"),
            "runbooks": _("Runbooks"),
            "pass_mark": _("Pass mark (%)"),
            "recertify_after_days": _("Recertify after (days)"),
        }
        help_texts = {
            "content": _("Markdown."),
            "quiz": _(
                "Optional. One line each: “? question”, “+ right choice”, “- wrong choice”, "
                "“> explanation”; a blank line between questions. Several + lines: all of them "
                "must be chosen."
            ),
            "runbooks": _("The runbooks this training teaches."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["runbooks"].queryset = Runbook.objects.exclude(
            status=Runbook.ARCHIVED
        ).order_by("title")

    def clean_quiz(self):
        text = self.cleaned_data["quiz"]
        try:
            parse_quiz(text)
        except QuizError as error:
            raise forms.ValidationError(str(error)) from None
        return text


class AssignmentForm(forms.Form):
    """Assign a module to one person, or to a department, a role, or a role in a department."""

    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
        label=_("Person"),
        empty_label=_("— nobody in particular —"),
    )
    department = forms.ModelChoiceField(
        label=_("Department"),
        queryset=Department.objects.all(),
        required=False,
        empty_label=_("— any department —"),
    )
    role = forms.ChoiceField(
        label=_("Role"), choices=[("", _("— any role —")), *Membership.ROLES], required=False
    )
    due_date = forms.DateField(label=_("Due date"), widget=DateInput)
    note = forms.CharField(label=_("Note"), max_length=300, required=False)

    def clean_due_date(self):
        due = self.cleaned_data["due_date"]
        if due < timezone.localdate():
            raise forms.ValidationError(_("The due date has passed already."))
        return due

    def clean(self):
        data = super().clean()
        user, department, role = data.get("user"), data.get("department"), data.get("role")
        if user and (department or role):
            raise forms.ValidationError(
                _("Choose a person, or a department and/or a role — not both.")
            )
        if not (user or department or role):
            raise forms.ValidationError(_("Choose a person, a department or a role."))
        return data


class CompletionForm(forms.Form):
    evidence = forms.CharField(
        label=_("Evidence"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("How you completed it: what you read or did, a link to your notes."),
    )


class TrainingGateForm(forms.Form):
    target: "forms.ModelChoiceField[Any]" = forms.ModelChoiceField(
        label=_("Target"), queryset=None, empty_label=_("Choose a target…")
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        self.fields["target"].queryset = TargetService.objects.order_by("name")


class QuizForm(forms.Form):
    """One field per question: radio buttons, or check boxes where several are right."""

    def __init__(self, questions, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.questions = questions
        for question in questions:
            choices = [(str(n), c.text) for n, c in enumerate(question.choices, 1)]
            if question.multiple:
                field = forms.MultipleChoiceField(
                    choices=choices,
                    widget=forms.CheckboxSelectMultiple,
                    help_text=_("Choose every right answer."),
                )
            else:
                field = forms.ChoiceField(choices=choices, widget=forms.RadioSelect)
            field.label = question.text
            field.error_messages["required"] = _("Answer this question.")
            self.fields[f"q{question.number}"] = field

    def answers(self) -> dict[int, set[int]]:
        answers = {}
        for question in self.questions:
            value = self.cleaned_data[f"q{question.number}"]
            values = value if isinstance(value, list) else [value]
            answers[question.number] = {int(v) for v in values}
        return answers


# --- compliance -------------------------------------------------------------------


class ControlForm(forms.ModelForm):
    """HR adds or changes a control of the register."""

    framework_tags = forms.CharField(
        required=False,
        label=_("Framework tags"),
        help_text=_("Comma-separated labels, e.g. ISO 27001 A.8.8, SOC 2 CC7.1."),
    )
    source = forms.ChoiceField(label=_("Evidence"), required=False)
    parameters = forms.JSONField(
        required=False,
        label=_("Parameters"),
        help_text=_('The source\'s settings as JSON, e.g. {"days": 30}.'),
    )

    class Meta:
        model = Control
        fields = [
            "statement",
            "description",
            "department",
            "owner",
            "recurrence",
            "framework_tags",
            "source",
            "parameters",
            "active",
        ]
        labels = {
            "statement": _("Statement"),
            "description": _("What proves it"),
            "department": _("Owning department"),
            "owner": _("Owner (hears the reminders)"),
            "recurrence": _("Recurrence"),
            "active": _("Active"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = SOURCE_CHOICES
        self.fields["owner"].queryset = (
            get_user_model().objects.filter(is_active=True).order_by("username")
        )
        if self.instance.pk:
            self.initial["framework_tags"] = ", ".join(self.instance.framework_tags)

    def clean_framework_tags(self):
        raw = self.cleaned_data.get("framework_tags") or ""
        return [tag.strip() for tag in raw.split(",") if tag.strip()]

    def clean_parameters(self):
        value = self.cleaned_data.get("parameters")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_('Write an object, e.g. {"days": 30}.'))
        return value


class AttestationForm(forms.Form):
    """A person of the owning department vouches for a manual control."""

    comment = forms.CharField(
        label=_("Comment"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was checked, by whom, and what was found."),
    )
    link = forms.URLField(label=_("Link to the evidence"), required=False, max_length=500)
    attachment = forms.FileField(label=_("Or attach a file (at most 2 MB)"), required=False)

    def clean(self):
        data = super().clean()
        if not data.get("link") and not data.get("attachment"):
            raise forms.ValidationError(_("Give a link to the evidence or attach a file."))
        upload = data.get("attachment")
        if upload is not None and upload.size > 2 * 1024 * 1024:
            self.add_error("attachment", _("The file is larger than 2 MB: link to it instead."))
        return data
