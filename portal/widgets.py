"""Form widgets the apps share."""

from django import forms


class DateInput(forms.DateInput):
    """The browser's own date picker (``<input type="date">``)."""

    input_type = "date"
