"""Running one job inside a Celery worker, and storing what it produced.

``execute`` claims the job (a duplicate delivery backs off), gives the
analyzer a JobContext, and stores the result. The context buffers progress,
log lines and per-second samples; a small thread writes them every half
second together with the heartbeat, and reads the cancel flag — so a
100 000-line log costs a few hundred inserts, not 100 000, and a cancel from
the UI reaches the analyzer within about a second.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from optimizations.analyzers.base import (
    AnalysisError,
    AnalysisResult,
    Cancelled,
    TargetSpec,
    validate_params,
)
from optimizations.analyzers.loadgen.engine import ERROR_CLASSES
from optimizations.analyzers.netguard import HostNotAllowed
from optimizations.jobs import baselines, generators, kinds, landing, lease
from optimizations.models import Job, JobArtifact, JobLog, Measurement
from optimizations.targets.crypto import CredentialUnreadable
from optimizations.work import findings
from portal import hooks

logger = logging.getLogger(__name__)

FLUSH_INTERVAL = 0.5
MAX_LOG_MESSAGE = 4000


def target_spec(target, *, with_database: bool = True) -> TargetSpec:
    """What an analyzer may know of a target: plain values, secrets decrypted
    (the database URL only for those who need it)."""
    header = None
    if target.auth_header_name and target.auth_header_value_encrypted:
        header = (target.auth_header_name, target.auth_header_value)
    return TargetSpec(
        name=target.name,
        base_url=target.base_url,
        health_path=target.health_path,
        openapi_path=target.openapi_path,
        metrics_path=target.metrics_path,
        auth_header=header,
        database_url=target.database_url if with_database and target.database_url_encrypted else "",
        source_path=target.source_location,
        thresholds=target.thresholds(),
        max_rate=float(target.max_rate),
        max_duration=float(target.max_duration),
        allowed_hosts=tuple(settings.KAIZEN_ALLOWED_TARGET_HOSTS),
        # The target's "allows writes" setting (a staging deployment, the demo).
        allows_writes=target.allows_writes,
    )


class JobContext:
    """The analyzer's view of its job: progress, log, samples, cancel."""

    def __init__(self, job: Job):
        self.job = job
        self._lock = threading.Lock()
        self._logs: list[tuple[Any, str, str]] = []
        self._samples: list[dict] = []
        self._percent = job.progress
        self._step = job.step
        self._dirty = True
        self._cancel = threading.Event()
        self._stop = threading.Event()
        self._seq = job.log_lines
        # Per-second rows are numbered in arrival order: the live chart asks
        # for "rows after N", whatever time axis the analyzer's rows carry.
        self._rows = 0
        self._thread = threading.Thread(target=self._loop, name=f"job-{job.pk}-flush", daemon=True)
        self.lost = False  # the row left "running" under us (reaped or cancelled)

    # --- the Context protocol --------------------------------------------

    def progress(self, percent: float, step: str = "") -> None:
        with self._lock:
            self._percent = max(0.0, min(100.0, float(percent)))
            if step:
                self._step = step[:200]
            self._dirty = True

    def log(self, message: str, level: str = "info") -> None:
        with self._lock:
            self._logs.append((timezone.now(), level[:10], str(message)[:MAX_LOG_MESSAGE]))

    def sample(self, row: dict) -> None:
        with self._lock:
            self._samples.append(dict(row))

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def distribute(self, config: dict, **options: Any):
        """A distributed load test's round over several generators (generators.py)."""
        return generators.distribute(self.job, self, config, **options)

    def check_cancel(self) -> None:
        if self._cancel.is_set():
            raise Cancelled("cancelled")

    # --- the writer thread ---------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(FLUSH_INTERVAL):
                try:
                    self.flush()
                except Exception:  # a locked or lost database must not kill the job
                    logger.exception("could not write the progress of job %s", self.job.pk)
        finally:
            connection.close()  # this thread's own connection

    def flush(self) -> None:
        with self._lock:
            logs, self._logs = self._logs, []
            samples, self._samples = self._samples, []
            percent, step, dirty = self._percent, self._step, self._dirty
            self._dirty = False
        now = timezone.now()
        with transaction.atomic():
            if logs:
                first = self._seq + 1
                JobLog.objects.bulk_create(
                    JobLog(job_id=self.job.pk, seq=first + i, at=at, level=level, message=text)
                    for i, (at, level, text) in enumerate(logs)
                )
                self._seq += len(logs)
            if samples:
                Measurement.objects.bulk_create(_sample_rows(self.job, samples, now, self._rows))
                self._rows += len(samples)
            fields = {"heartbeat_at": now, "log_lines": self._seq}
            if dirty:
                fields.update(progress=percent, step=step)
            alive = Job.objects.filter(pk=self.job.pk, status=Job.RUNNING).update(**fields)
        state = Job.objects.filter(pk=self.job.pk).values_list("cancel_requested", "status").first()
        if not alive or state is None or state[0] or state[1] != Job.RUNNING:
            self.lost = not alive or state is None or state[1] != Job.RUNNING
            self._cancel.set()


def _numbers(row: dict, prefix: str = ""):
    for key, value in row.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            yield prefix + key, float(value)
        elif isinstance(value, dict):
            yield from _numbers(value, f"{prefix}{key}.")


def _sample_rows(job: Job, samples: list[dict], now, first: int) -> list[Measurement]:
    """Each per-second row becomes one Measurement per number in it, numbered from ``first``."""
    rows = []
    for index, sample in enumerate(samples, start=first):
        second = index
        labels = {k: str(v) for k, v in sample.items() if k in ("step", "phase", "operation")}
        for name, value in _numbers(sample):
            rows.append(
                Measurement(
                    target_id=job.target_id,
                    run_id=job.run_id,
                    job_id=job.pk,
                    name=f"sample.{name}",
                    value=value,
                    unit=sample_unit(name),
                    labels=labels,
                    second=second,
                    measured_at=now,
                )
            )
    return rows


# The per-second row's counters (loadgen/runner.py): requests, and the engine's own queues.
_REQUEST_COUNTS = frozenset(("sent", "ok", "errors", "late", "dropped", *ERROR_CLASSES))
_ENGINE_COUNTS = frozenset(("connections", "in_flight", "queued", "run_queue", "cores"))


def sample_unit(key: str) -> str:
    """The unit of one number of a per-second row, by the key the engine gives it.

    The row says its unit in its key's suffix (``p95_ms``, ``cpu_percent``,
    ``machine_busy_pct``); rates and counters are named by what they count.
    """
    last = key.rsplit(".", 1)[-1]
    if last.endswith("_ms") or last in ("p50", "p90", "p95", "p99", "max"):
        return "ms"
    if last.endswith(("_percent", "_pct")) or last == "cpu":
        return "%"
    if last in ("offered", "achieved"):
        return "req/s"
    if last in _REQUEST_COUNTS:
        return "req"
    if last in _ENGINE_COUNTS:
        return "count"
    if last == "error_rate":
        return "ratio"
    if last in ("t", "elapsed", "interval"):
        return "s"
    return ""


def execute(job_id: int, worker: str) -> str:
    """Run job ``job_id`` in this worker. Returns what happened, for the task's log."""
    job = Job.objects.select_related("target", "run").filter(pk=job_id).first()
    if job is None:
        return "gone"
    if not job.claim(worker):
        job.refresh_from_db()
        if job.cancel_abandoned():
            # Asked to stop before any worker took it (its earlier worker died): it ends here.
            landing.finish(job)
            return "cancelled"
        return f"not claimed ({job.status})"  # a duplicate delivery, or cancelled meanwhile
    kind = kinds.get(job.kind)
    ctx = JobContext(job)
    ctx.start()
    outcome = "failed"
    try:
        analyzer = kind.analyzer()
        if analyzer is None:
            raise AnalysisError(f"The {kind.label} is not available in this Kaizen installation.")
        try:
            params = validate_params(kind.params(), dict(job.params))
        except ValueError as error:
            raise AnalysisError(f"Its parameters are not valid for this Kaizen: {error}") from None
        ctx.log(f"{kind.label} on {job.target.name} (attempt {job.attempt}) on {worker}")
        spec = target_spec(job.target)
        try:
            if lease.needs_lease(job.kind):
                # It holds the target's lease: the target must be healthy and cooled down.
                lease.cool_down(job, spec, ctx)
                result = analyzer.run(spec, params, ctx)
            elif job.kind in lease.WATCH_KINDS:
                # It measures the target: never beside our own load (see lease.measure_alone).
                result = lease.measure_alone(
                    job, spec, ctx, lambda: analyzer.run(spec, params, ctx)
                )
            else:
                result = analyzer.run(spec, params, ctx)
        finally:
            if wrote(kind, params):
                _after_writes(job, ctx)
        ctx.check_cancel()
    except Cancelled:
        ctx.stop()
        outcome = "lost" if ctx.lost else "cancelled"
        if not ctx.lost:
            ctx.log("stopped: cancelled", "warning")
            ctx.flush()
            job.confirm_cancelled()
    except (AnalysisError, HostNotAllowed, CredentialUnreadable) as error:
        ctx.log(str(error), "error")
        ctx.stop()
        job.fail(str(error))
    except SoftTimeLimitExceeded:
        ctx.log("stopped: the job ran past its time limit", "error")
        ctx.stop()
        job.fail(f"It ran past its time limit of {kind.time_limit} s and was stopped.")
    except Exception as error:
        ctx.log(traceback.format_exc(), "error")
        ctx.stop()
        job.fail(
            f"Kaizen hit an internal error while running it ({type(error).__name__}: {error}). "
            "The job log has the details."
        )
        logger.exception("job %s failed", job.pk)
    else:
        ctx.stop()
        if ctx.lost:
            outcome = "lost"
        else:
            store_result(job, kind, result)
            outcome = "succeeded"
    landing.finish(job)
    return outcome


def store_result(job: Job, kind: kinds.Kind, result: AnalysisResult) -> None:
    """Findings upserted by fingerprint, vanished ones fixed, measurements saved."""
    now = timezone.now()
    with transaction.atomic():
        # Findings have one owner: the service upserts them and fixes only what a
        # check that ran again no longer reported.
        reported, fixed = findings.record_result(job, kind.source, result, now)
        Measurement.objects.bulk_create(
            Measurement(
                target_id=job.target_id,
                run_id=job.run_id,
                job_id=job.pk,
                name=m.name,
                value=float(m.value),
                unit=m.unit,
                labels=m.labels,
                measured_at=now,
            )
            for m in result.measurements
        )
        summary = dict(result.summary)
        summary["checks"] = [
            {"id": c.check_id, "status": c.status, "detail": c.detail} for c in result.checks
        ]
        # Kept apart from the analyzer's own keys (a security scan has "findings" too).
        summary["tracked"] = {"reported": len(reported), "fixed": fixed}
        # Why the verdict is not pass: for incomplete, what is missing and how to enable it.
        summary["verdict_reason"] = result.verdict_reason or (
            "" if result.verdict else "the analysis judged nothing"
        )
        if job.kind == "benchmark":
            # Traced and untraced runs are not compared (the "tracing" comparability key).
            summary["traced"] = baselines.traced_during(job, now)
        _store_exports(job, kind, result)
        if not job.succeed(summary, result.verdict):
            # The job stopped being ours while we stored (reaped or cancelled):
            # roll back so nothing of a run that "did not happen" remains.
            transaction.set_rollback(True)


def _store_exports(job: Job, kind: kinds.Kind, result: AnalysisResult) -> None:
    """The reports a kind offers for download (SARIF for code scanning tools…)."""
    import importlib
    import json

    for suffix, content_type, path in kind.exports:
        module, function = path.split(":")
        content = getattr(importlib.import_module(module), function)(result)
        if not isinstance(content, str):
            content = json.dumps(content, indent=2, default=str)
        JobArtifact.objects.update_or_create(
            job=job,
            name=f"kaizen-{job.kind}-{job.pk}.{suffix}",
            defaults={"content_type": content_type, "content": content},
        )


def wrote(kind: kinds.Kind, params: dict[str, Any]) -> bool:
    """Whether a job of ``kind`` with ``params`` may have written through the target's API:
    the integrity probes, and a load test that sent writes (allow_writes, the target's)."""
    return kind.writes or bool(params.get("allow_writes"))


def _after_writes(job: Job, ctx: JobContext) -> None:
    """Let whoever looks after the target put its data back (the demo reseeds), while the
    job still holds the target's lease; a failure there is logged, not the job's."""
    try:
        hooks.call("target_written", job.target, ctx.log)
    except Exception as error:
        ctx.log(f"after the writes: {type(error).__name__}: {error}", "warning")
        logger.exception("target_written hook failed after job %s", job.pk)
