"""Distributed load tests: one benchmark job's load sent by several generators.

A load, stress or endurance test may ask for N generators (the ``generators``
parameter). The benchmark job itself — the parent, which holds the target's
lease (lease.py) — runs every load pattern of the test (a warm-up, the
measured run, each stress step) as a *round*:

1. it writes one ``Generator`` row per generator with its share of the rate
   and connections (loadgen.runner.split_config), keeps the first for itself
   (a thread beside the coordination: N benchmark workers make N generators)
   and sends the others to the benchmark queue (``run_generator``);
2. a worker claims a row with a conditional UPDATE; unless
   KAIZEN_GENERATORS_SHARE_HOST is set, a second generator of the round on a
   host that already has one gives its row back and sends it on again (one
   load test per worker host: two generators on one host measure each other);
3. each generator connects its engines, says it is ready, and waits; once
   every generator is ready — or KAIZEN_GENERATOR_READY_SECONDS have passed,
   and those not ready are named — the parent publishes a start instant a
   couple of seconds ahead, and every engine starts sending at that instant;
4. each generator stores its per-second rows (``GeneratorSecond``: its
   engines' raw HDR bucket counts and its own row), with a heartbeat; the
   parent merges them second by second (loadgen.runner.merge_ticks) into the
   job's per-second rows, and their final results bucket by bucket
   (merge_results), so the percentiles are those of one histogram;
5. a generator that was not ready in time, failed, went silent for
   KAIZEN_GENERATOR_LOST_SECONDS (its worker died) or fell behind (the
   generator-limited guard, loadgen.report.validity) is named in the
   generator health the analyzer puts in the result, and the verdict is
   incomplete (loadgen.modes._judge_generators).

The hosts' clocks must agree (NTP) to the precision wanted for the start.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from optimizations.analyzers.loadgen import report
from optimizations.analyzers.loadgen.hdr import DEFAULT_SUB_BITS
from optimizations.analyzers.loadgen.runner import (
    EngineFailed,
    RunOutput,
    merge_results,
    merge_ticks,
    run_engines,
    split_config,
)
from optimizations.jobs import kinds
from optimizations.models import Generator, GeneratorSecond, Job
from portal.celery import app as celery_app

logger = logging.getLogger(__name__)

# Sent by name: tasks.py sits above this module.
RUN_GENERATOR_TASK = "optimizations.tasks.run_generator"
# Between the start being published and the first request: every generator reads it in time.
START_LEAD = 2.0
POLL = 0.2
BEAT = 0.5
# A generator sent back to the queue (its host already sends this round) tries again after.
RESEND_DELAY = 1.0
LIVE = (Generator.CLAIMED, Generator.READY, Generator.RUNNING)


def distribute(
    job: Job,
    ctx,
    config: dict[str, Any],
    *,
    generators: int,
    workers: int = 1,
    cpu: str | int | None = "auto",
    on_row: Callable[[dict[str, Any]], None],
    on_poll: Callable[[], None] | None = None,
) -> RunOutput:
    """Run one load pattern (``config``, as run_engines takes it) over ``generators``
    generators and return the merged output, with each generator's health."""
    last = Generator.objects.filter(job=job).aggregate(Max("round"))["round__max"] or 0
    round_ = last + 1
    seed = int(config.get("seed", 1))
    parts = split_config(config, generators, [None] * generators)
    Generator.objects.bulk_create(
        Generator(
            job=job,
            round=round_,
            index=index,
            # Seeds far apart: each generator's engine processes count up from its own.
            config={**{k: v for k, v in part.items() if k != "cpu"}, "seed": seed + 1000 * index},
            processes=workers,
            cpu=str(cpu if cpu is not None else "none"),
        )
        for index, part in enumerate(parts)
    )
    ids = list(
        Generator.objects.filter(job=job, round=round_)
        .order_by("index")
        .values_list("pk", flat=True)
    )
    kind = kinds.get(job.kind)
    for pk in ids[1:]:
        send(pk, kind.time_limit)
    local = threading.Thread(
        target=_serve_here, args=(ids[0], job.worker or "parent"), name=f"job-{job.pk}-g1"
    )
    local.start()
    try:
        return _coordinate(job, ids, ctx, on_row, on_poll, int(config.get("sub_bits", 0)))
    finally:
        # Whatever happened here, no generator of this round goes on sending.
        Generator.objects.filter(pk__in=ids, status__in=Generator.ACTIVE).update(stop=True)
        local.join(timeout=float(config.get("timeout", 5.0)) + 10.0)


def send(generator_id: int, time_limit: int, countdown: float = 0.0) -> None:
    """Send one generator to the benchmark queue; one that cannot be sent is not ready."""
    try:
        celery_app.signature(RUN_GENERATOR_TASK).apply_async(
            args=(generator_id,),
            queue="benchmark",
            countdown=countdown,
            time_limit=time_limit,
            soft_time_limit=max(30, time_limit - 30),
        )
    except Exception as error:  # the broker went away
        logger.warning("could not send generator %s: %s", generator_id, error)
        Generator.objects.filter(pk=generator_id, status=Generator.PENDING).update(
            status=Generator.NOT_READY,
            problem=f"it could not be sent to the benchmark queue ({type(error).__name__})",
            finished_at=timezone.now(),
        )


def _serve_here(generator_id: int, worker: str) -> None:
    try:
        serve(generator_id, worker)
    finally:
        connection.close()  # this thread's own connection


def _coordinate(
    job: Job,
    ids: list[int],
    ctx,
    on_row: Callable[[dict[str, Any]], None],
    on_poll: Callable[[], None] | None,
    sub_bits: int,
) -> RunOutput:
    sub_bits = sub_bits or DEFAULT_SUB_BITS
    count = len(ids)
    ready_by = time.monotonic() + settings.KAIZEN_GENERATOR_READY_SECONDS
    lost_after = settings.KAIZEN_GENERATOR_LOST_SECONDS
    output = RunOutput()
    start_at: float | None = None
    stopped = False
    seen = 0
    # Second -> generator id -> its engines' ticks of that second.
    pending: dict[int, dict[int, list[dict[str, Any]]]] = {}
    reported: dict[int, int] = {}  # generator id -> the last second it stored
    while True:
        gens = list(
            Generator.objects.filter(pk__in=ids)
            .order_by("index")
            .only("pk", "index", "status", "heartbeat_at", "start_at", "host")
        )
        now = timezone.now()
        if not stopped and ctx.cancelled():
            stopped = output.cancelled = True
            Generator.objects.filter(pk__in=ids, status__in=Generator.ACTIVE).update(stop=True)
            # Never claimed: nobody else will end them.
            Generator.objects.filter(pk__in=ids, status=Generator.PENDING).update(
                status=Generator.CANCELLED, finished_at=now
            )
        for gen in gens:
            if gen.status in LIVE and gen.heartbeat_at is not None:
                silent = (now - gen.heartbeat_at).total_seconds()
                if silent > lost_after and _end(
                    gen,
                    Generator.LOST,
                    f"it went silent (no heartbeat for {silent:.0f} s; its worker died or was "
                    "cut off)",
                    from_status=gen.status,
                ):
                    gen.status = Generator.LOST
                    ctx.log(f"generator {gen.name} on {gen.host} was lost mid-run", "warning")
        if start_at is None and not stopped:
            ready = [g for g in gens if g.status == Generator.READY]
            waiting = [g for g in gens if g.status in (Generator.PENDING, Generator.CLAIMED)]
            late = time.monotonic() > ready_by
            if late:
                for gen in waiting:
                    why = (
                        "no benchmark worker took it"
                        if gen.status == Generator.PENDING
                        else f"it was still connecting on {gen.host}"
                    )
                    seconds = settings.KAIZEN_GENERATOR_READY_SECONDS
                    if _end(
                        gen,
                        Generator.NOT_READY,
                        f"not ready within {seconds} s: {why}",
                        from_status=gen.status,
                    ):
                        gen.status = Generator.NOT_READY
                waiting = [g for g in gens if g.status in (Generator.PENDING, Generator.CLAIMED)]
            if ready and not waiting:
                start_at = time.time() + START_LEAD
                Generator.objects.filter(
                    pk__in=[g.pk for g in ready], status=Generator.READY
                ).update(start_at=start_at)
                ctx.log(
                    f"{len(ready)} of {count} generators ready "
                    f"({', '.join(f'{g.name} on {g.host}' for g in ready)}); "
                    f"the load starts in {START_LEAD:g} s"
                )
        for pk, generator_id, t, ticks in (
            GeneratorSecond.objects.filter(generator_id__in=ids, pk__gt=seen)
            .order_by("pk")
            .values_list("pk", "generator_id", "t", "ticks")
        ):
            seen = pk
            pending.setdefault(t, {})[generator_id] = ticks
            reported[generator_id] = max(reported.get(generator_id, -1), t)
        ended = all(g.status in Generator.ENDED for g in gens)
        # A second is merged once every generator still sending has stored it.
        sending = [g.pk for g in gens if g.status in LIVE and g.start_at is not None]
        for t in sorted(pending):
            if not ended and any(reported.get(pk, -1) < t for pk in sending):
                break
            parts = pending.pop(t)
            row = merge_ticks([tick for part in parts.values() for tick in part], sub_bits)
            row["generators"] = len(parts)
            output.rows.append(row)
            on_row(row)
        if on_poll is not None:
            on_poll()
        if ended:
            break
        if start_at is None and not any(g.status in Generator.ACTIVE for g in gens):
            break  # nobody is left to start
        time.sleep(POLL)
    return _outcome(ids, output, sub_bits)


def _end(gen: Generator, status: str, problem: str, *, from_status: str) -> bool:
    """The parent ends a generator (lost, not ready): it stops, and is named."""
    return bool(
        Generator.objects.filter(pk=gen.pk, status=from_status).update(
            status=status, problem=problem, stop=True, finished_at=timezone.now()
        )
    )


def _outcome(ids: list[int], output: RunOutput, sub_bits: int) -> RunOutput:
    gens = list(Generator.objects.filter(pk__in=ids).order_by("index"))
    rows: dict[int, list[dict[str, Any]]] = {}
    for generator_id, row in (
        GeneratorSecond.objects.filter(generator_id__in=ids)
        .order_by("generator_id", "t")
        .values_list("generator_id", "row")
    ):
        rows.setdefault(generator_id, []).append(row)
    # Merged: the raw bucket counts have served; each generator's own rows stay.
    GeneratorSecond.objects.filter(generator_id__in=ids).update(ticks=[])
    results = [g.result for g in gens if g.status == Generator.DONE and g.result]
    output.result = merge_results(results) if results else {}
    output.generators = [health(g, rows.get(g.pk, [])) for g in gens]
    if not results and not output.cancelled:
        raise EngineFailed(
            "no generator produced a result: "
            + "; ".join(f"{h['name']}: {h['problem']}" for h in output.generators)
        )
    return output


def health(gen: Generator, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the job page and the verdict say of one generator."""
    result = gen.result or {}
    totals = result.get("totals", {})
    sent = totals.get("sent", sum(row.get("sent", 0) for row in rows))
    out: dict[str, Any] = {
        "name": gen.name,
        "host": gen.host,
        "worker": gen.worker,
        "status": gen.status,
        "seconds": len(rows),
        "sent": sent,
        "ok": totals.get("ok", sum(row.get("ok", 0) for row in rows)),
        "offered_rate": gen.config.get("rate"),
        "connections": gen.config.get("connections"),
        "generator_limited": False,
        "problem": gen.problem,
    }
    if gen.status == Generator.DONE and result:
        validity = report.validity(result, rows)
        out["generator_limited"] = validity["generator_limited"]
        out["cpu_max"] = validity["cpu_max"]
        out["send_lag_p99_ms"] = validity["send_lag_p99_ms"]
        if validity["generator_limited"]:
            out["problem"] = f"{validity['limited_by']}-limited: " + "; ".join(validity["reasons"])
    elif gen.status == Generator.CANCELLED:
        out["problem"] = out["problem"] or "cancelled"
    out["healthy"] = gen.status == Generator.DONE and not out["generator_limited"]
    return out


# --- the generator's side -------------------------------------------------------


class _Beat:
    """A generator's heartbeat, its per-second rows going to the database, and the
    parent's word (start, stop) read every half second."""

    def __init__(self, gen: Generator) -> None:
        self.gen = gen
        self.lock = threading.Lock()
        self.seconds: list[GeneratorSecond] = []
        self.stop_asked = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, name=f"gen-{gen.pk}-beat", daemon=True)

    # The Context run_engines asks.
    def cancelled(self) -> bool:
        return self.stop_asked.is_set()

    def check_cancel(self) -> None:
        pass  # run_engines asks cancelled() itself

    def log(self, message: str, level: str = "info") -> None:
        pass  # run_engines returns its logs in its output

    def progress(self, percent: float, step: str = "") -> None:
        pass

    def sample(self, row: dict[str, Any]) -> None:
        pass

    def on_ticks(self, ticks: list[dict[str, Any]], row: dict[str, Any]) -> None:
        with self.lock:
            self.seconds.append(
                GeneratorSecond(generator_id=self.gen.pk, t=row["t"], ticks=ticks, row=row)
            )

    def flush(self) -> None:
        with self.lock:
            seconds, self.seconds = self.seconds, []
        if seconds:
            GeneratorSecond.objects.bulk_create(seconds)
        now = timezone.now()
        # The parent must be alive too: a generator whose parent died (and gave the
        # target's lease up, or will when it is reaped) stops sending.
        parent_silent = datetime.timedelta(seconds=2 * settings.KAIZEN_GENERATOR_LOST_SECONDS)
        alive = Generator.objects.filter(
            pk=self.gen.pk,
            status__in=LIVE,
            stop=False,
            job__status=Job.RUNNING,
            job__heartbeat_at__gte=now - parent_silent,
        ).update(heartbeat_at=now)
        if not alive:
            self.stop_asked.set()

    def _loop(self) -> None:
        try:
            while not self.done.wait(BEAT):
                try:
                    self.flush()
                except Exception:  # a locked database must not stop the load
                    logger.exception("generator %s could not write its seconds", self.gen.pk)
        finally:
            connection.close()

    def gate(self) -> float | None:
        """Connected: say so, and wait for the parent's start (None: do not start)."""
        ready = Generator.objects.filter(pk=self.gen.pk, status=Generator.CLAIMED).update(
            status=Generator.READY, ready_at=timezone.now(), heartbeat_at=timezone.now()
        )
        while ready and not self.stop_asked.is_set():
            row = Generator.objects.filter(pk=self.gen.pk).values("status", "stop", "start_at")
            state = row.first()
            if state is None or state["stop"] or state["status"] != Generator.READY:
                break
            if state["start_at"] is not None:
                Generator.objects.filter(pk=self.gen.pk, status=Generator.READY).update(
                    status=Generator.RUNNING
                )
                return float(state["start_at"])
            time.sleep(0.05)
        return None


def serve(generator_id: int, worker: str) -> str:
    """Be one generator of a distributed test (in a benchmark worker). Safe to deliver
    twice: only the first claim runs it."""
    gen = Generator.objects.select_related("job").filter(pk=generator_id).first()
    if gen is None:
        return "gone"
    host = settings.KAIZEN_GENERATOR_HOST or socket.gethostname()
    now = timezone.now()
    claimed = Generator.objects.filter(pk=gen.pk, status=Generator.PENDING, stop=False).update(
        status=Generator.CLAIMED,
        host=host,
        worker=worker,
        pid=os.getpid(),
        claimed_at=now,
        heartbeat_at=now,
    )
    if not claimed:
        return "not claimed"
    gen.refresh_from_db()
    if not settings.KAIZEN_GENERATORS_SHARE_HOST and _host_taken(gen):
        # One load generator per host: give the row back for a worker on another host.
        if Generator.objects.filter(pk=gen.pk, status=Generator.CLAIMED).update(
            status=Generator.PENDING, host="", worker="", pid=None, claimed_at=None
        ):
            send(gen.pk, kinds.get(gen.job.kind).time_limit, countdown=RESEND_DELAY)
        return f"host {host} already sends this test"
    beat = _Beat(gen)
    beat.thread.start()
    try:
        output = run_engines(
            gen.config,
            beat,
            workers=gen.processes,
            cpu=None if gen.cpu == "none" else gen.cpu,
            on_row=lambda row: None,
            start_gate=beat.gate,
            on_ticks=beat.on_ticks,
        )
    except Exception as error:
        beat.done.set()
        beat.thread.join(timeout=5)
        beat.flush()
        detail = str(error) if isinstance(error, EngineFailed) else f"{type(error).__name__}"
        Generator.objects.filter(pk=gen.pk, status__in=LIVE).update(
            status=Generator.FAILED,
            problem=f"its engine failed: {detail}"[:2000],
            finished_at=timezone.now(),
        )
        if not isinstance(error, EngineFailed):
            logger.exception("generator %s failed", gen.pk)
        return "failed"
    beat.done.set()
    beat.thread.join(timeout=5)
    beat.flush()
    with transaction.atomic():
        # Its seconds are stored before it says done: the parent merges them first.
        ended = Generator.objects.filter(pk=gen.pk, status__in=LIVE)
        if output.cancelled or not output.result:
            ended.update(
                status=Generator.CANCELLED,
                problem="stopped before it sent its share",
                finished_at=timezone.now(),
            )
            return "cancelled"
        # What its engines said (connections that could not be opened…), for the job page.
        notes = [f"{level}: {message}" for level, message in output.logs][:20]
        ended.update(
            status=Generator.DONE,
            result={**output.result, "notes": notes},
            finished_at=timezone.now(),
        )
    return "done"


def _host_taken(gen: Generator) -> bool:
    """Another generator of this round already sends from this host (claimed first)."""
    others = Generator.objects.filter(
        job_id=gen.job_id, round=gen.round, host=gen.host, status__in=LIVE
    ).exclude(pk=gen.pk)
    return any(
        (other.claimed_at, other.index) < (gen.claimed_at, gen.index)
        for other in others.only("claimed_at", "index")
        if other.claimed_at is not None and gen.claimed_at is not None
    )
