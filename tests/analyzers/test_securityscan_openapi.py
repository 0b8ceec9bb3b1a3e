"""The security scan's pure parts: reading an OpenAPI document, sample and invalid requests,
input bounds, leak patterns and redaction."""

import json

import pytest

from optimizations.analyzers.securityscan.checks_api import leaks_in
from optimizations.analyzers.securityscan.client import Exchange, Redactor
from optimizations.analyzers.securityscan.openapi import (
    BEYOND_INT64,
    Document,
    OpenAPIError,
    render_path,
)

DOC = {
    "openapi": "3.1.0",
    "info": {"title": "t", "version": "1"},
    "security": [{"key": []}],
    "paths": {
        "/things": {
            "get": {
                "security": [],
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 50}},
                    {"name": "q", "in": "query", "required": True, "schema": {"type": "string"}},
                    {
                        "name": "after",
                        "in": "query",
                        "schema": {
                            "anyOf": [{"type": "string", "format": "uuid"}, {"type": "null"}]
                        },
                    },
                ],
            },
            "post": {
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}
                    },
                }
            },
        },
        "/things/{thing_id}": {
            "parameters": [
                {
                    "name": "thing_id",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                    "examples": {"first": {"value": 7}},
                }
            ],
            "delete": {"security": [{}]},
            "put": {
                "requestBody": {
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Thing"}}
                    }
                }
            },
        },
    },
    "components": {
        "schemas": {
            "Thing": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "size"],
                "properties": {
                    "name": {"type": "string", "maxLength": 10},
                    "size": {"type": "integer", "minimum": 1},
                    "tags": {"type": "array", "items": {"type": "string"}},
                },
            },
            "Batch": {
                "type": "object",
                "required": ["things"],
                "properties": {
                    "things": {
                        "type": "array",
                        "maxItems": 3,
                        "items": {"$ref": "#/components/schemas/Thing"},
                    }
                },
            },
        }
    },
}


@pytest.fixture
def doc():
    return Document(json.loads(json.dumps(DOC)), "test")


def op_of(doc, label):
    return next(op for op in doc.operations() if op.label == label)


def test_operations_with_inherited_parameters_and_effective_security(doc):
    ops = {op.label: op for op in doc.operations()}
    assert set(ops) == {
        "GET /things",
        "POST /things",
        "DELETE /things/{thing_id}",
        "PUT /things/{thing_id}",
    }
    assert not ops["GET /things"].secured  # security: [] overrides the global requirement
    assert ops["POST /things"].secured  # the global requirement applies
    assert not ops["DELETE /things/{thing_id}"].secured  # [{}]: anonymous allowed
    assert [p.name for p in ops["PUT /things/{thing_id}"].parameters] == ["thing_id"]


def test_sample_request_uses_examples_and_satisfies_the_schema(doc):
    put = doc.sample_request(op_of(doc, "PUT /things/{thing_id}"))
    assert put.path_values == {"thing_id": 7}
    assert json.loads(put.body) == {"name": "kaizen", "size": 1}
    get = doc.sample_request(op_of(doc, "GET /things"))
    assert get.query == {"q": "kaizen"}  # optional parameters without an example are left out
    post = doc.sample_request(op_of(doc, "POST /things"))
    assert json.loads(post.body) == {"things": [{"name": "kaizen", "size": 1}]}


def test_cases_for_a_write_all_break_the_schema(doc):
    for label in ("POST /things", "PUT /things/{thing_id}", "DELETE /things/{thing_id}"):
        cases = doc.negative_cases(op_of(doc, label), seed=0, limit=100)
        assert all(case.invalid for case in cases), label
    descriptions = {c.description for c in doc.negative_cases(op_of(doc, "POST /things"), 0, 100)}
    assert "body that is not valid JSON" in descriptions
    assert "required field 'things/0/name' missing" in descriptions
    assert "field 'things' beyond its declared bound" in descriptions
    assert "unknown field in 'things/0'" in descriptions
    [overflow] = [
        c
        for c in doc.negative_cases(op_of(doc, "POST /things"), 0, 100)
        if c.description == "field 'things' beyond its declared bound"
    ]
    assert len(json.loads(overflow.body)["things"]) == 4


def test_cases_for_a_read_include_unexpected_but_valid_values(doc):
    cases = doc.negative_cases(op_of(doc, "GET /things"), seed=0, limit=100)
    by_description = {c.description: c for c in cases}
    assert by_description["query parameter 'q' missing"].invalid
    assert "q" not in by_description["query parameter 'q' missing"].query
    assert by_description["query parameter 'limit' above its maximum"].query["limit"] == 51
    assert by_description["query parameter 'after' not a valid uuid"].invalid
    unexpected = by_description["query parameter 'q' with quotes, brackets and a NUL"]
    assert not unexpected.invalid and "\x00" in unexpected.query["q"]
    long = by_description["query parameter 'q' of 4096 characters"]
    assert len(long.query["q"]) == 4096


def test_an_integer_without_maximum_gets_a_value_beyond_64_bits(doc):
    doc.raw["paths"]["/things"]["get"]["parameters"][0]["schema"].pop("maximum")
    cases = doc.negative_cases(op_of(doc, "GET /things"), seed=0, limit=100)
    [beyond] = [c for c in cases if "64-bit" in c.description]
    assert beyond.query["limit"] == BEYOND_INT64


def test_case_selection_is_seeded_and_keeps_the_order(doc):
    op = op_of(doc, "POST /things")
    every = [c.description for c in doc.negative_cases(op, 0, 100)]
    first = [c.description for c in doc.negative_cases(op, 5, 3)]
    assert first == [c.description for c in doc.negative_cases(op, 5, 3)]
    assert len(first) == 3 and first == [d for d in every if d in first]
    assert any(
        [c.description for c in doc.negative_cases(op, seed, 3)] != first for seed in range(6, 12)
    )


def test_unbounded_inputs(doc):
    assert doc.unbounded_inputs(op_of(doc, "GET /things")) == ["query parameter 'q': no maxLength"]
    put = doc.unbounded_inputs(op_of(doc, "PUT /things/{thing_id}"))
    assert "body field 'size': no maximum" in put
    assert "body field 'tags': no maxItems" in put
    assert "path parameter 'thing_id': no maximum" in put


def test_path_values_are_encoded_inside_their_segment():
    assert render_path("/a/{x}/b", {"x": "../etc/passwd"}) == "/a/..%2Fetc%2Fpasswd/b"
    assert render_path("/a/{x}", {"x": 12}) == "/a/12"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"openapi": "2.0", "paths": {}}, "OpenAPI 2.0"),
        ({"info": {}}, "no 'openapi'"),
        ({"openapi": "3.0.3", "paths": []}, "no 'paths'"),
    ],
)
def test_unusable_documents_are_explained(raw, message):
    with pytest.raises(OpenAPIError, match=message):
        Document(raw, "test")


def test_refs_that_loop_or_leave_the_document_resolve_to_nothing(doc):
    doc.raw["components"]["schemas"]["Loop"] = {"$ref": "#/components/schemas/Loop"}
    assert doc.resolve({"$ref": "#/components/schemas/Loop"}) == {
        "$ref": "#/components/schemas/Loop"
    }
    assert doc.resolve({"$ref": "https://example.com/schema.json"}) == {}
    assert doc.sample({"$ref": "#/components/schemas/Loop"}) == "kaizen"


# -- leak patterns ---------------------------------------------------------------------------


def exchange(body, status=500, kind="application/json"):
    return Exchange(
        method="GET",
        url="/x",
        request_headers={},
        request_body=None,
        status=status,
        reason="",
        version="HTTP/1.1",
        headers=[("content-type", kind)],
        body=body.encode(),
        wire_bytes=len(body),
        truncated=False,
        reused_connection=False,
        server_closed=False,
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (
            json.dumps(
                {"tb": ["Traceback (most recent call last):\n", '  File "/app/x.py", line 3']}
            ),
            "stack trace",
        ),
        ('{"detail": "(sqlite3.OperationalError) no such column"}', "SQL text or database error"),
        (
            '{"detail": "SELECT items.id, items.name FROM items WHERE ..."}',
            "SQL text or database error",
        ),
        ('syntax error at or near "\'"', "SQL text or database error"),
        ('{"detail": "see /srv/shop/app/routes.py"}', "server file path"),
        ('{"detail": "KeyError: sku"}', "exception name"),
    ],
)
def test_leaks_are_recognised(body, kind):
    assert kind in [found[0] for found in leaks_in(exchange(body))]


@pytest.mark.parametrize(
    "body",
    [
        '{"detail": "Internal Server Error", "request_id": "4f1c"}',
        json.dumps(
            {
                "detail": [
                    {
                        "type": "int_parsing",
                        "loc": ["query", "limit"],
                        "msg": "Input should be a valid integer",
                        "input": "kaizen",
                    }
                ]
            }
        ),
        '{"detail": "Select the items you want from the list"}',
        '{"detail": "Not Found"}',
    ],
)
def test_ordinary_error_bodies_are_no_leak(body):
    assert leaks_in(exchange(body, status=422)) == []


def test_redaction_of_credentials():
    redactor = Redactor(["s3cr3t-value"])
    text = "key s3cr3t-value in postgresql://app:hunter2@db:5432/shop password=swordfish"
    cleaned = redactor.text(text)
    assert "s3cr3t-value" not in cleaned and "hunter2" not in cleaned
    assert "swordfish" not in cleaned
    assert "postgresql://app:[redacted]@db:5432/shop" in cleaned
    headers = redactor.headers(
        [("Authorization", "Bearer abc"), ("X-Token", "s3cr3t-value"), ("Set-Cookie", "a=b")],
        {"x-token"},
    )
    assert set(headers.values()) == {"[redacted]"}
