"""The Traces pages (issue 16): the token UI, per-endpoint figures over a window, the
slowest requests and a request's waterfall, from traces recorded with the OpenTelemetry
SDK and posted to the real OTLP endpoint; pages by role and query bounds."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from optimizations.models import Finding, Trace
from optimizations.observe import traces_views
from optimizations.targets import traces as ingest
from portal.models import AuditEvent
from tests.conftest import PERSONAS
from tests.optimizations.test_traces_ingest import PROTOBUF, Exporter

EDITORS = {"maria", "devon", "aiko", "ravi"}  # manager and the three engineers


@pytest.fixture
def recorded(client, target, dev_engineer):
    """Real SDK spans posted to the OTLP endpoint: /items loads 6 categories one by one
    (a runtime N+1), /health none; then the client is logged out again."""
    key = ingest.do_issue_token(dev_engineer, target)
    exporter = Exporter()
    for _ in range(3):
        exporter.request(lookups=6)
    exporter.request(route="/health")
    exporter.request(route="/orders", method="POST", status=500)
    response = client.post(
        reverse("otlp_traces", args=[target.slug]),
        exporter.body(),
        content_type=PROTOBUF,
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 200
    return key


@pytest.mark.parametrize("persona", PERSONAS, indirect=True)
def test_everyone_signed_in_reads_the_traces_page_and_editors_issue_tokens(
    login, persona, target, recorded
):
    client = login(persona)
    page = client.get(reverse("target_traces", args=[target.slug]))
    assert page.status_code == 200
    body = page.content.decode()
    assert reverse("otlp_traces", args=[target.slug]) in body
    assert recorded not in body  # the token is never shown again
    assert target.otlp_token_prefix in body
    issue = reverse("otlp_token_issue", args=[target.slug])
    assert (issue in body) == (persona.username in EDITORS)

    answer = client.post(issue)
    if persona.username in EDITORS:
        assert answer.status_code == 200
        target.refresh_from_db()
        key = re.search(r'id="otlp-new-token">(kzt_[^<]+)<', answer.content.decode())[1]
        assert ingest.token_matches(target, key) and not ingest.token_matches(target, recorded)
        assert AuditEvent.objects.filter(action="target.otlp_token", actor=persona).exists()
    else:
        assert answer.status_code == 403
        target.refresh_from_db()
        assert ingest.token_matches(target, recorded)


def test_anonymous_people_are_sent_to_log_in(client, target, recorded):
    trace = Trace.objects.filter(target=target).first()
    for url in (
        reverse("target_traces", args=[target.slug]),
        reverse("trace_waterfall", args=[target.slug, trace.trace_id]),
    ):
        assert client.get(url).status_code == 302


def test_the_token_is_shown_once_in_the_htmx_fragment(login, manager, target):
    client = login(manager)
    answer = client.post(
        reverse("otlp_token_issue", args=[target.slug]),
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="otlp-token",
    )
    body = answer.content.decode()
    assert answer.status_code == 200 and body.lstrip().startswith(
        '<section class="panel" id="otlp-token">'
    )
    key = re.search(r'id="otlp-new-token">(kzt_[^<]+)<', body)[1]
    assert f"OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer%20{key}" in body
    assert "otlphttp/kaizen" in body and "NEW_RELIC_LICENSE_KEY" in body and "DD_API_KEY" in body
    page = client.get(reverse("target_traces", args=[target.slug])).content.decode()
    assert key not in page and key[:10] in page


def _endpoint_rows(body: str) -> dict[str, list[str]]:
    table = body.split('id="endpoint-table"', 1)[1].split("</table>", 1)[0]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if cells:  # the header row has none
            rows[cells[0]] = cells
    return rows


def test_per_endpoint_figures_from_recorded_traces(login, viewer, target, recorded):
    body = login(viewer).get(reverse("target_traces", args=[target.slug])).content.decode()
    rows = _endpoint_rows(body)
    assert set(rows) == {"GET /items", "GET /health", "POST /orders"}
    items = rows["GET /items"]
    assert items[1:3] == ["3", "0"]  # requests, errors
    assert items[9:11] == ["7.0", "7"]  # SQL per request: one list + 6 lookups
    assert rows["POST /orders"][2] == "1"  # a 500 is an error
    assert "5 traces received in the last 24 hours" in body
    assert 'data-target="trace-time-split"' in body
    slowest = body.split('id="slowest-table"', 1)[1]
    assert slowest.count(f"/targets/{target.slug}/traces/") == 5  # a waterfall link each


def test_the_window_leaves_older_traces_out_and_htmx_gets_the_figures_only(
    login, viewer, target, recorded
):
    Trace.objects.filter(target=target, endpoint="GET /health").update(
        received_at=timezone.now() - datetime.timedelta(hours=3)
    )
    client = login(viewer)
    url = reverse("target_traces", args=[target.slug])
    assert "GET /health" in _endpoint_rows(client.get(url).content.decode())
    fragment = client.get(
        url + "?window=1h", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="trace-figures"
    ).content.decode()
    assert fragment.lstrip().startswith('<div id="trace-figures">')
    assert "otlp-token" not in fragment
    assert set(_endpoint_rows(fragment)) == {"GET /items", "POST /orders"}
    assert "4 traces received in the last hour" in fragment


def test_the_waterfall_of_a_recorded_request(login, viewer, target, recorded):
    trace = Trace.objects.filter(target=target, endpoint="GET /items").first()
    page = login(viewer).get(reverse("trace_waterfall", args=[target.slug, trace.trace_id]))
    assert page.status_code == 200
    body = page.content.decode()
    table = body.split('id="waterfall-table"', 1)[1].split("</table>", 1)[0]
    depths = re.findall(r'<tr class="depth-(\d+)">', table)
    assert depths == ["0"] + ["1"] * 7  # the server span, its 7 statements below it
    # SQL as findings show it: the literal ids are gone, one family 6 times.
    assert "categories.id = 3" not in body
    assert table.count("SELECT categories.name FROM categories WHERE categories.id = ?") == 6
    assert "6× <code>SELECT categories.name FROM categories WHERE categories.id = ?</code>" in body
    assert 'data-target="trace-waterfall"' in body
    offsets = [
        float(x) for x in re.findall(r'<td class="num">([\d.]+)</td><td class="num">', table)
    ]
    assert offsets[0] == 0.0 and offsets == sorted(offsets)


def test_a_trace_of_another_target_is_not_found(login, viewer, target, recorded, departments):
    other = type(target).objects.create(
        name="Other",
        slug="other",
        base_url="http://127.0.0.1:9",
        owner_department=departments["dev"],
    )
    trace = Trace.objects.filter(target=target).first()
    client = login(viewer)
    assert (
        client.get(reverse("trace_waterfall", args=[other.slug, trace.trace_id])).status_code == 404
    )


def test_query_bounds_do_not_grow_with_the_traces(
    login, viewer, target, dev_engineer, django_assert_max_num_queries
):
    key = ingest.do_issue_token(dev_engineer, target)
    client = login(viewer)
    url = reverse("target_traces", args=[target.slug])

    def export(n):
        exporter = Exporter()
        for i in range(n):
            exporter.request(route=f"/r{i % 4}", lookups=i % 3)
        client.post(
            reverse("otlp_traces", args=[target.slug]),
            exporter.body(),
            content_type=PROTOBUF,
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )

    export(4)
    with django_assert_max_num_queries(12) as small:
        assert client.get(url).status_code == 200
    export(40)
    with django_assert_max_num_queries(12) as large:
        assert client.get(url).status_code == 200
    assert len(large.captured_queries) == len(small.captured_queries)
    trace = Trace.objects.filter(target=target).first()
    with django_assert_max_num_queries(8):
        client.get(reverse("trace_waterfall", args=[target.slug, trace.trace_id]))


def _code_finding(target, route="GET /items", rule="FSA102", location="app/routes.py:136"):
    now = timezone.now()
    return Finding.objects.create(
        target=target,
        source="code",
        rule_id=rule,
        severity="high",
        category="performance",
        title="Lazy relationship read per row",
        location=location,
        evidence={"request_path": [f"{route} → app.routes.list_items"]},
        fingerprint=f"code-{rule}-{location}",
        first_seen_at=now,
        last_seen_at=now,
    )


def test_static_and_runtime_evidence_side_by_side(login, viewer, target, recorded):
    code = _code_finding(target)
    _code_finding(target, route="GET /orders", rule="FSA101", location="app/orders.py:9")
    runtime = Finding.objects.get(target=target, source="trace")
    client = login(viewer)

    page = client.get(reverse("finding_detail", args=[runtime.pk])).content.decode()
    panel = page.split(f'id="finding-{runtime.pk}-beside"', 1)[1].split("</section>", 1)[0]
    assert "app/routes.py:136" in panel and "FSA102" in panel
    assert "app/orders.py:9" not in panel  # another route
    assert "6× in one request; in 3 of 3 traced requests" in panel
    assert reverse("trace_waterfall", args=[target.slug, runtime.evidence["trace_id"]]) in panel

    page = client.get(reverse("finding_detail", args=[code.pk])).content.decode()
    panel = page.split(f'id="finding-{code.pk}-beside"', 1)[1].split("</section>", 1)[0]
    assert "SELECT categories.name FROM categories WHERE categories.id = ?" in panel
    assert '<td class="num">6</td><td class="num">3 / 3</td>' in panel
    assert reverse("finding_detail", args=[runtime.pk]) in panel


def test_a_code_finding_on_an_untraced_target_says_the_runtime_side_is_incomplete(
    login, viewer, target
):
    code = _code_finding(target)
    page = login(viewer).get(reverse("finding_detail", args=[code.pk])).content.decode()
    panel = page.split(f'id="finding-{code.pk}-beside"', 1)[1].split("</section>", 1)[0]
    assert "Incomplete: this target sends no traces." in panel
    assert reverse("target_traces", args=[target.slug]) in panel


def test_a_long_trace_s_waterfall_shows_its_first_spans_and_says_so(
    login, viewer, target, dev_engineer, monkeypatch
):
    monkeypatch.setattr(traces_views, "MAX_ROWS", 10)
    key = ingest.do_issue_token(dev_engineer, target)
    exporter = Exporter()
    exporter.request(lookups=20)
    login(viewer).post(
        reverse("otlp_traces", args=[target.slug]),
        exporter.body(),
        content_type=PROTOBUF,
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    trace = Trace.objects.get(target=target)
    body = (
        login(viewer)
        .get(reverse("trace_waterfall", args=[target.slug, trace.trace_id]))
        .content.decode()
    )
    table = body.split('id="waterfall-table"', 1)[1].split("</table>", 1)[0]
    assert table.count('<tr class="depth-') == 10
    assert "The first 10 of 22 spans are shown." in body
    assert "20× <code>" in body  # the repeats are counted over the whole request
