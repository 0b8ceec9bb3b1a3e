"""Forms that start work: a run, an analyzer's parameters, a schedule."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from optimizations.analyzers.loadgen import script
from optimizations.analyzers.loadgen.modes import MODES, PARAMS_BY_MODE
from optimizations.jobs import cron
from optimizations.models import Initiative, Schedule


class RunForm(forms.Form):
    """Start a run of a mode (with focus) on a target."""

    mode = forms.ChoiceField(
        label=gettext_lazy("Mode"), choices=Initiative.RUN_MODES, initial=Initiative.PERFORMANCE
    )
    focus = forms.MultipleChoiceField(
        label=gettext_lazy("Focus"),
        choices=[(tag, tag) for tag in Initiative.ALL_FOCUS],
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
            if allowed:
                message = _("%(wrong)s does not apply to %(mode)s mode (use %(allowed)s).")
            else:
                message = _("%(wrong)s does not apply to %(mode)s mode (it takes no focus).")
            raise forms.ValidationError(
                message % {"wrong": ", ".join(wrong), "mode": mode, "allowed": ", ".join(allowed)}
            )
        return data


# Parameters the portal fills from the target itself (engine.chain), not offered on the
# kind's form: the security scan writes whenever its target allows writes.
FILLED_BY_PORTAL = {"security_scan": ("allow_writes",)}


# What a kind's form shows unfolded; its other parameters wait under "Advanced options".
ESSENTIAL = {
    "benchmark": {
        "mode",
        "rate",
        "duration",
        "connections",
        "start_rate",
        "step_factor",
        "step_duration",
        "max_steps",
        "p99_ms",
        "paths",
        "memory_source",
    },
    "code_scan": {"source", "git_ref", "focus", "include_tests"},
}

# The benchmark's fields by test type: a field shows only for the types that read it,
# and a default that differs between types is shown for the chosen one.
TEST_TYPE_FIELD = "mode"
FIELD_TEST_TYPES = {
    param.name: tuple(
        mode for mode in MODES if any(p.name == param.name for p in PARAMS_BY_MODE[mode])
    )
    for params in PARAMS_BY_MODE.values()
    for param in params
}
TEST_TYPE_DEFAULTS = {
    name: {
        mode: next(p.default for p in PARAMS_BY_MODE[mode] if p.name == name)
        for mode in FIELD_TEST_TYPES[name]
    }
    for name in FIELD_TEST_TYPES
}


def _shown(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(value)
    return "" if value is None else str(value)


class ParamsForm(forms.Form):
    """An analyzer's parameters: the essential ones first, the rest folded."""

    kind = ""

    def essential_fields(self):
        return [field for field in self if not field.field.advanced]

    def advanced_fields(self):
        return [field for field in self if field.field.advanced]

    def advanced_errors(self) -> bool:
        return any(field.errors for field in self.advanced_fields())

    def test_type(self) -> str:
        """The benchmark's chosen test type (load, stress…), or "" for other kinds."""
        if TEST_TYPE_FIELD not in self.fields or self.kind != "benchmark":
            return ""
        value = self[TEST_TYPE_FIELD].value()
        return value if value in MODES else MODES[0]


def _by_test_type(name: str, field, test_type: str) -> None:
    """Mark a benchmark field with the test types it belongs to and their defaults."""
    field.test_types = " ".join(FIELD_TEST_TYPES.get(name, MODES))
    defaults = {mode: _shown(value) for mode, value in TEST_TYPE_DEFAULTS.get(name, {}).items()}
    if len(set(defaults.values())) > 1:
        # One input, a default per test type: the placeholder shows the chosen type's.
        for mode, value in defaults.items():
            field.widget.attrs[f"data-default-{mode}"] = value
        field.widget.attrs["placeholder"] = defaults.get(test_type, "")


def params_form_class(declared, defaults=None, kind=""):
    """A form generated from an analyzer's declared parameters (defaults, bounds, help)."""
    fields = {}
    defaults = defaults or {}
    essential = ESSENTIAL.get(kind)
    for param in declared:
        if param.name in FILLED_BY_PORTAL.get(kind, ()):
            continue
        # The analyzers stay Django-free and English: their labels and help are looked
        # up in the catalogue here (tests/portal/test_translations.py checks each has one).
        label = _(param.label or param.name.replace("_", " ").capitalize())
        help_text = _(param.help) if param.help else ""
        common = {"label": label, "help_text": help_text, "required": param.required}
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
                **{**common, "help_text": (help_text + " " + _("(comma-separated)")).strip()},
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
        field.advanced = essential is not None and param.name not in essential
        field.test_types = ""
        if kind == "benchmark":
            _by_test_type(param.name, field, MODES[0])
            if param.name == TEST_TYPE_FIELD:
                field.widget.attrs["data-test-type"] = ""
        fields[param.name] = field
    return type("ParamsForm", (ParamsForm,), {**fields, "kind": kind})


def of_test_type(params: dict) -> dict:
    """A benchmark's parameters less those its test type does not read (a field of
    another type, filled before the type was changed)."""
    mode = params.get(TEST_TYPE_FIELD, MODES[0])
    return {name: value for name, value in params.items() if mode in FIELD_TEST_TYPES[name]}


def params_from_form(declared, cleaned: dict, kind: str = "") -> dict:
    """The values a person changed from the defaults, ready for validate_params."""
    import json

    values = {}
    for param in declared:
        if param.name in FILLED_BY_PORTAL.get(kind, ()):
            continue
        value = cleaned.get(param.name)
        if value in (None, "") and param.type != "bool":
            continue
        if param.type == "json" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError as error:
                raise forms.ValidationError(
                    _("%(name)s: not valid JSON (%(error)s)") % {"name": param.name, "error": error}
                ) from None
        if param.type == "list" and isinstance(value, str):
            value = [item.strip() for item in value.split(",") if item.strip()]
        if value != param.default:
            values[param.name] = value
    return values


class ScenarioFileForm(forms.Form):
    """A load test's scripted scenario, uploaded as a YAML file.

    The file's *text* becomes the job's ``scenario`` parameter: the Job row holds
    exactly what was sent (a re-run or a regression sentinel sends it again, and it
    is part of what makes two runs comparable), and a worker on another machine
    needs no shared file system. A path under examples/ would tie runs to a file
    that can change between them and to scenarios committed to Kaizen itself.
    """

    scenario_file = forms.FileField(
        label=gettext_lazy("Scenario file"),
        required=False,
        help_text=gettext_lazy(
            "A scripted scenario (YAML): journeys of steps carrying values from one "
            "answer to the next request — e.g. examples/scenarios/shop_journey.yaml. "
            "Runs in the open model (load, stress, endurance)."
        ),
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,text/yaml"}),
    )

    def clean_scenario_file(self):
        upload = self.cleaned_data.get("scenario_file")
        if not upload:
            return ""
        if upload.size > script.MAX_SIZE:
            raise forms.ValidationError(
                _("The file is larger than %(kib)s KiB; a scenario is short.")
                % {"kib": script.MAX_SIZE // 1024}
            )
        try:
            text = upload.read().decode("utf-8")
        except UnicodeDecodeError:
            raise forms.ValidationError(_("The file is not UTF-8 text.")) from None
        try:
            script.parse(text)
        except script.ScriptError as error:
            raise forms.ValidationError(str(error)) from None
        return text


class ScheduleForm(forms.ModelForm):
    focus = forms.MultipleChoiceField(
        label=_("Focus"),
        choices=[(tag, tag) for tag in Initiative.ALL_FOCUS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Schedule
        fields = ["name", "mode", "focus", "cron", "initiative", "enabled"]
        labels = {
            "name": gettext_lazy("Name"),
            "mode": gettext_lazy("Mode"),
            "focus": gettext_lazy("Focus"),
            "cron": gettext_lazy("When (cron)"),
            "initiative": gettext_lazy("Initiative"),
            "enabled": gettext_lazy("Enabled"),
        }
        help_texts = {
            "cron": gettext_lazy(
                "Five fields: minute hour day-of-month month day-of-week, "
                "e.g. “0 2 1 * *” = the 1st of every month at 02:00 (portal time zone)."
            ),
        }

    def __init__(self, *args, target=None, **kwargs):
        super().__init__(*args, **kwargs)
        target = target or self.instance.target
        self.fields["initiative"].queryset = Initiative.objects.filter(target=target)
        self.fields["mode"].choices = Initiative.RUN_MODES

    def clean_cron(self):
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
            self.add_error(
                "focus", _("%(wrong)s does not apply to this mode") % {"wrong": ", ".join(wrong)}
            )
        return data
