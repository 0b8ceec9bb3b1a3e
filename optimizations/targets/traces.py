"""Traces in: a target's OpenTelemetry SDK (or Collector) exports to Kaizen over OTLP/HTTP.

``POST /otlp/<slug>/v1/traces`` with ``Authorization: Bearer kzt_…`` — the target's own
token (``manage.py otlp_token <slug> --user <name>``; only its SHA-256 is kept) — and an
``ExportTraceServiceRequest`` as protobuf or JSON, gzip or not. Sampling is the exporter's
business; what arrives is kept for ``KAIZEN_TRACE_RETENTION_DAYS`` (``jobs.housekeeping``
purges the rest), one row per trace (several exports of one trace add their spans to it).

Each export is analysed at once for the traces it touched (``observe.traces``): a statement
family repeated within one request becomes a runtime N+1 finding (source ``trace``) at its
route, beside the code scan's N+1 finding at the same route when there is one
(:func:`linked_code_findings`). Findings are written through ``work.findings`` like every
other source's; one is fixed when an export brings enough clean requests of its route.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import hmac
import secrets
from collections import Counter
from dataclasses import dataclass

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_noop
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from optimizations.analyzers.base import AnalysisResult
from optimizations.analyzers.observe import otlp, traces
from optimizations.models import Finding, TargetService, Trace
from optimizations.work.findings import fix_by_check, upsert
from portal.audit import record
from portal.i18n import Phrase

TOKEN_PREFIX = "kzt_"
SHOWN_CHARS = 10
SOURCE = "trace"
# One trace's stored spans; a runaway loop in a target must not grow one row without end.
MAX_SPANS_PER_TRACE = 5_000
# Requests of a route, in one export, that must all be free of a runtime N+1 before its
# finding counts as fixed (one clean request may be a cache hit, not a fix).
FIX_AFTER_REQUESTS = 5
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def do_issue_token(actor, target: TargetService) -> str:
    """A new ingestion token for ``target`` (the previous one stops working); shown once."""
    key = TOKEN_PREFIX + secrets.token_urlsafe(30)
    target.otlp_token_hash = hash_token(key)
    target.otlp_token_prefix = key[:SHOWN_CHARS]
    target.save(update_fields=["otlp_token_hash", "otlp_token_prefix", "updated_at"])
    record(
        actor,
        "target.otlp_token",
        target,
        Phrase(
            gettext_noop("issued a new OTLP ingestion token (%(prefix)s…) for %(target)s"),
            prefix=target.otlp_token_prefix,
            target=str(target),
        ),
        target=target,
    )
    return key


def token_matches(target: TargetService, key: str) -> bool:
    if not target.otlp_token_hash or not key.startswith(TOKEN_PREFIX):
        return False
    return hmac.compare_digest(target.otlp_token_hash, hash_token(key))


@dataclass
class Ingested:
    """What one export added."""

    spans: int = 0
    traces_new: int = 0
    traces_updated: int = 0
    spans_dropped: int = 0  # beyond MAX_SPANS_PER_TRACE
    findings: list[str] = dataclasses.field(default_factory=list)  # fingerprints reported
    fixed: int = 0  # runtime findings its requests showed gone


def _as_dict(span: otlp.Span) -> dict:
    return dataclasses.asdict(span)


def _as_span(data: dict) -> otlp.Span:
    return otlp.Span(**data)


def do_ingest(target: TargetService, export: otlp.Export, now=None) -> Ingested:
    """Store the spans of ``export`` by trace and derive runtime N+1 findings from them."""
    now = now or timezone.now()
    result = Ingested(spans=len(export.spans))
    by_trace: dict[str, list[otlp.Span]] = {}
    for span in export.spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    if not by_trace:
        return result
    try:
        with transaction.atomic():
            touched = _store(target, by_trace, now, result)
    except IntegrityError:
        # Another export of the same trace created its row between our read and our
        # insert: read again and merge into it.
        result = Ingested(spans=len(export.spans))
        with transaction.atomic():
            touched = _store(target, by_trace, now, result)
    found = traces.requests(span for trace in touched for span in trace)
    n_plus_ones = traces.n_plus_one(found.requests)
    with transaction.atomic():
        if n_plus_ones:
            reported = AnalysisResult(findings=[n.finding() for n in n_plus_ones])
            result.findings = sorted(upsert(None, SOURCE, reported, now, target_id=target.pk))
        result.fixed = _fix_gone(target, found.requests, set(result.findings), now)
    return result


def _fix_gone(target, requests, reported: set[str], now) -> int:
    """A runtime N+1 is fixed once an export brings FIX_AFTER_REQUESTS answered requests of
    its route (status below 400) and none repeats the statement: fewer, or requests that
    failed before their queries, are no evidence either way."""
    answered = Counter(
        r.endpoint
        for r in requests
        if not r.error and (r.status_code is None or r.status_code < 400)
    )
    routes = [endpoint for endpoint, count in answered.items() if count >= FIX_AFTER_REQUESTS]
    if not routes:
        return 0
    gone = Finding.objects.filter(
        target=target,
        source=SOURCE,
        rule_id=traces.RULE_N_PLUS_ONE,
        location__in=routes,
        status=Finding.OPEN,
    ).exclude(fingerprint__in=reported)
    return fix_by_check(
        list(gone.only("pk", "status")),
        f"Its route answered {FIX_AFTER_REQUESTS} or more traced requests without repeating "
        "the statement.",
        now=now,
    )


def _store(target, by_trace, now, result: Ingested) -> list[list[otlp.Span]]:
    existing = {
        row.trace_id: row
        for row in Trace.objects.select_for_update().filter(
            target=target, trace_id__in=list(by_trace)
        )
    }
    new_rows, changed_rows, touched = [], [], []
    for trace_id, arrived in by_trace.items():
        row = existing.get(trace_id)
        kept = [_as_span(data) for data in row.spans] if row else []
        seen = {span.span_id for span in kept}
        for span in arrived:
            if span.span_id in seen:
                continue  # an exporter's retry sent it again
            if len(kept) >= MAX_SPANS_PER_TRACE:
                result.spans_dropped += 1
                continue
            kept.append(span)
            seen.add(span.span_id)
        if row is None:
            row = Trace(target=target, trace_id=trace_id)
            new_rows.append(row)
        else:
            changed_rows.append(row)
        _summarise(row, kept, now)
        touched.append(kept)
    Trace.objects.bulk_create(new_rows)
    Trace.objects.bulk_update(
        changed_rows,
        [
            "received_at",
            "started_at",
            "endpoint",
            "duration_ms",
            "error",
            "statements",
            "span_count",
            "spans",
        ],
    )
    result.traces_new, result.traces_updated = len(new_rows), len(changed_rows)
    return touched


def _summarise(row: Trace, spans: list[otlp.Span], now) -> None:
    """The trace's columns from its spans: its first request, else its earliest span."""
    row.spans = [_as_dict(span) for span in spans]
    row.span_count = len(spans)
    row.received_at = now
    found = traces.requests(spans).requests
    first_start = min(span.start_ns for span in spans)
    row.started_at = EPOCH + datetime.timedelta(microseconds=first_start // 1000)
    if found:
        request = found[0]
        row.endpoint = request.endpoint[:300]
        row.duration_ms = request.duration_ms
        row.error = any(r.error for r in found)
        row.statements = sum(len(r.statements) for r in found)


def linked_code_findings(finding: Finding):
    """The code scan's findings at the route of a runtime finding (static and runtime
    evidence of one problem), most severe first."""
    route = finding.location
    candidates = Finding.objects.filter(target_id=finding.target_id, source="code").exclude(
        status=Finding.FIXED
    )
    linked = []
    for code in candidates.only("pk", "evidence"):
        evidence = code.evidence or {}
        paths = evidence.get("request_path") or []
        if evidence.get("route") == route or any(
            isinstance(p, str) and (p == route or p.startswith(f"{route} →")) for p in paths
        ):
            linked.append(code.pk)
    return Finding.objects.filter(pk__in=linked).by_severity()


def _bearer(request: HttpRequest) -> str:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


def _refusal(message: str, status: int, content_type: str | None) -> HttpResponse:
    body, kind = otlp.error_body(message, status, content_type)
    response = HttpResponse(body, status=status, content_type=kind)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="kaizen-otlp"'
    return response


@csrf_exempt
@login_not_required
@require_POST
def otlp_traces(request: HttpRequest, slug: str) -> HttpResponse:
    """The OTLP/HTTP trace endpoint of one target."""
    content_type = request.headers.get("Content-Type")
    target = TargetService.objects.filter(slug=slug).first()
    # An unknown target and a wrong token answer alike: the endpoint tells no one which
    # targets exist.
    if target is None or not token_matches(target, _bearer(request)):
        return _refusal(
            "send the target's ingestion token as “Authorization: Bearer kzt_…” "
            "(manage.py otlp_token <target> issues one)",
            401,
            content_type,
        )
    # Read within the limit (request.body would refuse at DATA_UPLOAD_MAX_MEMORY_SIZE
    # with a 400 that says nothing); gzip is bounded again when it is inflated.
    body = request.read(otlp.MAX_BYTES + 1)
    if len(body) > otlp.MAX_BYTES:
        return _refusal(f"the export is larger than {otlp.MAX_BYTES} bytes", 413, content_type)
    try:
        export = otlp.decode(body, content_type, request.headers.get("Content-Encoding"))
    except otlp.OTLPRefused as refused:
        return _refusal(str(refused), refused.status, content_type)
    do_ingest(target, export)
    answer, kind = otlp.response(export, content_type)
    return HttpResponse(answer, content_type=kind)
