"""Starting runs, watching jobs live, cancelling and repeating them, job history."""

from __future__ import annotations

import contextlib
import json
import re

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import condition, require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from optimizations.analyzers.codescan.since import mark_sarif
from optimizations.jobs import (
    codescans,
    engine,
    generators,
    kinds,
    modes,
    polling,
    preflight,
    verdicts,
)
from optimizations.jobs.forms import (
    RunForm,
    ScenarioFileForm,
    of_test_type,
    params_form_class,
    params_from_form,
)
from optimizations.models import (
    Finding,
    Generator,
    Job,
    JobLog,
    Measurement,
    Run,
)
from optimizations.reports import charts
from optimizations.work.actions import do_update_target
from portal import access
from portal.http import HtmxHttpRequest

LOG_TAIL = 200
LOG_PAGE = 500


@require_POST
def run_start(request, slug):
    """ "Run analysis" on a target, initiative, phase or task page."""
    target = access.get_target_for_user(request, slug, run=True)
    form = RunForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, " ".join(form.errors.get("__all__", [gettext("Choose a run mode.")]))
        )
        return redirect(target)
    try:
        run = engine.start_run(
            request.user,
            target,
            form.cleaned_data["mode"],
            form.cleaned_data["focus"],
            # The preflight checks they are the target's, and says so if not.
            initiative=form.cleaned_data["initiative"],
            phase=form.cleaned_data["phase"],
            task=form.cleaned_data["task"],
        )
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect(request.POST.get("back") if _safe(request) else target)
    for skipped in run.skipped:
        messages.warning(
            request,
            gettext("%(kind)s skipped: %(why)s.")
            % {"kind": skipped["kind"], "why": preflight.skipped_why(skipped)},
        )
    return redirect(run)


def _safe(request) -> bool:
    from django.utils.http import url_has_allowed_host_and_scheme

    return url_has_allowed_host_and_scheme(request.POST.get("back", ""), {request.get_host()})


@require_GET
@vary_on_headers("HX-Request")
def job_params(request: HtmxHttpRequest, slug: str, kind: str) -> HttpResponse:
    """The parameter form of one kind, generated from its declared parameters.

    The target page swaps it in; opened directly it is a page of its own."""
    target = access.get_target_for_user(request, slug)
    try:
        spec = kinds.get(kind)
    except ValueError:
        raise Http404 from None
    form = params_form_class(spec.params(), modes.FORM_DEFAULTS.get(kind), kind)(prefix="p")
    missing = preflight.missing_needs(target, spec)
    # The engine's preflight, without the start limits: what would stop this job (a
    # training gate, a host off the allow-list) is said before the button, not after.
    answer = preflight.check(
        request.user, target, specs=[(kind, {})], given=False, with_limits=False
    )
    return render(
        request,
        "optimizations/jobs/job_params.html#params"
        if request.htmx
        else "optimizations/jobs/job_params.html",
        {
            "target": target,
            "kind": spec,
            "form": form,
            "upload": ScenarioFileForm(prefix="s") if kind == "benchmark" else None,
            "missing": missing,
            "refusal": "" if missing or not spec.available() else answer.message,
            "waits": answer.waits,
        },
    )


@require_POST
def job_start(request: HtmxHttpRequest, slug: str, kind: str) -> HttpResponse:
    """Start a single job of ``kind`` with the parameters of its form."""
    target = access.get_target_for_user(request, slug, run=True)
    try:
        spec = kinds.get(kind)
    except ValueError:
        raise Http404 from None
    form = params_form_class(spec.params(), modes.FORM_DEFAULTS.get(kind), kind)(
        request.POST, prefix="p"
    )
    upload = (
        ScenarioFileForm(request.POST, request.FILES, prefix="s") if kind == "benchmark" else None
    )
    valid = form.is_valid() & (upload is None or upload.is_valid())
    uploaded = valid and upload is not None and upload.cleaned_data["scenario_file"]
    if upload is not None and uploaded and form.cleaned_data.get("scenario"):
        upload.add_error("scenario_file", "Give a scenario file or a custom scenario, not both.")
        valid = False
    if not valid:
        return render(
            request,
            "optimizations/jobs/job_params.html#params"
            if request.htmx
            else "optimizations/jobs/job_params.html",
            {"target": target, "kind": spec, "form": form, "upload": upload, "missing": []},
            status=422,
        )
    try:
        params = params_from_form(spec.params(), form.cleaned_data, kind)
        if kind == "benchmark":
            params = of_test_type(params)
        if upload is not None and upload.cleaned_data["scenario_file"]:
            params["scenario"] = upload.cleaned_data["scenario_file"]
        run = engine.start_job(request.user, target, kind, params)
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect(target)
    except Exception as error:  # a ValidationError from params_from_form's JSON
        messages.error(request, str(error))
        return redirect(target)
    job = run.jobs.earliest("pk")  # its one job (a run with none is refused above)
    if request.htmx:
        # The form was swapped in by htmx: the browser goes to the job's page.
        return HttpResponseClientRedirect(job.get_absolute_url())
    return redirect(job)


@require_GET
def run_detail(request, pk):
    run = access.get_run_for_user(
        request,
        pk,
        queryset=Run.objects.select_related(
            "target", "initiative", "phase", "task", "triggered_by", "compared_with"
        ),
    )
    jobs = list(run.jobs.select_related("target", "waiting_for").order_by("pk"))
    context = {
        "run": run,
        "jobs": jobs,
        "can_trigger": access.can_trigger_jobs(request.user),
        **_run_state(run, jobs),
    }
    return render(request, "optimizations/jobs/run_detail.html", context)


def _run_state(run, jobs) -> dict:
    """What the run page shows of the run now, from its jobs (the stored status is
    settled only when a job ends): status, progress, verdict and why, live or not."""
    live = any(job.status in Job.ACTIVE for job in jobs)
    # Why each kind was not run, in the reader's language (stored as English and a phrase).
    skipped = [{**item, "why": preflight.skipped_why(item)} for item in run.skipped]
    status = verdicts.run_status_while_active(j.status for j in jobs) if live else run.status
    return {
        "live": live,
        "run_status": status,
        "progress": _run_progress(jobs),
        "skipped": skipped,
        "verdict_reasons": [] if live else verdicts.reasons_of_run(jobs, skipped),
    }


def _run_progress(jobs) -> int:
    return verdicts.run_progress(jobs)


@require_GET
@vary_on_headers("HX-Request")
@condition(etag_func=lambda request, pk: polling.run_etag(request, pk))
def run_live(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """The run's jobs, polled every second; an unchanged run answers 304 (polling.run_etag)."""
    if not request.htmx:  # the poll's address opened directly: the run's page
        return redirect("run_detail", pk)
    run = access.get_run_for_user(request, pk, queryset=Run.objects.select_related("compared_with"))
    # Each job's target is named only in a comparison (A or B); polled every second.
    related = ("target", "waiting_for") if run.compared_with_id else ("waiting_for",)
    jobs = list(run.jobs.select_related(*related).order_by("pk"))
    # The worker that ends the last job settles the run (and tells people);
    # this page only shows what is there.
    done = all(job.status in Job.ENDED for job in jobs)
    context = {
        "run": run,
        "jobs": jobs,
        "can_trigger": access.can_trigger_jobs(request.user),
        **_run_state(run, jobs),
    }
    return polling.revalidate(
        polling.answer(request, "optimizations/jobs/run_detail.html#run_jobs", context, done=done)
    )


@require_GET
def job_detail(request, pk):
    job = access.get_job_for_user(
        request,
        pk,
        queryset=Job.objects.select_related(
            "target", "run", "initiative", "phase", "triggered_by", "waiting_for"
        ),
    )
    if request.htmx and request.GET.get("part") == "generators":
        # A distributed test's generators, polled while it runs; once it has ended the
        # panel goes (the result shows their final health) and the polling stops.
        now = _generators_now(job)
        template = "optimizations/jobs/job_detail.html#generators"
        return polling.answer(request, template, {"job": job, **now}, done=not now)
    logs = list(
        JobLog.objects.filter(job=job, seq__gt=max(0, job.log_lines - LOG_TAIL)).order_by("seq")
    )
    context = {
        "job": job,
        "kind": kinds.KINDS.get(job.kind),
        "logs": logs,
        "after": job.log_lines,
        "first_seq": logs[0].seq if logs else 0,
        "can_trigger": access.can_trigger_jobs(request.user),
        **_result_context(job),
        **_charts(job),
        **_generators_now(job),
    }
    return render(request, "optimizations/jobs/job_detail.html", context)


def _generators_now(job) -> dict:
    """A distributed load test still running: its current round's generators (the
    finished job's health is in its summary)."""
    if job.kind != "benchmark" or job.status not in Job.ACTIVE:
        return {}
    if int((job.params or {}).get("generators") or 1) < 2:
        return {}
    latest = list(Generator.objects.filter(job=job).order_by("-round", "index")[:64])
    current = [g for g in latest if g.round == latest[0].round] if latest else []
    return {
        "generators_now": [generators.health(g, []) for g in current],
        "live_statuses": " ".join(Generator.ACTIVE),
    }


TIMELINE_NAMES = [f"sample.{field}" for field in ("at", "memory_bytes", *charts.TIMELINE_FIELDS)]


def _timeline_rows(job, after: int = -1) -> list[dict]:
    return charts.sample_rows(
        Measurement.objects.filter(job_id=job.pk, second__gt=after, name__in=TIMELINE_NAMES)
        .order_by("second")
        .values_list("second", "name", "value")
    )


def _charts(job) -> dict:
    """The figures of a benchmark job: its timeline (live while it runs) and its results."""
    if job.kind != "benchmark":
        return {"charts": {}, "rows_after": -1}
    rows = _timeline_rows(job)
    summary = job.summary or {}
    figures = {"timeline": charts.benchmark_timeline(rows)}
    if job.status not in Job.ACTIVE:
        figures.update(
            histogram=charts.latency_histogram((summary.get("hdr") or {}).get("latency")),
            operations=charts.operations_chart(summary.get("operations") or []),
            steps=charts.stress_steps(summary.get("steps") or []),
            memory=charts.memory_trend(
                [
                    (row.get("at", row["row"]), row["memory_bytes"])
                    for row in rows
                    if row.get("memory_bytes")
                ]
            ),
        )
    return {
        "charts": charts.bundle(**{f"job-{job.pk}-{name}": f for name, f in figures.items()}),
        "rows_after": rows[-1]["row"] if rows else -1,
    }


def _result_context(job) -> dict:
    if job.status in Job.ACTIVE:
        return {"measurements": [], "findings": []}
    return {
        "artifacts": list(job.artifacts.values_list("name", flat=True)),
        "measurements": list(
            Measurement.objects.filter(job=job, second__isnull=True).order_by("name", "pk")[:300]
        ),
        "findings": list(Finding.objects.filter(last_job=job).by_severity()[:200]),
    }


@require_GET
@vary_on_headers("HX-Request")
def job_live(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    """What changed since the page last asked: status, progress, new log lines.

    Polled every second while the job runs: one query for the job, one for
    its new log lines; none for anything that did not change. A job that did
    not change since the last answer (its stamp ``v``) gets only the poll
    element back, asking again a little later each time (optimizations.jobs.polling).
    """
    if not request.htmx:  # the poll's address opened directly: the job's page
        return redirect("job_detail", pk)
    # The summary and parameters can be large and are not shown while it runs.
    job = access.get_job_for_user(request, pk, queryset=Job.objects.defer("summary", "params"))
    try:
        after = max(0, int(request.GET.get("after", 0)))
    except ValueError:
        after = 0
    logs = []
    if job.log_lines > after:
        # A job far ahead of the page sends only its newest lines, not all of them.
        start = max(after, job.log_lines - LOG_PAGE)
        logs = list(
            JobLog.objects.filter(job_id=job.pk, seq__gt=start, seq__lte=job.log_lines).order_by(
                "seq"
            )
        )
    ended = job.status in Job.ENDED
    try:
        rows_after = int(request.GET.get("rows", -1))
    except ValueError:
        rows_after = -1
    stamp = polling.job_stamp(job)
    if not ended and not logs and stamp == request.GET.get("v"):
        try:
            quiet = max(0, int(request.GET.get("quiet", 0))) + 1
        except ValueError:
            quiet = 1
        context = {"job": job, "after": after, "rows_after": rows_after, "live": True}
        context.update(stamp=stamp, quiet=quiet, interval=polling.interval(quiet), unchanged=True)
        return render(request, "optimizations/jobs/job_live.html", context)
    rows = _timeline_rows(job, rows_after) if job.kind == "benchmark" and not ended else []
    context = {
        "job": job,
        "logs": logs,
        # Only a page that had no line yet shows "No log lines yet." (an oob swap
        # whose target is gone is an htmx:oobErrorNoTarget in the console).
        "first_lines": after == 0,
        "after": logs[-1].seq if logs else after,
        "rows_after": rows[-1]["row"] if rows else rows_after,
        "points": charts.points_json(rows) if rows else "",
        "live": not ended,
        "stamp": stamp,
        "quiet": 0,
        "interval": polling.interval(0),
        "skipped_lines": (job.log_lines - LOG_PAGE - after)
        if job.log_lines - after > LOG_PAGE
        else 0,
    }
    if ended:
        full = Job.objects.select_related("target", "run").get(pk=job.pk)
        context.update(job=full, final=True, **_result_context(full), **_charts(full))
    return polling.answer(request, "optimizations/jobs/job_live.html", context, done=ended)


@require_GET
def job_log(request, pk):
    """Earlier log lines, a page at a time (the job page's "show earlier")."""
    job = access.get_job_for_user(request, pk, queryset=Job.objects.only("pk", "log_lines"))
    try:
        before = int(request.GET.get("before", job.log_lines + 1))
    except ValueError:
        before = job.log_lines + 1
    logs = list(
        JobLog.objects.filter(
            job_id=job.pk, seq__lt=before, seq__gte=max(1, before - LOG_PAGE)
        ).order_by("seq")
    )
    return render(
        request,
        "optimizations/jobs/job_log_page.html",
        {"job": job, "logs": logs, "first_seq": logs[0].seq if logs else 0},
    )


@require_GET
def job_log_download(request, pk):
    """The whole log as text, streamed so 100 000 lines cost no memory."""
    job = access.get_job_for_user(request, pk)

    def lines():
        yield f"# Kaizen job #{job.pk} ({job.kind}) on {job.target_id}\n"
        for at, level, message in (
            JobLog.objects.filter(job=job).order_by("seq").values_list("at", "level", "message")
        ).iterator(chunk_size=2000):
            yield f"{at.isoformat()} {level.upper():<7} {message}\n"

    response = StreamingHttpResponse(lines(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kaizen-job-{job.pk}.log"'
    return response


@require_GET
def job_artifact(request, pk, name):
    artifact = access.get_artifact_for_user(request, pk, name)
    content = artifact.content
    new_since = request.GET.get("new_since", "").strip()
    if new_since and name.endswith(".sarif"):
        # SARIF's baselineState (new, unchanged, updated, absent) against code scan #N

        try:
            earlier = codescans.earlier_scan(new_since, artifact.job.target_id, report="sarif")
        except codescans.NoEarlierScan as error:
            return HttpResponse(f"New since scan #{new_since}: {error}.", status=404)
        content = json.dumps(mark_sarif(json.loads(content), earlier), indent=2)
    response = HttpResponse(content, content_type=artifact.content_type)
    response["Content-Disposition"] = f'attachment; filename="{artifact.name}"'
    return response


@require_POST
def job_cancel(request, pk):
    job = access.get_job_for_user(
        request, pk, write=True, queryset=Job.objects.select_related("run", "target", "initiative")
    )
    state = engine.cancel(request.user, job)
    if state == Job.CANCELLED:
        messages.success(request, gettext("Cancelled before it started."))
    elif job.status == Job.RUNNING:
        messages.success(request, gettext("Asked to stop; it stops within a second or two."))
    else:
        messages.info(
            request,
            gettext("It had already ended (%(status)s).")
            % {"status": job.get_status_display().lower()},
        )
    return redirect(job)


@require_POST
def run_cancel(request, pk):
    run = access.get_run_for_user(request, pk, write=True)
    engine.cancel_run(request.user, run)
    messages.success(request, gettext("Asked every unfinished job of this run to stop."))
    return redirect(run)


@require_POST
def job_rerun(request, pk):
    job = access.get_job_for_user(
        request, pk, write=True, queryset=Job.objects.select_related("run__target")
    )
    try:
        run = engine.rerun(request.user, job.run, job=job)
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect(job)
    return redirect(run.jobs.first())


@require_POST
def run_rerun(request, pk):
    run = access.get_run_for_user(
        request, pk, write=True, queryset=Run.objects.select_related("target")
    )
    try:
        new = engine.rerun(request.user, run)
    except engine.CannotStart as error:
        messages.error(request, str(error))
        return redirect(run)
    return redirect(new)


@require_POST
def run_pin_baseline(request, pk):
    """Make this run the target's baseline: SLO "against the baseline" figures use it."""
    run = access.get_run_for_user(
        request, pk, write=True, queryset=Run.objects.select_related("target")
    )
    fresh = run.target.__class__.objects.get(pk=run.target_id)
    do_update_target(request.user, fresh, baseline_run=run)
    messages.success(
        request,
        gettext("Run #%(pk)s is now the baseline of %(name)s.")
        % {"pk": run.pk, "name": fresh.name},
    )
    return redirect(run)


PARAM_FILTER = re.compile(r"^([a-z_][a-z0-9_]*)=(.+)$")


@require_GET
@vary_on_headers("HX-Request")
def job_list(request: HtmxHttpRequest) -> HttpResponse:
    """Job history, filterable by target, initiative, kind, status, who and parameter."""
    # A result summary (a benchmark's histograms and steps, kilobytes each) is not shown.
    jobs = Job.objects.select_related("target", "triggered_by", "run", "waiting_for").defer(
        "summary", "waiting_for__summary"
    )
    filters = {
        key: request.GET.get(key, "").strip()
        for key in ("target", "initiative", "kind", "status", "who", "param")
    }
    if filters["target"]:
        jobs = jobs.filter(target__slug=filters["target"])
    if filters["initiative"].isdigit():
        jobs = jobs.filter(initiative_id=int(filters["initiative"]))
    if filters["kind"]:
        jobs = jobs.filter(kind=filters["kind"])
    if filters["status"]:
        jobs = jobs.filter(status=filters["status"])
    if filters["who"]:
        jobs = jobs.filter(triggered_by__username=filters["who"])
    match = PARAM_FILTER.match(filters["param"])
    if match:
        key, value = match.groups()
        condition = Q(**{f"params__{key}": value})
        for convert in (int, float):
            with contextlib.suppress(ValueError):
                condition |= Q(**{f"params__{key}": convert(value)})
        jobs = jobs.filter(condition)
    page = Paginator(jobs.order_by("-created_at", "-pk"), 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "filters": filters,
        "kinds": kinds.KINDS.values(),
        "statuses": Job.STATUSES,
        "now": timezone.now(),
    }
    template = "optimizations/jobs/job_list.html"
    if request.htmx and not request.htmx.boosted:
        template += "#results"
    return render(request, template, context)
