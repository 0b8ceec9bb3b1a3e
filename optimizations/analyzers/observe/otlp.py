"""OTLP/HTTP trace export requests, decoded into plain span records.

A target's OpenTelemetry SDK (or a collector) POSTs an
``ExportTraceServiceRequest`` to ``/v1/traces``, as protobuf
(``application/x-protobuf``) or as JSON (``application/json``), optionally
gzip-compressed. ``decode`` turns either into :class:`Span` records that hold
only what Kaizen reads: ids, name, kind, times, status and the attributes of
the HTTP and database semantic conventions (the current names and the older
ones that many instrumentations still send).

Limits, as for any document from a target (see ``jsondoc``): the decompressed
body, the JSON nesting, the number of spans and the length of a statement are
bounded. A body that is not a valid export is refused whole with a sentence
naming where it went wrong (:class:`OTLPRefused`, carrying the HTTP status an
endpoint should answer); a span that is well-formed but unusable (an id of the
wrong length, an end before its start) is rejected alone and counted, as the
protocol's ``partial_success`` reports it.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from .. import jsondoc

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
# The protobuf media type has two spellings in the wild; both mean the same body.
PROTOBUF_TYPES = frozenset({PROTOBUF, "application/protobuf"})

# An exporter's batch is 512 spans by default (OTEL_BSP_MAX_EXPORT_BATCH_SIZE); a request
# far above these is a mistake or an attack, not telemetry.
MAX_BYTES = 8 * 1024 * 1024  # after decompression
MAX_SPANS = 20_000
# A JSON export nests about 12 levels down to a scalar attribute value; 32 leaves room for
# array and map attributes and stays far below Python's recursion limit.
MAX_DEPTH = 32
MAX_STATEMENT_CHARS = 10_000  # db.query.text beyond this is cut (and marked) before use
MAX_PROBLEMS = 5  # rejected spans described in the partial-success message

KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")

# Attribute names, current semantic conventions first, then the older names.
ROUTE = ("http.route",)
PATH = ("url.path", "http.target")
METHOD = ("http.request.method", "http.method")
STATUS_CODE = ("http.response.status_code", "http.status_code")
DB_SYSTEM = ("db.system.name", "db.system")
STATEMENT = ("db.query.text", "db.statement")
SERVER_ADDRESS = ("server.address", "net.peer.name")
FULL_URL = ("url.full", "http.url")

Scalar = str | int | float | bool


class OTLPRefused(ValueError):
    """The request body is not an OTLP trace export Kaizen can read; says why.

    ``status`` is the HTTP answer an OTLP/HTTP endpoint gives: 400 malformed,
    413 too large, 415 an unsupported content type or encoding.
    """

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Span:
    """One span, reduced to what Kaizen reads. Times are Unix nanoseconds."""

    trace_id: str  # 32 lower-case hex digits
    span_id: str  # 16 lower-case hex digits
    parent_id: str | None
    name: str
    kind: str  # one of KINDS
    start_ns: int
    end_ns: int
    status: str = "unset"  # one of STATUSES
    status_message: str = ""
    service: str = ""  # the resource's service.name
    route: str | None = None  # http.route: the template ("/items/{item_id}")
    path: str | None = None  # url.path: the concrete path, no query string
    method: str | None = None
    status_code: int | None = None
    db_system: str | None = None
    statement: str | None = None
    server_address: str | None = None

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns

    @property
    def is_database(self) -> bool:
        return self.db_system is not None or self.statement is not None


@dataclass
class Export:
    """What one export request carried: the usable spans and how many were rejected."""

    spans: list[Span] = field(default_factory=list)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)  # the first few rejections, explained

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{where}: {why}")


def media_type(content_type: str | None) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode(
    body: bytes,
    content_type: str | None,
    content_encoding: str | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_spans: int = MAX_SPANS,
) -> Export:
    """The spans of one OTLP/HTTP trace export request; OTLPRefused when unreadable."""
    kind = media_type(content_type)
    if kind not in PROTOBUF_TYPES and kind != JSON:
        raise OTLPRefused(
            f"unsupported content type {kind or '(none)'!r}: OTLP/HTTP sends {PROTOBUF} or {JSON}",
            415,
        )
    body = _decompressed(body, content_encoding, max_bytes)
    if kind == JSON:
        return _decode_json(body, max_spans)
    return _decode_protobuf(body, max_spans)


def response(export: Export, content_type: str | None) -> tuple[bytes, str]:
    """The ``ExportTraceServiceResponse`` body for ``export``, in the request's encoding."""
    answer = ExportTraceServiceResponse()
    if export.rejected:
        answer.partial_success.rejected_spans = export.rejected
        answer.partial_success.error_message = "; ".join(export.problems)
    if media_type(content_type) == JSON:
        payload: dict[str, Any] = {}
        if export.rejected:
            payload["partialSuccess"] = {
                "rejectedSpans": str(export.rejected),
                "errorMessage": answer.partial_success.error_message,
            }
        return json.dumps(payload).encode(), JSON
    return answer.SerializeToString(), PROTOBUF


# google.rpc.Code of an HTTP refusal: what OTLP/HTTP puts in a failure's Status body.
_RPC_CODES = {400: 3, 401: 16, 403: 7, 413: 8, 415: 3, 429: 8}


def error_body(message: str, status: int, content_type: str | None) -> tuple[bytes, str]:
    """The ``google.rpc.Status`` body of a refusal, in the request's encoding (protobuf
    unless the request was JSON), as OTLP/HTTP answers a failed export."""
    code = _RPC_CODES.get(status, 2)  # 2: UNKNOWN
    if media_type(content_type) == JSON:
        return json.dumps({"code": code, "message": message}).encode(), JSON
    text = message.encode()
    # Status{code = 1 (varint), message = 2 (length-delimited)}; codes are below 128.
    return bytes((0x08, code, 0x12)) + _varint(len(text)) + text, PROTOBUF


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _decompressed(body: bytes, encoding: str | None, max_bytes: int) -> bytes:
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > max_bytes:
            raise OTLPRefused(f"the export is larger than {_size(max_bytes)}", 413)
        return body
    if encoding != "gzip":
        raise OTLPRefused(f"unsupported content encoding {encoding!r}: use gzip or none", 415)
    # Bounded: a few kilobytes of gzip can expand to gigabytes.
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as error:
        raise OTLPRefused(f"the body is not valid gzip: {error}") from None
    if len(data) > max_bytes:
        raise OTLPRefused(f"the export is larger than {_size(max_bytes)} once decompressed", 413)
    if not inflater.eof:
        raise OTLPRefused("the gzip body is truncated")
    return data


def _size(size: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= scale and size % scale == 0:
            return f"{size // scale} {unit}"
    return f"{size} bytes"


# ---- protobuf ---------------------------------------------------------------------------


def _decode_protobuf(body: bytes, max_spans: int) -> Export:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError as error:
        raise OTLPRefused(f"not a valid protobuf ExportTraceServiceRequest: {error}") from None
    total = sum(
        len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans
    )
    _check_count(total, max_spans)
    export = Export()
    for r, resource in enumerate(request.resource_spans):
        service = _scalar_attributes(resource.resource.attributes).get("service.name")
        for s, scope in enumerate(resource.scope_spans):
            for n, span in enumerate(scope.spans):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _add(
                    export,
                    where,
                    trace_id=span.trace_id.hex(),
                    trace_len=len(span.trace_id),
                    span_id=span.span_id.hex(),
                    span_len=len(span.span_id),
                    parent_id=span.parent_span_id.hex(),
                    parent_len=len(span.parent_span_id),
                    name=span.name,
                    kind=span.kind,
                    start_ns=span.start_time_unix_nano,
                    end_ns=span.end_time_unix_nano,
                    status=span.status.code,
                    status_message=span.status.message,
                    service=service if isinstance(service, str) else "",
                    attributes=_scalar_attributes(span.attributes),
                )
    return export


def _scalar_attributes(pairs: Any) -> dict[str, Scalar]:
    """The scalar attributes of a repeated KeyValue; arrays, maps and bytes are skipped."""
    found: dict[str, Scalar] = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        value = _scalar(pair.value)
        if value is not None:
            found[pair.key] = value
    return found


def _scalar(value: AnyValue) -> Scalar | None:
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "bool_value":
        return value.bool_value
    if which == "int_value":
        return value.int_value
    if which == "double_value":
        return value.double_value
    return None


# ---- JSON -------------------------------------------------------------------------------


def _decode_json(body: bytes, max_spans: int) -> Export:
    try:
        document = jsondoc.loads(
            body, "The OTLP JSON export", max_bytes=len(body) + 1, max_depth=MAX_DEPTH
        )
    except jsondoc.DocumentRefused as error:
        raise OTLPRefused(str(error)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise OTLPRefused(f"not valid JSON: {error}") from None
    root = _object(document, "the body")
    resources = _list(root.get("resourceSpans", []), "resourceSpans")
    scopes_by_resource = []
    total = 0
    for r, item in enumerate(resources):
        resource = _object(item, f"resourceSpans[{r}]")
        scopes = _list(resource.get("scopeSpans", []), f"resourceSpans[{r}].scopeSpans")
        for s, scope in enumerate(scopes):
            where = f"resourceSpans[{r}].scopeSpans[{s}]"
            total += len(_list(_object(scope, where).get("spans", []), f"{where}.spans"))
        scopes_by_resource.append((resource, scopes))
    _check_count(total, max_spans)
    export = Export()
    for r, (resource, scopes) in enumerate(scopes_by_resource):
        where = f"resourceSpans[{r}].resource"
        described = _object(resource.get("resource", {}), where)
        service = _json_attributes(described.get("attributes", []), where).get("service.name")
        for s, scope in enumerate(scopes):
            for n, item in enumerate(scope.get("spans", [])):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                span = _object(item, where)
                status = _object(span.get("status", {}), f"{where}.status")
                trace_id = _hex(span.get("traceId", ""), f"{where}.traceId")
                span_id = _hex(span.get("spanId", ""), f"{where}.spanId")
                parent_id = _hex(span.get("parentSpanId", ""), f"{where}.parentSpanId")
                _add(
                    export,
                    where,
                    trace_id=trace_id,
                    trace_len=len(trace_id) // 2,
                    span_id=span_id,
                    span_len=len(span_id) // 2,
                    parent_id=parent_id,
                    parent_len=len(parent_id) // 2,
                    name=_string(span.get("name", ""), f"{where}.name"),
                    kind=_enum(span.get("kind", 0), f"{where}.kind", "SPAN_KIND_", KINDS),
                    start_ns=_integer(
                        span.get("startTimeUnixNano", 0), f"{where}.startTimeUnixNano"
                    ),
                    end_ns=_integer(span.get("endTimeUnixNano", 0), f"{where}.endTimeUnixNano"),
                    status=_enum(
                        status.get("code", 0), f"{where}.status.code", "STATUS_CODE_", STATUSES
                    ),
                    status_message=_string(status.get("message", ""), f"{where}.status.message"),
                    service=service if isinstance(service, str) else "",
                    attributes=_json_attributes(span.get("attributes", []), where),
                )
    return export


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise OTLPRefused(f"{where}: expected an object, got {_kind_of(value)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise OTLPRefused(f"{where}: expected a list, got {_kind_of(value)}")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise OTLPRefused(f"{where}: expected a string, got {_kind_of(value)}")
    return value


def _integer(value: Any, where: str) -> int:
    # Protobuf's JSON mapping writes 64-bit integers as strings; numbers are accepted too.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise OTLPRefused(f"{where}: expected an integer, got {_kind_of(value)}")


def _enum(value: Any, where: str, prefix: str, names: tuple[str, ...]) -> int:
    # OTLP/JSON sends enums as integers; protobuf's JSON printers send their names.
    if isinstance(value, str) and value.startswith(prefix):
        name = value.removeprefix(prefix).lower()
        if name in names:
            return names.index(name)
    number = _integer(value, where)
    return number


def _hex(value: Any, where: str) -> str:
    # OTLP/JSON writes trace and span ids as hex strings (not base64, unlike protobuf's
    # JSON mapping of bytes).
    text = _string(value, where).strip().lower()
    try:
        bytes.fromhex(text)
    except ValueError:
        raise OTLPRefused(f"{where}: {text[:40]!r} is not a hex-encoded id") from None
    return text


def _json_attributes(value: Any, where: str) -> dict[str, Scalar]:
    found: dict[str, Scalar] = {}
    for index, item in enumerate(_list(value, f"{where}.attributes")):
        pair = _object(item, f"{where}.attributes[{index}]")
        key = _string(pair.get("key", ""), f"{where}.attributes[{index}].key")
        typed = _object(pair.get("value", {}), f"{where}.attributes[{index}].value")
        scalar = _json_scalar(typed, f"{where}.attributes[{index}].value")
        if scalar is not None:
            found[key] = scalar
    return found


def _json_scalar(typed: dict[str, Any], where: str) -> Scalar | None:
    if "stringValue" in typed:
        return _string(typed["stringValue"], f"{where}.stringValue")
    if "boolValue" in typed:
        flag = typed["boolValue"]
        if not isinstance(flag, bool):
            raise OTLPRefused(f"{where}.boolValue: expected true or false, got {_kind_of(flag)}")
        return flag
    if "intValue" in typed:
        return _integer(typed["intValue"], f"{where}.intValue")
    if "doubleValue" in typed:
        number = typed["doubleValue"]
        if isinstance(number, (int, float)) and not isinstance(number, bool):
            return float(number)
        raise OTLPRefused(f"{where}.doubleValue: expected a number, got {_kind_of(number)}")
    return None  # arrays, maps and bytes: not read


def _kind_of(value: Any) -> str:
    if isinstance(value, str):
        return repr(value[:40])
    return {dict: "an object", list: "a list", bool: "a boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


# ---- both -------------------------------------------------------------------------------


def _check_count(total: int, max_spans: int) -> None:
    if total > max_spans:
        raise OTLPRefused(
            f"the export holds {total} spans, more than {max_spans} in one request: "
            "lower the exporter's batch size (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)",
            413,
        )


def _add(
    export: Export,
    where: str,
    *,
    trace_id: str,
    trace_len: int,
    span_id: str,
    span_len: int,
    parent_id: str,
    parent_len: int,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    status: int,
    status_message: str,
    service: str,
    attributes: dict[str, Scalar],
) -> None:
    """Validate one span and add its record to ``export``, or count it as rejected."""
    if trace_len != 16 or trace_id == "0" * 32:
        export.reject(where, f"the trace id has {trace_len} bytes, not 16 (or is all zero)")
        return
    if span_len != 8 or span_id == "0" * 16:
        export.reject(where, f"the span id has {span_len} bytes, not 8 (or is all zero)")
        return
    if parent_len not in (0, 8):
        export.reject(where, f"the parent span id has {parent_len} bytes, not 8")
        return
    if start_ns <= 0 or end_ns < start_ns:
        export.reject(where, "no start time, or an end before the start")
        return
    statement = _text(attributes, STATEMENT)
    if statement is not None and len(statement) > MAX_STATEMENT_CHARS:
        statement = statement[:MAX_STATEMENT_CHARS] + " …"
    path = _text(attributes, PATH)
    server = _text(attributes, SERVER_ADDRESS)
    if server is None:
        server = _host_of(_text(attributes, FULL_URL))
    export.spans.append(
        Span(
            trace_id=trace_id,
            span_id=span_id,
            parent_id=parent_id if parent_len and parent_id != "0" * 16 else None,
            name=name,
            kind=KINDS[kind] if 0 <= kind < len(KINDS) else "unspecified",
            start_ns=start_ns,
            end_ns=end_ns,
            status=STATUSES[status] if 0 <= status < len(STATUSES) else "unset",
            status_message=status_message,
            service=service,
            route=_text(attributes, ROUTE),
            path=path.split("?", 1)[0] if path is not None else None,
            method=_text(attributes, METHOD),
            status_code=_number(attributes, STATUS_CODE),
            db_system=_text(attributes, DB_SYSTEM),
            statement=statement,
            server_address=server,
        )
    )


def _text(attributes: dict[str, Scalar], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _number(attributes: dict[str, Scalar], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.isdigit():
            return int(value)
    return None


def _host_of(url: str | None) -> str | None:
    if not url or "://" not in url:
        return None
    rest = url.split("://", 1)[1]
    host = rest.split("/", 1)[0].rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[1 : host.find("]")] or None
    return host.split(":", 1)[0] or None
