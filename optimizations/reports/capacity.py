"""The capacity and pool advisor: how many instances, and what pool per worker.

From measurements only (plus what strategy enters):

- the **stress knee** of one instance: the latest ``http.capacity`` (the last
  sustainable step of a stress test against the target as deployed). When the
  generator or the machine it ran on stopped the test before the target broke
  (or the target's own limits did), the knee is a **lower bound** ("≥ N req/s",
  labelled ``bound=lower``): the plan below is then computed on the bound, so
  its instance count errs high. A plan that fits on the bound is a pass (the
  bound already meets the need); one that does not is incomplete, not a
  failure — the real knee may be higher;
- the **expected peak**: the argument, else the target's ``expected_rps``;
- the database's **usable connections**: ``max_connections`` minus the reserved
  slots, from the latest DB scan (``summary["connections"]``);
- the **pool at the knee**: connections checked out at the peak of the DB scan
  that ran in the same run as the stress test (strategy --focus scaling runs
  both), else the minute checks of /metrics during the stress test, with the
  pool's size + max_overflow from the DB scan.

The arithmetic, every step shown on the page:

1. instances = ceil(peak / (knee × HEADROOM)) — no instance runs beyond
   HEADROOM of its knee at the peak;
2. connections busy per request second (Little's law): the connections
   checked out at the stress peak over the knee rate (the peak came at or past
   the knee, so this errs on the safe side); at the planned rate per instance
   that is the busy connections per instance, divided by its workers;
3. per worker: pool_size = the busy connections (rounded up), and
   pool_size + max_overflow = busy / pool SLO (80 %), rounded up — so pool use
   stays at or below the SLO at the peak;
4. instances × workers × (pool_size + max_overflow) must fit the server's
   usable connections; when it does not, PgBouncer in transaction mode in
   front, its ``default_pool_size`` the server connections busy at the peak
   over the pool SLO.

``ok`` is True when a plan fits (directly, or through PgBouncer), False when
even PgBouncer's server pool would exceed the usable connections, None when
an input is missing (``missing`` says which, and how to get it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db.models import F, Max
from django.utils.translation import gettext_noop

from optimizations.models import Job, Measurement
from portal.i18n import Phrase

# Plan each instance at no more than this share of its knee at the peak.
HEADROOM = 0.8
# Uvicorn's and Gunicorn's default: one worker process per instance.
DEFAULT_WORKERS = 1
# PostgreSQL's default superuser_reserved_connections, when no DB scan read it.
DEFAULT_RESERVED = 3

MISSING_STRESS = gettext_noop(
    "no stress benchmark with a knee yet — run strategy --focus scaling "
    "(or quality --focus testing)"
)
MISSING_PEAK = gettext_noop(
    "expected peak load not set on the target — set it in the target's settings "
    "(or enter a peak above)"
)
MISSING_DB = gettext_noop("no DB scan with max_connections — run strategy --focus architecture")
MISSING_BOUND = gettext_noop(
    "the knee is known only as a lower bound (≥ %(knee)s req/s: %(why)s), and on the bound "
    "the plan does not fit — measure the knee where the load generator has a core of its "
    "own (a quieter machine, or more generator workers)"
)
MISSING_POOL = gettext_noop(
    "pool use at the knee not measured — run strategy --focus scaling (a stress test and a "
    "DB scan together) with the pool gauges (db_pool_size, db_pool_checked_out, "
    "db_pool_max_overflow) on the target's /metrics"
)


@dataclass
class Fact:
    """One input or result of the advice, with where it came from."""

    key: str
    label: str
    value: float | int | str | None
    unit: str = ""
    source: str = ""
    run_id: int | None = None
    job_id: int | None = None
    # "lower" when the value is a lower bound (the stress knee our side stopped).
    bound: str = ""

    @property
    def shown(self) -> str:
        if isinstance(self.value, float):
            text = f"{self.value:,.2f}".rstrip("0").rstrip(".")
        else:
            text = str(self.value)
        return f"≥ {text}" if self.bound == "lower" else text

    @property
    def number(self) -> float:
        """The value of a numeric fact (the knee, the peak, a pool figure)."""
        if self.value is None:
            raise ValueError(f"{self.label} has no value")
        return float(self.value)


@dataclass
class Advice:
    ok: bool | None
    missing: list[str] = field(default_factory=list)
    inputs: list[Fact] = field(default_factory=list)
    headroom_pct: float = HEADROOM * 100
    instances: int | None = None
    per_instance_rps: float | None = None
    workers_per_instance: int = DEFAULT_WORKERS
    busy_per_worker: float | None = None
    pool_size: int | None = None
    max_overflow: int | None = None
    pool_use_at_peak_pct: float | None = None
    connections_needed: int | None = None
    usable_connections: int | None = None
    fits: bool | None = None
    pgbouncer: dict | None = None
    steps: list[str] = field(default_factory=list)
    summary: str = ""

    @property
    def needs_pgbouncer(self) -> bool:
        return self.pgbouncer is not None

    def to_dict(self) -> dict:
        return asdict(self)

    def input(self, key: str) -> Fact | None:
        return next((fact for fact in self.inputs if fact.key == key), None)


def advise(
    target,
    *,
    peak_rps: float | None = None,
    workers_per_instance: int | None = None,
    max_connections: int | None = None,
) -> Advice:
    """The advice for ``target`` (see the module's docstring for the arithmetic)."""
    advice = Advice(ok=None, workers_per_instance=workers_per_instance or DEFAULT_WORKERS)
    knee = _knee(target)
    peak = _peak(target, peak_rps)
    server = _server(target, max_connections)
    pool = _pool_at_knee(target, knee) if knee else None
    advice.inputs = [f for f in (knee, peak, _workers(workers_per_instance)) if f]
    advice.inputs += [f for f in (server or {}).values() if isinstance(f, Fact)]
    advice.inputs += [f for f in (pool or {}).values() if isinstance(f, Fact)]
    if knee is None:
        advice.missing.append(MISSING_STRESS)
    if peak is None:
        advice.missing.append(MISSING_PEAK)
    if server is None:
        advice.missing.append(MISSING_DB)
    if knee is not None and pool is None:
        advice.missing.append(MISSING_POOL)
    if knee is None and (kneeless := _stress_without_knee(target)) is not None:
        job, ceiling = kneeless
        advice.missing.remove(MISSING_STRESS)
        why = (job.summary or {}).get("capacity_bound_reason")
        if why:
            # Our side stopped the test before any step was sustained: nothing is
            # known of the target's knee yet — a gap, not a failure.
            advice.missing.append(
                Phrase(
                    gettext_noop(
                        "the latest stress test (job #%(job_id)s) measured no knee: %(why)s — "
                        "run it where the load generator has a core of its own"
                    ),
                    job_id=job.pk,
                    why=why,
                )
            )
            advice.summary = gettext_noop("Not enough measurements for a capacity model yet.")
            return advice
        # A stress test ran and no step met the SLOs: more instances do not bring
        # latency under its objective — that is a failed capacity model, not a gap.
        advice.ok = False
        facts = {"job_id": job.pk, "start": f"{job.params.get('start_rate', 0):g}"}
        if ceiling:
            advice.summary = Phrase(
                gettext_noop(
                    "No step of the latest stress test (job #%(job_id)s, from %(start)s req/s) "
                    "met the SLOs, so no number of instances meets them: fix the slow "
                    "operations first (throughput ceiling %(ceiling)s req/s at any latency)."
                ),
                ceiling=f"{ceiling:g}",
                **facts,
            )
        else:
            advice.summary = Phrase(
                gettext_noop(
                    "No step of the latest stress test (job #%(job_id)s, from %(start)s req/s) "
                    "met the SLOs, so no number of instances meets them: fix the slow "
                    "operations first."
                ),
                **facts,
            )
        return advice
    if knee is None or peak is None:
        advice.summary = gettext_noop("Not enough measurements for a capacity model yet.")
        return advice

    # 1. Instances.
    knee_rps, peak_value = knee.number, peak.number
    if knee_rps <= 0:
        advice.ok = False
        advice.summary = gettext_noop(
            "The stress test found no sustainable rate: no plan can carry the peak."
        )
        return advice
    planned = knee_rps * HEADROOM
    advice.instances = max(1, math.ceil(peak_value / planned))
    advice.per_instance_rps = peak_value / advice.instances
    advice.steps.append(
        Phrase(
            gettext_noop(
                "instances = ⌈%(peak)s req/s ÷ (%(knee)s req/s knee × %(headroom)s)⌉ "
                "= %(instances)s, each at %(each)s req/s"
            ),
            peak=f"{peak_value:g}",
            knee=knee.shown,
            headroom=f"{HEADROOM:.0%}",
            instances=advice.instances,
            each=f"{advice.per_instance_rps:.1f}",
        )
    )
    if knee.bound == "lower":
        advice.steps.append(
            Phrase(
                gettext_noop(
                    "the knee is a lower bound, so %(instances)s instance(s) is an upper "
                    "estimate: the real knee may carry the peak on fewer"
                ),
                instances=advice.instances,
            )
        )
        return _on_the_bound(advice, target, knee, peak, server, pool)
    return _plan(advice, target, knee, peak, server, pool)


def _on_the_bound(advice: Advice, target, knee: Fact, peak, server, pool) -> Advice:
    """The plan on a lower-bound knee: a pass when it fits, else incomplete (never a fail)."""
    advice = _plan(advice, target, knee, peak, server, pool)
    why = knee.source
    if advice.ok is False:
        advice.ok = None
        advice.missing.append(Phrase(MISSING_BOUND, knee=f"{knee.number:g}", why=why))
    if advice.summary:
        advice.summary = Phrase(
            gettext_noop("%(summary)s (Planned on a knee of %(knee)s req/s, a lower bound.)"),
            summary=_phrase(advice.summary),
            knee=knee.shown,
        )
    return advice


def _plan(advice: Advice, target, knee: Fact, peak: Fact, server, pool) -> Advice:
    """Steps 2–4 of the arithmetic (the module's docstring), from the instances on."""
    if advice.instances is None or advice.per_instance_rps is None:
        raise ValueError("the plan starts from the instances (step 1)")
    knee_rps, peak_value = knee.number, peak.number
    if pool is None:
        advice.summary = Phrase(
            gettext_noop(
                "%(instances)s instance carry the peak; the pool size needs the pool use at "
                "the knee."
            )
            if advice.instances == 1
            else gettext_noop(
                "%(instances)s instances carry the peak; the pool size needs the pool use at "
                "the knee."
            ),
            instances=advice.instances,
        )
        return advice

    # 2. Busy connections (Little's law) and 3. the pool per worker.
    workers = advice.workers_per_instance
    checked_out = pool["checked_out"].number
    slo = target.thresholds()["pool_use_pct"] / 100.0
    busy_instance = checked_out * advice.per_instance_rps / knee_rps
    advice.busy_per_worker = busy_instance / workers
    advice.pool_size = max(1, math.ceil(advice.busy_per_worker - 1e-9))
    capacity = max(advice.pool_size, math.ceil(advice.busy_per_worker / slo - 1e-9))
    advice.max_overflow = capacity - advice.pool_size
    advice.pool_use_at_peak_pct = 100.0 * advice.busy_per_worker / capacity
    advice.steps.append(
        Phrase(
            gettext_noop(
                "busy connections per instance = %(checked_out)s checked out at the knee × "
                "%(each)s ÷ %(knee)s req/s = %(busy)s; per worker (%(workers)s) %(per_worker)s"
            ),
            checked_out=f"{checked_out:g}",
            each=f"{advice.per_instance_rps:.1f}",
            knee=f"{knee_rps:g}",
            busy=f"{busy_instance:.2f}",
            workers=workers,
            per_worker=f"{advice.busy_per_worker:.2f}",
        )
    )
    advice.steps.append(
        Phrase(
            gettext_noop(
                "per worker: pool_size = %(pool_size)s, pool_size + max_overflow = "
                "⌈%(per_worker)s ÷ %(slo)s⌉ = %(capacity)s → max_overflow = %(max_overflow)s; "
                "pool use at the peak %(use)s %%"
            ),
            pool_size=advice.pool_size,
            per_worker=f"{advice.busy_per_worker:.2f}",
            slo=f"{slo:.0%}",
            capacity=capacity,
            max_overflow=advice.max_overflow,
            use=f"{advice.pool_use_at_peak_pct:.0f}",
        )
    )
    advice.connections_needed = advice.instances * workers * capacity
    if server is None:
        advice.summary = Phrase(
            gettext_noop(
                "%(instances)s instance(s) × %(workers)s worker(s) with pool_size %(pool_size)s, "
                "max_overflow %(max_overflow)s: %(needed)s connections at most — the server's "
                "limit is unknown."
            ),
            instances=advice.instances,
            workers=workers,
            pool_size=advice.pool_size,
            max_overflow=advice.max_overflow,
            needed=advice.connections_needed,
        )
        return advice

    # 4. Does it fit the server?
    usable = int(server["usable"].number)
    advice.usable_connections = usable
    advice.fits = advice.connections_needed <= usable
    advice.steps.append(
        Phrase(
            gettext_noop(
                "%(instances)s × %(workers)s × %(capacity)s = %(needed)s connections "
                "%(compared)s %(usable)s usable on the server"
            ),
            instances=advice.instances,
            workers=workers,
            capacity=capacity,
            needed=advice.connections_needed,
            compared="≤" if advice.fits else ">",
            usable=usable,
        )
    )
    if advice.fits:
        advice.ok = True
        advice.summary = Phrase(
            gettext_noop(
                "%(instances)s instance(s) × %(workers)s worker(s), pool_size %(pool_size)s and "
                "max_overflow %(max_overflow)s per worker: pool use ≤ %(slo)s at %(peak)s req/s "
                "with %(needed)s of %(usable)s server connections."
            ),
            instances=advice.instances,
            workers=workers,
            pool_size=advice.pool_size,
            max_overflow=advice.max_overflow,
            slo=f"{slo:.0%}",
            peak=f"{peak_value:g}",
            needed=advice.connections_needed,
            usable=usable,
        )
        return advice
    busy_total = checked_out * peak_value / knee_rps
    default_pool_size = max(1, math.ceil(busy_total / slo - 1e-9))
    advice.pgbouncer = {
        "pool_mode": "transaction",
        "default_pool_size": default_pool_size,
        "max_client_conn": advice.connections_needed,
        "fits": default_pool_size <= usable,
    }
    advice.steps.append(
        Phrase(
            gettext_noop(
                "PgBouncer (transaction pooling): default_pool_size = ⌈%(busy)s busy at the "
                "peak ÷ %(slo)s⌉ = %(default_pool_size)s server connections %(compared)s "
                "%(usable)s; max_client_conn ≥ %(needed)s"
            ),
            busy=f"{busy_total:.2f}",
            slo=f"{slo:.0%}",
            default_pool_size=default_pool_size,
            compared="≤" if default_pool_size <= usable else ">",
            usable=usable,
            needed=advice.connections_needed,
        )
    )
    advice.ok = default_pool_size <= usable
    if advice.ok:
        advice.summary = Phrase(
            gettext_noop(
                "The application pools need %(needed)s connections, more than the %(usable)s "
                "the server allows: put PgBouncer in transaction mode in front "
                "(default_pool_size %(default_pool_size)s) and point the pools at it."
            ),
            needed=advice.connections_needed,
            usable=usable,
            default_pool_size=default_pool_size,
        )
    else:
        advice.summary = Phrase(
            gettext_noop(
                "Even through PgBouncer the peak needs %(default_pool_size)s server connections "
                "(%(busy)s busy ÷ %(slo)s), more than the %(usable)s usable: shorten how long "
                "requests hold a connection, raise max_connections, or move reads to a replica."
            ),
            default_pool_size=default_pool_size,
            busy=f"{busy_total:.1f}",
            slo=f"{slo:.0%}",
            usable=usable,
        )
    return advice


def _stress_without_knee(target):
    """(job, ceiling) when the target's latest stress test found no knee, else None."""
    job = (
        Job.objects.filter(
            target=target, kind="benchmark", status=Job.SUCCEEDED, params__mode="stress"
        )
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .first()
    )
    if job is None or (job.summary or {}).get("capacity_rps"):
        return None
    return job, (job.summary or {}).get("saturation_rps")


BOUND_BY = {
    "machine": Phrase(gettext_noop("the machine was busy: the load generator waited for a CPU")),
    "generator": Phrase(gettext_noop("the load generator was saturated")),
    "limits": Phrase(gettext_noop("the steps reached the target's own rate or duration limit")),
}


def _phrase(text: str) -> Phrase:
    """A summary as a Phrase (a gettext_noop constant becomes one without parameters)."""
    return text if isinstance(text, Phrase) else Phrase(text)


def _knee(target) -> Fact | None:
    row = (
        Measurement.objects.filter(target=target, name="http.capacity", second__isnull=True)
        .order_by("-measured_at", "-pk")
        .values("value", "run_id", "job_id", "measured_at", "labels")
        .first()
    )
    if row is None:
        return None
    labels = row["labels"] or {}
    source = Phrase(
        gettext_noop("stress test, job #%(job_id)s (%(at)s)"),
        job_id=row["job_id"],
        at=f"{row['measured_at']:%Y-%m-%d %H:%M}",
    )
    bound = "lower" if labels.get("bound") == "lower" else ""
    if bound:
        why = BOUND_BY.get(
            labels.get("limited_by", ""),
            Phrase(gettext_noop("the test stopped before the target broke")),
        )
        source = Phrase(gettext_noop("%(source)s; a lower bound — %(why)s"), source=source, why=why)
    return Fact(
        "knee",
        gettext_noop("Stress knee of one instance (lower bound)")
        if bound
        else gettext_noop("Stress knee of one instance"),
        row["value"],
        "req/s",
        source,
        row["run_id"],
        row["job_id"],
        bound,
    )


def _peak(target, peak_rps: float | None) -> Fact | None:
    if peak_rps:
        return Fact(
            "peak",
            gettext_noop("Expected peak load"),
            float(peak_rps),
            "req/s",
            gettext_noop("entered above"),
        )
    if target.expected_rps:
        return Fact(
            "peak",
            gettext_noop("Expected peak load"),
            float(target.expected_rps),
            "req/s",
            gettext_noop("the target's settings"),
        )
    return None


def _workers(workers: int | None) -> Fact:
    if workers:
        return Fact(
            "workers",
            gettext_noop("Worker processes per instance"),
            workers,
            "",
            gettext_noop("entered above"),
        )
    return Fact(
        "workers",
        gettext_noop("Worker processes per instance"),
        DEFAULT_WORKERS,
        "",
        gettext_noop("assumed: Uvicorn's default (enter yours above)"),
    )


def _server(target, max_connections: int | None) -> dict | None:
    row = (
        Job.objects.filter(
            target=target,
            kind="db_scan",
            status=Job.SUCCEEDED,
            summary__connections__max_connections__isnull=False,
        )
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .values("pk", "run_id", "summary__connections")
        .first()
    )
    scanned = (row["summary__connections"] if row is not None else None) or {}
    if max_connections:
        reserved = (
            scanned["max_connections"] - scanned["available"]
            if "available" in scanned
            else DEFAULT_RESERVED
        )
        how = (
            Phrase(gettext_noop("reserved slots from DB scan #%(job_id)s"), job_id=row["pk"])
            if row is not None and "available" in scanned
            else Phrase(
                gettext_noop("PostgreSQL's default superuser_reserved_connections (%(reserved)s)"),
                reserved=DEFAULT_RESERVED,
            )
        )
        return {
            "max": Fact(
                "max_connections",
                "max_connections",
                max_connections,
                "",
                gettext_noop("entered above"),
            ),
            "usable": Fact(
                "usable",
                gettext_noop("Usable connections"),
                max(0, max_connections - reserved),
                "",
                Phrase(
                    gettext_noop("max_connections − %(reserved)s reserved (%(how)s)"),
                    reserved=reserved,
                    how=how,
                ),
            ),
        }
    if row is None or not scanned.get("max_connections"):
        return None
    source = Phrase(gettext_noop("DB scan, job #%(job_id)s"), job_id=row["pk"])
    total = int(scanned["max_connections"])
    usable = int(scanned.get("available", total - DEFAULT_RESERVED))
    return {
        "max": Fact(
            "max_connections", "max_connections", total, "", source, row["run_id"], row["pk"]
        ),
        "usable": Fact(
            "usable",
            gettext_noop("Usable connections"),
            usable,
            "",
            Phrase(
                gettext_noop(
                    "max_connections − %(reserved)s reserved (superuser_reserved_connections, "
                    "reserved_connections) · %(source)s"
                ),
                reserved=total - usable,
                source=source,
            ),
            row["run_id"],
            row["pk"],
        ),
    }


def _pool_at_knee(target, knee: Fact) -> dict | None:
    """Connections checked out at the stress test's peak: the DB scan of the same run,
    else the minute checks of /metrics while the stress test ran."""
    scans = list(
        Job.objects.filter(target=target, kind="db_scan", status=Job.SUCCEEDED)
        .filter(summary__pool__size__isnull=False)
        .order_by(F("finished_at").desc(nulls_last=True), "-pk")
        .values("pk", "run_id", "summary__pool")[:20]
    )
    same_run = next((s for s in scans if s["run_id"] == knee.run_id), None)
    if same_run:
        pool = same_run["summary__pool"]
        size = float(pool["size"]) + max(float(pool.get("max_overflow") or 0), 0.0)
        checked_out = pool.get("peak_checked_out")
        if checked_out is None:
            checked_out = size * float(pool.get("peak_use_pct") or 0) / 100.0
        source = Phrase(
            gettext_noop("DB scan #%(job_id)s during the stress test (its peak)"),
            job_id=same_run["pk"],
        )
        return _pool_facts(pool, float(checked_out), source, same_run)
    if knee.job_id is None:
        return None
    stress = Job.objects.filter(pk=knee.job_id).values("started_at", "finished_at").first()
    if not stress or not stress["started_at"] or not scans:
        return None
    peak = Measurement.objects.filter(
        target=target,
        name="metrics.pool_use",
        measured_at__gte=stress["started_at"],
        measured_at__lte=stress["finished_at"] or stress["started_at"],
    ).aggregate(peak=Max("value"))["peak"]
    if peak is None:
        return None
    latest = scans[0]
    pool = latest["summary__pool"]
    size = float(pool["size"]) + max(float(pool.get("max_overflow") or 0), 0.0)
    source = Phrase(
        gettext_noop(
            "minute checks of /metrics during stress job #%(job_id)s: peak %(peak)s %% of "
            "the pool size from DB scan #%(scan_id)s"
        ),
        job_id=knee.job_id,
        peak=f"{peak:.0f}",
        scan_id=latest["pk"],
    )
    return _pool_facts(pool, size * peak / 100.0, source, latest)


def _pool_facts(
    pool: Mapping[str, Any], checked_out: float, source: str, scan: Mapping[str, Any]
) -> dict:
    size = Fact(
        "pool_configured",
        gettext_noop("Pool per process (pool_size + max_overflow)"),
        f"{pool['size']:g} + {float(pool.get('max_overflow') or 0):g}",
        "",
        Phrase(gettext_noop("/metrics as read by DB scan #%(job_id)s"), job_id=scan["pk"]),
        scan["run_id"],
        scan["pk"],
    )
    busy = Fact(
        "checked_out",
        gettext_noop("Connections checked out at the knee"),
        round(checked_out, 2),
        "",
        source,
        scan["run_id"],
        scan["pk"],
    )
    return {"configured": size, "checked_out": busy}
