"""The health check and cool-down before a job that puts load on a target.

A target that has just carried a stress test may still be draining queues or
giving connections back; a test that starts then measures the previous one.
So before such a job the worker waits until GET <health path> answers (below
500) and its latency is back within ``factor`` × what it was before the
previous job — at most ``max_wait`` seconds. A target that never answers its
health check in that time is reported as unhealthy (the job fails, naming
that); one that answers but stays slow is started anyway after ``max_wait``,
with a log line saying so.

Plain Python, no Django: a TargetSpec, a context (log, progress, cancel) and
numbers in, a Cooled record out.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from optimizations.analyzers import safehttp
from optimizations.analyzers.base import Context, TargetSpec
from optimizations.analyzers.netguard import HostNotAllowed

# Health checks per round (their median is the round's latency) and the pause
# between rounds.
SAMPLES = 3
ROUND_PAUSE = 1.0
# A single health check never waits longer than this.
REQUEST_TIMEOUT = 5.0
# Below a few milliseconds, "twice as slow" is timer noise, not a busy target.
SLACK_MS = 5.0


# How the message of an Unhealthy target begins (the next job reads it: lease.cool_down).
UNHEALTHY = "The target stayed unhealthy"


class Unhealthy(Exception):
    """The target did not answer its health check within the cool-down's limit."""


@dataclass
class Cooled:
    latency_ms: float
    reference_ms: float | None
    waited: float
    previous: str
    still_slow: bool

    def describe(self) -> str:
        measured = f"health check {self.latency_ms:.1f} ms"
        if self.reference_ms is None:
            return f"Target ready: {measured} (no earlier reference to cool down to)."
        before = f"{self.reference_ms:.1f} ms before {self.previous or 'the previous job'}"
        if self.still_slow:
            return (
                f"Target still slow after {self.waited:.0f} s of cool-down: {measured}, "
                f"{before}; started anyway (the cool-down waits at most that long)."
            )
        return f"Target ready after {self.waited:.0f} s: {measured} ({before})."


def check_once(spec: TargetSpec, timeout: float) -> tuple[float | None, str]:
    """One GET of the health path: (latency in ms, "") when it answers below 500,
    else (None, why not)."""
    url = spec.base_url.rstrip("/") + (spec.health_path or "/")
    try:
        # A redirect is an answer; it is not followed (max_redirects=0).
        response = safehttp.fetch(
            url,
            allowed=spec.allowed_hosts,
            headers=dict([spec.auth_header]) if spec.auth_header else {},
            timeout=timeout,
            max_body=65536,
            max_redirects=0,
        )
    except (HostNotAllowed, ValueError) as error:
        raise Unhealthy(str(error)) from None
    except (OSError, http.client.HTTPException) as error:
        return None, f"no answer ({error})"
    if response.status >= 500:
        return None, f"it answered {response.status} {response.reason}"
    return response.elapsed_ms, ""


def _check_cancellable(spec: TargetSpec, timeout: float, ctx: Context) -> tuple[float | None, str]:
    """check_once in a helper thread, so a cancel is honoured within a fifth of a
    second however long the target takes (the thread ends by its own timeout)."""
    answer: list[tuple[float | None, str]] = []
    failure: list[BaseException] = []
    done = threading.Event()

    def work() -> None:
        try:
            answer.append(check_once(spec, timeout))
        except BaseException as error:  # handed to the caller below
            failure.append(error)
        finally:
            done.set()

    threading.Thread(target=work, name="kaizen-health-check", daemon=True).start()
    while not done.wait(0.2):
        ctx.check_cancel()
    if failure:
        raise failure[0]
    return answer[0]


def _sleep(seconds: float, ctx: Context) -> None:
    end = time.monotonic() + seconds
    while True:
        ctx.check_cancel()
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(0.2, left))


def wait(
    spec: TargetSpec,
    ctx: Context,
    *,
    reference_ms: float | None,
    factor: float,
    max_wait: float,
    previous: str = "",
    clock: Callable[[], float] = time.monotonic,
) -> Cooled:
    """Wait for a healthy, cooled-down target; raise Unhealthy after ``max_wait`` s
    without one health check answered."""
    started = clock()
    limit = None if reference_ms is None else max(reference_ms * factor, reference_ms + SLACK_MS)
    last_latency, why, said = None, "", False
    while True:
        ctx.check_cancel()
        left = max_wait - (clock() - started)
        latencies, why = [], ""
        for _ in range(SAMPLES):
            latency, problem = _check_cancellable(spec, max(0.5, min(REQUEST_TIMEOUT, left)), ctx)
            if latency is None:
                why = problem
                break
            latencies.append(latency)
        waited = clock() - started
        if not why:
            last_latency = statistics.median(latencies)
            if limit is None or last_latency <= limit:
                return Cooled(last_latency, reference_ms, waited, previous, False)
            if waited >= max_wait:
                return Cooled(last_latency, reference_ms, waited, previous, True)
            if not said:
                ctx.log(
                    f"Cooling down: GET {spec.health_path} takes {last_latency:.1f} ms, "
                    f"{reference_ms:.1f} ms before {previous or 'the previous job'}; waiting "
                    f"until it is within {factor:g}× (at most {max_wait:g} s)."
                )
                said = True
        elif waited >= max_wait:
            after = f" after {previous}" if previous else ""
            raise Unhealthy(
                f"{UNHEALTHY}{after}: GET {spec.health_path} did not answer "
                f"below 500 for {waited:.0f} s ({why}), so this job did not start. Check the "
                "target (its log, its database), then run the job again."
            )
        elif not said:
            ctx.log(f"Waiting for the target's health check: GET {spec.health_path}: {why}.")
            said = True
        ctx.progress(0, f"cool-down: waiting for the target ({waited:.0f} s of {max_wait:g} s)")
        _sleep(min(ROUND_PAUSE, max(0.0, max_wait - (clock() - started))), ctx)
