"""In a real browser: an engineer issues a target's ingestion token on its Traces page,
the OpenTelemetry SDK's own OTLP/HTTP exporter sends spans with it to the live Kaizen,
and the page shows the endpoints (chart drawn, window switched by htmx) and a request's
waterfall."""

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import SpanExportResult

from optimizations.models import Trace
from tests.browser.test_pages import problems_on
from tests.browser.test_runbooks import sign_in
from tests.optimizations.test_traces_ingest import Exporter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_an_engineer_connects_a_target_and_reads_its_traces(
    browser_page, live_server, dev_engineer, target
) -> None:
    page = browser_page
    sign_in(page, live_server, dev_engineer)
    page.goto(f"{live_server.url}/targets/{target.slug}/")
    page.click(".actions >> text=Traces")
    page.wait_for_selector("#otlp-token")
    page.wait_for_load_state()  # htmx set up
    assert "No request traced in this window." in page.text_content("#trace-figures")

    page.click("#otlp-token button:has-text('Issue a token')")
    page.wait_for_selector("#otlp-new-token")  # htmx swapped the panel in place
    assert page.url == f"{live_server.url}/targets/{target.slug}/traces/"
    key = page.text_content("#otlp-new-token").strip()
    endpoint = page.text_content("#otlp-endpoint").strip()
    assert endpoint == f"{live_server.url}/otlp/{target.slug}/v1/traces"

    spans = Exporter()
    for _ in range(3):
        spans.request(lookups=6)
    spans.request(route="/health")
    exporter = OTLPSpanExporter(endpoint=endpoint, headers={"Authorization": f"Bearer {key}"})
    assert exporter.export(spans.take()) == SpanExportResult.SUCCESS
    exporter.shutdown()
    assert Trace.objects.filter(target=target).count() == 4

    page.reload()
    page.wait_for_selector("#endpoint-table")
    assert key not in page.content()  # shown once
    page.wait_for_function("document.getElementById('trace-time-split').dataset.drawn === '1'")
    assert page.locator("#trace-time-split .main-svg").count() > 0
    assert page.text_content("#endpoint-table tbody tr:first-child td:first-child") == "GET /items"

    page.click("#trace-figures >> text=last hour")  # htmx: the figures only
    page.wait_for_selector("#trace-figures >> text=4 traces received in the last hour")
    assert page.url.endswith("?window=1h")  # pushed: the window is in the address
    assert page.is_visible("#otlp-token")

    page.click("#endpoint-table tbody tr:first-child >> text=waterfall")
    page.wait_for_selector("#waterfall-table")
    page.wait_for_function("document.getElementById('trace-waterfall').dataset.drawn === '1'")
    assert page.locator("#waterfall-table tbody tr").count() == 8
    assert "6× SELECT categories.name FROM categories WHERE categories.id = ?" in " ".join(
        page.text_content(".message-warning").split()
    )
    assert page.locator("#trace-waterfall .main-svg").count() > 0

    # Both pages fit a laptop and a phone, log no console error and are axe-clean.
    waterfall = page.url
    errors: list[str] = []

    def console(message) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda error: errors.append(str(error)))
    report = {}
    for width, height in ((1440, 900), (375, 740)):
        page.set_viewport_size({"width": width, "height": height})
        for url in (f"{live_server.url}/targets/{target.slug}/traces/", waterfall):
            found = problems_on(page, url, errors)
            if found:
                report[(width, url)] = found
    assert report == {}
