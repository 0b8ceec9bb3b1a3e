"""The JSON API at /api/: start runs and jobs, follow them, read their results.

Every call carries a personal token (``Authorization: Bearer kz_…``, made on
/me/tokens/) and acts as its owner, checked by ``portal.access`` exactly like
the portal's pages: everyone signed in reads; managers and engineers of dev,
QA and strategy start, cancel and repeat analyses. Errors answer
``{"detail": …}``: 401 without a live token, 403 when the role does not allow
it, 404 for an unknown object, 422 with field errors for bad input, 409 when
nothing of a run can start on that target, 503 when the job queue is down.

The OpenAPI document is at /api/openapi.json and its reference at /api/docs,
with Swagger UI's files served by the portal itself (no CDN: it works offline).
"""

import json
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import ninja
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from ninja import Field, NinjaAPI, Query, Schema, Status
from ninja.errors import AuthenticationError, ValidationError
from ninja.openapi.docs import DocsBase
from ninja.pagination import LimitOffsetPagination, paginate
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import AfterValidator, StringConstraints, field_validator

from optimizations.analyzers.base import CATEGORIES
from optimizations.jobs import engine, limits, refusals, verdicts
from optimizations.models import Finding, Job, JobLog, Measurement, Run
from optimizations.work import findings as service
from portal import access, tokens

RUN_MODES = ("comprehensive", "performance", "quality", "strategy")
TRIGGER_REFUSED = (
    "Your roles do not allow this: only managers and engineers of dev, QA or strategy "
    "start, cancel or repeat analyses."
)
LOG_PAGE_MAX = 5000
PAGE_MAX = 500
# Bounds of every number a client sends: ids are 64-bit keys, log sequence numbers
# 32-bit; anything larger was answered 500 ("bigint out of range") on PostgreSQL.
MAX_ID = 2**63 - 1
MAX_SEQ = 2**31 - 1
# Past this, a page is not worth reading by offset (nothing Kaizen stores is that long).
MAX_OFFSET = 10**9

# --- authentication ------------------------------------------------------------


class TokenAuth(HttpBearer):
    """``Authorization: Bearer kz_…``: the request then acts as the token's owner."""

    def __call__(self, request):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        return self.authenticate(request, key.strip() if scheme.lower() == "bearer" else "")

    def authenticate(self, request, token):
        try:
            found = tokens.authenticate(token)
        except tokens.TokenRefused as error:
            raise AuthenticationError(message=str(error)) from None
        # portal.access reads request.user, as it does for the portal's pages.
        request.user = found.user
        return found


# --- the docs page, offline ------------------------------------------------------

SWAGGER_FILES = Path(ninja.__file__).parent / "static" / "ninja"
SWAGGER_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-init.js": "text/javascript",
}


class OfflineSwagger(DocsBase):
    """Swagger UI from files the portal serves (ninja's default loads it from a CDN)."""

    def render_page(self, request, api, **kwargs):
        settings = {
            "url": self.get_openapi_url(api, kwargs),
            "layout": "BaseLayout",
            "deepLinking": True,
            # The default validator badge is fetched from swagger.io: not offline.
            "validatorUrl": None,
        }
        return render(request, "portal/api_docs.html", {"api": api, "swagger_settings": settings})


@cache
def _asset(name: str) -> bytes:
    return (SWAGGER_FILES / name).read_bytes()


@login_not_required
def docs_asset(request, name):
    if name not in SWAGGER_ASSETS:
        raise Http404("No such file of the API reference.")
    response = HttpResponse(_asset(name), content_type=SWAGGER_ASSETS[name])
    response["Cache-Control"] = "public, max-age=86400"
    return response


class KaizenAPI(NinjaAPI):
    def _get_urls(self):
        urls = super()._get_urls()
        for pattern in urls:
            # The operations authenticate by token, not by the portal's session;
            # the OpenAPI document is public. The reference page is a portal page.
            if pattern.name != "openapi-view":
                pattern.callback.login_required = False
        urls.append(path("docs/assets/<str:name>", docs_asset, name="docs-asset"))
        return urls


class StrictJSON(Parser):
    """JSON bodies without NaN or Infinity (JSON has neither; PostgreSQL refuses them)."""

    def parse_body(self, request):
        return json.loads(request.body, parse_constant=_no_constant)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


api = KaizenAPI(
    title="Kaizen API",
    version="1",
    description=(
        "Start analyses of target services, follow their jobs, read findings and "
        "measurements. Authenticate with a personal token from your settings page "
        "(/me/tokens/): `Authorization: Bearer kz_…`. Calls act as the token's owner, "
        "with the same permissions as in the portal."
    ),
    auth=TokenAuth(),
    docs=OfflineSwagger(),
    parser=StrictJSON(),
    urls_namespace="api",
)


# --- errors ------------------------------------------------------------------------


def _detail(request, message, status):
    return api.create_response(request, {"detail": message}, status=status)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, error):
    response = _detail(request, str(error), 401)
    response["WWW-Authenticate"] = 'Bearer realm="kaizen"'
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request, error):
    return _detail(request, str(error) or "Your roles do not allow this.", 403)


@api.exception_handler(Http404)
def _not_found(request, error):
    return _detail(request, str(error) or "Not found.", 404)


@api.exception_handler(engine.CannotStart)
def _cannot_start(request, error):
    return _detail(request, str(error), 503 if broker_down(error) else 409)


@api.exception_handler(limits.TooManyStarts)
def _too_many_starts(request, error):
    response = _detail(request, str(error), 429)
    response["Retry-After"] = str(error.retry_after)
    return response


def broker_down(error: engine.CannotStart) -> bool:
    # Every other CannotStart is about the target or the kinds (nothing of the
    # run can start there).
    return isinstance(error, engine.BrokerUnavailable)


def invalid(*errors: tuple[list, str]):
    """Raise a 422 with pydantic-shaped field errors: (location, message) pairs."""
    raise ValidationError([{"type": "value_error", "loc": loc, "msg": msg} for loc, msg in errors])


# --- what a client may send ----------------------------------------------------------


def _storable(value: str) -> str:
    # PostgreSQL cannot compare or store NUL; no driver encodes a lone surrogate.
    if "\x00" in value or any("\ud800" <= char <= "\udfff" for char in value):
        raise ValueError("must not contain NUL characters or unpaired surrogates")
    return value


Text = Annotated[str, StringConstraints(max_length=500), AfterValidator(_storable)]
Slug = Annotated[str, StringConstraints(max_length=60, pattern=r"^[-a-zA-Z0-9_]+$")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


# --- schemas ------------------------------------------------------------------------


class Message(Schema):
    detail: str


class JobBrief(Schema):
    id: int
    url: str
    kind: str
    status: str
    progress: float
    step: str
    verdict: str = Field(
        description='pass, fail, incomplete, error, cancelled; "" while the job is active'
    )
    error: str

    @staticmethod
    def resolve_url(obj):
        return obj.get_absolute_url()


class JobOut(JobBrief):
    run_id: int
    target: str
    params: dict[str, Any]
    summary: dict[str, Any]
    attempt: int
    log_lines: int
    cancel_requested: bool
    triggered_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @staticmethod
    def resolve_target(obj):
        return obj.target.slug

    @staticmethod
    def resolve_triggered_by(obj):
        return obj.triggered_by.username if obj.triggered_by_id else None


class RunOut(Schema):
    id: int
    url: str
    target: str
    mode: str
    focus: list[str]
    status: str = Field(description="queued, running, or how it ended")
    verdict: str
    progress: int
    trigger: str
    triggered_by: str | None
    initiative_id: int | None
    skipped: list[dict[str, str]] = Field(description="Kinds of the mode that could not run")
    created_at: datetime
    finished_at: datetime | None
    jobs: list[JobBrief]

    @staticmethod
    def resolve_url(obj):
        return obj.get_absolute_url()

    @staticmethod
    def resolve_target(obj):
        return obj.target.slug

    @staticmethod
    def resolve_triggered_by(obj):
        return obj.triggered_by.username if obj.triggered_by_id else None

    @staticmethod
    def resolve_jobs(obj):
        return obj.job_list

    @staticmethod
    def resolve_skipped(obj):
        # The API speaks English: the kind and why (the phrase kept for pages stays out).
        return [{"kind": item["kind"], "why": item["why"]} for item in obj.skipped]

    @staticmethod
    def resolve_status(obj):
        return run_status(obj, obj.job_list)

    @staticmethod
    def resolve_progress(obj):
        return run_progress(obj.job_list)


class FindingOut(Schema):
    id: int
    url: str
    source: str
    rule_id: str
    severity: str
    category: str
    title: str
    location: str
    status: str
    status_reason: str
    evidence: dict[str, Any]
    fix_hint: str
    doc_url: str
    times_seen: int
    first_seen_at: datetime
    last_seen_at: datetime
    fixed_at: datetime | None
    last_job_id: int | None

    @staticmethod
    def resolve_url(obj):
        return obj.get_absolute_url()


class MeasurementOut(Schema):
    id: int
    name: str
    value: float
    unit: str
    labels: dict[str, Any]
    second: int | None = Field(description="The second of a per-second sample; null: a summary")
    measured_at: datetime
    run_id: int | None
    job_id: int | None


class LogLine(Schema):
    seq: int
    at: datetime
    level: str
    message: str


class LogPage(Schema):
    job: int
    status: str
    total: int = Field(description="Lines the job has logged so far")
    next_after: int = Field(description="Pass as ?after= to read on")
    more: bool = Field(description="True when lines after these exist already")
    lines: list[LogLine]


class Me(Schema):
    username: str
    name: str
    roles: dict[str, str]
    can_trigger_jobs: bool
    token: str = Field(description="The first characters of the token used")


def _split_focus(value):
    if isinstance(value, str):
        return [tag.strip() for tag in value.split(",") if tag.strip()]
    return value


class RunIn(Schema):
    target: Slug = Field(description="The target service's slug", examples=["shop-api"])
    mode: Literal["comprehensive", "performance", "quality", "strategy"]
    focus: list[Text] = Field(
        default_factory=list,
        max_length=10,
        description="performance: fastapi, sqlalchemy, async · quality: testing, security, "
        "validation · strategy: architecture, monitoring, scaling",
    )
    initiative: Id | None = Field(None, description="Link the run to this initiative")
    params: dict[Text, dict[Text, Any]] = Field(
        default_factory=dict,
        description="Per job kind, parameters that replace the planned ones",
        examples=[{"benchmark": {"duration": 30}}],
    )

    _focus = field_validator("focus", mode="before")(_split_focus)


class JobIn(Schema):
    target: Slug = Field(description="The target service's slug", examples=["shop-api"])
    kind: Text = Field(description="probe, code_scan, db_scan, security_scan, benchmark")
    params: dict[Text, Any] = Field(default_factory=dict)
    initiative: Id | None = None


class FindingFilters(Schema):
    """The findings list's filters (optimizations.work.findings.FILTERS), one meaning each."""

    # The choices of the model, read when the module loads, for ninja to validate
    # against: a Literal the type checker cannot evaluate (valid-type).
    source: Literal[tuple(value for value, _ in Finding.SOURCES)] | None = None  # type: ignore[valid-type]
    severity: Literal[tuple(value for value, _ in Finding.SEVERITIES)] | None = None  # type: ignore[valid-type]
    category: Literal[CATEGORIES] | None = None  # type: ignore[valid-type]
    status: Literal[tuple(value for value, _ in Finding.STATUSES)] | None = Field(  # type: ignore[valid-type]
        None, description="Omitted: every status"
    )
    rule: Text | None = Field(None, description="Rule ids starting with this (case-insensitive)")
    q: Text | None = Field(None, description="Text in the title or location")
    since: date | None = Field(None, description="First seen on or after this day")


class MeasurementFilters(Schema):
    name: Text | None = Field(None, description="Exactly this name, e.g. http.latency.p95")
    samples: bool = Field(False, description="Include per-second samples (many rows)")


class Paged(LimitOffsetPagination):
    """?limit= (1–500, default 100) and ?offset=; answers {"items": […], "count": n}."""

    class Input(Schema):
        limit: int = Field(100, ge=1, le=PAGE_MAX)
        offset: int = Field(0, ge=0, le=MAX_OFFSET)


# --- helpers shared with the command line ---------------------------------------------


def run_status(run: Run, jobs) -> str:
    """The run's status now: settled when it ended, else derived from its jobs."""
    if run.finished_at is not None or not jobs:
        return run.status
    if all(job.status in Job.ENDED for job in jobs):
        return run.status
    return verdicts.run_status_while_active(job.status for job in jobs)


def run_progress(jobs) -> int:
    return verdicts.run_progress(jobs)


def load_run(pk: int) -> Run:
    run = Run.objects.select_related("target", "triggered_by").filter(pk=pk).first()
    if run is None:
        raise Http404(f"No run #{pk}.")
    run.job_list = list(run.jobs.order_by("pk"))
    return run


def refused(error: engine.CannotStart, where=lambda field: list(field)):
    """Answer the preflight's refusal as the API does: 404 for an initiative, phase or
    task that does not exist, 422 with field errors for what the client sent wrong
    (``where`` turns a reason's field into the payload's), else the error as it is
    (409, 429 or 503 by its handler)."""
    reasons = error.reasons
    for reason in reasons:
        if reason.code == refusals.LINK_UNKNOWN:
            raise Http404(reason.message)
    wrong = [r for r in reasons if r.code in refusals.INPUT]
    if wrong:
        invalid(*((["body", "payload", *where(r.field)], r.message) for r in wrong))
    raise error


def _job_field(field: tuple[str, ...]) -> list[str]:
    # POST /jobs sends "kind" and "params" {name: value}: no kind level under params.
    if field[:1] == ("params",):
        return ["params", *field[2:]] if len(field) > 2 else ["kind"]
    return list(field)


# --- access -------------------------------------------------------------------------


def _require_trigger(request) -> None:
    if not access.can_trigger_jobs(request.user):
        raise PermissionDenied(TRIGGER_REFUSED)


def _require_start(request) -> None:
    """Starting and repeating: the sentence every entry point says (portal.access)."""
    refusal = access.start_refusal(request.user)
    if refusal:
        raise PermissionDenied(refusal)


def _target(request, slug: str):
    try:
        return access.get_target_for_user(request, slug)
    except Http404:
        raise Http404(f"No target service “{slug}”.") from None


def _job(pk: int, *related) -> Job:
    job = Job.objects.select_related(*related).filter(pk=pk).first()
    if job is None:
        raise Http404(f"No job #{pk}.")
    return job


def _full_job(pk: int) -> Job:
    return _job(pk, "target", "triggered_by")


# --- endpoints ----------------------------------------------------------------------


@api.get("/me", response=Me, tags=["you"], url_name="me", summary="Who this token acts as")
def me(request):
    user = request.user
    return {
        "username": user.username,
        "name": user.get_full_name(),
        "roles": access.roles_of(user),
        "can_trigger_jobs": access.can_trigger_jobs(user),
        "token": request.auth.prefix,
    }


@api.post(
    "/runs",
    response={201: RunOut, 403: Message, 404: Message, 409: Message, 429: Message, 503: Message},
    tags=["runs"],
    url_name="run_start",
    summary="Start a run of a mode on a target",
)
def start_run(request, payload: RunIn):
    """Plan the mode's jobs (probe first), create them and queue them. Answers the run."""
    _require_start(request)
    target = _target(request, payload.target)
    try:
        run = engine.start_run(
            request.user,
            target,
            payload.mode,
            payload.focus,
            overrides=payload.params,
            initiative=payload.initiative,
            trigger="api",
        )
    except engine.CannotStart as error:
        refused(error)
    return Status(201, load_run(run.pk))


@api.post(
    "/jobs",
    response={201: JobOut, 403: Message, 404: Message, 409: Message, 429: Message, 503: Message},
    tags=["jobs"],
    url_name="job_start",
    summary="Start a single job of one kind with its parameters",
)
def start_job(request, payload: JobIn):
    _require_start(request)
    target = _target(request, payload.target)
    try:
        run = engine.start_job(
            request.user,
            target,
            payload.kind,
            payload.params,
            initiative=payload.initiative,
            trigger="api",
        )
    except engine.CannotStart as error:
        refused(error, _job_field)
    return Status(201, _full_job(run.jobs.get().pk))


@api.get("/runs/{run_id}", response={200: RunOut, 404: Message}, tags=["runs"], url_name="run")
def get_run(request, run_id: Id):
    """A run with its jobs: status, progress, step, verdict, error of each."""
    return load_run(run_id)


@api.post(
    "/runs/{run_id}/rerun",
    response={201: RunOut, 403: Message, 404: Message, 409: Message, 429: Message, 503: Message},
    tags=["runs"],
    url_name="run_rerun",
    summary="Start the run again with the same parameters",
)
def rerun_run(request, run_id: Id):
    _require_start(request)
    run = (
        Run.objects.select_related("target", "initiative", "phase", "task")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        raise Http404(f"No run #{run_id}.")
    new = engine.rerun(request.user, run, trigger="api")
    return Status(201, load_run(new.pk))


@api.post(
    "/runs/{run_id}/cancel",
    response={200: RunOut, 403: Message, 404: Message},
    tags=["runs"],
    url_name="run_cancel",
    summary="Cancel every unfinished job of the run",
)
def cancel_run(request, run_id: Id):
    _require_trigger(request)
    engine.cancel_run(request.user, load_run(run_id))
    return load_run(run_id)


@api.get("/jobs/{job_id}", response={200: JobOut, 404: Message}, tags=["jobs"], url_name="job")
def get_job(request, job_id: Id):
    """One job: status, progress, current step, verdict, error and result summary."""
    return _full_job(job_id)


@api.post(
    "/jobs/{job_id}/cancel",
    response={200: JobOut, 403: Message, 404: Message},
    tags=["jobs"],
    url_name="job_cancel",
    summary="Cancel a job",
)
def cancel_job(request, job_id: Id):
    """A queued job is cancelled at once; a running one is asked to stop (within a second
    or two: read it again). A job that already ended is answered as it is."""
    _require_trigger(request)
    job = _job(job_id, "run", "initiative", "target")
    engine.cancel(request.user, job)
    return _full_job(job_id)


@api.post(
    "/jobs/{job_id}/rerun",
    response={201: RunOut, 403: Message, 404: Message, 409: Message, 429: Message, 503: Message},
    tags=["jobs"],
    url_name="job_rerun",
    summary="Start this job again with the same parameters (as a new run)",
)
def rerun_job(request, job_id: Id):
    _require_start(request)
    job = _job(job_id, "run__target", "run__initiative", "run__phase", "run__task")
    new = engine.rerun(request.user, job.run, job=job, trigger="api")
    return Status(201, load_run(new.pk))


@api.get(
    "/jobs/{job_id}/log",
    response={200: LogPage, 404: Message},
    tags=["jobs"],
    url_name="job_log",
    summary="Log lines after a sequence number",
)
def job_log(
    request,
    job_id: Id,
    after: int = Query(0, ge=0, le=MAX_SEQ, description="Lines after this seq (0: from the start)"),
    limit: int = Query(500, ge=1, le=LOG_PAGE_MAX),
):
    """Lines ``after`` < seq, at most ``limit`` of them. Follow a running job by passing
    ``next_after`` back; ``total`` tells how far the log goes."""
    job = Job.objects.only("pk", "status", "log_lines").filter(pk=job_id).first()
    if job is None:
        raise Http404(f"No job #{job_id}.")
    lines = list(
        JobLog.objects.filter(job_id=job.pk, seq__gt=after)
        .order_by("seq")
        .only("seq", "at", "level", "message")[:limit]
    )
    next_after = lines[-1].seq if lines else after
    return {
        "job": job.pk,
        "status": job.status,
        "total": job.log_lines,
        "next_after": next_after,
        "more": next_after < job.log_lines,
        "lines": lines,
    }


@api.get(
    "/targets/{slug}/findings",
    response={200: list[FindingOut], 404: Message},
    tags=["results"],
    url_name="findings",
    summary="Findings of a target",
)
@paginate(Paged)
def target_findings(request, slug: Slug, filters: Query[FindingFilters]):
    """Most severe first. Filters: source, severity, category, status (omitted: all), rule
    (prefix), q (title or location), since (first seen on or after)."""
    target = _target(request, slug)
    chosen = {key: str(getattr(filters, key) or "") for key in service.FILTERS}
    return service.query(chosen, target=target).by_severity()


def _measurements(queryset, filters: MeasurementFilters):
    if filters.name:
        queryset = queryset.filter(name=filters.name)
    if not filters.samples:
        queryset = queryset.filter(second__isnull=True)
    return queryset


@api.get(
    "/targets/{slug}/measurements",
    response={200: list[MeasurementOut], 404: Message},
    tags=["results"],
    url_name="target_measurements",
    summary="Measurements of a target, newest first",
)
@paginate(Paged)
def target_measurements(request, slug: Slug, filters: Query[MeasurementFilters]):
    target = _target(request, slug)
    return _measurements(Measurement.objects.filter(target=target), filters).order_by(
        "-measured_at", "-pk"
    )


@api.get(
    "/runs/{run_id}/measurements",
    response={200: list[MeasurementOut], 404: Message},
    tags=["results"],
    url_name="run_measurements",
    summary="Measurements of a run, by name",
)
@paginate(Paged)
def run_measurements(request, run_id: Id, filters: Query[MeasurementFilters]):
    if not Run.objects.filter(pk=run_id).exists():
        raise Http404(f"No run #{run_id}.")
    return _measurements(Measurement.objects.filter(run_id=run_id), filters).order_by(
        "name", "second", "pk"
    )


@api.get(
    "/jobs/{job_id}/measurements",
    response={200: list[MeasurementOut], 404: Message},
    tags=["results"],
    url_name="job_measurements",
    summary="Measurements of a job, by name",
)
@paginate(Paged)
def job_measurements(request, job_id: Id, filters: Query[MeasurementFilters]):
    if not Job.objects.filter(pk=job_id).exists():
        raise Http404(f"No job #{job_id}.")
    return _measurements(Measurement.objects.filter(job_id=job_id), filters).order_by(
        "name", "second", "pk"
    )


def document(run: Run) -> dict:
    """The run as the API answers it, as plain JSON-ready data (the CLI prints this)."""
    return json.loads(RunOut.from_orm(run).model_dump_json())
