"""Is a change real? Two sets of benchmark runs through the comparison rule.

The rule (optimizations.analyzers.stats, ANALYSIS.md §3): one value per run,
at least 5 runs per side, the Hodges–Lehmann shift of ln(B) − ln(A) with its
exact Mann–Whitney interval against a margin of ×1.10 (rates in percentage
points); interleaved runs are verified evidence, sequential ones measured;
runs whose configuration differs are flagged (optimizations.jobs.baselines).
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from optimizations.jobs import baselines, engine, modes
from optimizations.models import Job, Run, TargetService
from optimizations.reports import charts
from optimizations.work.actions import do_update_target
from portal import access


class ComparisonForm(forms.Form):
    baseline = forms.ModelChoiceField(
        queryset=TargetService.objects.all(), label=gettext_lazy("Before (A)")
    )
    candidate = forms.ModelChoiceField(
        queryset=TargetService.objects.all(), label=gettext_lazy("After (B)")
    )
    repetitions = forms.IntegerField(
        min_value=5, max_value=20, initial=5, label=gettext_lazy("Runs per side")
    )
    rate = forms.FloatField(min_value=1, initial=100, label=gettext_lazy("Offered rate (req/s)"))
    duration = forms.FloatField(min_value=5, initial=20, label=gettext_lazy("Each run (s)"))


def _ids(values) -> list[int]:
    ids: list[int] = []
    for value in values:
        ids.extend(int(part) for part in str(value).split(",") if part.strip().isdigit())
    return ids


class BaselineSetForm(forms.Form):
    target = forms.ModelChoiceField(
        queryset=TargetService.objects.all(), label=gettext_lazy("Target")
    )
    repetitions = forms.IntegerField(
        min_value=5,
        max_value=baselines.SET_MAX_RUNS,
        initial=baselines.SET_RUNS,
        label=gettext_lazy("Runs"),
    )
    duration = forms.FloatField(
        min_value=5,
        max_value=120,
        initial=baselines.SET_DURATION,
        label=gettext_lazy("Each run (s)"),
    )
    rate = forms.FloatField(
        min_value=1,
        required=False,
        label=gettext_lazy("Rate (req/s)"),
        help_text=gettext_lazy("Empty: the target's expected"),
    )
    pin = forms.BooleanField(
        required=False,
        initial=False,
        label=gettext_lazy("Pin as the target's baseline (replaces the pin)"),
    )


def compare_sides(a_jobs: list[Job], b_jobs: list[Job]) -> list[dict]:
    """The comparison rule on each metric, with the values it was fed."""
    return [
        {"key": m.key, "label": m.label, "unit": m.unit, "a": m.a, "b": m.b, "c": m.c}
        for m in baselines.compare_jobs(a_jobs, b_jobs)
    ]


@require_GET
def compare(request):
    a_ids, b_ids = _ids(request.GET.getlist("a")), _ids(request.GET.getlist("b"))
    run_id = request.GET.get("run", "")
    if run_id.isdigit() and not (a_ids or b_ids):
        run = Run.objects.filter(pk=int(run_id)).first()
        if run is not None and run.compared_with_id:
            jobs = run.jobs.filter(kind="benchmark", status=Job.SUCCEEDED)
            a_ids = list(jobs.filter(target=run.target_id).values_list("pk", flat=True))
            b_ids = list(jobs.filter(target=run.compared_with_id).values_list("pk", flat=True))
    # Two benchmark sets by their runs (the ROI page and the portfolio link them so).
    for key, ids in (("a_run", a_ids), ("b_run", b_ids)):
        value = request.GET.get(key, "")
        if value.isdigit() and not ids:
            ids.extend(
                Job.objects.filter(run_id=int(value), kind="benchmark", status=Job.SUCCEEDED)
                .order_by("started_at", "pk")
                .values_list("pk", flat=True)
            )
    chosen = {
        job.pk: job
        for job in Job.objects.filter(
            pk__in=a_ids + b_ids, kind="benchmark", status=Job.SUCCEEDED
        ).select_related("target")
    }
    a_jobs = sorted((chosen[i] for i in a_ids if i in chosen), key=lambda j: j.started_at)
    b_jobs = sorted((chosen[i] for i in b_ids if i in chosen), key=lambda j: j.started_at)
    results = compare_sides(a_jobs, b_jobs) if a_jobs and b_jobs else []
    figure = None
    if results:
        headline = results[0]
        figure = charts.to_json(
            charts.comparison_runs(
                [(job.started_at, value) for job, value in zip(a_jobs, headline["a"], strict=True)],
                [(job.started_at, value) for job, value in zip(b_jobs, headline["b"], strict=True)],
                gettext("%(metric)s (%(unit)s) per run")
                % {"metric": gettext(headline["label"]), "unit": headline["unit"]},
            )
        )
    recent = list(
        Job.objects.filter(kind="benchmark", status=Job.SUCCEEDED)
        .select_related("target", "run")
        .order_by("-started_at")[:60]
    )
    context = {
        "results": results,
        "a_jobs": a_jobs,
        "b_jobs": b_jobs,
        "a_ids": set(a_ids),
        "b_ids": set(b_ids),
        "recent": recent,
        "figure": figure,
        "form": ComparisonForm(),
        "set_form": BaselineSetForm(),
        "can_trigger": access.can_trigger_jobs(request.user),
    }
    return render(request, "optimizations/reports/compare.html", context)


@require_POST
def comparison_start(request):
    access.require(access.can_trigger_jobs(request.user))
    form = ComparisonForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            gettext("The comparison was not started: %(errors)s")
            % {"errors": form.errors.as_text()},
        )
        return redirect("compare")
    data = form.cleaned_data
    try:
        run = engine.start_comparison(
            request.user,
            data["baseline"],
            data["candidate"],
            {
                "mode": "load",
                "rate": data["rate"],
                "duration": data["duration"],
                "exclude": modes.LOAD_EXCLUDE,
            },
            repetitions=data["repetitions"],
        )
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect("compare")
    return redirect(run)


@require_POST
def baseline_set_start(request):
    """Start a benchmark set on one target (N short load tests in one run): the
    baseline a before/after claim needs, or a latest set to compare with it."""
    access.require(access.can_trigger_jobs(request.user))
    form = BaselineSetForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            gettext("The benchmark set was not started: %(errors)s")
            % {"errors": form.errors.as_text()},
        )
        return redirect("compare")
    data = form.cleaned_data
    target = data["target"]
    params = {"mode": "load", "duration": data["duration"], "exclude": modes.LOAD_EXCLUDE}
    rate = data["rate"] or target.expected_rps
    if rate:
        params["rate"] = float(rate)
    try:
        run = engine.start_set(request.user, target, repetitions=data["repetitions"], params=params)
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect("compare")
    if data["pin"]:
        do_update_target(request.user, target, baseline_run=run)
    return redirect(run)
