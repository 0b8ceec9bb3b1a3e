"""The ROI page of an initiative, its assumptions (edited by strategy), and its exports.

Everyone signed in reads; managers and strategy engineers edit the
assumptions (portal.access.can_edit_roi). Every figure comes from
optimizations.reports.roi.compute(): measurements, logged hours, and the assumptions.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers

from departments.models import Department
from optimizations.reports import charts, roi
from optimizations.reports.views.exports import safe_cell
from portal import access
from portal.http import HtmxHttpRequest

HISTORY_ROWS = 50
CHANGE_LABELS = {
    "expected_peak_rps": _("peak load (req/s)"),
    "cost_per_instance_month": _("cost per instance and month"),
    "currency": _("currency"),
    "horizon_months": _("horizon (months)"),
    "note": _("note"),
}


class RoiAssumptionsForm(forms.Form):
    expected_peak_rps = forms.IntegerField(
        label=_("Expected peak load (req/s)"),
        min_value=1,
        max_value=10_000_000,
        required=False,
        help_text=_("Empty: the target's expected peak load."),
    )
    cost_per_instance_month = forms.DecimalField(
        label=_("Cost per instance and month"),
        min_value=0,
        max_digits=10,
        decimal_places=2,
        required=False,
    )
    currency = forms.RegexField(
        regex=r"^[A-Z]{3}$",
        max_length=3,
        label=_("Currency"),
        error_messages={"invalid": _("Enter a three-letter currency code such as EUR or USD.")},
    )
    horizon_months = forms.IntegerField(
        label=_("Horizon (months)"),
        min_value=1,
        max_value=120,
        help_text=_("Savings counted over it."),
    )
    note = forms.CharField(
        label=_("Note"), widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=2000
    )

    def __init__(self, *args, departments=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.departments = list(departments)
        for department in self.departments:
            self.fields[f"rate_{department.code}"] = forms.DecimalField(
                label=gettext("%(department)s (per hour)") % {"department": department.name},
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
            (
                CHANGE_LABELS.get(name)
                or gettext("hourly rate of %(department)s")
                % {"department": name.removeprefix("hourly_rate.")},
                old,
                new,
            )
            for name, (old, new) in changes.items()
        ]
        history.append({"row": row, "changes": readable, "first": previous is None})
    return history


@require_http_methods(["GET", "POST"])
def initiative_roi(request, pk):
    initiative = access.get_initiative_for_user(request, pk, roi=request.method == "POST")
    can_edit = access.can_edit_roi(request.user)
    departments = list(Department.objects.all())
    form = None
    status = 200
    if request.method == "POST":
        form = RoiAssumptionsForm(request.POST, departments=departments)
        if form.is_valid():
            roi.do_update_roi_assumptions(request.user, initiative, **form.values())
            messages.success(request, gettext("Assumptions saved; the figures below use them."))
            return redirect("initiative_roi", pk=initiative.pk)
        status = 400
    result = roi.compute(initiative)
    history = _history(initiative)
    if form is None and can_edit:
        current = history[0]["row"] if history else None
        form = RoiAssumptionsForm(initial=_initial(current), departments=departments)
    figure = None
    if result.measured is not None:
        values = {m.key: (m.a, m.b) for m in result.measured.metrics}
        if "latency_p95" in values and "latency_med" in values:
            figure = charts.before_after_latency(
                {"p50": values["latency_med"][0], "p95": values["latency_p95"][0]},
                {"p50": values["latency_med"][1], "p95": values["latency_p95"][1]},
                (
                    gettext("baseline: run #%(run_id)s") % {"run_id": result.baseline.run_id},
                    gettext("latest: run #%(run_id)s") % {"run_id": result.latest.run_id},
                ),
            )
    context = {
        "initiative": initiative,
        "roi": result,
        "roi_tables": [
            (
                gettext("Interleaved comparison (verified evidence)"),
                result.interleaved_comparison,
                "verified",
            ),
            (gettext("Baseline set against the latest set"), result.measured, "measured"),
        ],
        "form": form,
        "can_edit": can_edit,
        "history": history,
        "figure": charts.to_json(figure) if figure else None,
        "nav_section": "initiatives",
    }
    return render(request, "optimizations/reports/roi.html", context, status=status)


@require_GET
@vary_on_headers("HX-Request")
def initiative_roi_panel(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The ROI panel alone, for the initiative page to load after itself."""
    initiative = access.get_initiative_for_user(request, pk)
    if not request.htmx:  # opened directly: the initiative's whole ROI page
        return redirect("initiative_roi", initiative.pk)
    return render(request, "optimizations/reports/roi_panel.html", {"roi": roi.compute(initiative)})


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


CSV_COLUMNS = ["section", "item", "value", "verified", "measured", "estimated", "unit"]


def csv_rows(result: roi.RoiResult) -> list[list[Any]]:
    """The ROI as rows a spreadsheet reads: single values in ``value``, the three
    evidence levels in their columns; empty is unknown."""
    a = result.assumptions
    rows: list[list[Any]] = [
        ["initiative", "title", result.initiative_title, None, None, None, ""],
        ["initiative", "target", result.target_slug, None, None, None, ""],
        ["assumptions", "expected peak load", a.expected_peak_rps, None, None, None, "req/s"],
        ["assumptions", "expected peak load from", a.peak_source, None, None, None, ""],
        [
            "assumptions",
            "cost per instance and month",
            a.cost_per_instance_month,
            None,
            None,
            None,
            a.currency,
        ],
        ["assumptions", "horizon", a.horizon_months, None, None, None, "months"],
        ["assumptions", "headroom factor", a.headroom, None, None, None, ""],
    ]
    for code, rate in sorted(a.hourly_rates.items()):
        rows.append(
            ["assumptions", f"hourly rate {code}", rate, None, None, None, f"{a.currency}/h"]
        )
    for side, found in (("baseline", result.baseline), ("latest", result.latest)):
        if found:
            rows.append(["benchmarks", side, found.describe(), None, None, None, ""])
            rows.append(["benchmarks", f"{side} run", found.run_id, None, None, None, ""])
            rows.append(["benchmarks", f"{side} runs in the set", found.size, None, None, None, ""])
            rows.append(["benchmarks", f"{side} started", found.started_at, None, None, None, ""])
    if result.interleaved:
        i = result.interleaved
        rows.append(["benchmarks", "interleaved comparison run", i.run_id, None, None, None, ""])
        rows.append(["benchmarks", "interleaved against", i.candidate_slug, None, None, None, ""])
    for section, compared in (
        ("interleaved comparison", result.interleaved_comparison),
        ("baseline set vs latest set", result.measured),
    ):
        for metric in compared.metrics if compared else []:
            c, name = metric.c, f"{section}: {metric.label}"
            rows += [
                [name, "verdict", c.verdict, None, None, None, ""],
                [name, "evidence", c.evidence, None, None, None, ""],
                [name, "runs", f"{c.n_baseline} v {c.n_candidate}", None, None, None, ""],
                [name, "median before", c.median_baseline, None, None, None, metric.unit],
                [name, "median after", c.median_candidate, None, None, None, metric.unit],
                [name, "estimate", c.estimate_text, None, None, None, ""],
                [name, "interval", c.interval_text, None, None, None, ""],
                [name, "confidence", c.confidence, None, None, None, ""],
                [name, "p-value", c.p_value, None, None, None, ""],
                [name, "reasons", "; ".join(c.reasons), None, None, None, ""],
            ]
    for knee_label, knee in (
        ("knee before", result.knee_before),
        ("knee after", result.knee_after),
    ):
        rows.append(
            ["capacity", knee_label, knee.value if knee else None, None, None, None, "req/s"]
        )
    v, m, e = result.verified, result.measured_column, result.estimated
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
        rows.append(
            [
                "roi",
                item,
                None,
                getattr(v, attribute),
                getattr(m, attribute),
                getattr(e, attribute),
                unit,
            ]
        )
    for cost in result.investment.rows:
        rows.append(["investment", f"{cost.name} hours", cost.hours, None, None, None, "h"])
        rows.append(
            ["investment", f"{cost.name} cost", cost.cost, None, None, None, result.currency]
        )
    rows.append(["investment", "total", result.investment.total, None, None, None, result.currency])
    rows.append(["roi", "evidence level reached", result.level, None, None, None, ""])
    for reason in result.missing:
        rows.append(["missing", reason, None, None, None, None, ""])
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
