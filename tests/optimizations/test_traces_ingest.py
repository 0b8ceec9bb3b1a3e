"""The OTLP/HTTP trace endpoint: per-target token, real SDK exports stored by trace, runtime
N+1 findings derived at the route, beside the code scan's finding there; retention."""

import datetime
import gzip
import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from optimizations.analyzers.base import FindingData
from optimizations.jobs import housekeeping
from optimizations.models import Finding, TargetService, Trace
from optimizations.targets import traces as ingest
from portal.models import AuditEvent

PROTOBUF = "application/x-protobuf"


class Exporter:
    """Spans made by the OpenTelemetry SDK, encoded as its OTLP exporter sends them."""

    def __init__(self):
        self.memory = InMemorySpanExporter()
        self.provider = TracerProvider(resource=Resource.create({"service.name": "orders"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = self.provider.get_tracer("test")

    def request(self, route="/items", method="GET", lookups=0, status=200):
        """One request to ``route`` that loads ``lookups`` categories one by one."""
        attributes = {"http.route": route, "http.request.method": method}
        with self.tracer.start_as_current_span(
            f"{method} {route}", kind=SpanKind.SERVER, attributes=attributes
        ) as server:
            self.statement("SELECT items.id FROM items ORDER BY items.id LIMIT ?")
            for n in range(lookups):
                self.statement(f"SELECT categories.name FROM categories WHERE categories.id = {n}")
            server.set_attribute("http.response.status_code", status)

    def statement(self, sql):
        with self.tracer.start_as_current_span(
            "SELECT",
            kind=SpanKind.CLIENT,
            attributes={"db.system.name": "postgresql", "db.query.text": sql},
        ):
            pass

    def take(self):
        """The finished spans so far, cleared."""
        spans = list(self.memory.get_finished_spans())
        self.memory.clear()
        return spans

    def body(self, spans=None):
        return encode_spans(self.take() if spans is None else spans).SerializeToString()


@pytest.fixture
def token(target, dev_engineer):
    return ingest.do_issue_token(dev_engineer, target)


@pytest.fixture
def post(client, target):
    def send(body, key, *, content_type=PROTOBUF, slug=None, **headers):
        url = reverse("otlp_traces", args=[slug or target.slug])
        if key is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        return client.post(url, body, content_type=content_type, **headers)

    return send


def test_an_export_is_stored_by_trace(post, token, target):
    exporter = Exporter()
    exporter.request(lookups=2)
    exporter.request(route="/health")

    response = post(exporter.body(), token)

    assert response.status_code == 200
    assert response["Content-Type"] == PROTOBUF
    assert (
        ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 0
    )
    rows = {row.endpoint: row for row in Trace.objects.filter(target=target)}
    assert set(rows) == {"GET /items", "GET /health"}
    assert (rows["GET /items"].span_count, rows["GET /items"].statements) == (4, 3)
    assert rows["GET /items"].duration_ms > 0 and not rows["GET /items"].error
    assert len(rows["GET /items"].trace_id) == 32


def test_spans_of_one_trace_in_two_exports_make_one_trace(post, token, target):
    exporter = Exporter()
    exporter.request(lookups=6)
    spans = exporter.take()
    children, root = spans[:-1], spans[-1:]  # the server span ends last: the next batch

    assert post(exporter.body(children), token).status_code == 200
    (row,) = Trace.objects.filter(target=target)
    assert (row.endpoint, row.span_count) == ("", 7)
    assert not Finding.objects.exists()  # no request yet: nothing to judge
    assert post(exporter.body(root), token).status_code == 200
    assert post(exporter.body(root), token).status_code == 200  # an exporter's retry

    row.refresh_from_db()
    assert (row.endpoint, row.span_count, row.statements) == ("GET /items", 8, 7)
    assert Finding.objects.get().rule_id == "trace.n_plus_one"


def test_a_repeated_statement_family_is_a_runtime_n_plus_one_at_its_route(post, token, target):
    exporter = Exporter()
    exporter.request(lookups=12)
    exporter.request(lookups=3)
    exporter.request(route="/categories", lookups=1)

    post(exporter.body(), token)

    (finding,) = Finding.objects.filter(target=target)
    assert (finding.source, finding.rule_id, finding.severity) == (
        "trace",
        "trace.n_plus_one",
        "high",
    )
    assert finding.location == "GET /items"
    assert finding.evidence["family"] == (
        "SELECT categories.name FROM categories WHERE categories.id = ?"
    )
    assert (finding.evidence["repeats"], finding.evidence["requests"]) == (12, 1)
    assert finding.first_job is None and finding.status == "open"


def test_the_same_n_plus_one_later_is_the_same_finding(post, token, target):
    exporter = Exporter()
    exporter.request(lookups=9)
    post(exporter.body(), token)
    exporter.request(lookups=20)

    post(exporter.body(), token)

    finding = Finding.objects.get(target=target)
    assert finding.times_seen == 2 and finding.evidence["repeats"] == 20


def test_a_runtime_n_plus_one_is_fixed_by_enough_clean_requests_of_its_route(post, token, target):
    exporter = Exporter()
    exporter.request(lookups=9)
    post(exporter.body(), token)
    for _ in range(ingest.FIX_AFTER_REQUESTS - 1):
        exporter.request(lookups=1)
    for _ in range(3):
        exporter.request(lookups=0, status=404)  # failed before the lookups: no evidence
    post(exporter.body(), token)
    assert Finding.objects.get().status == "open"

    for _ in range(ingest.FIX_AFTER_REQUESTS):
        exporter.request(lookups=1)
    post(exporter.body(), token)

    finding = Finding.objects.get()
    assert finding.status == "fixed" and finding.fixed_at is not None
    assert "without repeating the statement" in finding.status_reason
    exporter.request(lookups=9)
    post(exporter.body(), token)
    finding.refresh_from_db()
    assert finding.status == "open" and finding.times_seen == 2


def test_the_code_scans_finding_at_the_same_route_is_linked(post, token, target):
    now = timezone.now()
    code = FindingData(
        "FSA102",
        "Lazy relationship read per row",
        "high",
        "performance",
        location="app/routes.py:136",
        evidence={"route": "GET /items", "relationship": "Item.category"},
    )
    elsewhere = FindingData(
        "FSA101",
        "Query in a loop",
        "high",
        "performance",
        location="app/other.py:9",
        evidence={"request_path": ["GET /orders → app.routes.orders"]},
    )
    below = FindingData(
        "FSA104",
        "Blocking call",
        "high",
        "performance",
        location="app/stock.py:3",
        evidence={"request_path": ["GET /items → app.routes.list_items → app.stock.get"]},
    )
    for data in (code, elsewhere, below):
        Finding.objects.create(
            target=target,
            source="code",
            rule_id=data.rule_id,
            severity=data.severity,
            category=data.category,
            title=data.title,
            location=data.location,
            evidence=data.evidence,
            fingerprint=data.fingerprint("code"),
            first_seen_at=now,
            last_seen_at=now,
        )
    exporter = Exporter()
    exporter.request(lookups=8)
    post(exporter.body(), token)

    runtime = Finding.objects.get(source="trace")

    assert [f.rule_id for f in ingest.linked_code_findings(runtime)] == ["FSA102", "FSA104"]


def test_json_and_gzip_exports_are_accepted(post, token, target):
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "GET /items",
                                "kind": 2,
                                "startTimeUnixNano": "1544712660000000000",
                                "endTimeUnixNano": "1544712661000000000",
                                "attributes": [
                                    {"key": "http.route", "value": {"stringValue": "/items"}},
                                    {"key": "http.method", "value": {"stringValue": "GET"}},
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }

    response = post(
        gzip.compress(json.dumps(document).encode()),
        token,
        content_type="application/json",
        HTTP_CONTENT_ENCODING="gzip",
    )

    assert response.status_code == 200 and response.json() == {}
    row = Trace.objects.get(target=target)
    assert (row.endpoint, row.duration_ms) == ("GET /items", 1000.0)
    assert row.started_at == datetime.datetime(2018, 12, 13, 14, 51, tzinfo=datetime.UTC)


@pytest.mark.parametrize("key", [None, "kzt_wrong", "kz_an_api_token"])
def test_no_token_or_a_wrong_one_is_refused(post, token, target, key):
    exporter = Exporter()
    exporter.request()

    response = post(exporter.body(), key)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer kzt_" in Status.FromString(response.content).message
    assert not Trace.objects.exists()


def test_another_targets_token_does_not_open_this_one(post, token, target, departments):
    other = TargetService.objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:8200",
        owner_department=departments["dev"],
    )
    exporter = Exporter()
    exporter.request()

    assert post(exporter.body(), token, slug=other.slug).status_code == 401
    assert post(exporter.body(), token, slug="no-such-target").status_code == 401


def test_a_target_without_a_token_takes_no_traces(post, target):
    exporter = Exporter()
    exporter.request()

    assert post(exporter.body(), "kzt_").status_code == 401


def test_a_new_token_replaces_the_old_one_and_is_audited(post, token, target, dev_engineer):
    exporter = Exporter()
    exporter.request()
    body = exporter.body()

    newer = ingest.do_issue_token(dev_engineer, target)

    assert post(body, token).status_code == 401
    assert post(body, newer).status_code == 200
    target.refresh_from_db()
    assert newer not in (target.otlp_token_hash, target.otlp_token_prefix)
    assert target.otlp_token_prefix == newer[:10]
    assert AuditEvent.objects.filter(action="target.otlp_token").count() == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, 400, "not a valid protobuf"),
        (b"{", "application/json", 400, "not valid JSON"),
        (b"<xml/>", "text/xml", 415, "unsupported content type"),
    ],
)
def test_unreadable_exports_are_refused_with_a_status_body(
    post, token, body, content_type, status, message
):
    response = post(body, token, content_type=content_type)

    assert response.status_code == status
    if content_type == "application/json":
        assert message in response.json()["message"] and response.json()["code"] == 3
    else:
        assert message in Status.FromString(response.content).message


def test_an_oversized_export_is_refused_unread(post, token, monkeypatch):
    monkeypatch.setattr("optimizations.analyzers.observe.otlp.MAX_BYTES", 1000)

    response = post(b"\0" * 1001, token)

    assert response.status_code == 413


def test_only_post(client, target, token):
    response = client.get(reverse("otlp_traces", args=[target.slug]))

    assert response.status_code == 405


def test_old_traces_are_purged_findings_stay(post, token, target, settings):
    settings.KAIZEN_TRACE_RETENTION_DAYS = 7
    exporter = Exporter()
    exporter.request(lookups=7)
    post(exporter.body(), token)
    old = Trace.objects.get()
    Trace.objects.filter(pk=old.pk).update(received_at=timezone.now() - datetime.timedelta(days=8))
    exporter.request()
    post(exporter.body(), token)

    purged = housekeeping.purge()

    assert purged["traces"] == 1
    assert list(Trace.objects.values_list("endpoint", flat=True)) == ["GET /items"]
    assert not Trace.objects.filter(pk=old.pk).exists()
    assert Finding.objects.filter(source="trace").count() == 1


def test_the_token_command(target, dev_engineer, viewer, capsys):
    call_command("otlp_token", target.slug, "--user", dev_engineer.username)

    out = capsys.readouterr().out
    key = out.split("(shown this once): ")[1].split()[0]
    target.refresh_from_db()
    assert ingest.token_matches(target, key)
    assert f"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:8000/otlp/{target.slug}" in out
    with pytest.raises(CommandError, match="may not change targets"):
        call_command("otlp_token", target.slug, "--user", viewer.username)
    with pytest.raises(CommandError, match="no target"):
        call_command("otlp_token", "nope", "--user", dev_engineer.username)


def test_an_export_costs_a_bounded_number_of_queries(post, token, django_assert_max_num_queries):
    exporter = Exporter()
    for _ in range(20):
        exporter.request(lookups=6)
    body = exporter.body()

    with django_assert_max_num_queries(12):
        assert post(body, token).status_code == 200
