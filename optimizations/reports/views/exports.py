"""CSV and JSON exports of findings and runs, streamed so 100 000 rows cost no memory.

Rows are read with ``values()`` (no model instances, joins instead of
per-row queries) through ``iterator(chunk_size=CHUNK)``, which on PostgreSQL
is a server-side cursor: the response starts at once and memory stays flat
whatever the number of rows. Runs bring their jobs along one query per chunk
of CHUNK runs, never one per run.

Everyone signed in reads (portal/access.py), so whoever may open the target or
initiative may export it. CSV cells that a spreadsheet would take for a
formula (= + - @, tab, carriage return) are prefixed with a quote.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator

from django.core.exceptions import BadRequest
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import OuterRef, Subquery
from django.db.models.fields.json import KT
from django.http import Http404, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from optimizations.models import Job, PhaseTask, Run
from optimizations.work import findings as service
from optimizations.work import routing
from portal import access

CHUNK = 2000
FORMATS = ("csv", "json")

# (column, values() lookup) of a finding; evidence goes to JSON only.
FINDING_COLUMNS = (
    ("id", "pk"),
    ("target", "target__slug"),
    ("source", "source"),
    ("rule_id", "rule_id"),
    ("severity", "severity"),
    ("category", "category"),
    ("status", "status"),
    ("title", "title"),
    ("location", "location"),
    ("assignee", "assignee__username"),
    ("first_seen_at", "first_seen_at"),
    ("last_seen_at", "last_seen_at"),
    ("fixed_at", "fixed_at"),
    ("times_seen", "times_seen"),
    ("status_reason", "status_reason"),
    ("fix_hint", "fix_hint"),
    ("doc_url", "doc_url"),
    ("fingerprint", "fingerprint"),
    ("last_job", "last_job_id"),
)

RUN_COLUMNS = (
    ("run_id", "pk"),
    ("target", "target__slug"),
    ("mode", "mode"),
    ("focus", "focus"),
    ("status", "status"),
    ("verdict", "verdict"),
    ("trigger", "trigger"),
    ("triggered_by", "triggered_by__username"),
    ("initiative", "initiative_id"),
    ("created_at", "created_at"),
    ("finished_at", "finished_at"),
)

JOB_COLUMNS = (
    ("job_id", "pk"),
    ("kind", "kind"),
    ("status", "status"),
    ("verdict", "verdict"),
    ("started_at", "started_at"),
    ("finished_at", "finished_at"),
)

# Key figures of a job's result summary, read in the database (a benchmark's
# summary carries histograms we do not want to load 20 000 times). Empty where
# the kind does not measure it.
JOB_FIGURES = (
    ("benchmark_mode", "summary__mode"),
    ("throughput_rps", "summary__rps"),
    ("error_rate", "summary__error_rate"),
    ("latency_med_ms", "summary__latency_ms__med"),
    ("latency_p95_ms", "summary__latency_ms__p95"),
    ("latency_p99_ms", "summary__latency_ms__p99"),
    ("capacity_rps", "summary__capacity_rps"),
    ("db_avg_query_ms", "summary__avg_query_ms"),
    ("db_pool_peak_use_pct", "summary__pool__peak_use_pct"),
    ("db_cache_hit_pct", "summary__cache_hit_pct"),
    ("findings_reported", "summary__tracked__reported"),
    ("findings_fixed", "summary__tracked__fixed"),
)


# --- findings -----------------------------------------------------------------


@require_GET
def target_findings(request, slug, fmt):
    """The target's findings as its findings list filters them."""
    target = access.get_target_for_user(request, slug)
    filters = service.filters_from(request.GET)
    findings = _query(filters, target=target)
    scope = {"target": target.slug, "filters": filters}
    return _findings_response(request, fmt, findings, scope, f"{target.slug}-findings")


@require_GET
def initiative_findings(request, pk, fmt):
    """The findings of the initiative's target as the initiative's findings page filters
    them (owner department, assignee, with or without a task too), with the task of
    this initiative each became, if any."""
    initiative = access.get_initiative_for_user(request, pk)
    filters = service.filters_from(request.GET, service.BOARD_FILTERS)
    task = PhaseTask.objects.filter(phase__initiative=initiative, finding=OuterRef("pk"))
    findings = _query(filters, initiative=initiative).annotate(
        task=Subquery(task.order_by("pk").values("pk")[:1])
    )
    scope = {
        "initiative": initiative.pk,
        "title": initiative.title,
        "target": initiative.target.slug,
        "filters": filters,
    }
    return _findings_response(
        request, fmt, findings, scope, f"initiative-{pk}-findings", extra=("task",)
    )


def _query(filters, **scope):
    """The one findings query; a filter it cannot read is the client's mistake (400)."""
    try:
        return service.query(filters, **scope)
    except service.BadFilter as error:
        raise BadRequest(str(error)) from None


def _findings_response(request, fmt, findings, scope, name, extra=()):
    _check_format(fmt)
    if "owner" not in findings.query.annotations:
        findings = findings.annotate(owner=routing.department_case())
    findings = findings.by_severity()
    columns = [column for column, _ in FINDING_COLUMNS] + ["owner", *extra]
    lookups = [lookup for _, lookup in FINDING_COLUMNS] + ["owner", *extra]
    url_of = _url_maker(request, "finding_detail")
    if fmt == "csv":
        rows = findings.values_list(*lookups).iterator(chunk_size=CHUNK)
        body = _csv([*columns, "url"], ([*row, url_of(row[0])] for row in rows))
    else:
        rows = findings.values_list(*lookups, "evidence").iterator(chunk_size=CHUNK)
        items = (
            {
                **dict(zip(columns, row[:-1], strict=True)),
                "evidence": row[-1],
                "url": url_of(row[0]),
            }
            for row in rows
        )
        body = _json(_header(scope), "findings", items)
    return _stream(body, fmt, name)


# --- runs ---------------------------------------------------------------------


@require_GET
def target_runs(request, slug, fmt):
    target = access.get_target_for_user(request, slug)
    runs = Run.objects.filter(target=target)
    return _runs_response(request, fmt, runs, {"target": target.slug}, f"{target.slug}-runs")


@require_GET
def initiative_runs(request, pk, fmt):
    """The runs started for the initiative (from it, its phases or its tasks)."""
    initiative = access.get_initiative_for_user(request, pk)
    runs = Run.objects.filter(initiative=initiative)
    scope = {
        "initiative": initiative.pk,
        "title": initiative.title,
        "target": initiative.target.slug,
    }
    return _runs_response(request, fmt, runs, scope, f"initiative-{pk}-runs")


def _runs_response(request, fmt, runs, scope, name):
    _check_format(fmt)
    runs = runs.order_by("-created_at", "-pk")
    url_of = _url_maker(request, "run_detail")
    if fmt == "csv":
        columns = [
            *(c for c, _ in RUN_COLUMNS),
            "url",
            *(
                f"job_{c}" if c in ("status", "verdict", "finished_at") else c
                for c, _ in JOB_COLUMNS
            ),
            *(c for c, _ in JOB_FIGURES),
        ]
        body = _csv(columns, _run_rows(runs, url_of))
    else:
        items = (
            {**run, "url": url_of(run["run_id"]), "jobs": jobs}
            for run, jobs in runs_with_jobs(runs)
        )
        body = _json(_header(scope), "runs", items)
    return _stream(body, fmt, name)


def runs_with_jobs(runs) -> Iterator[tuple[dict, list[dict]]]:
    """(run, its jobs) as plain dicts in the queryset's order; one jobs query per CHUNK runs."""
    columns = [column for column, _ in RUN_COLUMNS]
    rows = runs.values_list(*(lookup for _, lookup in RUN_COLUMNS)).iterator(chunk_size=CHUNK)
    batch = []
    for row in rows:
        batch.append(dict(zip(columns, row, strict=True)))
        if len(batch) == CHUNK:
            yield from _with_jobs(batch)
            batch = []
    if batch:
        yield from _with_jobs(batch)


def _with_jobs(runs: list[dict]) -> Iterator[tuple[dict, list[dict]]]:
    jobs: dict[int, list[dict]] = {run["run_id"]: [] for run in runs}
    rows = (
        Job.objects.filter(run_id__in=list(jobs))
        .order_by("run_id", "pk")
        .values_list(
            "run_id",
            *(lookup for _, lookup in JOB_COLUMNS),
            *(KT(lookup) for _, lookup in JOB_FIGURES),
        )
    )
    width = len(JOB_COLUMNS)
    for run_id, *values in rows:
        job = dict(zip((c for c, _ in JOB_COLUMNS), values[:width], strict=True))
        job["figures"] = {
            column: _number(value)
            for (column, _), value in zip(JOB_FIGURES, values[width:], strict=True)
            if value is not None
        }
        jobs[run_id].append(job)
    for run in runs:
        yield run, jobs[run["run_id"]]


def _run_rows(runs, url_of) -> Iterator[list]:
    """One CSV row per job; a run without jobs (all skipped) still has its row."""
    for run, jobs in runs_with_jobs(runs):
        head = [
            ",".join(value) if column == "focus" else value
            for column, value in ((c, run[c]) for c, _ in RUN_COLUMNS)
        ]
        head.append(url_of(run["run_id"]))
        if not jobs:
            yield [*head, *([""] * (len(JOB_COLUMNS) + len(JOB_FIGURES)))]
        for job in jobs:
            yield [
                *head,
                *(job[c] for c, _ in JOB_COLUMNS),
                *(job["figures"].get(c, "") for c, _ in JOB_FIGURES),
            ]


def _number(value):
    """A figure read as JSON text (PostgreSQL) or a number (SQLite), as a number if it is one."""
    if not isinstance(value, str):
        return value
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        return value


# --- streaming ------------------------------------------------------------------


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Http404("Exports come as .csv or .json.")
    return fmt


def _url_maker(request, name):
    """pk → absolute URL of the object's page, without a reverse() per row."""
    marker = "999999999"
    url = request.build_absolute_uri(reverse(name, args=[int(marker)]))
    prefix, suffix = url.split(marker)
    return lambda pk: f"{prefix}{pk}{suffix}"


def _header(scope: dict) -> dict:
    return {"exported_at": timezone.now(), **scope}


class _Line:
    """A file-like object whose write() hands the line back (csv.writer streams through it)."""

    def write(self, value):
        return value


def safe_cell(value):
    """A cell a spreadsheet shows as text: formulas defused, times in ISO 8601, None empty."""
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return safe_cell(json.dumps(value, cls=DjangoJSONEncoder))
    return value


def _csv(columns: list[str], rows: Iterable) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(columns)
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def _json(head: dict, key: str, items: Iterable[dict]) -> Iterator[str]:
    """One JSON document, written as it goes: the head's keys, then ``key``: [items…]."""
    opening = json.dumps(head, cls=DjangoJSONEncoder)[:-1]  # without its closing brace
    yield f'{opening}, "{key}": [\n'
    separator = ""
    for item in items:
        yield separator + json.dumps(item, cls=DjangoJSONEncoder)
        separator = ",\n"
    yield "\n]}\n"


def _stream(body: Iterator[str], fmt: str, name: str) -> StreamingHttpResponse:
    content_type = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    response = StreamingHttpResponse(body, content_type=content_type)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="kaizen-{name}-{stamp}.{fmt}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
