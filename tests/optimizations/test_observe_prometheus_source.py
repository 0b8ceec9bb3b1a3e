"""Prometheus as a source: a real Prometheus scrapes a target's /metrics, Kaizen reads it."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from optimizations.analyzers.observe.prometheus import Prometheus
from optimizations.models import Measurement
from optimizations.observe import budgets, panel, sources
from tests.analyzers.prometheus_server import PrometheusServer


class Shop:
    """The demo shop's metric names; every scrape adds 100 requests (2 failed with a 500,
    3 slower than 500 ms), 9 cache hits and 1 miss; 4 of 20 pool connections are out."""

    def __init__(self):
        self.scrapes = 0
        self.lock = threading.Lock()

    def text(self) -> str:
        with self.lock:
            self.scrapes += 1
            n = self.scrapes
        return "\n".join(
            [
                "# TYPE http_requests_total counter",
                f'http_requests_total{{method="GET",route="/items",status="200"}} {98 * n}',
                f'http_requests_total{{method="GET",route="/items",status="500"}} {2 * n}',
                "# TYPE http_request_duration_seconds histogram",
                f'http_request_duration_seconds_bucket{{route="/items",le="0.1"}} {97 * n}',
                f'http_request_duration_seconds_bucket{{route="/items",le="0.5"}} {97 * n}',
                f'http_request_duration_seconds_bucket{{route="/items",le="1.0"}} {100 * n}',
                f'http_request_duration_seconds_bucket{{route="/items",le="+Inf"}} {100 * n}',
                f'http_request_duration_seconds_count{{route="/items"}} {100 * n}',
                f'http_request_duration_seconds_sum{{route="/items"}} {10 * n}',
                "db_pool_size 10",
                "db_pool_max_overflow 10",
                "db_pool_checked_out 4",
                f'shop_cache_hits_total{{backend="memory"}} {9 * n}',
                f'shop_cache_misses_total{{backend="memory"}} {n}',
                "",
            ]
        )


@pytest.fixture(scope="module")
def shop():
    state = Shop()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = state.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory, shop):
    address = f"127.0.0.1:{shop.server_address[1]}"
    server = PrometheusServer(
        tmp_path_factory.mktemp("prometheus"), scrape={"orders-api": address}
    ).start()
    # Readiness, not a threshold: rate() over the shop needs a few scrapes.
    client = Prometheus(server.url)
    try:
        for _attempt in range(300):
            count = client.value('min(count_over_time(http_requests_total{job="orders-api"}[1m]))')
            if count is not None and count >= 4:
                break
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def test_the_demo_expressions_are_read_and_stored_with_their_source(target, prometheus):
    observe = sources.settings_of(target)
    observe.prometheus_url = prometheus.url
    observe.queries = sources.defaults(target)
    observe.save()

    outcome = sources.read_target(observe)

    assert outcome["errors"] == []
    rows = Measurement.objects.filter(target=target, labels__source="prometheus")
    stored = {row.name: row for row in rows}
    assert stored["prometheus.error_rate_pct"].value == pytest.approx(2.0)
    assert stored["prometheus.pool_use_pct"].value == pytest.approx(20.0)
    assert stored["prometheus.cache_hit_pct"].value == pytest.approx(90.0)
    # 97 % within 0.5 s, 3 % in (0.5 s, 1 s]: the 99th percentile interpolates to 0.833 s.
    assert stored["prometheus.p99_ms"].value == pytest.approx(1000 * (0.5 + 0.5 * 2 / 3))
    requests = stored["events.requests"].value
    assert requests > 0
    assert stored["events.errors"].value == pytest.approx(0.02 * requests)
    assert stored["events.slow"].value == pytest.approx(0.03 * requests)
    observe.refresh_from_db()
    assert observe.prometheus_series == outcome["read"] == 7
    assert observe.prometheus_error == ""

    figures = panel.continuous(target)
    assert figures["error_rate_pct"]["source"] == "Prometheus"
    assert figures["cache_hit_pct"]["value"] == pytest.approx(90.0)
    rows = {row.key: row for row in budgets.budgets(target)}
    assert rows["error_rate_pct"].source == "prometheus"
    assert rows["p99_ms"].source == "prometheus"


def test_a_promql_error_is_kept_in_prometheus_words(target, prometheus):
    observe = sources.settings_of(target)
    observe.prometheus_url = prometheus.url
    observe.queries = {"p99_ms": "sum(rate(http_requests_total[5m]", "pool_use_pct": "1 + 1"}
    observe.save()

    outcome = sources.read_target(observe)

    assert outcome["read"] == 1
    (error,) = outcome["errors"]
    assert error.startswith("p99_ms: PromQL error in")
    observe.refresh_from_db()
    assert "PromQL error" in observe.prometheus_error


def test_a_server_outside_the_allow_list_is_not_asked(target, settings):
    settings.KAIZEN_ALLOWED_TARGET_HOSTS = ["127.0.0.0/8"]
    observe = sources.settings_of(target)
    observe.prometheus_url = "http://192.0.2.10:9090"
    observe.queries = sources.defaults(target)
    observe.save()

    outcome = sources.read_target(observe)

    assert outcome["read"] == 0
    # The first refusal says it all; the other expressions are not tried.
    (error,) = outcome["errors"]
    assert "192.0.2.10" in error and "KAIZEN_ALLOWED_TARGET_HOSTS" in error
    assert not Measurement.objects.filter(target=target).exists()
