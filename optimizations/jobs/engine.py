"""Starting, cancelling and repeating runs — the one way jobs come into being.

The UI, the CLI, the API, schedules and runbooks all call ``start_run``; it
plans the jobs of a mode, checks each kind can run on the target, creates
the run and its jobs in one transaction and sends the first after commit.

A run's jobs go one after another in the order of ``modes.ORDER`` (probe →
code → DB → security → load → stress → endurance): each waits ("waiting",
``after`` its predecessor) and is dispatched when the one before it ends.
Dispatching a job that loads the target first takes the target's lease
(optimizations/jobs/lease.py); a job that cannot get it keeps waiting for the
holder and is dispatched when that one ends.
"""

from __future__ import annotations

import logging
import os

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from optimizations.analyzers.base import validate_params
from optimizations.jobs import kinds, landing, modes
from optimizations.models import Job, Run, TargetService
from portal.audit import record

logger = logging.getLogger(__name__)


class CannotStart(Exception):
    """A run could not start; the message says why, for a person."""


class BrokerUnavailable(CannotStart):
    """The job queue cannot be reached, so nothing was started."""


def missing_needs(target: TargetService, kind: kinds.Kind) -> list[str]:
    """What the target lacks for ``kind`` to run, in words."""
    missing = []
    if "base_url" in kind.needs and not target.base_url:
        missing.append("a base URL")
    if "database_url" in kind.needs and not target.database_url_encrypted:
        missing.append("a database URL (set it on the target's settings page)")
    if "source" in kind.needs and not target.source_location:
        missing.append("a source location (set it on the target's settings page)")
    return missing


def broker_reachable(timeout: float = 2.0) -> str | None:
    """None when the Celery broker answers, else why not."""
    from django.conf import settings

    from portal.celery import app

    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
        if not os.access(folder, os.W_OK):
            return f"the broker folder {folder} is missing or not writable"
        return None
    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as error:  # kombu raises many kinds; any of them means "down"
        return f"{type(error).__name__}: {error}"
    return None


def _require_broker() -> None:
    problem = broker_reachable()
    if problem:
        raise BrokerUnavailable(
            "The job queue (Celery broker) cannot be reached, so nothing was started. "
            f"Check that it is running and try again. ({problem})"
        )


def start_run(
    user,
    target: TargetService,
    mode: str,
    focus=(),
    *,
    overrides: dict | None = None,
    only_kinds: list[str] | None = None,
    **links,
) -> Run:
    """Plan, create and enqueue a run. Raises CannotStart with a readable reason.

    ``overrides`` maps a kind to parameters that replace the planned ones
    (the form on the target page, ``--param`` on the command line);
    ``only_kinds`` keeps just those kinds (a runbook step, a single job).
    ``links``: initiative, phase, task, schedule, trigger, expires_at.
    """
    if mode == "custom":
        raise CannotStart("A single job is started with start_job, not as a run mode.")
    try:
        planned = modes.plan(mode, list(focus))
    except ValueError as error:
        raise CannotStart(str(error)) from None
    if only_kinds is not None:
        planned = [job for job in planned if job.kind in only_kinds] or [
            modes.PlannedJob(kind) for kind in only_kinds
        ]
    overrides = overrides or {}
    for name, values in overrides.items():
        try:
            kind = kinds.get(name)
        except ValueError as error:
            raise CannotStart(str(error)) from None
        declared = {param.name for param in kind.params()}
        unknown = sorted(set(values) - declared)
        if kind.available() and unknown:
            raise CannotStart(f"{kind.label} has no parameter {', '.join(unknown)}.")
    specs = []
    for item in planned:
        params = dict(item.params)
        params.update(overrides.get(item.kind, {}))
        specs.append((item.kind, params))
    return _create_run(user, target, mode, list(focus), specs, **links)


def start_job(user, target: TargetService, kind: str, params: dict, **links) -> Run:
    """A run of one job of ``kind`` with the given parameters (the "single job" form)."""
    return _create_run(user, target, "custom", [], [(kind, params)], **links)


def start_comparison(
    user, baseline: TargetService, candidate: TargetService, params: dict, repetitions: int = 5
) -> Run:
    """Interleaved benchmarks of two deployments: A, B, A, B… with the same parameters.

    The comparison rule needs runs that alternate in time, so drift (a noisy
    neighbour, a warming cache) hits both sides alike. The benchmark queue runs
    one job at a time in order, which keeps the alternation.
    """
    if baseline.pk == candidate.pk:
        raise CannotStart("Compare two different targets (the deployments before and after).")
    if repetitions < 5:
        raise CannotStart("The comparison rule needs at least 5 runs per side.")
    kind = kinds.get("benchmark")
    for target in (baseline, candidate):
        refusal = _refusal(user, target, kind)
        if refusal:
            raise CannotStart(refusal)
    try:
        checked = validate_params(kind.params(), params)
    except ValueError as error:
        raise CannotStart(f"{kind.label}: {error}") from None
    from optimizations.jobs.limits import check_start

    check_start(user, baseline, "ui")
    _require_broker()
    with transaction.atomic():
        run = Run.objects.create(
            target=baseline,
            mode="custom",
            triggered_by=user if getattr(user, "is_authenticated", False) else None,
            trigger="ui",
            compared_with=candidate,
        )
        # One chain, so the sides alternate however many benchmark workers there are.
        chain(
            run,
            [
                (kind, target, checked)
                for _ in range(repetitions)
                for target in (baseline, candidate)
            ],
        )
        # Queued (or waiting for a target's lease) in the same transaction; sent after commit.
        landing.dispatch(run.jobs.order_by("pk").first())
        record(
            user,
            "job.trigger",
            run,
            f"started an interleaved comparison of {baseline.name} and {candidate.name} "
            f"({repetitions} benchmarks each)",
            target=baseline,
        )
    return run


def _refusal(user, target, kind) -> str | None:
    from portal.access import training_gate_refusal

    missing = missing_needs(target, kind)
    if missing:
        return f"{target.name} lacks {' and '.join(missing)}."
    return training_gate_refusal(user, target, kind.name)


def rerun(user, run: Run, *, job: Job | None = None, trigger: str = "ui") -> Run:
    """Start the same run again (or only ``job``) with the same parameters."""
    sources = [job] if job is not None else list(run.jobs.order_by("pk"))
    return _create_run(
        user,
        run.target,
        run.mode,
        run.focus,
        [(item.kind, item.params) for item in sources],
        initiative=run.initiative,
        phase=run.phase,
        task=run.task,
        trigger=trigger,
    )


def _create_run(
    user,
    target,
    mode,
    focus,
    specs,
    *,
    initiative=None,
    phase=None,
    task=None,
    schedule=None,
    trigger="ui",
    expires_at=None,
) -> Run:
    from portal.access import training_gate_refusal

    jobs, skipped = [], []
    # One after another in the fixed order (a re-run or a runbook may list them otherwise).
    specs = sorted(specs, key=lambda spec: modes.rank(spec[0], spec[1]))
    for name, wanted in specs:
        kind = kinds.get(name)
        # Training gates stop a person starting a job by hand; a schedule (the
        # monthly review, a regression sentinel) runs as its creator but on its own.
        refusal = None if trigger == "schedule" else training_gate_refusal(user, target, kind.name)
        if refusal:
            raise CannotStart(refusal)
        if not kind.available():
            skipped.append({"kind": kind.name, "why": "not yet available in this Kaizen"})
            continue
        missing = missing_needs(target, kind)
        if missing:
            skipped.append({"kind": kind.name, "why": f"the target lacks {' and '.join(missing)}"})
            continue
        declared = {param.name for param in kind.params()}
        wanted = {**_from_earlier_jobs(target, kind.name), **wanted}
        try:
            params = validate_params(
                kind.params(), {k: v for k, v in wanted.items() if k in declared}
            )
        except ValueError as error:
            raise CannotStart(f"{kind.label}: {error}") from None
        jobs.append((kind, params))
    if not jobs:
        reasons = "; ".join(f"{s['kind']}: {s['why']}" for s in skipped) or "nothing to run"
        raise CannotStart(f"No job of this run can start ({reasons}).")
    from optimizations.jobs.limits import check_start

    check_start(user, target, trigger)  # too many starts: TooManyStarts (the API's 429)
    _require_broker()
    with transaction.atomic():
        run = Run.objects.create(
            target=target,
            mode=mode,
            focus=list(focus),
            initiative=initiative,
            phase=phase,
            task=task,
            schedule=schedule,
            triggered_by=user if getattr(user, "is_authenticated", False) else None,
            trigger=trigger,
            skipped=skipped,
        )
        created = chain(run, [(kind, target, params) for kind, params in jobs], expires_at)
        count = f"{len(created)} job{'s' if len(created) != 1 else ''}"
        record(
            user,
            "job.trigger",
            run,
            f"started {run.command_line()} ({count}, via {run.get_trigger_display()})",
            initiative=initiative,
            target=target,
        )
        # Queued (or waiting for the target's lease) in the same transaction; sent after commit.
        landing.dispatch(created[0])
    return run


def chain(run: Run, steps, expires_at=None) -> list[Job]:
    """Create a run's jobs as one chain, in the order given: each waits for the one
    before it (and, if it loads its target, for the target's lease) until dispatch()
    sends it. ``steps`` are (kind, target, params)."""
    created, previous = [], None
    for kind, target, params in steps:
        if any(param.name == "allow_writes" for param in kind.params()):
            # Whether a job may write through the target's API is the target's setting
            # ("allows writes": staging), never the person's or the form's.
            params = {**params, "allow_writes": bool(getattr(target, "allows_writes", False))}
        previous = Job.objects.create(
            run=run,
            kind=kind.name,
            target=target,
            initiative=run.initiative,
            phase=run.phase,
            params=params,
            triggered_by=run.triggered_by,
            max_attempts=kind.max_attempts,
            expires_at=expires_at,
            status=Job.WAITING,
            after=previous,
            waiting_for=previous,
        )
        created.append(previous)
    return created


def _from_earlier_jobs(target: TargetService, kind: str) -> dict:
    """What one kind of analysis learned that another needs: the code scan's stack
    report and pool-sizing rule want the PostgreSQL version and max_connections
    the latest DB scan of the target read."""
    if kind == "benchmark":
        known = _baseline_memory(target)
        if target.expected_rps:
            # Load and endurance offer the expected peak; stress climbs from a quarter of it.
            known.update(rate=float(target.expected_rps))
            known.update(start_rate=max(1.0, target.expected_rps / 4))
        return known
    if kind != "code_scan":
        return {}
    summary = (
        Job.objects.filter(target=target, kind="db_scan", status=Job.SUCCEEDED)
        .order_by(F("finished_at").desc(nulls_last=True))
        .values_list("summary", flat=True)
        .first()
    ) or {}
    known = {}
    if summary.get("server_version"):
        known["postgres_version"] = str(summary["server_version"]).split()[0]
    max_connections = (summary.get("connections") or {}).get("max_connections")
    if isinstance(max_connections, int) and max_connections > 0:
        known["max_connections"] = max_connections
    return known


def _baseline_memory(target: TargetService) -> dict:
    """The memory objective (−50 % against the baseline) needs the baseline's memory:
    the mean PSS (memory.pss.mean) of the endurance baseline, as optimizations.jobs.baselines
    defines it for every page (the pinned run's endurance test, else the first)."""
    from optimizations.jobs import baselines

    row = baselines.baseline_measurement(target, "endurance", "memory.pss.mean")
    return {"baseline_memory_bytes": float(row["value"])} if row and row["value"] else {}


def cancel(user, job: Job) -> str:
    state = job.request_cancel()
    record(
        user,
        "job.cancel",
        job,
        f"asked to cancel {job.label()} #{job.pk}",
        initiative=job.initiative,
        target=job.target,
    )
    if state == Job.CANCELLED:
        landing.finish(job)
    return state


def cancel_run(user, run: Run) -> int:
    """Cancel every unfinished job of ``run``, the last first (so ending one does not
    send the next just before it is cancelled too). Returns how many were asked."""
    jobs = run.jobs.filter(status__in=Job.ACTIVE).select_related("run", "target", "initiative")
    asked = 0
    for job in jobs.order_by("-pk"):
        cancel(user, job)
        asked += 1
    return asked


def expire_overdue(now=None) -> int:
    """Jobs not started when their time to start has passed expire (scheduled runs)."""
    now = now or timezone.now()
    expired = 0
    jobs = Job.objects.filter(status__in=(Job.WAITING, Job.QUEUED), expires_at__lt=now)
    for job in jobs.select_related("run").order_by("-pk"):
        if job.expire():
            expired += 1
            landing.finish(job)
    return expired
