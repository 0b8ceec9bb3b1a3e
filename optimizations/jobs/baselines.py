"""One baseline and one "latest", defined once (ANALYSIS.md §3, issue 13 point 5).

A *benchmark set* is what one run measured in one mode: its succeeded
benchmark jobs of that mode that were asked for the same load (a baseline
set is one run of N repetitions of a short load test; a performance run
gives a set of one). Sets of interleaved comparisons (a run with
``compared_with``) are never a baseline or a latest: their sides are two
deployments side by side, not this target over time.

Per (target, mode):

- the **baseline** is the pinned baseline run's set of that mode, else the
  first set of that mode in the initiative (the target's runs linked to the
  initiative, or linked to none and started since it was created); without an
  initiative (the SLO board, the portfolio), the target's first set;
- the **latest** is the newest later set *comparable* to the baseline: the
  same scenario, mode, rate, duration, connections, engine version and data
  size (the comparability keys); the target's version is what is meant to
  differ.

Gates, ROI, the SLO board, the portfolio and the sentinel read them here and
name them in the same words (``BenchmarkSet.describe``). The per-run values
compared are METRICS, one value per run: never per-second samples.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils.translation import gettext_noop
from django.utils.translation import gettext_noop as _

from optimizations.analyzers import stats
from optimizations.models import Initiative, Job, Measurement, Run, TargetService, Trace
from portal.i18n import Parts, Phrase

# The mode a baseline is about when nobody says: the sentinel and ROI guard latency.
DEFAULT_MODE = "load"
# What a request mix is made of (the "scenario" comparability key).
SCENARIO_PARAMS = ("paths", "scenario", "weights", "exclude", "allow_writes")
# A baseline set: this many short load tests in one run.
SET_RUNS = stats.MIN_RUNS
SET_DURATION = 10.0
SET_MAX_RUNS = 20

# (key, label, unit, lower is better, scale, value of one run from its summary); the labels
# stay English (CSV, JSON) and the pages show them through |translated.
METRICS = (
    ("latency_med", _("Median latency"), "ms", True, stats.RATIO, lambda s: s["latency_ms"]["med"]),
    ("latency_p95", _("p95 latency"), "ms", True, stats.RATIO, lambda s: s["latency_ms"]["p95"]),
    ("latency_p99", _("p99 latency"), "ms", True, stats.RATIO, lambda s: s["latency_ms"]["p99"]),
    ("throughput", _("Throughput"), "req/s", False, stats.RATIO, lambda s: s["rps"]),
    ("error_rate", _("Error rate"), "%", True, stats.POINTS, lambda s: 100.0 * s["error_rate"]),
)
HEADLINE = "latency_p95"


def run_meta(job) -> dict:
    """A run as the comparability guard sees it (stats.COMPARABILITY_KEYS): what
    load it was asked for (not what was measured: a 20 s run lasts 19.95 s), by
    which engine, on how much data, and which deployment it measured.

    The keys are the ones issue 13 decided; other parameters (the request
    order's seed, the pinned core, the timeout) may differ between runs.
    ``job`` is a Job (with its target) or a RunRow."""
    params = job.params or {}
    summary = job.summary or {}
    mode = params.get("mode") or summary.get("mode") or "load"
    slug = job.target_slug if isinstance(job, RunRow) else job.target.slug
    return {
        "scenario": {name: params.get(name) for name in SCENARIO_PARAMS if params.get(name)},
        "mode": mode,
        # A rate left to the engine's default is the rate it offered.
        "rate": None if mode == "closed" else params.get("rate") or summary.get("offered_rate"),
        "duration": params.get("duration"),
        "connections": params.get("connections"),
        "engine_version": summary.get("engine_version"),
        "data_size": summary.get("data_size"),
        # Whether the target sent traces while it was measured (traced_during): a run
        # from before tracing existed was not traced.
        "tracing": bool(summary.get("traced")),
        # Two targets are two versions side by side; one target's runs over time
        # compare its versions, which is what a before/after claim is about.
        "target_version": slug,
    }


def traced_during(job, until: datetime.datetime) -> bool:
    """Whether ``job``'s target sent Kaizen traces while the job ran (from its start to
    ``until``): the "tracing" comparability key. Sampling is the exporter's, so one trace
    received in the window is enough to say the target ran instrumented."""
    if job.started_at is None:
        return False
    return Trace.objects.filter(
        target_id=job.target_id, received_at__gte=job.started_at, received_at__lte=until
    ).exists()


def _key(meta: dict) -> str:
    comparable = {k: v for k, v in meta.items() if k != "target_version"}
    return stats._canonical(comparable)


# -- sets ---------------------------------------------------------------------------


@dataclass
class RunRow:
    """One benchmark job as the sets need it, read without its bulky summary:
    ``summary`` holds only the figures compared (filled by ``load_values``)."""

    pk: int
    run_id: int
    target_id: int
    target_slug: str
    params: dict
    summary: dict
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    run_initiative_id: int | None = None
    run_created_at: datetime.datetime | None = None

    def get_absolute_url(self) -> str:
        return reverse("job_detail", args=[self.pk])


# Summary keys read with the rows (small), and the ones read for the chosen sets only.
_ROW_SUMMARY = ("mode", "engine_version", "data_size", "offered_rate", "traced")
_VALUE_SUMMARY = ("latency_ms", "rps", "error_rate")


def _rows(queryset) -> list[RunRow]:
    fields = [
        "pk",
        "run_id",
        "target_id",
        "target__slug",
        "params",
        "started_at",
        "finished_at",
        "run__initiative_id",
        "run__created_at",
    ]
    rows = []
    for row in queryset.values(*fields, *[f"summary__{key}" for key in _ROW_SUMMARY]):
        rows.append(
            RunRow(
                pk=row["pk"],
                run_id=row["run_id"],
                target_id=row["target_id"],
                target_slug=row["target__slug"],
                params=row["params"] or {},
                summary={key: row[f"summary__{key}"] for key in _ROW_SUMMARY},
                started_at=row["started_at"],
                finished_at=row["finished_at"],
                run_initiative_id=row["run__initiative_id"],
                run_created_at=row["run__created_at"],
            )
        )
    return rows


def load_values(*sets: BenchmarkSet | None) -> None:
    """Read the compared figures (latencies, throughput, error rate) of the sets' runs,
    in one query."""
    wanted = {row.pk: row for s in sets if s is not None for row in s.jobs}
    wanted = {pk: row for pk, row in wanted.items() if "latency_ms" not in row.summary}
    if not wanted:
        return
    fields = [f"summary__{key}" for key in _VALUE_SUMMARY]
    for pk, *values in Job.objects.filter(pk__in=wanted).values_list("pk", *fields):
        wanted[pk].summary.update(zip(_VALUE_SUMMARY, values, strict=True))


def set_label(run_id: int, mode: str, size: int, meta: Mapping[str, Any]) -> Phrase:
    """``run #12 (5 × load, 20 req/s, 10 s)``: a benchmark set in words (English; a
    page shows it in its language through |translated)."""
    parts = [f"{size} × {mode}"]
    if meta.get("rate") is not None:
        parts.append(f"{float(meta['rate']):g} req/s")
    elif meta.get("connections") is not None:
        parts.append(
            Phrase(gettext_noop("%(connections)s connections"), connections=meta["connections"])
        )
    if meta.get("duration") is not None:
        parts.append(f"{float(meta['duration']):g} s")
    if meta.get("tracing"):
        parts.append(Phrase(gettext_noop("traced")))
    return Phrase(
        gettext_noop("run #%(run_id)s (%(parts)s)"), run_id=run_id, parts=Parts(parts, ", ")
    )


# A set's role, marked for the pages (which show them through |translated).
SET = Phrase(gettext_noop("Set"))
BASELINE = Phrase(gettext_noop("Baseline"))
LATEST = Phrase(gettext_noop("Latest"))


@dataclass
class BenchmarkSet:
    """The succeeded benchmark jobs of one run in one mode, asked for the same load."""

    run_id: int
    mode: str
    jobs: list[RunRow]
    meta: dict
    pinned: bool = False
    # How it was chosen, in words: "pinned", "the first load set in the initiative"...
    how: str = ""
    role: str = SET  # BASELINE or LATEST once chosen

    @property
    def initiative_id(self) -> int | None:
        return self.jobs[0].run_initiative_id

    @property
    def created_at(self) -> datetime.datetime | None:
        return self.jobs[0].run_created_at

    @property
    def size(self) -> int:
        return len(self.jobs)

    @property
    def started_at(self) -> datetime.datetime | None:
        return min((job.started_at for job in self.jobs if job.started_at), default=None)

    @property
    def finished_at(self) -> datetime.datetime | None:
        return max((job.finished_at for job in self.jobs if job.finished_at), default=None)

    @property
    def job_ids(self) -> list[int]:
        return [job.pk for job in self.jobs]

    @property
    def label(self) -> str:
        """``run #12 (5 × load, 20 req/s, 10 s)``: the same words on every page."""
        return set_label(self.run_id, self.mode, self.size, self.meta)

    def describe(self) -> str:
        """``Baseline: run #12 (5 × load, 20 req/s, 10 s), pinned``: the same words everywhere
        (English; a page shows it in its language through |translated)."""
        if self.how:
            return Phrase(
                gettext_noop("%(role)s: %(label)s, %(how)s"),
                role=self.role,
                label=self.label,
                how=self.how,
            )
        return Phrase(gettext_noop("%(role)s: %(label)s"), role=self.role, label=self.label)

    @property
    def url(self) -> str:
        return reverse("run_detail", args=[self.run_id])

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "mode": self.mode,
            "size": self.size,
            "job_ids": self.job_ids,
            "meta": self.meta,
            "pinned": self.pinned,
            "how": self.how,
            "label": self.label,
            "described": self.describe(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
        }


def _benchmarks():
    return Job.objects.filter(
        kind="benchmark",
        status=Job.SUCCEEDED,
        started_at__isnull=False,
        run__compared_with__isnull=True,
    ).order_by("started_at", "pk")


def _group(rows: list[RunRow]) -> list[BenchmarkSet]:
    """Rows grouped into sets: per run, per mode and requested load; oldest first."""
    groups: dict[tuple, list[RunRow]] = defaultdict(list)
    metas: dict[tuple, dict] = {}
    for row in rows:
        meta = run_meta(row)
        key = (row.run_id, meta["mode"], _key(meta))
        groups[key].append(row)
        metas.setdefault(key, meta)
    sets = [
        BenchmarkSet(run_id=key[0], mode=key[1], jobs=members, meta=metas[key])
        for key, members in groups.items()
    ]
    sets.sort(key=lambda s: (s.started_at, s.run_id))
    return sets


def _of_mode(queryset, mode: str):
    return queryset.filter(Q(params__mode=mode) | Q(params__mode__isnull=True, summary__mode=mode))


def sets_of(target: TargetService, mode: str | None = None, initiative=None) -> list[BenchmarkSet]:
    """The target's benchmark sets (of ``mode``), oldest first, within ``initiative``.

    The pinned baseline run's sets are always included (a pin outlives initiatives)."""
    jobs = _benchmarks().filter(target=target)
    if initiative is not None:
        pinned = Q(run_id=target.baseline_run_id) if target.baseline_run_id else Q(pk__in=[])
        jobs = jobs.filter(
            pinned
            | Q(run__initiative=initiative)
            | Q(run__initiative__isnull=True, run__created_at__gte=initiative.created_at)
        )
    if mode:
        jobs = _of_mode(jobs, mode)
    return _group(_rows(jobs))


def choose_baseline(
    target: TargetService, sets: list[BenchmarkSet], mode: str, initiative=None
) -> BenchmarkSet | None:
    """The rule, on the target's sets of ``mode`` (oldest first): pinned, else the first."""
    pinned = [s for s in sets if target.baseline_run_id and s.run_id == target.baseline_run_id]
    if pinned:
        chosen = max(pinned, key=lambda s: s.size)  # the set, not a stray single run beside it
        chosen.pinned, chosen.how, chosen.role = True, Phrase(gettext_noop("pinned")), BASELINE
        return chosen
    others = [
        s
        for s in sets
        if initiative is None
        or s.initiative_id == initiative.pk
        or (s.initiative_id is None and s.created_at and s.created_at >= initiative.created_at)
    ]
    if not others:
        return None
    first = others[0]
    first.role = BASELINE
    first.how = Phrase(
        gettext_noop("the first %(mode)s set in the initiative")
        if initiative
        else gettext_noop("the first %(mode)s set of the target"),
        mode=mode,
    )
    return first


def choose_latest(base: BenchmarkSet, sets: list[BenchmarkSet]) -> BenchmarkSet | None:
    """The newest set after ``base`` (another run) comparable to it."""
    wanted = _key(base.meta)
    later = [
        s
        for s in sets
        if s.run_id != base.run_id
        and s.started_at
        and base.started_at
        and s.started_at > base.started_at
        and _key(s.meta) == wanted
    ]
    if not later:
        return None
    newest = later[-1]
    newest.role = LATEST
    newest.how = Phrase(
        gettext_noop("the newest set comparable to run #%(run_id)s"), run_id=base.run_id
    )
    return newest


def baseline(
    target: TargetService, mode: str = DEFAULT_MODE, initiative: Initiative | None = None
) -> BenchmarkSet | None:
    """The pinned baseline run's set of ``mode``, else the first set of ``mode`` in
    the initiative (without one, of the target)."""
    return choose_baseline(target, sets_of(target, mode, initiative), mode, initiative)


def baseline_and_latest(
    target: TargetService, mode: str = DEFAULT_MODE, initiative: Initiative | None = None
) -> tuple[BenchmarkSet | None, BenchmarkSet | None, list[BenchmarkSet]]:
    """(baseline, latest, every set of the mode) in one query; values not loaded."""
    sets = sets_of(target, mode, initiative)
    base = choose_baseline(target, sets, mode, initiative)
    return base, (choose_latest(base, sets) if base else None), sets


def latest(
    target: TargetService, base: BenchmarkSet, initiative: Initiative | None = None
) -> BenchmarkSet | None:
    """The newest set after ``base`` (another run) comparable to it: same scenario,
    mode, rate, duration, connections, engine version and data size."""
    return choose_latest(base, sets_of(target, base.mode, initiative))


def for_targets(
    targets: list[TargetService], mode: str = DEFAULT_MODE
) -> dict[int, tuple[BenchmarkSet | None, BenchmarkSet | None, list[BenchmarkSet]]]:
    """Baseline and latest of many targets (no initiative), in one query."""
    rows = _rows(_of_mode(_benchmarks().filter(target__in=targets), mode))
    per_target: dict[int, list[RunRow]] = defaultdict(list)
    for row in rows:
        per_target[row.target_id].append(row)
    out = {}
    for target in targets:
        sets = _group(per_target.get(target.pk, []))
        base = choose_baseline(target, sets, mode)
        out[target.pk] = (base, choose_latest(base, sets) if base else None, sets)
    return out


def baseline_measurement(target: TargetService, mode: str, name: str) -> Mapping[str, Any] | None:
    """A run-level measurement ``name`` of the baseline set of ``mode`` (its first
    run's), in one query: the same rule as ``baseline`` — the pinned run's
    benchmarks of that mode first, else the earliest — read from the measurements.
    Returns {"value", "measured_at", "run_id", "job_id"} or None."""
    from django.db.models import Case, IntegerField, Value, When

    pinned = target.baseline_run_id or 0
    return (
        Measurement.objects.filter(
            target=target,
            name=name,
            second__isnull=True,
            job__kind="benchmark",
            job__status=Job.SUCCEEDED,
            job__started_at__isnull=False,
            job__run__compared_with__isnull=True,
        )
        .filter(
            Q(job__params__mode=mode) | Q(job__params__mode__isnull=True, job__summary__mode=mode)
        )
        .annotate(
            unpinned=Case(
                When(job__run_id=pinned, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("unpinned", "job__started_at", "measured_at", "pk")
        .values("value", "measured_at", "run_id", "job_id")
        .first()
    )


def why_no_latest_in(base: BenchmarkSet, sets: list[BenchmarkSet]) -> str:
    """Why no set of ``sets`` is the latest for ``base``: none later, or what differs."""
    later = [
        s
        for s in sets
        if s.run_id != base.run_id
        and s.started_at
        and base.started_at
        and s.started_at > base.started_at
    ]
    if not later:
        return Phrase(
            gettext_noop("no %(mode)s set after the baseline (%(label)s)"),
            mode=base.mode,
            label=base.label,
        )
    newest = later[-1]
    differs = [
        key
        for key in stats.COMPARABILITY_KEYS
        if key != "target_version" and newest.meta.get(key) != base.meta.get(key)
    ]
    return Phrase(
        gettext_noop(
            "no later %(mode)s set is comparable to the baseline (%(label)s): the newest, "
            "%(newest)s, differs in %(keys)s; re-run the baseline's configuration"
        ),
        mode=base.mode,
        label=base.label,
        newest=newest.label,
        keys=", ".join(differs),
    )


# -- comparing two sets ------------------------------------------------------------


@dataclass
class MetricComparison:
    key: str
    label: str
    unit: str
    a: list[float]
    b: list[float]
    c: stats.Comparison


@dataclass
class SetComparison:
    """The comparison rule on every metric of two sets, one value per run."""

    before: BenchmarkSet | None
    after: BenchmarkSet | None
    metrics: list[MetricComparison] = field(default_factory=list)

    @property
    def headline(self) -> stats.Comparison | None:
        return next((m.c for m in self.metrics if m.key == HEADLINE), None)

    @property
    def evidence(self) -> str:
        headline = self.headline
        return headline.evidence if headline else stats.ESTIMATED

    def get(self, key: str) -> stats.Comparison | None:
        return next((m.c for m in self.metrics if m.key == key), None)


def compare_jobs(
    a_jobs: Sequence[RunRow | Job], b_jobs: Sequence[RunRow | Job], *, order_known: bool = True
):
    """The comparison rule on each metric of two lists of benchmark jobs (one value per job).

    With ``order_known`` the jobs' start times decide whether the sides were
    interleaved (verified evidence) or sequential (measured).
    """
    order = (
        stats.order_from_times([j.started_at for j in a_jobs], [j.started_at for j in b_jobs])
        if order_known
        else None
    )
    a_meta, b_meta = [run_meta(j) for j in a_jobs], [run_meta(j) for j in b_jobs]
    results = []
    for key, label, unit, lower_is_better, scale, read in METRICS:
        try:
            a_values = [float(read(j.summary)) for j in a_jobs]
            b_values = [float(read(j.summary)) for j in b_jobs]
        except (KeyError, TypeError, ValueError):
            continue  # a summary without this figure (an old or a failed engine's)
        comparison = stats.compare(
            a_values,
            b_values,
            metric=key,
            lower_is_better=lower_is_better,
            scale=scale,
            order=order,
            baseline_meta=a_meta,
            candidate_meta=b_meta,
            intended=("target_version",),
        )
        results.append(MetricComparison(key, label, unit, a_values, b_values, comparison))
    return results


def compare_sets(before: BenchmarkSet, after: BenchmarkSet) -> SetComparison:
    """The rule on two sets run one after the other: measured evidence at best."""
    load_values(before, after)
    return SetComparison(before, after, compare_jobs(before.jobs, after.jobs))


# -- the interleaved comparison (verified) ------------------------------------------


def latest_interleaved(target: TargetService) -> tuple[Run, list[Job], list[Job]] | None:
    """The newest interleaved comparison with ``target`` as its before side (A):
    the run and its succeeded benchmarks on each side, in time order."""
    runs = Run.objects.filter(target=target, compared_with__isnull=False).order_by(
        "-created_at", "-pk"
    )
    for run in runs[:5]:
        jobs = list(
            run.jobs.filter(kind="benchmark", status=Job.SUCCEEDED, started_at__isnull=False)
            .select_related("target")
            .order_by("started_at", "pk")
        )
        a = [j for j in jobs if j.target_id == run.target_id]
        b = [j for j in jobs if j.target_id == run.compared_with_id]
        if a and b:
            return run, a, b
    return None
