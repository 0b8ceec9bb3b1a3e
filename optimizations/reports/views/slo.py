"""The SLO board of a target, its trend charts, and the capacity and pool advisor."""

from __future__ import annotations

from django import forms
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from optimizations.observe import panel
from optimizations.reports import capacity, charts, sloboard
from portal import access
from portal.http import HtmxHttpRequest


class AdvisorForm(forms.Form):
    """What strategy enters to try a plan; empty fields fall back to what is measured."""

    peak_rps = forms.FloatField(
        required=False, min_value=0.1, max_value=10_000_000, label=gettext_lazy("Peak load (req/s)")
    )
    workers_per_instance = forms.IntegerField(
        required=False, min_value=1, max_value=512, label=gettext_lazy("Workers per instance")
    )
    max_connections = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label="max_connections"
    )


def _advice(target, form: AdvisorForm) -> capacity.Advice:
    values = form.cleaned_data if form.is_valid() else {}
    return capacity.advise(
        target,
        peak_rps=values.get("peak_rps"),
        workers_per_instance=values.get("workers_per_instance"),
        max_connections=values.get("max_connections"),
    )


@require_GET
@vary_on_headers("HX-Request")
def target_slo(request: HtmxHttpRequest, slug: str) -> HttpResponse:
    target = access.get_target_for_user(request, slug)
    # Continuous figures, budgets and alerts beside the benchmark's (issue 16): loaded
    # after the page, so the board's own queries stay as they were.
    if request.htmx and request.htmx.target == "slo-continuous":
        context = {"target": target, "observe_board": panel.board(target)}
        return render(request, "optimizations/observe/slo_continuous.html", context)
    form = AdvisorForm(request.GET or None)
    context = {"target": target, "form": form, "advice": _advice(target, form)}
    # The advisor's form re-renders only its own panel.
    if request.htmx and request.htmx.target == "advisor":
        return render(request, "optimizations/reports/slo_board.html#advisor", context)
    data = sloboard.load(target)
    rows = sloboard.board(target, data=data)
    context.update(
        rows=rows,
        tally=sloboard.counts(rows),
        figures=charts.bundle(
            **{
                "slo-trends": charts.slo_trends(rows),
                "target-runs": charts.target_runs(sloboard.run_points(data)),
            }
        ),
    )
    return render(request, "optimizations/reports/slo_board.html", context)
