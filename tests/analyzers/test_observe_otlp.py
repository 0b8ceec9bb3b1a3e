"""OTLP/HTTP trace exports into span records: protobuf from the real SDK encoder, the
specification's JSON, compression, limits and readable refusals."""

import gzip
import json
from collections.abc import Sequence
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

from optimizations.analyzers.observe import otlp

TRACE_ID = "5b8efff798038103d269b633813fc60c"
SERVER_ID = "eee19b7ec3c1b174"
DB_ID = "eee19b7ec3c1b173"


def sdk_export() -> tuple[bytes, Sequence[Any]]:
    """A server span with a database child, made and encoded by the OpenTelemetry SDK."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop-api"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "GET /items/{item_id}",
        kind=SpanKind.SERVER,
        attributes={
            "http.route": "/items/{item_id}",
            "url.path": "/items/42",
            "http.request.method": "GET",
            "http.response.status_code": 500,
        },
    ) as server:
        with tracer.start_as_current_span(
            "SELECT shop",
            kind=SpanKind.CLIENT,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": "SELECT items.id FROM items WHERE items.id = $1",
                "server.address": "127.0.0.1",
                "db.tags": ["a", "b"],  # an array attribute: skipped, not an error
            },
        ):
            pass
        server.set_status(Status(StatusCode.ERROR, "boom"))
    provider.shutdown()
    finished = exporter.get_finished_spans()
    return encode_spans(finished).SerializeToString(), finished


def spec_json(**span_changes) -> dict:
    """The OTLP/JSON example of the specification: hex ids, 64-bit integers as strings."""
    span = {
        "traceId": TRACE_ID,
        "spanId": DB_ID,
        "parentSpanId": SERVER_ID,
        "name": "SELECT shop",
        "kind": 3,
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
            {"key": "db.system", "value": {"stringValue": "sqlite"}},
            {"key": "db.statement", "value": {"stringValue": "SELECT 1"}},
            {"key": "net.peer.name", "value": {"stringValue": "db.local"}},
            {"key": "http.status_code", "value": {"intValue": "200"}},
            {"key": "nested", "value": {"kvlistValue": {"values": []}}},
        ],
        "status": {},
    }
    span.update(span_changes)
    return {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "shop-api"}}]
                },
                "scopeSpans": [{"scope": {"name": "test"}, "spans": [span]}],
            }
        ]
    }


def as_json(document: dict) -> bytes:
    return json.dumps(document).encode()


def test_protobuf_from_the_sdk_becomes_span_records():
    body, finished = sdk_export()

    export = otlp.decode(body, "application/x-protobuf")

    assert export.rejected == 0
    by_name = {span.name: span for span in export.spans}
    server, db = by_name["GET /items/{item_id}"], by_name["SELECT shop"]
    sdk_server = next(s for s in finished if s.name == server.name)
    assert server.trace_id == format(sdk_server.context.trace_id, "032x")
    assert server.span_id == format(sdk_server.context.span_id, "016x")
    assert server.start_ns == sdk_server.start_time and server.end_ns == sdk_server.end_time
    assert (server.kind, server.parent_id, server.service) == ("server", None, "shop-api")
    assert (server.route, server.path, server.method) == ("/items/{item_id}", "/items/42", "GET")
    assert (server.status_code, server.status, server.status_message) == (500, "error", "boom")
    assert (db.kind, db.parent_id, db.trace_id) == ("client", server.span_id, server.trace_id)
    assert db.db_system == "postgresql" and db.is_database
    assert db.statement == "SELECT items.id FROM items WHERE items.id = $1"
    assert db.server_address == "127.0.0.1"
    assert not server.is_database


def test_the_specifications_json_with_older_attribute_names():
    export = otlp.decode(as_json(spec_json()), "application/json; charset=utf-8")

    (span,) = export.spans
    assert (span.trace_id, span.span_id, span.parent_id) == (TRACE_ID, DB_ID, SERVER_ID)
    assert (span.kind, span.status, span.service) == ("client", "unset", "shop-api")
    assert span.duration_ns == 1_000_000_000
    assert (span.db_system, span.statement, span.server_address) == (
        "sqlite",
        "SELECT 1",
        "db.local",
    )
    assert span.status_code == 200


def test_json_enum_names_numbers_and_a_query_string_in_http_target():
    document = spec_json(
        kind="SPAN_KIND_SERVER",
        startTimeUnixNano=1544712660000000000,
        status={"code": "STATUS_CODE_ERROR", "message": "down"},
        parentSpanId="",
        attributes=[
            {"key": "http.method", "value": {"stringValue": "POST"}},
            {"key": "http.target", "value": {"stringValue": "/items/bulk?dry=1"}},
            {"key": "http.status_code", "value": {"intValue": 503}},
        ],
    )

    (span,) = otlp.decode(as_json(document), "application/json").spans

    assert (span.kind, span.status, span.status_message) == ("server", "error", "down")
    assert (span.method, span.path, span.status_code, span.parent_id) == (
        "POST",
        "/items/bulk",
        503,
        None,
    )


def test_outbound_calls_name_their_host_from_the_full_url():
    document = spec_json(
        attributes=[
            {"key": "url.full", "value": {"stringValue": "https://u:p@stock.example:8443/x"}}
        ]
    )

    (span,) = otlp.decode(as_json(document), "application/json").spans

    assert span.server_address == "stock.example" and not span.is_database


def test_gzip_bodies_are_read():
    body, _ = sdk_export()

    export = otlp.decode(gzip.compress(body), "application/x-protobuf", "gzip")

    assert len(export.spans) == 2


def test_a_gzip_bomb_is_refused_before_it_expands():
    bomb = gzip.compress(b"\0" * (otlp.MAX_BYTES + 1024))

    with pytest.raises(otlp.OTLPRefused, match="larger than 8 MiB once decompressed") as refused:
        otlp.decode(bomb, "application/x-protobuf", "gzip")
    assert refused.value.status == 413


def test_broken_gzip_is_a_readable_error():
    body = gzip.compress(b"x" * 1000)

    with pytest.raises(otlp.OTLPRefused, match="not valid gzip"):
        otlp.decode(b"not gzip at all", "application/json", "gzip")
    with pytest.raises(otlp.OTLPRefused, match="truncated"):
        otlp.decode(body[: len(body) // 2], "application/json", "gzip")


@pytest.mark.parametrize(
    ("content_type", "encoding", "message"),
    [
        ("text/plain", None, "unsupported content type 'text/plain'"),
        (None, None, r"unsupported content type '\(none\)'"),
        ("application/json", "br", "unsupported content encoding 'br'"),
    ],
)
def test_unsupported_types_and_encodings_answer_415(content_type, encoding, message):
    with pytest.raises(otlp.OTLPRefused, match=message) as refused:
        otlp.decode(b"{}", content_type, encoding)
    assert refused.value.status == 415


def test_an_oversized_body_answers_413():
    with pytest.raises(otlp.OTLPRefused, match="larger than 1 KiB") as refused:
        otlp.decode(b"{" + b" " * 2000 + b"}", "application/json", max_bytes=1024)
    assert refused.value.status == 413


def test_malformed_protobuf_is_refused_with_a_reason():
    with pytest.raises(otlp.OTLPRefused, match="not a valid protobuf ExportTraceServiceRequest"):
        otlp.decode(b"\x0a\xff\xff\xff\xff\x0f", "application/x-protobuf")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[]", "the body: expected an object, got a list"),
        (b'{"resourceSpans": {}}', "resourceSpans: expected a list, got an object"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": 7}]}]}]}',
            r"resourceSpans\[0\].scopeSpans\[0\].spans\[0\].traceId: expected a string, got int",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "'zz' is not a hex-encoded id",
        ),
        (b"[" * 200 + b"]" * 200, "nests deeper than 32 levels"),
    ],
)
def test_malformed_json_names_where_it_went_wrong(body, message):
    with pytest.raises(otlp.OTLPRefused, match=message) as refused:
        otlp.decode(body, "application/json")
    assert refused.value.status == 400


def test_a_wrongly_typed_start_time_names_the_field():
    document = spec_json(startTimeUnixNano="soon")

    with pytest.raises(
        otlp.OTLPRefused, match=r"spans\[0\].startTimeUnixNano: expected an integer"
    ):
        otlp.decode(as_json(document), "application/json")


def test_unusable_spans_are_rejected_alone_and_reported_as_partial_success():
    document = spec_json()
    good = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    short_id = {**good, "traceId": "abcd"}
    backwards = {**good, "spanId": SERVER_ID, "endTimeUnixNano": "1"}
    document["resourceSpans"][0]["scopeSpans"][0]["spans"] = [short_id, good, backwards]

    export = otlp.decode(as_json(document), "application/json")

    assert [span.span_id for span in export.spans] == [DB_ID]
    assert export.rejected == 2
    assert export.problems == [
        "resourceSpans[0].scopeSpans[0].spans[0]: "
        "the trace id has 2 bytes, not 16 (or is all zero)",
        "resourceSpans[0].scopeSpans[0].spans[2]: no start time, or an end before the start",
    ]
    body, content_type = otlp.response(export, "application/x-protobuf")
    answer = ExportTraceServiceResponse.FromString(body)
    assert content_type == "application/x-protobuf"
    assert answer.partial_success.rejected_spans == 2
    assert "spans[2]: no start time" in answer.partial_success.error_message
    body, content_type = otlp.response(export, "application/json")
    assert json.loads(body)["partialSuccess"]["rejectedSpans"] == "2"


def test_a_full_success_answers_an_empty_response():
    export = otlp.decode(as_json(spec_json()), "application/json")

    assert otlp.response(export, "application/json") == (b"{}", "application/json")
    assert otlp.response(export, "application/x-protobuf") == (b"", "application/x-protobuf")


def test_too_many_spans_in_one_request_answer_413():
    body, _ = sdk_export()

    with pytest.raises(otlp.OTLPRefused, match="holds 2 spans, more than 1") as refused:
        otlp.decode(body, "application/x-protobuf", max_spans=1)
    assert refused.value.status == 413


def test_a_huge_statement_is_cut():
    long_sql = "SELECT " + ", ".join(f"c{n}" for n in range(5000)) + " FROM t"
    request = ExportTraceServiceRequest.FromString(sdk_export()[0])
    for span in request.resource_spans[0].scope_spans[0].spans:
        for pair in span.attributes:
            if pair.key == "db.query.text":
                pair.value.string_value = long_sql

    export = otlp.decode(request.SerializeToString(), "application/protobuf")

    (db,) = [span for span in export.spans if span.is_database]
    assert len(db.statement) == otlp.MAX_STATEMENT_CHARS + 2 and db.statement.endswith(" …")
