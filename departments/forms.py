"""Forms for people and memberships."""

from django import forms
from django.contrib.auth import get_user_model, password_validation

from departments.models import Department, Membership


class PersonForm(forms.Form):
    """A manager adds a person with a first membership."""

    username = forms.RegexField(regex=r"^[\w.@+-]+$", max_length=150)
    first_name = forms.CharField(max_length=150, required=False)
    last_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, help_text="The person changes it later.")
    department = forms.ModelChoiceField(queryset=Department.objects.all())
    role = forms.ChoiceField(choices=Membership.ROLES)

    def clean_username(self):
        username = self.cleaned_data["username"]
        if get_user_model().objects.filter(username__iexact=username).exists():
            raise forms.ValidationError("Somebody already has this username.")
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
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        empty_label="Choose a person…",
    )
    department = forms.ModelChoiceField(
        queryset=Department.objects.all(), empty_label="Choose a department…"
    )
    role = forms.ChoiceField(choices=Membership.ROLES, initial=Membership.ENGINEER)
