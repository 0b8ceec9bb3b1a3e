"""The benchmark analyzer: load, closed, stress and endurance runs against a target's HTTP API.

* ``load`` — open model: a fixed arrival rate (constant or Poisson), latency
  from the intended send time, service time beside it, late and dropped
  requests counted.
* ``closed`` — N connections back to back (wrk's model), held under the
  target's rate limit.
* ``stress`` — open-model steps, each ``step_factor`` times the last, until an
  SLO breaks (error rate, corrected p99, achieved below 99 % of offered); the
  knee is the last sustainable step. Each step is its own result.
* ``endurance`` — a long open-model run sampling the target's memory, with a
  trend verdict (growing or flat).

The target's ``max_rate`` and ``max_duration`` are hard limits: a run that
would exceed them is refused, and the engine enforces them again itself.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from optimizations.analyzers import safehttp
from optimizations.analyzers.base import (
    INCOMPLETE,
    AnalysisError,
    AnalysisResult,
    Cancelled,
    Context,
    MeasurementData,
    Param,
    TargetSpec,
    validate_params,
)
from optimizations.analyzers.loadgen import report, scenario, script, verdicts
from optimizations.analyzers.loadgen.memory import MemorySampler
from optimizations.analyzers.loadgen.runner import EngineFailed, RunOutput, run_engines
from optimizations.analyzers.netguard import HostNotAllowed, check_url

MODES = ("load", "closed", "stress", "endurance")

_MODE = Param(
    "mode",
    "choice",
    "load",
    label="Test",
    choices=MODES,
    help="load: fixed arrival rate; closed: N connections back to back; stress: rate steps "
    "up to the knee; endurance: long run watching the target's memory",
)
_SCENARIO = [
    Param(
        "paths",
        "list",
        [],
        label="Paths",
        help="GET paths to call, comma-separated "
        "(e.g. /items, /items/1). Empty: every GET operation of the target's OpenAPI.",
    ),
    Param(
        "scenario",
        "json",
        None,
        label="Custom scenario",
        help="A list of requests: "
        '[{"method": "POST", "path": "/items", "headers": {}, "body": {...}, "weight": 1}], '
        "or a scripted scenario: YAML journeys of steps carrying values from one answer "
        "to the next request (examples/scenarios/shop_journey.yaml) — upload the file on the "
        "form, or give --scenario FILE on the command line. "
        "Takes precedence over the paths and the OpenAPI.",
    ),
    Param(
        "allow_writes",
        "bool",
        False,
        label="Write-path load",
        help="POST, PUT and PATCH operations of the OpenAPI join the load with valid bodies "
        "generated from their schemas, bulk endpoints at batches of 10, 100 and 1 000. "
        "Only on a target whose settings allow writes (staging); off: GET only.",
    ),
    Param(
        "weights",
        "json",
        None,
        label="Operation weights",
        help='Weights of OpenAPI operations, e.g. {"GET /items": 3}; others weigh 1.',
    ),
    Param(
        "exclude",
        "list",
        [],
        label="Exclude",
        help="Operations or paths to leave out, glob patterns (e.g. GET /export*).",
    ),
]
_ENGINE = [
    Param("timeout", "float", 5.0, label="Request timeout (s)", min=0.1, max=120.0),
    Param(
        "workers",
        "int",
        1,
        label="Generator processes",
        min=1,
        max=64,
        help="Engine processes sharing the load (at most one per core); their "
        "histograms are merged.",
    ),
    Param(
        "cpu",
        "str",
        "auto",
        label="Pin to CPU",
        help="auto (least busy core), a core number, or none.",
    ),
    Param(
        "warmup",
        "float",
        0.0,
        label="Warm-up (s)",
        min=0.0,
        max=600.0,
        help="Load sent before the measurement and left out of it.",
    ),
    Param("seed", "int", 1, label="Seed", help="Fixes the request order and Poisson arrivals."),
]


_GENERATORS = Param(
    "generators",
    "int",
    1,
    label="Generators",
    min=1,
    max=64,
    help="Benchmark workers sending this test together, each its share of the rate and "
    "connections, all starting at one agreed instant; their histograms are merged. A "
    "generator that falls behind or dies makes the test incomplete, named.",
)


def _open_params(rate: float, duration: float) -> list[Param]:
    return [
        Param(
            "rate",
            "float",
            rate,
            label="Rate (req/s)",
            min=0.1,
            help="Requests per second offered, whatever the target does (open model).",
        ),
        Param("arrival", "choice", "constant", label="Arrivals", choices=("constant", "poisson")),
        Param("duration", "float", duration, label="Duration (s)", min=1.0),
        Param("connections", "int", 10, label="Connections at start", min=1, max=10000),
        Param(
            "max_connections",
            "int",
            256,
            label="Most connections",
            min=1,
            max=10000,
            help="Arrivals finding every connection busy open new ones up to this many, "
            "then wait (counted late) or are dropped after the timeout.",
        ),
    ]


PARAMS_BY_MODE: dict[str, list[Param]] = {
    "load": [_MODE, *_open_params(100.0, 30.0), *_SCENARIO, *_ENGINE, _GENERATORS],
    "closed": [
        _MODE,
        Param("connections", "int", 10, label="Connections", min=1, max=10000),
        Param("duration", "float", 30.0, label="Duration (s)", min=1.0),
        *_SCENARIO,
        *_ENGINE,
    ],
    "stress": [
        _MODE,
        Param("start_rate", "float", 50.0, label="First step (req/s)", min=0.1),
        Param("step_factor", "float", 1.25, label="Step factor", min=1.01, max=4.0),
        Param("step_duration", "float", 10.0, label="Step duration (s)", min=1.0),
        Param("max_steps", "int", 30, label="Most steps", min=1, max=200),
        Param(
            "saturation",
            "bool",
            True,
            label="Find the throughput ceiling",
            help="After p99 breaks, keep stepping while the target still keeps up, to "
            "measure its throughput ceiling (what capacity models and ROI need when no "
            "rate meets the latency SLO)",
        ),
        Param("arrival", "choice", "constant", label="Arrivals", choices=("constant", "poisson")),
        Param("connections", "int", 10, label="Connections at start", min=1, max=10000),
        Param("max_connections", "int", 512, label="Most connections", min=1, max=10000),
        _GENERATORS,
        Param(
            "p99_ms",
            "float",
            None,
            label="p99 limit (ms)",
            min=0.1,
            help="A step breaks when its corrected p99 exceeds this (default: the "
            "target's p99 threshold, 500 ms).",
        ),
        Param(
            "max_error_rate",
            "float",
            None,
            label="Error-rate limit",
            min=0.0,
            max=1.0,
            help="A step breaks above this error rate (default: the target's, 1 %).",
        ),
        Param(
            "min_achieved",
            "float",
            0.99,
            label="Least achieved share",
            min=0.5,
            max=1.0,
            help="A step breaks when fewer than this share of the offered requests were answered.",
        ),
        *_SCENARIO,
        *_ENGINE,
    ],
    "endurance": [
        _MODE,
        *_open_params(50.0, 300.0),
        _GENERATORS,
        Param("memory_interval", "float", 5.0, label="Memory sample every (s)", min=0.1),
        Param(
            "memory_source",
            "choice",
            "auto",
            label="Memory from",
            choices=("auto", "psutil", "metrics", "none"),
            help="auto: the process tree listening on the target's port when it runs on "
            "this host, else its /metrics.",
        ),
        Param(
            "target_pid",
            "int",
            0,
            label="Target PID",
            min=0,
            help="The target's process, when finding it by its port is not possible.",
        ),
        Param(
            "growth_threshold",
            "float",
            0.05,
            label="Growth called a leak",
            min=0.0,
            max=10.0,
            help="Memory growth after warm-up, as a share, above which the "
            "trend is 'growing' (with Mann-Kendall p < 0.05).",
        ),
        Param(
            "baseline_memory_bytes",
            "float",
            0.0,
            label="Baseline memory (bytes)",
            min=0.0,
            help="The pinned baseline's mean PSS, for the memory -50 % objective.",
        ),
        *_SCENARIO,
        *_ENGINE,
    ],
}

# The union, for a form that shows every field: defaults that depend on the mode are
# left empty here and filled from PARAMS_BY_MODE when the job runs.
PARAMS: list[Param] = []
for _params in PARAMS_BY_MODE.values():
    for _param in _params:
        if any(p.name == _param.name for p in PARAMS):
            continue
        differs = any(
            q.name == _param.name and q.default != _param.default
            for other in PARAMS_BY_MODE.values()
            for q in other
        )
        PARAMS.append(Param(**{**_param.__dict__, "default": None}) if differs else _param)


@dataclass
class Plan:
    """Where and what to send, decided once per job."""

    host: str
    port: int
    tls: bool
    host_header: str
    requests: list[dict[str, Any]]
    operations: list[scenario.Operation]
    # A scripted scenario's journeys, for the engine (journeys.py); None otherwise.
    journeys: list[dict[str, Any]] | None = None
    variables: dict[str, Any] | None = None
    # A distributed test: each round's per-generator health (runner.RunOutput.generators).
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """The job's parameters checked against its mode's declaration, defaults filled in."""
    union = {p.name for p in PARAMS}
    unknown = sorted(set(params) - union)
    if unknown:
        raise AnalysisError(f"unknown parameter(s): {', '.join(unknown)}")
    mode = params.get("mode") or "load"
    if mode not in PARAMS_BY_MODE:
        raise AnalysisError(f"mode must be one of {', '.join(MODES)}")
    declared = PARAMS_BY_MODE[mode]
    names = {p.name for p in declared}
    given = {k: v for k, v in params.items() if k in names and v is not None and v != ""}
    try:
        return validate_params(declared, given)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None


def run(target: TargetSpec, params: dict[str, Any], ctx: Context) -> AnalysisResult:
    """The benchmark job: one of MODES against ``target``."""
    p = clean_params(params)
    mode = p["mode"]
    thresholds = verdicts.thresholds_for(target.thresholds)
    plan = prepare(target, p, ctx)
    try:
        if mode == "stress":
            result = _stress(target, p, ctx, plan, thresholds)
        else:
            result = _steady(target, p, ctx, plan, thresholds, mode)
    except EngineFailed as exc:
        raise AnalysisError(str(exc)) from None
    result.summary["thresholds"] = thresholds
    result.summary["limits"] = {"max_rate": target.max_rate, "max_duration": target.max_duration}
    result.summary["scenario"] = [
        {"operation": op.name, "weight": op.weight, "variants": len(op.requests)}
        for op in plan.operations
    ]
    if plan.journeys is not None:
        result.summary["scripted"] = True
    if plan.rounds:
        _judge_generators(result, plan.rounds)
    ctx.progress(100.0, "done")
    return result


def _judge_generators(result: AnalysisResult, rounds: list[list[dict[str, Any]]]) -> None:
    """A distributed test names each generator's health; one that was not ready, fell
    behind (the generator-limited guard) or died makes the verdict incomplete: the
    target received less than the test asked for, which is never a pass."""
    result.summary["generators"] = rounds[-1]
    problems: list[str] = []
    for health in (h for round_ in rounds for h in round_):
        if health["healthy"]:
            continue
        said = f"{health['name']} ({health.get('host') or 'no host'}): {health['problem']}"
        if said not in problems:
            problems.append(said)
    if not problems:
        return
    result.summary["generator_problems"] = problems
    result.verdict = INCOMPLETE
    result.verdict_reason = (
        "not every generator sent its share as planned — "
        + "; ".join(problems)
        + ". Run it again with a free benchmark worker per generator, each on a machine "
        "of its own with cores to spare (README: One load test from many machines), or "
        "with fewer generators."
        + (f" Besides: {result.verdict_reason}" if result.verdict_reason else "")
    )


# A target still digesting the previous test (a queue of requests, a pool that
# is slow to give connections back) gets this long to answer its health check
# before the test starts: its first seconds would measure the last test.
READY_WAIT = 60.0


def wait_until_ready(
    target: TargetSpec, p: dict[str, Any], ctx: Context, wait: float = READY_WAIT
) -> None:
    """Wait until GET health answers within the request timeout, or fail saying so."""
    import http.client

    url = target.base_url.rstrip("/") + (target.health_path or "/")
    check_url(url, target.allowed_hosts)
    auth = target.auth_header
    headers = dict([auth]) if auth else {}
    deadline = time.monotonic() + wait
    said = False
    while True:
        started = time.monotonic()
        try:
            # Allow-list checked at every redirect hop; the auth header never follows a
            # change of host (a hop off the list raises HostNotAllowed).
            answer = safehttp.fetch(
                url,
                allowed=target.allowed_hosts,
                headers=headers,
                secret_headers=(auth[0],) if auth else (),
                timeout=p["timeout"],
                max_body=65536,
            )
            if answer.status < 500:
                return  # It answers; what it answers is the probe's business.
            reason = f"{answer.status} {answer.reason}"
        except (OSError, http.client.HTTPException) as exc:
            reason = str(exc) or type(exc).__name__
        if time.monotonic() >= deadline:
            raise AnalysisError(
                f"the target did not answer GET {target.health_path} within {wait:g} s "
                f"({reason}); it may still be recovering from a previous test — run it again "
                "in a minute"
            )
        if not said:
            ctx.log(f"the target is busy (GET {target.health_path}: {reason}); waiting for it")
            said = True
        ctx.check_cancel()
        time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))


def prepare(target: TargetSpec, p: dict[str, Any], ctx: Context) -> Plan:
    """Check the host and the limits, build the scenario, make sure the target answers."""
    parts = urlsplit(target.base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AnalysisError(f"the target's base URL {target.base_url!r} is not an http(s) URL")
    try:
        addresses = check_url(target.base_url, target.allowed_hosts)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except (HostNotAllowed, ValueError) as exc:
        raise AnalysisError(str(exc)) from None
    _check_limits(target, p)
    # A scenario file's mistakes are said before anything is sent.
    scripted = scenario.scripted(p)
    # Connect to the address that was checked, not to the name again: a name that
    # resolves elsewhere on the second lookup must not slip past the allow-list.
    host = sorted(addresses, key=lambda a: ":" in a)[0]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    try:
        with socket.create_connection((host, port), timeout=p["timeout"]):
            pass
    except OSError as exc:
        raise AnalysisError(
            f"cannot connect to {netloc} ({host} port {port}): {exc.strerror or exc}. "
            "Is the target running?"
        ) from None
    if scripted is not None:
        if p["mode"] == "closed":
            raise AnalysisError(
                "a scripted scenario runs in the open model (load, stress or endurance): "
                "its users arrive at a rate whatever the target does, so a slow step "
                "shows in the figures instead of slowing the arrivals down"
            )
        wait_until_ready(target, p, ctx)
        journeys = script.engine_journeys(
            scripted,
            base_path=scenario.base_path(target.base_url),
            auth_header=target.auth_header,
        )
        steps = [step for journey in journeys for step in journey["steps"]]
        operations = [
            scenario.Operation(name=step["operation"], weight=journey["weight"], requests=[step])
            for journey in journeys
            for step in journey["steps"]
        ]
        ctx.log(
            f"scripted scenario {scripted.name!r}: "
            + "; ".join(
                f"{j['name']} (weight {j['weight']:g}, {len(j['steps'])} steps)" for j in journeys
            )
            + f". The rate counts requests: journeys start at rate ÷ "
            f"{scripted.mean_steps():.3g} steps"
        )
        plan = Plan(host, port, parts.scheme == "https", netloc, steps, operations)
        plan.journeys, plan.variables = journeys, scripted.variables
        return plan
    wait_until_ready(target, p, ctx)
    operations = scenario.build(target, p, ctx.log, cancel=ctx.check_cancel)
    requests = scenario.engine_requests(
        operations, base_path=scenario.base_path(target.base_url), auth_header=target.auth_header
    )
    return Plan(host, port, parts.scheme == "https", netloc, requests, operations)


def _check_limits(target: TargetSpec, p: dict[str, Any]) -> None:
    rate = p.get("rate")
    if rate is not None and rate > target.max_rate:
        raise AnalysisError(
            f"a rate of {rate:g} req/s exceeds this target's limit of {target.max_rate:g} req/s; "
            "lower the rate or raise the target's limit"
        )
    if p["mode"] == "stress":
        if p["start_rate"] > target.max_rate:
            raise AnalysisError(
                f"the first step ({p['start_rate']:g} req/s) exceeds this target's limit "
                f"of {target.max_rate:g} req/s"
            )
        needed = p["step_duration"] + p["warmup"]
    else:
        needed = p["duration"] + p["warmup"]
    if needed > target.max_duration:
        raise AnalysisError(
            f"{needed:g} s of load exceeds this target's limit of {target.max_duration:g} s; "
            "shorten the run or raise the target's limit"
        )


def engine_config(
    plan: Plan, p: dict[str, Any], target: TargetSpec, **pattern: Any
) -> dict[str, Any]:
    """The engine's configuration for one load pattern (``model``, ``rate``, ``duration``)."""
    config = {
        "host": plan.host,
        "port": plan.port,
        "tls": plan.tls,
        "host_header": plan.host_header,
        "requests": plan.requests,
        "timeout": p["timeout"],
        "seed": p["seed"],
        "connections": p["connections"],
        "max_connections": max(p.get("max_connections") or 0, p["connections"]),
        "arrival": p.get("arrival", "constant"),
        # Hard limits again, inside the engine itself.
        "max_rate": target.max_rate,
        "max_duration": target.max_duration,
    }
    if plan.journeys is not None:
        config["journeys"] = plan.journeys
        config["variables"] = plan.variables or {}
    config.update(pattern)
    return config


def _generate(
    plan: Plan,
    p: dict[str, Any],
    target: TargetSpec,
    ctx: Context,
    *,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_poll: Callable[[], None] | None = None,
    **pattern: Any,
) -> RunOutput:
    config = engine_config(plan, p, target, **pattern)
    generators = int(p.get("generators") or 1)
    if generators > 1:
        # The generators are Celery tasks: only the portal's job context can start them.
        distribute = getattr(ctx, "distribute", None)
        if distribute is None:
            raise AnalysisError(
                "several generators need Kaizen's benchmark workers: start the test from "
                "the portal (or manage.py optimize), or set generators to 1"
            )
        output: RunOutput = distribute(
            config,
            generators=generators,
            workers=p["workers"],
            cpu=p["cpu"],
            on_row=on_row or ctx.sample,
            on_poll=on_poll,
        )
        plan.rounds.append(output.generators)
    else:
        output = run_engines(
            config, ctx, workers=p["workers"], cpu=p["cpu"], on_row=on_row, on_poll=on_poll
        )
    for level, message in output.logs:
        ctx.log(message, level)
    if output.cancelled:
        raise Cancelled("cancelled")
    return output


def _warm_up(
    plan: Plan, p: dict[str, Any], target: TargetSpec, ctx: Context, pattern: dict[str, Any]
) -> None:
    if p["warmup"] <= 0:
        return
    ctx.progress(0.0, f"warm-up, {p['warmup']:g} s")
    ctx.log(f"warm-up: {p['warmup']:g} s, not measured")
    _generate(plan, p, target, ctx, on_row=lambda row: None, **{**pattern, "duration": p["warmup"]})


def _steady(
    target: TargetSpec,
    p: dict[str, Any],
    ctx: Context,
    plan: Plan,
    thresholds: dict[str, float],
    mode: str,
) -> AnalysisResult:
    """load, closed and endurance: one measured run."""
    duration = p["duration"]
    if mode == "closed":
        pattern = {"model": "closed", "duration": duration}
        described = f"{p['connections']} connections, closed loop"
    else:
        pattern = {"model": "open", "rate": p["rate"], "duration": duration}
        described = f"{p['rate']:g} req/s offered ({p['arrival']})"
    ctx.log(f"{mode} test: {described} for {duration:g} s on {len(plan.requests)} request(s)")
    _warm_up(plan, p, target, ctx, pattern)
    sampler = None
    if mode == "endurance" and p["memory_source"] != "none":
        sampler = MemorySampler(
            target,
            addresses=[plan.host],
            port=plan.port,
            interval=p["memory_interval"],
            source=p["memory_source"],
            pid=p["target_pid"] or None,
            log=ctx.log,
        )
        sampler.poll()

    started = time.monotonic()

    def on_row(row: dict[str, Any]) -> None:
        row = {**row, "mode": mode, "at": round(time.monotonic() - started, 3)}
        if sampler is not None and sampler.samples:
            row["memory_bytes"] = sampler.samples[-1][1]
        ctx.sample(row)
        ctx.progress(min(99.0, 100.0 * row["elapsed"] / duration), f"{row['elapsed']:.0f} s")

    output = _generate(
        plan, p, target, ctx, on_row=on_row, on_poll=sampler.poll if sampler else None, **pattern
    )
    capped = mode == "closed" and output.result.get("totals", {}).get("offered", 0) >= (
        0.98 * target.max_rate * duration
    )
    if capped:
        ctx.log(f"held at the target's rate limit of {target.max_rate:g} req/s", "warning")
    summary = report.summarize(
        output.result,
        output.rows,
        mode=mode,
        offered_rate=p["rate"] if mode != "closed" else None,
        arrival=p.get("arrival", "constant"),
        capped=capped,
    )
    summary["cpus"] = output.cpus
    _log_validity(summary, ctx)
    memory = None
    if mode == "endurance":
        memory = (
            sampler.report(p["growth_threshold"])
            if sampler
            else {"trend": "unknown", "detail": "memory sampling was turned off"}
        )
        summary["memory"] = memory
        ctx.log(f"memory trend: {memory['trend']} {memory.get('detail', '')}".rstrip())
    judged = verdicts.judge_run(
        summary,
        thresholds,
        mode=mode,
        memory=memory,
        baseline_memory=p.get("baseline_memory_bytes") or None,
    )
    return _result(summary, judged, thresholds, target, mode, memory)


def _log_validity(summary: dict[str, Any], ctx: Context) -> None:
    validity = summary["validity"]
    if not validity["generator_limited"]:
        return
    if validity.get("limited_by") == "machine":
        ctx.log(
            "machine-limited: " + "; ".join(validity["reasons"]) + ". The figures include "
            "time the generator spent waiting for a CPU, so the rates measured are not the "
            "target's limit (run where the generator has a core of its own, or when the "
            "machine is quieter).",
            "warning",
        )
        return
    ctx.log(
        "generator-limited: " + "; ".join(validity["reasons"]) + ". The rates measured "
        "are the generator's, not the target's limit (add workers or a bigger machine).",
        "warning",
    )


def _result(
    summary: dict[str, Any],
    judged: list[verdicts.SloVerdict],
    thresholds: dict[str, float],
    target: TargetSpec,
    mode: str,
    memory: dict[str, Any] | None = None,
) -> AnalysisResult:
    summary["slo"] = [verdict.to_dict() for verdict in judged]
    checks, findings = verdicts.checks_and_findings(judged, target_name=target.name, mode=mode)
    op_checks, op_findings = report.operation_findings(summary, thresholds, target.name)
    measured = report.measurements(summary)
    if memory is not None:
        measured += _memory_measurements(memory)
    verdict, reason = verdicts.judge(judged, mode)
    return AnalysisResult(
        summary=summary,
        findings=findings + op_findings,
        measurements=measured,
        checks=checks + op_checks,
        verdict=verdict,
        verdict_reason=reason,
    )


def _memory_measurements(memory: dict[str, Any]) -> list[MeasurementData]:
    out = []
    for key, name in (
        ("start_bytes", "memory.pss.start"),
        ("end_bytes", "memory.pss.end"),
        ("max_bytes", "memory.pss.max"),
        ("mean_bytes", "memory.pss.mean"),
        ("peak_hwm_bytes", "memory.peak"),
        ("growth_bytes_per_hour", "memory.growth_rate"),
    ):
        if memory.get(key) is not None:
            unit = "bytes/h" if key == "growth_bytes_per_hour" else "bytes"
            out.append(
                MeasurementData(name, float(memory[key]), unit, {"source": memory["metric"]})
            )
    if memory.get("growth") is not None:
        out.append(MeasurementData("memory.growth", memory["growth"], "ratio"))
    return out


def step_breaches(
    summary: dict[str, Any], p: dict[str, Any], thresholds: dict[str, Any]
) -> list[str]:
    """Why a stress step is not sustainable (empty when it is)."""
    reasons = []
    error_limit = (
        p["max_error_rate"]
        if p["max_error_rate"] is not None
        else thresholds["error_rate_pct"] / 100
    )
    p99_limit = p["p99_ms"] if p["p99_ms"] is not None else thresholds["p99_ms"]
    if summary["error_rate"] > error_limit:
        reasons.append(f"error rate {summary['error_rate']:.2%} > {error_limit:.2%}")
    p99 = summary["latency_ms"]["p99"]
    if p99 > p99_limit:
        reasons.append(f"corrected p99 {p99:g} ms > {p99_limit:g} ms")
    offered = summary["requests"]["offered"]
    completed = summary["requests"]["completed"]
    if offered and completed < p["min_achieved"] * offered:
        reasons.append(
            f"achieved {completed / offered:.1%} of the offered requests "
            f"(< {p['min_achieved']:.0%})"
        )
    return reasons


def step_limit(summary: dict[str, Any], breaches: list[str], p99_limit: float) -> str | None:
    """Whose limit a stress step met: None (it was sustained), "target", "generator" or "machine".

    A breach is the target's when it cannot be ours: an error rate (the
    target's answers, or its silence), a corrected p99 over the objective whose
    *service* p99 — from the actual write, free of our send lag — is over it
    too, or any breach while our side was not limited. Otherwise (the corrected
    p99 or the share achieved broke while the generator or the machine held
    the sends up) it may be ours: the validity guard's ``limited_by``.
    """
    if not breaches:
        return None
    validity = summary.get("validity", {})
    ours = validity.get("limited_by") or (
        "generator" if validity.get("generator_limited") else None
    )
    if ours is None:
        return "target"
    service_p99 = summary.get("service_ms", {}).get("p99", 0.0)
    for reason in breaches:
        if reason.startswith("error rate"):
            return "target"
        if reason.startswith("corrected p99") and service_p99 > p99_limit:
            return "target"
    return ours


def _stress(
    target: TargetSpec, p: dict[str, Any], ctx: Context, plan: Plan, thresholds: dict[str, float]
) -> AnalysisResult:
    """Step the rate up until an SLO breaks; the knee is the last sustainable step.

    When our side — the generator or the machine it runs on — limited the step
    that broke (``step_limit``), the target's knee may be higher: the knee is
    then stored as a **lower bound** ("≥ N req/s", ``capacity_bound``), as it is
    when the steps stopped at the target's own limits or after ``max_steps``
    without a breach. A lower bound is never nothing: even a first step that
    only fell short of its offered rate because of us shows the rate the target
    served within its SLOs.
    """
    rate = p["start_rate"]
    budget = target.max_duration - p["warmup"]
    # Steps until the rate passes the target's limit (plus one at the limit), for progress.
    planned = math.floor(math.log(target.max_rate / rate) / math.log(p["step_factor"])) + 2
    planned = max(1, min(planned, p["max_steps"], int(budget // p["step_duration"])))
    _warm_up(plan, p, target, ctx, {"model": "open", "rate": rate, "duration": p["warmup"]})
    steps: list[dict[str, Any]] = []
    job_started = time.monotonic()
    knee_summary = None
    knee_number = None
    knee_rate = None
    # Set when our side stopped the steps before the target broke: "generator" or "machine".
    bound_by = None
    p99_limit = p["p99_ms"] if p["p99_ms"] is not None else thresholds["p99_ms"]
    # The knee is the last step within the SLOs; the ceiling the most throughput a
    # step sustained (every request served, errors within the limit) at any latency.
    broke_at = None
    ceiling_summary, ceiling_number = None, None
    stopped = f"reached {p['max_steps']} steps"
    at_limit = False
    spent = 0.0
    for number in range(1, p["max_steps"] + 1):
        if rate > target.max_rate:
            if steps and steps[-1]["offered_rate"] >= target.max_rate:
                at_limit = True
                stopped = f"reached the target's rate limit ({target.max_rate:g} req/s)"
                break
            rate = target.max_rate  # one last step exactly at the limit
        if spent + p["step_duration"] > budget:
            stopped = f"reached the target's duration limit ({target.max_duration:g} s)"
            at_limit = True
            break
        ctx.log(f"step {number}: {rate:g} req/s for {p['step_duration']:g} s")
        started = time.monotonic()

        def on_row(row: dict[str, Any], number: int = number, rate: float = rate) -> None:
            at = round(time.monotonic() - job_started, 3)
            ctx.sample({**row, "mode": "stress", "step": number, "step_rate": rate, "at": at})
            done = (number - 1 + min(1.0, row["elapsed"] / p["step_duration"])) / planned
            ctx.progress(min(99.0, 100.0 * done), f"step {number}: {rate:g} req/s")

        output = _generate(
            plan,
            p,
            target,
            ctx,
            on_row=on_row,
            model="open",
            rate=rate,
            duration=p["step_duration"],
        )
        spent += time.monotonic() - started
        summary = report.summarize(
            output.result, output.rows, mode="stress", offered_rate=rate, arrival=p["arrival"]
        )
        summary["cpus"] = output.cpus
        breaches = step_breaches(summary, p, thresholds)
        limit = step_limit(summary, breaches, p99_limit)
        steps.append(_step_record(number, rate, summary, breaches, limit))
        ctx.log(
            f"step {number}: achieved {summary['rps']:g} req/s, p99 "
            f"{summary['latency_ms']['p99']:g} ms, errors {summary['error_rate']:.2%}"
            + (f" — breaks: {'; '.join(breaches)}" if breaches else "")
        )
        if summary["validity"]["generator_limited"]:
            _log_validity(summary, ctx)
        if limit in ("generator", "machine"):
            if broke_at is None:
                bound_by = limit
                stopped = (
                    f"step {number} broke ({'; '.join(breaches)}) while the {limit} limited "
                    "the test, so the target's knee may be higher"
                )
                if knee_summary is None and all(r.startswith("achieved") for r in breaches):
                    # Latency and errors within the SLOs: the target served what we sent.
                    knee_summary, knee_number, knee_rate = summary, number, summary["rps"]
            else:
                stopped += f"; step {number} was {limit}-limited, the ceiling may be higher"
            break
        # True for a step within every SLO too (no reason at all).
        slow_only = all(reason.startswith("corrected p99") for reason in breaches)
        if slow_only and (ceiling_summary is None or summary["rps"] > ceiling_summary["rps"]):
            ceiling_summary, ceiling_number = summary, number
        if breaches:
            if broke_at is None:
                broke_at = number
                stopped = f"step {number} broke: {'; '.join(breaches)}"
            if not (slow_only and p["saturation"]):
                if broke_at != number:
                    stopped += f"; it stopped keeping up at step {number}: {'; '.join(breaches)}"
                break
            ctx.log(
                f"step {number}: p99 broke, the target still keeps up — looking for its ceiling"
            )
        elif broke_at is None:
            knee_summary, knee_number, knee_rate = summary, number, summary["offered_rate"]
        rate = rate * p["step_factor"]
    capacity = knee_rate
    bound = ""
    if bound_by is not None:
        bound = stopped
    elif capacity is not None and at_limit:
        bound = (
            f"sustained {capacity:g} req/s up to the target's own limits without a breach "
            f"({stopped}); raise the limit to measure the capacity"
        )
    elif capacity is not None and broke_at is None:
        bound = f"no step broke ({stopped}); more steps would measure the capacity"
    headline = knee_summary or summary
    headline = dict(headline)
    headline["validity"] = (
        summary["validity"] if summary["validity"]["generator_limited"] else headline["validity"]
    )
    headline.update(
        capacity_rps=capacity,
        # "lower": the target's knee is at least capacity_rps (why: capacity_bound_reason).
        capacity_bound=("lower" if bound else "exact") if capacity is not None else None,
        capacity_bound_reason=bound,
        capacity_limited_by=bound_by,
        knee_achieved_rps=knee_summary["rps"] if knee_summary else None,
        knee_step=knee_number,
        saturation_rps=ceiling_summary["rps"] if ceiling_summary else None,
        saturation_step=ceiling_number,
        steps=steps,
        stopped_because=stopped,
    )
    if capacity is None:
        ctx.log(f"no sustainable step ({stopped})")
    elif bound:
        ctx.log(f"knee: ≥ {capacity:g} req/s, a lower bound ({bound})")
    else:
        ctx.log(f"knee: {capacity:g} req/s ({stopped})")
    judged = verdicts.judge_run(
        headline,
        thresholds,
        mode="stress",
        capacity=capacity,
        capacity_reached=not at_limit,
        capacity_bound=bound,
    )
    result = _result(headline, judged, thresholds, target, "stress")
    if capacity is not None:
        # A lower bound is stored too, labelled so: the capacity advisor and ROI
        # use it with that caveat rather than having nothing.
        labels = {"bound": "lower", "limited_by": bound_by or "limits"} if bound else {}
        result.measurements.append(MeasurementData("http.capacity", capacity, "req/s", labels))
    if ceiling_summary is not None and not headline["validity"]["generator_limited"]:
        result.measurements.append(
            MeasurementData("http.saturation", ceiling_summary["rps"], "req/s")
        )
    for step in steps:
        labels = {"step": str(step["step"]), "offered_rate": f"{step['offered_rate']:g}"}
        for key in ("med", "p95", "p99"):
            result.measurements.append(
                MeasurementData(f"http.latency.{key}", step["latency_ms"][key], "ms", labels)
            )
        result.measurements.append(
            MeasurementData("http.throughput", step["achieved_rate"], "req/s", labels)
        )
        result.measurements.append(
            MeasurementData("http.error_rate", step["error_rate"], "ratio", labels)
        )
    return result


def _step_record(
    number: int, rate: float, summary: dict[str, Any], breaches: list[str], limit: str | None = None
) -> dict[str, Any]:
    requests = summary["requests"]
    return {
        "step": number,
        "offered_rate": rate,
        "achieved_rate": summary["rps"],
        "achieved_share": round(requests["completed"] / requests["offered"], 6)
        if requests["offered"]
        else 0.0,
        "error_rate": summary["error_rate"],
        "latency_ms": summary["latency_ms"],
        "service_ms": summary["service_ms"],
        "requests": requests,
        "breaches": breaches,
        # Within every SLO: sustained by the target, even if our side was limited
        # (then "limited_by" says so, and the step only bounds the knee from below).
        "sustainable": not breaches,
        "limit": limit,
        "limited_by": summary["validity"].get("limited_by"),
        "validity": summary["validity"],
        "operations": [
            {k: op[k] for k in ("name", "rps", "error_rate", "latency_ms")}
            for op in summary["operations"]
        ],
        "hdr": summary["hdr"]["latency"],
    }
