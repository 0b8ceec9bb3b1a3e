"""The /metrics exposition: cumulative histogram buckets and well-formed Prometheus text."""

import asyncio

from examples.shop_api.common.metrics import LATENCY_BUCKETS, Metrics
from tests.shop_api.conftest import parse_metrics


def test_latency_buckets_are_cumulative_and_labelled_by_route():
    metrics = Metrics(mode="slow", database="sqlite")
    for seconds in (0.0005, 0.003, 0.003, 0.2, 30.0):
        metrics.observe_request("GET", "/items/{item_id}", 200, seconds)

    samples = parse_metrics(asyncio.run(metrics.render()))

    labels = {"method": "GET", "route": "/items/{item_id}", "status": "200"}

    def bucket(le: str) -> float:
        return samples[
            ("http_request_duration_seconds_bucket", frozenset({**labels, "le": le}.items()))
        ]

    assert bucket("0.001") == 1
    assert bucket("0.005") == 3
    assert bucket("0.25") == 4
    assert bucket(str(LATENCY_BUCKETS[-1])) == 4
    assert bucket("+Inf") == 5
    assert samples[("http_requests_total", frozenset(labels.items()))] == 5
    assert samples[("http_request_duration_seconds_sum", frozenset(labels.items()))] == (
        0.0005 + 0.003 + 0.003 + 0.2 + 30.0
    )


def test_label_values_are_escaped():
    metrics = Metrics(mode='sl"ow', database="sqlite")

    text = asyncio.run(metrics.render())

    assert 'shop_info{mode="sl\\"ow",database="sqlite"} 1' in text
    parse_metrics(text)


def test_without_an_engine_no_pool_gauges_are_invented():
    samples = parse_metrics(asyncio.run(Metrics(mode="fast", database="sqlite").render()))

    names = {name for name, _labels in samples}
    assert "db_pool_size" not in names
    assert samples[("db_pool_checkouts_total", frozenset())] == 0
