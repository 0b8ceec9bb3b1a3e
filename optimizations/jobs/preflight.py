"""One preflight for starting jobs: may these jobs start on this target now, and if not, why.

The engine asks it once for every run it makes (``engine.start_run``,
``start_job``, ``rerun``); the portal's pages, the JSON API, the command line
and runbook steps show its reasons, so a refusal reads the same wherever the
start was asked. A runbook page asks it without starting anything, to say
beside each step why it cannot run.

What it checks, in this order:

- the links: the initiative, phase or task a run is filed under exists and is
  about the target (the run page, the API and the CLI refuse another target's
  initiative alike; the UI used to drop it silently);
- the mode and its focus, the job kinds, and the parameters a person gave (an
  override for a kind the run does not plan, an unknown parameter, a value out
  of bounds);
- per job: the target's training gates (not for schedules, which run on their
  own); that the kind is available in this Kaizen, that the target has what the
  kind needs (a base URL, a database URL, a source location) and that its host
  is on the allow-list (KAIZEN_ALLOWED_TARGET_HOSTS). A kind that cannot run
  for want of one of these is *skipped*, saying what is missing and how to
  enable it, and the run is incomplete; a run left with no job is refused; a kind
  that writes through the API (the integrity probes) is refused on a target that
  does not allow writes;
- the start limits (optimizations.jobs.limits), last: their answer is "later",
  not "no", and they cost queries.

A job of a kind that loads the target while another job holds the target's
lease is not refused: it waits for it (optimizations.jobs.lease); ``waits``
says so. Who may start jobs at all is portal.access's to say (the entry points
ask it first); whether the job queue answers, the engine's, right before it
writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import F
from django.utils.translation import gettext, gettext_noop

from optimizations.analyzers.base import validate_params
from optimizations.analyzers.netguard import HostNotAllowed, check_url
from optimizations.jobs import baselines, kinds, lease, limits, modes
from optimizations.jobs.refusals import (
    FOCUS,
    KIND,
    LIMIT,
    LINK_ELSEWHERE,
    LINK_UNKNOWN,
    MODE,
    NOTHING_TO_RUN,
    PARAMS,
    TRAINING,
    UNAVAILABLE,
    WRITES,
    CannotStart,
    Reason,
    TooManyStarts,
)
from optimizations.models import Initiative, Job, Phase, PhaseTask, TargetLease, TargetService
from portal.access import training_gate_refusal
from portal.i18n import Phrase, shown_phrase


@dataclass
class Preflight:
    """The answer: ``ok``, or ``reasons``; what would start (``jobs``, with checked
    parameters), what is skipped and why (the run will be incomplete), what waits
    for the target's lease, and the initiative/phase/task the run is filed under."""

    reasons: list[Reason] = field(default_factory=list)
    jobs: list[tuple[kinds.Kind, dict[str, Any]]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    waits: list[str] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)
    retry_after: int | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons

    @property
    def message(self) -> str:
        """All reasons in one line, for a page's message or a terminal."""
        return "; ".join(reason.message for reason in self.reasons)

    def refusal(self) -> CannotStart:
        """The exception the engine raises for this answer (TooManyStarts for a limit:
        the API's 429 with Retry-After)."""
        if self.retry_after is not None and all(r.code == LIMIT for r in self.reasons):
            return TooManyStarts(self.message, self.retry_after)
        return CannotStart(self.message, self.reasons)

    def raise_if_refused(self) -> None:
        if self.reasons:
            raise self.refusal()

    def refuse(self, code: str, message: str, *where: str) -> None:
        reason = Reason(code, message, tuple(where))
        if reason not in self.reasons:
            self.reasons.append(reason)


def check(
    user,
    target: TargetService,
    mode: str = "custom",
    focus=(),
    *,
    specs: list[tuple[str, dict]] | None = None,
    given: bool = True,
    overrides: dict | None = None,
    only_kinds: list[str] | None = None,
    initiative=None,
    phase=None,
    task=None,
    trigger: str = "ui",
    with_limits: bool = True,
    learn: bool = True,
) -> Preflight:
    """May ``user`` start these jobs on ``target`` now?

    Either a run of ``mode`` with ``focus`` (its planned jobs, ``overrides`` per
    kind replacing planned parameters, ``only_kinds`` keeping just those), or
    ``specs``: (kind, parameters) pairs — a single job, a runbook step, a re-run.
    ``given``: the specs' parameters are what a person typed and every one is
    checked (a re-run's stored ones are not: a parameter its kind no longer
    declares is dropped). ``initiative``, ``phase``, ``task``: objects or primary
    keys. ``with_limits=False`` asks without the start limits (a page that only
    shows whether a step could run). ``learn=False`` takes the parameters as they
    are, without what earlier jobs of the target learned (a comparison sends both
    sides exactly the same load).
    """
    answer = Preflight()
    _links(answer, target, initiative, phase, task)
    overrides = overrides or {}
    if specs is None:
        planned = _plan(answer, mode, focus, only_kinds, target)
        if planned is not None:
            for name, values in overrides.items():
                _given_params(answer, name, values, {job.kind for job in planned})
            specs = []
            for job in planned:
                params = dict(job.params)
                params.update(overrides.get(job.kind) or {})
                specs.append((job.kind, params))
    elif given:
        for name, values in specs:
            _given_params(answer, name, values, None)
    for name, wanted in sorted(specs or [], key=lambda spec: modes.rank(spec[0], spec[1])):
        _job(answer, user, target, name, wanted, trigger, learn)
    if answer.ok and specs is not None and not answer.jobs:
        reasons = "; ".join(
            gettext("%(kind)s: %(why)s") % {"kind": s["kind"], "why": skipped_why(s)}
            for s in answer.skipped
        ) or gettext("nothing to run")
        answer.refuse(
            NOTHING_TO_RUN,
            gettext("No job of this run can start (%(reasons)s).") % {"reasons": reasons},
        )
    if answer.ok and with_limits:
        try:
            limits.check_start(user, target, trigger)
        except TooManyStarts as error:
            answer.refuse(LIMIT, str(error))
            answer.retry_after = error.retry_after
    if answer.ok:
        answer.waits = _waits(target, answer.jobs)
    return answer


def missing_needs(target: TargetService, kind: kinds.Kind) -> list[str]:
    """What the target lacks for ``kind`` to run, in words (the page's language; the API
    and the CLI answer in English)."""
    return [need.shown() for need in _missing_needs(target, kind)]


def _missing_needs(target: TargetService, kind: kinds.Kind) -> list[Phrase]:
    missing = []
    if "base_url" in kind.needs and not target.base_url:
        missing.append(Phrase(gettext_noop("a base URL")))
    if "database_url" in kind.needs and not target.database_url_encrypted:
        missing.append(
            Phrase(gettext_noop("a database URL (set it on the target's settings page)"))
        )
    if "source" in kind.needs and not target.source_location:
        missing.append(
            Phrase(gettext_noop("a source location (set it on the target's settings page)"))
        )
    return missing


def _lacks(missing: list[Phrase]) -> Phrase:
    return Phrase(gettext_noop("the target lacks %(needs)s"), needs=_and(missing))


def _and(items: list[Phrase]) -> Phrase:
    """ "X and Y (and Z)" as one phrase per pair, each translated whole."""
    if len(items) == 1:
        return items[0]
    return Phrase(gettext_noop("%(first)s and %(rest)s"), first=items[0], rest=_and(items[1:]))


def skipped_why(item: dict) -> str:
    """Why a run skipped a kind — an item of ``Preflight.skipped`` or of ``Run.skipped`` —
    in the reader's language (a run stored before kept only the English ``why``)."""
    why = item.get("why", "")
    if isinstance(why, Phrase):
        return why.shown()
    return shown_phrase(item.get("why_phrase"), why)


def stored_skipped(skipped: list[dict]) -> list[dict]:
    """``Preflight.skipped`` as a run keeps it: ``why`` in English for the API and the
    CLI, ``why_phrase`` for each page's reader."""
    return [
        {**item, "why": str(item["why"]), "why_phrase": item["why"].as_data()}
        if isinstance(item.get("why"), Phrase)
        else item
        for item in skipped
    ]


def _skip(answer: Preflight, kind: kinds.Kind, why: Phrase) -> None:
    answer.skipped.append({"kind": kind.name, "why": why})


def host_refusal(target: TargetService, kind: kinds.Kind) -> Phrase | None:
    """Why the target's host may not be reached by ``kind`` (the allow-list), or None
    (English; ``.shown()`` in the reader's language). The runner checks it again on the
    resolved address of every connection."""
    if "base_url" not in kind.needs or not target.base_url:
        return None
    try:
        check_url(target.base_url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
    except HostNotAllowed as error:
        return Phrase(gettext_noop("its base URL may not be reached: %(error)s"), error=str(error))
    return None
    try:
        check_url(target.base_url, settings.KAIZEN_ALLOWED_TARGET_HOSTS)
    except HostNotAllowed as error:
        return Phrase(gettext_noop("its base URL may not be reached: %(error)s"), error=str(error))
    return None


# --- the steps -----------------------------------------------------------------------


_NO_SUCH = {
    "task": gettext_noop("No task #%(number)s."),
    "phase": gettext_noop("No phase #%(number)s."),
    "initiative": gettext_noop("No initiative #%(number)s."),
}


def _lookup(model, value, label: str, answer: Preflight):
    if value is None or value == "" or value == 0:
        return None
    if not isinstance(value, int | str):
        return value
    # Keys are 64-bit: a larger number names nothing (PostgreSQL would refuse to compare it).
    pk = int(value) if str(value).isdigit() else 0
    found = model.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
    if found is None:
        answer.refuse(LINK_UNKNOWN, gettext(_NO_SUCH[label]) % {"number": value}, label)
    return found


def _links(answer: Preflight, target, initiative, phase, task) -> None:
    """The initiative, phase and task of the run: a task brings its phase and that its
    initiative; all of them must be about ``target``."""
    task = _lookup(PhaseTask, task, "task", answer)
    phase = _lookup(Phase, phase, "phase", answer)
    initiative = _lookup(Initiative, initiative, "initiative", answer)
    if task is not None:
        phase = task.phase
    if phase is not None and getattr(initiative, "pk", None) != phase.initiative_id:
        initiative = Initiative.objects.filter(pk=phase.initiative_id).first()
    if initiative is not None and initiative.target_id != target.pk:
        answer.refuse(
            LINK_ELSEWHERE,
            gettext("initiative #%(number)s is about another target, not %(target)s")
            % {"number": initiative.pk, "target": target.slug},
            "initiative",
        )
        return
    answer.links = {"initiative": initiative, "phase": phase, "task": task}


def _plan(
    answer: Preflight, mode: str, focus, only_kinds, target: TargetService
) -> list[modes.PlannedJob] | None:
    if mode == "custom":
        answer.refuse(
            MODE, gettext("A single job is started with start_job, not as a run mode."), "mode"
        )
        return None
    try:
        planned = modes.plan(mode, list(focus), allows_writes=target.allows_writes)
    except ValueError as error:
        answer.refuse(FOCUS if mode in modes.FOCUS else MODE, str(error), "focus")
        return None
    if only_kinds is not None:
        planned = [job for job in planned if job.kind in only_kinds] or [
            modes.PlannedJob(kind) for kind in only_kinds
        ]
    return planned


def _given_params(answer: Preflight, name: str, values, planned: set[str] | None) -> None:
    """Parameters a person gave for ``name``: each must be the kind's and valid (the
    engine would otherwise drop an unknown one, and the person get a run without it)."""
    kind = kinds.KINDS.get(name)
    if kind is None:
        known = ", ".join(kinds.KINDS)
        answer.refuse(
            KIND, gettext("unknown job kind (known: %(known)s)") % {"known": known}, "params", name
        )
        return
    if planned is not None and name not in planned:
        plans = ", ".join(sorted(planned))
        answer.refuse(
            PARAMS,
            gettext("this run has no %(kind)s job (it plans %(plans)s)")
            % {"kind": name, "plans": plans},
            "params",
            name,
        )
        return
    if not kind.available():
        answer.refuse(
            UNAVAILABLE,
            gettext("the %(kind)s is not yet available in this Kaizen")
            % {"kind": gettext(kind.label)},
            "params",
            name,
        )
        return
    declared = {param.name: param for param in kind.params()}
    for param, value in (values or {}).items():
        if param not in declared:
            takes = ", ".join(declared) or gettext("no parameters")
            answer.refuse(
                PARAMS,
                gettext(
                    "unknown parameter of %(kind)s: %(label)s has no parameter %(param)s "
                    "(it takes %(takes)s)"
                )
                % {"kind": name, "label": gettext(kind.label), "param": param, "takes": takes},
                *("params", name, param),
            )
            continue
        try:
            validate_params([declared[param]], {param: value})
        except ValueError as error:
            answer.refuse(
                PARAMS,
                gettext("%(label)s: %(error)s") % {"label": gettext(kind.label), "error": error},
                *("params", name, param),
            )


def _job(
    answer: Preflight, user, target, name: str, wanted: dict, trigger: str, learn: bool
) -> None:
    kind = kinds.KINDS.get(name)
    if kind is None:
        if not any(reason.code == KIND for reason in answer.reasons):
            known = ", ".join(kinds.KINDS)
            answer.refuse(
                KIND, gettext("unknown job kind (known: %(known)s)") % {"known": known}, "kind"
            )
        return
    # Training gates stop a person starting a job by hand; a schedule (the monthly
    # review, a regression sentinel) runs as its creator but on its own.
    refusal = None if trigger == "schedule" else training_gate_refusal(user, target, kind.name)
    if refusal:
        answer.refuse(TRAINING, refusal)
        return
    if not kind.available():
        _skip(answer, kind, Phrase(gettext_noop("not yet available in this Kaizen")))
        return
    if kind.writes and not target.allows_writes:
        answer.refuse(
            WRITES,
            gettext(
                "The %(kind)s create, change and cancel data through %(target)s's API, "
                "and this target does not allow writes. Turn on “allows writes” on its settings "
                "page if it is a staging deployment, then start them again."
            )
            % {"kind": gettext(kind.label), "target": target.name},
            "kind",
        )
        return
    missing = _missing_needs(target, kind)
    if missing:
        _skip(answer, kind, _lacks(missing))
        return
    unreachable = host_refusal(target, kind)
    if unreachable:
        _skip(answer, kind, unreachable)
        return
    if any(reason.field[1:2] == (name,) for reason in answer.reasons):
        return  # its parameters were refused one by one already
    declared = {param.name for param in kind.params()}
    if learn:
        wanted = {**_from_earlier_jobs(target, kind.name), **wanted}
    try:
        params = validate_params(kind.params(), {k: v for k, v in wanted.items() if k in declared})
    except ValueError as error:
        answer.refuse(
            PARAMS,
            gettext("%(label)s: %(error)s") % {"label": gettext(kind.label), "error": error},
            "params",
            name,
        )
        return
    answer.jobs.append((kind, params))


def _waits(target: TargetService, jobs) -> list[str]:
    """Jobs that will wait for the target's lease: said, never refused."""
    leased = [kind for kind, _ in jobs if lease.needs_lease(kind.name)]
    if not leased:
        return []
    holder_id = (
        TargetLease.objects.filter(target_id=target.pk).values_list("holder_id", flat=True).first()
    )
    holder = Job.objects.filter(pk=holder_id, status__in=Job.ACTIVE).first() if holder_id else None
    if holder is None:
        return []
    return [
        gettext(
            "The %(kind)s waits for job #%(job)s (%(holder)s), which is loading %(target)s now; "
            "it starts when that one ends."
        )
        % {
            "kind": gettext(kind.label),
            "job": holder.pk,
            "holder": holder.kind,
            "target": target.name,
        }
        for kind in leased[:1]
    ]


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
    row = baselines.baseline_measurement(target, "endurance", "memory.pss.mean")
    return {"baseline_memory_bytes": float(row["value"])} if row and row["value"] else {}
