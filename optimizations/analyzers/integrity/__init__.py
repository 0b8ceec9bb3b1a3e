"""Integrity probes: does the running API keep its data right under concurrency and failure?

Writes through the API, so only on a target whose "allows writes" setting is on (staging;
refused otherwise). From the OpenAPI document it finds, and probes:

- lost update — a change-by-amount operation (``PATCH /items/{id}/stock`` with
  ``{"delta": n}``) raced by concurrent +1s; the read-back is compared with what was
  acknowledged;
- bulk atomicity — a bulk create whose last element is invalid (a reference to nothing)
  must leave all or nothing, checked by reading back;
- unique races — two concurrent creates of one body (after a sequential duplicate was
  refused) must give one success and one 409/422, never a 500 or two resources;
- idempotency — a retried POST with the same ``Idempotency-Key`` (where one is declared)
  must not create a second resource, also when the retries race;
- read-your-writes — each resource created is read back right after its 201.

Each finding names the endpoint, the request sequence as curl commands (credentials
masked) and the fix. Afterwards what the probes created is cancelled or deleted where the
API allows; the rest is listed. Orphans under NOT VALID constraints are the DB scan's.
"""

from __future__ import annotations

import http.client
from collections.abc import Callable, Mapping
from typing import Any

from .. import jsondoc
from ..base import (
    CHECK_UNKNOWN,
    AnalysisError,
    AnalysisResult,
    Context,
    MeasurementData,
    Param,
    TargetSpec,
    verdict_from_checks,
)
from ..netguard import check_url
from .client import Client
from .probes import Probes
from .spec import Spec

PROBES = ("lost_update", "bulk_atomicity", "unique_race", "idempotency", "read_your_writes")
PARAMS = [
    Param(
        "probes",
        "list",
        list(PROBES),
        "Probes to run (read-your-writes judges what the others created)",
        choices=PROBES,
    ),
    Param(
        "concurrency",
        "int",
        10,
        "Concurrent changes sent at once by the lost-update probe",
        min=2,
        max=50,
    ),
    Param("rounds", "int", 3, "Races per probe before it says the API holds", min=1, max=10),
    Param("timeout", "float", 10.0, "Seconds to wait for each answer", min=1, max=60),
]
MAX_DOCUMENT = 5 * 1024 * 1024


def run(target: TargetSpec, params: Mapping[str, Any], ctx: Context) -> AnalysisResult:
    if not target.allows_writes:
        raise AnalysisError(
            f"{target.name} does not allow writes, and the integrity probes create, change and "
            "cancel data through its API. Turn on “allows writes” on the target's page (for a "
            "staging deployment only) to run them."
        )
    ctx.progress(2, "checking the host is allowed")
    check_url(target.base_url, target.allowed_hosts)
    client = Client(target, float(params["timeout"]), cancel=ctx.check_cancel)
    spec = Spec(_document(client, target))
    ctx.log(f"OpenAPI: {len(spec.ops)} operations")

    def log(message: str) -> None:
        ctx.log(message)

    probes = Probes(spec, client, int(params["concurrency"]), int(params["rounds"]), log)
    chosen = [name for name in PROBES if name in set(params["probes"])]
    steps: dict[str, Callable[[], None]] = {
        "lost_update": probes.lost_update,
        "bulk_atomicity": probes.atomicity,
        "unique_race": probes.unique_race,
        "idempotency": probes.idempotency,
        "read_your_writes": probes.read_your_writes,
    }
    try:
        for index, name in enumerate(chosen):
            ctx.check_cancel()
            ctx.progress(5 + 80 * index / len(chosen), name.replace("_", " "))
            steps[name]()
    finally:
        if not ctx.cancelled():
            ctx.progress(90, "cleaning up")
            probes.clean_up()
    for left in probes.left_behind:
        ctx.log(f"left behind (the API offers no DELETE or cancel for it): {left}", "warning")

    result = AnalysisResult(findings=probes.findings, checks=probes.checks)
    result.measurements.append(MeasurementData("integrity.requests", client.requests, "count"))
    result.summary = {
        "base_url": target.base_url,
        "probes": chosen,
        "requests_sent": client.requests,
        "created": len({(c.collection, c.id) for c in probes.created}),
        "left_behind": probes.left_behind,
        "checks": {c.check_id: {"status": c.status, "detail": c.detail} for c in probes.checks},
    }
    required = {f"integrity.{name}" for name in chosen}
    result.verdict, result.verdict_reason = verdict_from_checks(
        probes.checks, failed=bool(probes.findings), required=required
    )
    unknown = [c for c in probes.checks if c.status == CHECK_UNKNOWN]
    if unknown and not probes.findings:
        result.verdict_reason += (
            " — give the probes what they need (reference data listed by the API, "
            "credentials that may write) and run again"
        )
    ctx.progress(100, "done")
    return result


def _document(client: Client, target: TargetSpec) -> dict[str, Any]:
    where = client.url(target.openapi_path)
    answer = client.send("GET", target.openapi_path)
    if answer.status == 0:
        raise AnalysisError(f"{where} could not be reached: {answer.error}")
    if not answer.ok:
        raise AnalysisError(
            f"The OpenAPI document at {where} answered {answer.status}; the probes find the "
            "operations to probe in it. Set the right path on the target's page."
        )
    try:
        document = jsondoc.loads(
            answer.body, f"The OpenAPI document at {where}", max_bytes=MAX_DOCUMENT
        )
    except jsondoc.DocumentRefused as error:
        raise AnalysisError(str(error)) from None
    except (ValueError, UnicodeDecodeError, http.client.HTTPException):
        raise AnalysisError(f"The OpenAPI document at {where} is not JSON.") from None
    if not isinstance(document, dict) or not isinstance(document.get("paths"), dict):
        raise AnalysisError(f"The document at {where} is not an OpenAPI description (no paths).")
    return document
