"""Starting, cancelling and repeating runs — the one way jobs come into being.

The UI, the CLI, the API, schedules and runbooks all call ``start_run`` (or
``start_job``); it asks the preflight once (optimizations.jobs.preflight: the
mode's jobs, their parameters, the links, training, what the target has, the
start limits), raises its refusal or creates the run and its jobs in one
transaction, and sends the first after commit. ``start_set`` starts a
benchmark set (N identical load tests in one run; moved here from baselines,
which only reads sets, so that it may import the engine's helpers).

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
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from optimizations.analyzers import stats
from optimizations.jobs import baselines, landing, modes, preflight
from optimizations.jobs.preflight import missing_needs
from optimizations.jobs.refusals import BrokerUnavailable, CannotStart
from optimizations.models import Initiative, Job, Run, TargetService
from portal.audit import record
from portal.celery import app
from portal.i18n import Phrase

logger = logging.getLogger(__name__)


# Raised here, defined with the preflight's reasons (a module the limits share).
__all__ = ["BrokerUnavailable", "CannotStart", "missing_needs"]


def broker_reachable(timeout: float = 2.0) -> str | None:
    """None when the Celery broker answers, else why not."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        folder = str(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        if not os.access(folder, os.W_OK):
            return f"the broker folder {folder} is missing or not writable"
        return None
    try:
        with app.connection_for_write() as connection:
            # One retry at once: kombu otherwise sleeps two seconds before it, whatever
            # the timeout (a stopped Redis took 2 s to read as down). kombu takes the
            # timeout in seconds as a float; celery-types says int.
            connection.ensure_connection(
                max_retries=1,
                interval_start=0,
                timeout=timeout,  # type: ignore[arg-type]
            )
    except Exception as error:  # kombu raises many kinds; any of them means "down"
        return f"{type(error).__name__}: {error}"
    return None


def _require_broker() -> None:
    problem = broker_reachable()
    if problem:
        raise BrokerUnavailable(
            gettext(
                "The job queue (Celery broker) cannot be reached, so nothing was started. "
                "Check that it is running and try again. (%(problem)s)"
            )
            % {"problem": problem}
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
    answer = preflight.check(
        user,
        target,
        mode,
        focus,
        overrides=overrides,
        only_kinds=only_kinds,
        initiative=links.pop("initiative", None),
        phase=links.pop("phase", None),
        task=links.pop("task", None),
        trigger=links.get("trigger", "ui"),
    )
    return _create_run(user, target, mode, list(focus), answer, **links)


def start_job(user, target: TargetService, kind: str, params: dict, **links) -> Run:
    """A run of one job of ``kind`` with the given parameters (the "single job" form,
    a runbook step, ``POST /api/jobs``). Raises CannotStart with a readable reason."""
    answer = preflight.check(
        user,
        target,
        specs=[(kind, params)],
        initiative=links.pop("initiative", None),
        phase=links.pop("phase", None),
        task=links.pop("task", None),
        trigger=links.get("trigger", "ui"),
    )
    return _create_run(user, target, "custom", [], answer, **links)


def start_comparison(
    user, baseline: TargetService, candidate: TargetService, params: dict, repetitions: int = 5
) -> Run:
    """Interleaved benchmarks of two deployments: A, B, A, B… with the same parameters.

    The comparison rule needs runs that alternate in time, so drift (a noisy
    neighbour, a warming cache) hits both sides alike. The benchmark queue runs
    one job at a time in order, which keeps the alternation.
    """
    if baseline.pk == candidate.pk:
        raise CannotStart(
            gettext("Compare two different targets (the deployments before and after).")
        )
    if repetitions < 5:
        raise CannotStart(gettext("The comparison rule needs at least 5 runs per side."))
    # Both sides through the preflight, with exactly the parameters given (nothing
    # learned from earlier jobs: the two must get the same load); the limits count
    # the start once, on the baseline.
    for target in (baseline, candidate):
        answer = preflight.check(
            user,
            target,
            specs=[("benchmark", params)],
            with_limits=target is baseline,
            learn=False,
        )
        if not answer.ok:
            refusal = answer.refusal()
            if type(refusal) is CannotStart:
                refusal = CannotStart(
                    gettext("%(target)s: %(reasons)s")
                    % {"target": target.name, "reasons": answer.message},
                    answer.reasons,
                )
            raise refusal
        kind, checked = answer.jobs[0]
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
        first = run.jobs.order_by("pk").first()
        if first is not None:
            landing.dispatch(first)
        record(
            user,
            "job.trigger",
            run,
            Phrase(
                gettext_noop(
                    "started an interleaved comparison of %(baseline)s and %(candidate)s "
                    "(%(count)s benchmarks each)"
                ),
                baseline=baseline.name,
                candidate=candidate.name,
                count=repetitions,
            ),
            target=baseline,
        )
    return run


def rerun(user, run: Run, *, job: Job | None = None, trigger: str = "ui") -> Run:
    """Start the same run again (or only ``job``) with the same parameters."""
    sources = [job] if job is not None else list(run.jobs.order_by("pk"))
    answer = preflight.check(
        user,
        run.target,
        specs=[(item.kind, item.params) for item in sources],
        given=False,  # stored: a parameter its kind no longer declares is dropped
        initiative=run.initiative,
        phase=run.phase,
        task=run.task,
        trigger=trigger,
    )
    return _create_run(user, run.target, run.mode, run.focus, answer, trigger=trigger)


def start_set(
    user,
    target: TargetService,
    *,
    repetitions: int = baselines.SET_RUNS,
    params: dict | None = None,
    initiative: Initiative | None = None,
    phase=None,
    task=None,
    schedule=None,
    trigger: str = "ui",
    expires_at=None,
) -> Run:
    """A benchmark set: one run of ``repetitions`` identical short load tests.

    ``params`` default to a short load test at the target's expected rate (the
    benchmark's own defaults otherwise); a re-run of a reference passes its
    exact parameters. Raises CannotStart with a readable reason.
    """
    if not stats.MIN_RUNS <= repetitions <= baselines.SET_MAX_RUNS:
        raise CannotStart(
            gettext(
                "A benchmark set has %(least)s to %(most)s runs (the comparison rule needs at "
                "least %(least)s a side)."
            )
            % {"least": stats.MIN_RUNS, "most": baselines.SET_MAX_RUNS}
        )
    wanted = params
    if wanted is None:
        wanted = {"mode": "load", "duration": baselines.SET_DURATION, "exclude": modes.LOAD_EXCLUDE}
        if target.expected_rps:
            wanted["rate"] = float(target.expected_rps)
    # Every run of the set gets exactly these parameters (nothing learned from earlier
    # jobs): a re-run of a reference set must send the same load.
    answer = preflight.check(
        user,
        target,
        specs=[("benchmark", wanted)],
        given=False,
        learn=False,
        initiative=initiative,
        phase=phase,
        task=task,
        trigger=trigger,
    )
    answer.raise_if_refused()
    kind, checked = answer.jobs[0]
    initiative, phase, task = (answer.links[name] for name in ("initiative", "phase", "task"))
    _require_broker()
    with transaction.atomic():
        run = Run.objects.create(
            target=target,
            mode="custom",
            initiative=initiative,
            phase=phase,
            task=task,
            schedule=schedule,
            triggered_by=user if getattr(user, "is_authenticated", False) else None,
            trigger=trigger,
        )
        # One chain through the engine's dispatch, like every run: the set's load tests
        # go one after another and each holds the target's lease while it loads it.
        jobs = chain(run, [(kind, target, checked)] * repetitions, expires_at)
        label = baselines.set_label(
            run.pk, checked.get("mode", "load"), len(jobs), baselines.run_meta(jobs[0])
        )
        record(
            user,
            "job.trigger",
            run,
            Phrase(
                gettext_noop("started a benchmark set on %(target)s: %(set)s"),
                target=target.name,
                set=label,
            ),
            initiative=initiative,
            target=target,
        )
        landing.dispatch(jobs[0])
    return run


def _create_run(
    user,
    target,
    mode,
    focus,
    answer,
    *,
    schedule=None,
    trigger="ui",
    expires_at=None,
) -> Run:
    """Create the run the preflight's ``answer`` allows (raising its refusal if it does
    not), once the job queue answers. ``answer`` may be a list of (kind, params)."""
    if not isinstance(answer, preflight.Preflight):
        answer = preflight.check(user, target, specs=answer, given=False, trigger=trigger)
    answer.raise_if_refused()
    jobs, skipped = answer.jobs, answer.skipped
    initiative = answer.links["initiative"]
    phase, task = answer.links["phase"], answer.links["task"]
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
            skipped=preflight.stored_skipped(skipped),
        )
        created = chain(run, [(kind, target, params) for kind, params in jobs], expires_at)
        record(
            user,
            "job.trigger",
            run,
            Phrase(
                gettext_noop("started %(command)s (1 job, via %(trigger)s)")
                if len(created) == 1
                else gettext_noop("started %(command)s (%(count)s jobs, via %(trigger)s)"),
                command=run.command_line(),
                count=len(created),
                trigger=dict(Run.TRIGGERS).get(run.trigger, run.trigger),
            ),
            initiative=initiative,
            target=target,
        )
        # Queued (or waiting for the target's lease) in the same transaction; sent after commit.
        landing.dispatch(created[0])
    return run


# Kinds whose writes are a person's choice on a target that allows them (the others
# write whenever the target allows it).
WRITES_WHEN_ASKED = frozenset({"benchmark"})


def chain(run: Run, steps, expires_at=None) -> list[Job]:
    """Create a run's jobs as one chain, in the order given: each waits for the one
    before it (and, if it loads its target, for the target's lease) until dispatch()
    sends it. ``steps`` are (kind, target, params)."""
    created, previous = [], None
    for kind, target, params in steps:
        if any(param.name == "allow_writes" for param in kind.params()):
            # No job writes through a target's API unless the target allows writes
            # (staging). There, the security scan's fuzzing writes (issue 17, Decided);
            # a load test writes only when asked, so a baseline on a staging target is
            # a read-only load test unless someone chose a write-path one.
            asked = params.get("allow_writes") if kind.name in WRITES_WHEN_ASKED else True
            allowed = bool(getattr(target, "allows_writes", False))
            params = {**params, "allow_writes": bool(asked) and allowed}
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


def cancel(user, job: Job) -> str:
    state = job.request_cancel()
    record(
        user,
        "job.cancel",
        job,
        Phrase(gettext_noop("asked to cancel %(job)s #%(number)s"), job=job.label(), number=job.pk),
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
