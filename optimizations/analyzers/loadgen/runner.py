"""Start engine processes, relay their per-second progress, stop them on cancel.

The engine always runs as its own process (``python -m
optimizations.analyzers.loadgen.engine``): Celery's prefork children cannot
start multiprocessing children, and a generator sharing the worker's
interpreter would measure the worker as much as the target. One or more
engines (``workers``) each take a share of the rate and connections, pinned to
a core of their own where the machine allows; their per-second lines are
merged into one row per second for ``ctx.sample`` and their final histograms
into one result.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from optimizations.analyzers.base import Context
from optimizations.analyzers.loadgen.engine import COUNTERS, ERROR_CLASSES
from optimizations.analyzers.loadgen.hdr import DEFAULT_SUB_BITS, Histogram, bucket_bounds
from optimizations.analyzers.loadgen.journeys import merge_journeys

PROJECT_ROOT = Path(__file__).resolve().parents[3]
ENGINE_MODULE = "optimizations.analyzers.loadgen.engine"
# How long the engines may take to open their first connections before the clock starts.
STARTUP_ALLOWANCE = 15.0
# After SIGTERM an engine writes its result and exits in milliseconds; past this it is killed.
STOP_GRACE = 0.5
POLL_INTERVAL = 0.05
# ctx.cancelled() may ask the database; a fifth of a second keeps cancel well within a second.
CANCEL_CHECK_INTERVAL = 0.2


class EngineFailed(Exception):
    """An engine process could not run; the message says why."""


@dataclass
class RunOutput:
    """What one benchmark run (one or more engine processes) produced."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] = field(default_factory=dict)
    logs: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False
    cpus: list[int | None] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)
    # A distributed test: each generator's health (name, host, status, problem…).
    generators: list[dict[str, Any]] = field(default_factory=list)


def available_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def choose_cpus(workers: int, cpu: str | int | None = "auto") -> list[int | None]:
    """The core each engine is pinned to (None: not pinned).

    ``auto`` takes the least busy cores, measured over a tenth of a second, so
    on a machine where the target runs too the generator avoids the core the
    target is busy on. An explicit number pins the first engine there and the
    others on the next cores.
    """
    cpus = available_cpus()
    if cpu in (None, "", "none"):
        return [None] * workers
    if cpu != "auto":
        first = int(cpu)
        if first not in cpus:
            raise EngineFailed(f"CPU {first} is not available to this process ({cpus})")
        start = cpus.index(first)
        return [cpus[(start + i) % len(cpus)] for i in range(workers)]
    try:
        import psutil

        load = psutil.cpu_percent(interval=0.1, percpu=True)
    except (ImportError, OSError):
        load = []
    ranked = sorted(cpus, key=lambda c: (load[c] if c < len(load) else 0.0, -c))
    return [ranked[i % len(ranked)] for i in range(workers)]


def split_config(
    config: dict[str, Any], workers: int, cpus: list[int | None]
) -> list[dict[str, Any]]:
    """One engine configuration per worker: rate, ceiling and connections shared out."""
    parts = []
    for index in range(workers):
        part = dict(config)
        part["seed"] = int(config.get("seed", 1)) + index
        part["cpu"] = cpus[index]
        for key in ("rate", "max_rate"):
            if config.get(key):
                part[key] = float(config[key]) / workers
        for key in ("connections", "max_connections"):
            if config.get(key):
                total = int(config[key])
                part[key] = max(1, total // workers + (1 if index < total % workers else 0))
        parts.append(part)
    return parts


class _Worker:
    def __init__(self, index: int, config: dict[str, Any]) -> None:
        self.index = index
        self.config = config
        self.buffer = b""
        self.result: dict[str, Any] | None = None
        self.error = ""
        self.last_tick = 0
        self.finished = False
        self.ready = False  # connected, waiting for the start (a distributed test)
        # Closed in close(): it must outlive this constructor, so no with-block.
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", ENGINE_MODULE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            cwd=PROJECT_ROOT,
            env=env,
        )
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None  # both are pipes (PIPE above)
        self.stdin: IO[bytes] = stdin
        self.stdout: IO[bytes] = stdout
        os.set_blocking(self.stdout.fileno(), False)
        # The engine stops when this process is no longer its parent (we died).
        config = {**config, "parent_pid": os.getpid()}
        # An engine that died at once closed its stdin: its stderr says why (close()).
        with contextlib.suppress(BrokenPipeError):
            self.stdin.write(json.dumps(config).encode() + b"\n")
            self.stdin.flush()

    def read_lines(self) -> list[dict[str, Any]]:
        try:
            chunk = os.read(self.stdout.fileno(), 1 << 20)
        except BlockingIOError:
            return []
        if not chunk:
            self.finished = True
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        messages: list[dict[str, Any]] = []
        for line in lines:
            if line.strip():
                try:
                    messages.append(json.loads(line))
                except ValueError:
                    messages.append({"type": "log", "level": "warning", "message": line.decode()})
        return messages

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def close(self) -> str:
        """Reap the process; returns what it wrote on stderr."""
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()
        self.stdout.close()
        self.stderr.seek(0)
        text = self.stderr.read().decode(errors="replace")
        self.stderr.close()
        return text


def run_engines(
    config: dict[str, Any],
    ctx: Context,
    *,
    workers: int = 1,
    cpu: str | int | None = "auto",
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_poll: Callable[[], None] | None = None,
    start_gate: Callable[[], float | None] | None = None,
    on_ticks: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
) -> RunOutput:
    """Run the engines for one load pattern and return their merged output.

    Each merged per-second row goes to ``on_row`` (default ``ctx.sample``);
    ``on_poll`` is called about every 50 ms (the endurance mode samples memory
    there). ``ctx.cancelled()`` is checked as often: a cancel sends SIGTERM to
    every engine, which aborts its connections at once; an engine still alive
    half a second later is killed. The caller decides what a cancelled run
    means (``output.cancelled``).

    A generator of a distributed test passes ``start_gate``: once every engine
    has connected, it is called (it may block) and returns the wall-clock
    instant every generator agreed to start at, or None to stop without
    sending; ``on_ticks`` receives each second's raw engine ticks (bucket
    counts, for the parent to merge with the other generators') beside the
    merged row.
    """
    workers = max(1, min(int(workers), len(available_cpus())))
    cpus = choose_cpus(workers, cpu)
    if start_gate is not None:
        config = {**config, "wait_for_start": True}
    parts = split_config(config, workers, cpus)
    output = RunOutput(cpus=cpus)
    emit_row = on_row or ctx.sample
    pending: Pending = {}
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    deadline = started + STARTUP_ALLOWANCE + float(config["duration"])
    deadline += float(config.get("grace", config.get("timeout", 5.0))) + 5.0
    running: list[_Worker] = []
    sub_bits = int(config.get("sub_bits", DEFAULT_SUB_BITS))
    try:
        for index, part in enumerate(parts):
            worker = _Worker(index, part)
            running.append(worker)
            output.pids.append(worker.process.pid)
            selector.register(worker.stdout, selectors.EVENT_READ, worker)
        live = list(running)
        stopping = False
        gated = start_gate is None
        next_check = 0.0
        while live:
            if not gated and not stopping and all(w.ready or w.finished for w in running):
                gated = True
                asked = time.monotonic()
                at = start_gate() if start_gate is not None else None
                deadline += time.monotonic() - asked
                if at is None:
                    stopping, output.cancelled = True, True
                    stop_at = time.monotonic()
                    for worker in live:
                        worker.stop()
                else:
                    for worker in live:
                        with contextlib.suppress(BrokenPipeError, OSError):
                            worker.stdin.write(f"start {at!r}\n".encode())
                            worker.stdin.flush()
            now = time.monotonic()
            checking = not stopping and now >= next_check
            if checking:
                next_check = now + CANCEL_CHECK_INTERVAL
            if checking and (ctx.cancelled() or now > deadline):
                stopping = True
                output.cancelled = ctx.cancelled()
                if not output.cancelled:
                    output.logs.append(("error", "the engines overran their deadline; stopped"))
                stop_at = time.monotonic()
                for worker in live:
                    worker.stop()
            if stopping and time.monotonic() - stop_at > STOP_GRACE:
                for worker in live:
                    worker.kill()
            for key, _ in selector.select(POLL_INTERVAL):
                worker = key.data
                for message in worker.read_lines():
                    _handle(message, worker, output, pending)
                if worker.finished:
                    selector.unregister(worker.stdout)
                    live.remove(worker)
            _flush_rows(pending, running, emit_row, output, sub_bits, on_ticks=on_ticks)
            if on_poll is not None:
                on_poll()
    finally:
        for worker in running:
            worker.stop()
        errors = [(worker, worker.close()) for worker in running]
        selector.close()
    _flush_rows(pending, running, emit_row, output, sub_bits, everything=True, on_ticks=on_ticks)
    for worker, stderr in errors:
        if worker.result is None and not output.cancelled:
            detail = worker.error or (stderr.strip().splitlines() or ["no output"])[-1]
            raise EngineFailed(f"the load engine stopped without a result: {detail}")
    output.result = merge_results([w.result for w in running if w.result])
    return output


# Per-second ticks of the engines waiting to be merged, by second.
type Pending = dict[int, list[dict[str, Any]]]


def _handle(message: dict[str, Any], worker: _Worker, output: RunOutput, pending: Pending) -> None:
    kind = message.get("type")
    if kind == "tick":
        worker.last_tick = message["t"]
        pending.setdefault(message["t"], []).append(message)
    elif kind == "ready":
        worker.ready = True
    elif kind == "result":
        worker.result = message
    elif kind == "error":
        worker.error = message.get("message", "")
    elif kind == "log":
        output.logs.append((message.get("level", "info"), message.get("message", "")))


def _flush_rows(
    pending: Pending,
    workers: list[_Worker],
    emit_row: Callable[[dict[str, Any]], None],
    output: RunOutput,
    sub_bits: int,
    everything: bool = False,
    on_ticks: Callable[[list[dict[str, Any]], dict[str, Any]], None] | None = None,
) -> None:
    """Emit each second once every engine still running has reported it."""
    for t in sorted(pending):
        waiting_for = [w for w in workers if not w.finished and w.result is None]
        if not everything and any(w.last_tick < t for w in waiting_for):
            break
        ticks = pending.pop(t)
        row = merge_ticks(ticks, sub_bits)
        output.rows.append(row)
        if on_ticks is not None:
            on_ticks(ticks, row)
        emit_row(row)


def _ms(value_us: float) -> float:
    return round(value_us / 1000.0, 3)


def merge_ticks(ticks: list[dict[str, Any]], sub_bits: int = DEFAULT_SUB_BITS) -> dict[str, Any]:
    """One per-second row (the chart's) from the same second of every engine."""
    latency, service, lag = Histogram(sub_bits), Histogram(sub_bits), Histogram(sub_bits)
    counts = dict.fromkeys(COUNTERS, 0)
    for tick in ticks:
        for name in COUNTERS:
            counts[name] += tick.get(name, 0)
        for histogram, key in ((latency, "latency"), (service, "service"), (lag, "lag")):
            histogram.add_counts(dict(map(tuple, tick.get(key, []))), 0, 0, 0)
    interval = max(tick.get("interval", 1.0) for tick in ticks)
    # Rates over at least one second: the last, partial second must not spike the chart.
    per = max(interval, 1.0)
    achieved = counts["ok"] + counts["non_2xx"]
    errors = sum(counts[name] for name in ERROR_CLASSES)
    answered = counts["ok"] + errors
    p50, p95, p99, top = _bucket_percentiles(latency, (0.5, 0.95, 0.99, 1.0))
    s50, s99 = _bucket_percentiles(service, (0.5, 0.99))
    (lag99,) = _bucket_percentiles(lag, (0.99,))
    row = {
        "t": ticks[0]["t"],
        "elapsed": round(max(tick.get("elapsed", 0.0) for tick in ticks), 3),
        "interval": round(interval, 3),
        "final": any(tick.get("final") for tick in ticks),
        "offered": round(counts["offered"] / per, 1),
        "achieved": round(achieved / per, 1),
        "sent": counts["sent"],
        "ok": counts["ok"],
        "errors": errors,
        **{name: counts[name] for name in ERROR_CLASSES},
        "late": counts["late"],
        "dropped": counts["dropped"],
        "error_rate": round(errors / answered, 6) if answered else 0.0,
        "p50_ms": _ms(p50),
        "p95_ms": _ms(p95),
        "p99_ms": _ms(p99),
        "max_ms": _ms(top),
        "service_p50_ms": _ms(s50),
        "service_p99_ms": _ms(s99),
        "send_lag_p99_ms": _ms(lag99),
        "cpu_percent": round(max(tick.get("cpu", 0.0) for tick in ticks), 1),
        "connections": sum(tick.get("connections", 0) for tick in ticks),
        "in_flight": sum(tick.get("in_flight", 0) for tick in ticks),
        "queued": sum(tick.get("queued", 0) for tick in ticks),
    }
    # The machine's figures (machine.py), where the engines could read them: the
    # worst engine's, as the validity guard asks whether any generator was held up.
    for key in ("sched_wait_ms", "machine_busy_pct", "steal_pct", "run_queue", "cores"):
        values = [tick[key] for tick in ticks if key in tick]
        if values:
            row[key] = max(values)
    if len(ticks) > 1:
        row["workers"] = len(ticks)
    return row


def _bucket_percentiles(histogram: Histogram, quantiles: Sequence[float]) -> list[int]:
    # Per-second ticks carry bare bucket counts: no exact max, so read bucket tops.
    if not histogram.total:
        return [0] * len(quantiles)
    histogram.max = max(h for _, h, _ in histogram.buckets())
    histogram.min = min(low for low, _, _ in histogram.buckets())
    return histogram.percentiles(quantiles)


def merge_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One engine-shaped result from several engines' results (several processes or machines).

    Counts add up, histograms merge bucket by bucket, per-operation figures
    merge by operation name; ``cpu_samples`` keeps, second by second, the
    busiest engine (the validity guard asks whether *any* generator was
    saturated). ``elapsed`` is the longest engine's.
    """
    if not results:
        return {}
    if len(results) == 1:
        merged = dict(results[0])
        merged.setdefault("workers", 1)
        return merged
    sub_bits = {r.get("sub_bits", DEFAULT_SUB_BITS) for r in results}
    if len(sub_bits) > 1:
        raise ValueError("cannot merge engine results of different histogram precision")
    operations: dict[str, dict[str, Any]] = {}
    for result in results:
        for op in result.get("operations", []):
            into = operations.setdefault(
                op["name"],
                {
                    "name": op["name"],
                    "ok": 0,
                    "errors": dict.fromkeys(ERROR_CLASSES, 0),
                    "status": {},
                    "latency": {"counts": [], "sum": 0, "max": 0},
                    "service": {"counts": [], "sum": 0, "max": 0},
                },
            )
            into["ok"] += op["ok"]
            for name, count in op.get("errors", {}).items():
                into["errors"][name] = into["errors"].get(name, 0) + count
            for code, count in op.get("status", {}).items():
                into["status"][code] = into["status"].get(code, 0) + count
            for key in ("latency", "service"):
                into[key] = _merge_sparse(into[key], op[key])
    lag = {"counts": [], "sum": 0, "max": 0}
    for result in results:
        lag = _merge_sparse(lag, result.get("lag", lag))
    width = max(len(r.get("cpu_samples", [])) for r in results)
    cpu = [
        max(r["cpu_samples"][i] for r in results if i < len(r.get("cpu_samples", [])))
        for i in range(width)
    ]
    first = results[0]
    return {
        **{key: first.get(key) for key in ("type", "engine_version", "loop", "model", "sub_bits")},
        "rate": sum(r.get("rate", 0.0) for r in results),
        "duration": max(r.get("duration", 0.0) for r in results),
        "elapsed": max(r.get("elapsed", 0.0) for r in results),
        "cancelled": any(r.get("cancelled") for r in results),
        "cancelled_in_flight": sum(r.get("cancelled_in_flight", 0) for r in results),
        "totals": {
            name: sum(r.get("totals", {}).get(name, 0) for r in results) for name in COUNTERS
        },
        "cpu_samples": cpu,
        "lag": lag,
        "connections_opened": sum(r.get("connections_opened", 0) for r in results),
        "error_samples": [s for r in results for s in r.get("error_samples", [])][:10],
        "operations": list(operations.values()),
        "workers": sum(r.get("workers", 1) for r in results),
        **(
            {
                "journey_rate": sum(r.get("journey_rate", 0.0) for r in results),
                "journeys": merge_journeys([r["journeys"] for r in results if r.get("journeys")]),
            }
            if any(r.get("journeys") for r in results)
            else {}
        ),
    }


def _merge_sparse(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    counts = dict(map(tuple, a.get("counts", [])))
    for index, count in b.get("counts", []):
        counts[index] = counts.get(index, 0) + count
    return {
        "counts": [[index, counts[index]] for index in sorted(counts)],
        "sum": a.get("sum", 0) + b.get("sum", 0),
        "max": max(a.get("max", 0), b.get("max", 0)),
    }


def histogram_of(part: dict[str, Any], sub_bits: int = DEFAULT_SUB_BITS) -> Histogram:
    """A Histogram from an engine result's ``{"counts", "sum", "max"}``."""
    histogram = Histogram(sub_bits)
    counts = dict(map(tuple, part.get("counts", [])))
    if counts:
        low = bucket_bounds(min(counts), sub_bits)[0]
        histogram.add_counts(counts, part.get("sum", 0), low, part.get("max", 0))
    return histogram
