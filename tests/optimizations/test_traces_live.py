"""End to end: the demo target with tracing on exports to Kaizen's own OTLP endpoint with the
target's token; the slow demo's planted N+1 becomes a runtime finding at its route, the
fixed twin's traces make none."""

import time

import httpx
import pytest

from examples.shop_api import cli
from optimizations.models import Finding, Trace
from optimizations.targets import traces as ingest
from tests.shop_api.traced_demo import serve_traced, stop

pytestmark = pytest.mark.django_db(transaction=True)
PAGES = 3


def export_to_kaizen(live_server, target, token, mode, database_url, tmp_path) -> None:
    endpoint = f"{live_server.url}/otlp/{target.slug}/v1/traces"
    process, base, output = serve_traced(
        mode,
        database_url,
        endpoint,
        tmp_path / f"{mode}.log",
        # The exporter's standard variable; the value is URL-encoded.
        env={"OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"authorization=Bearer%20{token}"},
    )
    try:
        for _ in range(PAGES):
            assert httpx.get(f"{base}/items", params={"limit": 50}, timeout=30).status_code == 200
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if Trace.objects.filter(target=target, endpoint="GET /items").count() >= PAGES:
                break
            time.sleep(0.1)
    finally:
        stop(process, output)


@pytest.fixture
def seeded(tmp_path):
    url = cli.resolve_database_url(f"sqlite:///{tmp_path / 'shop.sqlite3'}")
    cli.seed(url, items=300, categories=12, seed=7)
    return url


def test_the_slow_demo_s_n_plus_one_arrives_as_a_runtime_finding(
    live_server, target, dev_engineer, seeded, tmp_path
):
    token = ingest.do_issue_token(dev_engineer, target)

    export_to_kaizen(live_server, target, token, "slow", seeded, tmp_path)

    assert Trace.objects.filter(target=target, endpoint="GET /items").count() == PAGES
    (finding,) = Finding.objects.filter(target=target, source="trace")
    assert (finding.rule_id, finding.location) == ("trace.n_plus_one", "GET /items")
    assert finding.evidence["family"].startswith("SELECT categories.")
    assert finding.evidence["repeats"] >= 5


def test_the_fixed_twin_makes_none(live_server, target, dev_engineer, seeded, tmp_path):
    token = ingest.do_issue_token(dev_engineer, target)

    export_to_kaizen(live_server, target, token, "fast", seeded, tmp_path)

    assert Trace.objects.filter(target=target, endpoint="GET /items").count() == PAGES
    assert not Finding.objects.filter(target=target, source="trace").exists()
