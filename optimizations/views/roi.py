"""The ROI page of an initiative, its assumptions (edited by strategy), and its exports.

Everyone signed in reads; managers and strategy engineers edit the
assumptions (portal.access.can_edit_roi). Every figure comes from
optimizations.roi.compute(): measurements, logged hours, and the assumptions.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from departments.models import Department
from optimizations import charts, roi
from optimizations.views.exports import safe_cell
from portal import access

HISTORY_ROWS = 50
CHANGE_LABELS = {
    "expected_peak_rps": "peak load (req/s)",
    "cost_per_instance_month": "cost per instance and month",
    "currency": "currency",
    "horizon_months": "horizon (months)",
    "note": "note",
}


class RoiAssumptionsForm(forms.Form):
    expected_peak_rps = forms.IntegerField(
        label="Expected peak load (req/s)",
        min_value=1,
        max_value=10_000_000,
        required=False,
        help_text="Empty: the target's expected peak load.",
    )
    cost_per_instance_month = forms.DecimalField(
        label="Cost per instance and month",
        min_value=0,
        max_digits=10,
        decimal_places=2,
        required=False,
    )
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$",
        max_length=3,
        error_messages={"invalid": "Enter a three-letter currency code such as EUR or USD."},
    )
    horizon_months = forms.IntegerField(
        label="Horizon (months)", min_value=1, max_value=120, help_text="Savings counted over it."
    )
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000
    )

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.departments = list(departments)
        for department in self.departments:
            self.fields[f"rate_{department.code}"] = forms.DecimalField(
                label=f"{department.name} (per hour)",
                min_value=0,
                max_digits=8,
                decimal_places=2,
                required=False,
            )

    def rate_fields(self):
        return [self[f"rate_{department.code}"] for department in self.departments]

    def values(self) -> dict:
        data = self.cleaned_data
        rates = {}
        for department in self.departments:
            rate = data.get(f"rate_{department.code}")
            if rate is not None:
                rates[department.code] = float(rate)
        return {
            "expected_peak_rps": data["expected_peak_rps"],
            "cost_per_instance_month": data["cost_per_instance_month"],
            "currency": data["currency"],
            "hourly_rates": rates,
            "horizon_months": data["horizon_months"],
            "note": data["note"],
        }


def _initial(row) -> dict:
    values = roi.assumption_values(row)
    initial = {key: value for key, value in values.items() if key != "hourly_rates"}
    for code, rate in (values["hourly_rates"] or {}).items():
        initial[f"rate_{code}"] = rate
    return initial


def _history(initiative) -> list[dict]:
    """The assumption rows, newest first, each with what it changed against the one before."""
    rows = list(initiative.roi_assumptions.select_related("changed_by")[: HISTORY_ROWS + 1])
    history = []
    for index, row in enumerate(rows[:HISTORY_ROWS]):
        previous = rows[index + 1] if index + 1 < len(rows) else None
        changes = roi.assumption_changes(
            roi.assumption_values(previous), roi.assumption_values(row)
        )
        readable = [
            (CHANGE_LABELS.get(name) or name.replace("hourly_rate.", "hourly rate of "), old, new)
            for name, (old, new) in changes.items()
        ]
        history.append({"row": row, "changes": readable, "first": previous is None})
    return history


@require_http_methods(["GET", "POST"])
def initiative_roi(request, pk):
    initiative = access.get_initiative_for_user(request, pk)
    can_edit = access.can_edit_roi(request.user)
    departments = list(Department.objects.all())
    form = None
    status = 200
    if request.method == "POST":
        access.require(can_edit)
        form = RoiAssumptionsForm(request.POST, departments=departments)
        if form.is_valid():
            roi.do_update_roi_assumptions(request.user, initiative, **form.values())
            messages.success(request, "Assumptions saved; the figures below use them.")
            return redirect("initiative_roi", pk=initiative.pk)
        status = 400
    result = roi.compute(initiative)
    history = _history(initiative)
    if form is None and can_edit:
        current = history[0]["row"] if history else None
        form = RoiAssumptionsForm(initial=_initial(current), departments=departments)
    figure = None
    if result.baseline and result.latest:
        figure = charts.before_after_latency(
            result.before_samples,
            result.after_samples,
            (f"before: job #{result.baseline.job_id}", f"after: job #{result.latest.job_id}"),
        )
    context = {
        "initiative": initiative,
        "roi": result,
        "form": form,
        "can_edit": can_edit,
        "history": history,
        "figure": charts.to_json(figure) if figure else None,
        "max_test_seconds": roi.MAX_TEST_SECONDS,
        "nav_section": "initiatives",
    }
    return render(request, "optimizations/roi.html", context, status=status)


@require_GET
def initiative_roi_panel(request, pk):
    """The ROI panel alone, for the initiative page to load after itself."""
    initiative = access.get_initiative_for_user(request, pk)
    return render(request, "optimizations/roi_panel.html", {"roi": roi.compute(initiative)})


# --- exports ------------------------------------------------------------------------


def _filename(initiative, extension: str) -> str:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    return f"kaizen-initiative-{initiative.pk}-roi-{stamp}.{extension}"


@require_GET
def initiative_roi_json(request, pk):
    initiative = access.get_initiative_for_user(request, pk)
    data = {"exported_at": timezone.now().isoformat(), **roi.compute(initiative).to_dict()}
    response = JsonResponse(data, json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'inline; filename="{_filename(initiative, "json")}"'
    return response


CSV_COLUMNS = ["section", "item", "value", "verified", "estimated", "unit"]


def csv_rows(result: roi.RoiResult) -> list[list]:
    """The ROI as rows a spreadsheet reads: single values in ``value``, the two
    readings of the evidence in ``verified`` and ``estimated``; empty is unknown."""
    a = result.assumptions
    rows = [
        ["initiative", "title", result.initiative_title, None, None, ""],
        ["initiative", "target", result.target_slug, None, None, ""],
        ["assumptions", "expected peak load", a.expected_peak_rps, None, None, "req/s"],
        ["assumptions", "expected peak load from", a.peak_source, None, None, ""],
        ["assumptions", "cost per instance and month", a.cost_per_instance_month, None, None,
         a.currency],
        ["assumptions", "horizon", a.horizon_months, None, None, "months"],
        ["assumptions", "headroom factor", a.headroom, None, None, ""],
    ]  # fmt: skip
    for code, rate in sorted(a.hourly_rates.items()):
        rows.append(["assumptions", f"hourly rate {code}", rate, None, None, f"{a.currency}/h"])
    for side, bench in (("baseline", result.baseline), ("latest", result.latest)):
        if bench:
            rows.append(["benchmarks", f"{side} job", bench.job_id, None, None, ""])
            rows.append(["benchmarks", f"{side} started", bench.started_at, None, None, ""])
            rows.append(["benchmarks", f"{side} mode", bench.mode, None, None, ""])
            rows.append(["benchmarks", f"{side} seconds", bench.seconds, None, None, "s"])
    for label, c in (("p95", result.comparison), ("p50", result.comparison_p50)):
        if c is None:
            continue
        section = f"comparison {label} per second"
        rows += [
            [section, "verdict", c.verdict, None, None, ""],
            [section, "median before", c.median_baseline, None, None, "ms"],
            [section, "median after", c.median_candidate, None, None, "ms"],
            [section, "change", c.change, None, None, "ratio"],
            [section, "change 95% low", c.change_ci[0], None, None, "ratio"],
            [section, "change 95% high", c.change_ci[1], None, None, "ratio"],
            [section, "speed-up", c.speedup, None, None, "x"],
            [section, "speed-up 95% low", c.speedup_ci[0], None, None, "x"],
            [section, "speed-up 95% high", c.speedup_ci[1], None, None, "x"],
            [section, "p-value", c.p_value, None, None, ""],
            [section, "reasons", "; ".join(c.reasons), None, None, ""],
        ]
    for knee_label, knee in (
        ("knee before", result.knee_before),
        ("knee after", result.knee_after),
    ):
        rows.append(["capacity", knee_label, knee.value if knee else None, None, None, "req/s"])
    v, e = result.verified, result.estimated
    for item, attribute, unit in (
        ("speed-up used", "speedup", "x"),
        ("capacity per instance before", "capacity_before", "req/s"),
        ("capacity per instance after", "capacity_after", "req/s"),
        ("instances before", "instances_before", ""),
        ("instances after", "instances_after", ""),
        ("monthly saving", "monthly_saving", result.currency),
        ("saving over the horizon", "horizon_saving", result.currency),
        ("ROI", "roi", "ratio"),
        ("payback", "payback_months", "months"),
    ):
        rows.append(["roi", item, None, getattr(v, attribute), getattr(e, attribute), unit])
    for cost in result.investment.rows:
        rows.append(["investment", f"{cost.name} hours", cost.hours, None, None, "h"])
        rows.append(["investment", f"{cost.name} cost", cost.cost, None, None, result.currency])
    rows.append(["investment", "total", result.investment.total, None, None, result.currency])
    for reason in result.missing:
        rows.append(["missing", reason, None, None, None, ""])
    return rows


@require_GET
def initiative_roi_csv(request, pk):
    initiative = access.get_initiative_for_user(request, pk)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(roi.compute(initiative)):
        writer.writerow([safe_cell(value) for value in row])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(initiative, "csv")}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
