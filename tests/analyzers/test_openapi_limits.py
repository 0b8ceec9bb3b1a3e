"""OpenAPI documents (and other JSON from a target) within limits on nesting and size.

A deeply nested document ended the job as "internal error (RecursionError)";
now every reader refuses it with a sentence naming the limit, and a ``$ref``
cycle through ``allOf`` no longer recurses without end.
"""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from optimizations.analyzers import jsondoc
from optimizations.analyzers.base import AnalysisError
from optimizations.analyzers.loadgen import scenario
from optimizations.analyzers.securityscan.checks_api import _flatten
from optimizations.analyzers.securityscan.client import Exchange
from optimizations.analyzers.securityscan.openapi import Document, OpenAPIError

LOOPBACK = ("127.0.0.0/8",)


def nested(levels: int) -> str:
    return '{"openapi": "3.1.0", "paths": {}, "x": ' + "[" * levels + "]" * levels + "}"


def test_depth_is_measured_without_recursion():
    assert [jsondoc.depth(v) for v in (1, "a", [], {}, {"a": [{"b": 1}]})] == [0, 0, 1, 1, 3]
    assert jsondoc.depth(json.loads("[" * 900 + "]" * 900)) == 900
    assert jsondoc.depth(json.loads("[" * 900 + "]" * 900), stop_after=10) == 11


@pytest.mark.parametrize("levels", [100, 900, 100_000])
def test_a_document_nested_too_deep_is_refused_with_the_limit(levels):
    with pytest.raises(jsondoc.DocumentRefused, match=r"^The doc nests deeper than 64 levels"):
        jsondoc.loads(nested(levels), "The doc")


def test_a_document_within_the_limits_loads():
    assert jsondoc.loads(nested(50), "The doc")["openapi"] == "3.1.0"


def test_a_document_too_large_is_refused_before_parsing():
    with pytest.raises(jsondoc.DocumentRefused, match=r"^The doc is larger than 1 MB"):
        jsondoc.loads(b" " * (1024 * 1024 + 1), "The doc", max_bytes=1024 * 1024)


@pytest.mark.parametrize("levels", [900, 100_000])
def test_the_security_scan_says_the_document_nests_too_deep(levels):
    with pytest.raises(OpenAPIError) as error:
        Document.parse(nested(levels).encode(), "http://127.0.0.1:9/openapi.json")
    assert str(error.value) == (
        "The OpenAPI document at http://127.0.0.1:9/openapi.json nests deeper than 64 levels."
    )


def test_a_ref_cycle_through_all_of_ends():
    cyclic = {
        "openapi": "3.1.0",
        "paths": {
            "/nodes": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}
                        },
                    }
                },
                "get": {"parameters": [{"$ref": "#/components/parameters/Loop"}]},
            }
        },
        "components": {
            "schemas": {
                "Node": {
                    "allOf": [{"$ref": "#/components/schemas/Node"}],
                    "type": "object",
                    "required": ["child"],
                    "properties": {"child": {"$ref": "#/components/schemas/Node"}},
                },
            },
            "parameters": {"Loop": {"$ref": "#/components/parameters/Loop"}},
        },
    }
    doc = Document.parse(json.dumps(cyclic).encode(), "cyclic")
    operations = {op.label: op for op in doc.operations()}
    post = operations["POST /nodes"]
    sample = json.loads(doc.sample_request(post).body)
    assert jsondoc.depth(sample) <= 10 and "child" in sample  # bounded, not endless
    assert doc.negative_cases(post, seed=1, limit=20)
    assert operations["GET /nodes"].parameters == []  # a parameter that is only a loop


def test_a_deeply_nested_answer_is_flattened_as_text():
    body = ("[" * 5000 + "]" * 5000).encode()
    exchange = Exchange(
        method="GET",
        url="/x",
        request_headers={},
        request_body=None,
        status=500,
        reason="Internal Server Error",
        version="HTTP/1.1",
        headers=[("Content-Type", "application/json")],
        body=body,
        wire_bytes=len(body),
        truncated=False,
        reused_connection=False,
        server_closed=False,
    )
    assert _flatten(exchange) == body.decode()


class Answers:
    """A loopback server answering each path with the bytes given."""

    def __init__(self, bodies: dict[str, bytes]):
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = bodies.get(self.path, b"{}")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_the_benchmark_scenario_refuses_a_deep_document_readably():
    server = Answers({"/openapi.json": nested(100_000).encode()})
    try:
        with pytest.raises(AnalysisError) as error:
            scenario.fetch_json(server.url + "/openapi.json", allowed=LOOPBACK, timeout=5)
    finally:
        server.close()
    assert str(error.value) == (
        f"The answer of GET {server.url}/openapi.json nests deeper than 64 levels."
    )
