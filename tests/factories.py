"""Builders for the rows tests need, shaped as Kaizen's own code writes them.

A benchmark job here looks like one the runner stored: a summary with the keys the load
engine writes (optimizations.analyzers.loadgen.report.summarize), Measurements under
Kaizen's names with the units the engine gives them, and per-second rows named and
unitised as the runner names them (optimizations.jobs.runner.sample_unit). A name this
module does not know is an error, so a test cannot store a unit or a name the real code
never writes.
"""

from __future__ import annotations

import datetime

from optimizations.jobs.runner import sample_unit
from optimizations.models import Job, Measurement, Run

# The load test the comparison rule compares like with like on (ANALYSIS.md §3).
LOAD_PARAMS = {"mode": "load", "rate": 100.0, "duration": 20.0, "seed": 1}

# Short names tests use → the Measurement names the load engine writes.
SHORT_NAMES = {
    "avg": "http.latency.avg",
    "med": "http.latency.med",
    "p90": "http.latency.p90",
    "p95": "http.latency.p95",
    "p99": "http.latency.p99",
    "rps": "http.throughput",
    "capacity": "http.capacity",
    "errors": "http.error_rate",
    "offered": "http.offered_rate",
    "pss": "memory.pss.mean",
}

# The units the engine gives each name (loadgen/report.py measurements(), loadgen/modes.py).
UNITS = {
    **{f"http.latency.{key}": "ms" for key in ("avg", "med", "p90", "p95", "p99", "max")},
    **{f"http.service_time.{key}": "ms" for key in ("avg", "med", "p90", "p95", "p99", "max")},
    "http.throughput": "req/s",
    "http.offered_rate": "req/s",
    "http.capacity": "req/s",
    "http.saturation": "req/s",
    "http.reqs": "count",
    "http.error_rate": "ratio",
    "memory.pss.mean": "bytes",
    "memory.pss.max": "bytes",
    "memory.growth": "ratio",
}


def load_summary(
    p95: float = 100.0,
    *,
    med: float | None = None,
    p99: float | None = None,
    rps: float = 20.0,
    error_rate: float = 0.0,
    mode: str = "load",
    offered_rate: float | None = 100.0,
    **extra,
) -> dict:
    """A load test's summary: the keys the portal reads, median half and p99 1.5 × the p95
    unless given."""
    return {
        "mode": mode,
        "model": "open",
        "arrival": "constant",
        "offered_rate": offered_rate,
        "engine_version": "1",
        "workers": 1,
        "operations": [{"name": "GET /items"}],
        "latency_ms": {
            "med": p95 / 2 if med is None else med,
            "p95": p95,
            "p99": p95 * 1.5 if p99 is None else p99,
        },
        "rps": rps,
        "error_rate": error_rate,
        **extra,
    }


def benchmark_job(
    target,
    *,
    finished: datetime.datetime,
    run: Run | None = None,
    initiative=None,
    mode: str = "load",
    params: dict | None = None,
    summary: dict | None = None,
    measured: dict[str, float] | None = None,
    labels: dict[str, str] | None = None,
    per_second: dict[str, list[float]] | None = None,
    verdict: str = "",
    duration_s: float = 30.0,
) -> Job:
    """A succeeded benchmark job that ended at ``finished``.

    ``measured``: name (short or full, see SHORT_NAMES / UNITS) → value, stored as
    Measurements with the engine's unit and ``labels``. ``per_second``: a per-second row
    key as the engine writes it (``p95_ms``, ``ok``, ``achieved`` …) → one value per second,
    stored as ``sample.<key>`` rows like the runner stores them.
    """
    run = run or Run.objects.create(
        target=target,
        mode="custom",
        initiative=initiative,
        status="succeeded",
        finished_at=finished,
    )
    job = Job.objects.create(
        run=run,
        kind="benchmark",
        target=target,
        initiative=initiative,
        status=Job.SUCCEEDED,
        verdict=verdict,
        params=params if params is not None else {**LOAD_PARAMS, "mode": mode},
        started_at=finished - datetime.timedelta(seconds=duration_s),
        finished_at=finished,
        summary=summary if summary is not None else load_summary(mode=mode),
    )
    rows = []
    for key, value in (measured or {}).items():
        name = SHORT_NAMES.get(key, key)
        rows.append(
            Measurement(
                target=target,
                run=run,
                job=job,
                name=name,
                value=value,
                unit=UNITS[name],
                labels=dict(labels or {}),
                measured_at=finished,
            )
        )
    for key, values in (per_second or {}).items():
        rows.extend(
            Measurement(
                target=target,
                run=run,
                job=job,
                name=f"sample.{key}",
                value=value,
                unit=sample_unit(key),
                second=second,
                measured_at=finished,
            )
            for second, value in enumerate(values)
        )
    Measurement.objects.bulk_create(rows)
    return job
