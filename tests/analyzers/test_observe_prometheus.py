"""The Prometheus client against a real Prometheus, and the failures a person must read."""

import math
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest

from optimizations.analyzers.base import Cancelled
from optimizations.analyzers.observe.prometheus import Prometheus, PrometheusError
from tests.analyzers.prometheus_server import PrometheusServer


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    server = PrometheusServer(tmp_path_factory.mktemp("prometheus")).start()
    yield server
    server.stop()


@pytest.fixture
def silent_port():
    """A loopback port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


def test_an_instant_query_of_one_number(prometheus):
    client = Prometheus(prometheus.url)

    assert client.value('up{job="prometheus"}') == 1.0
    assert client.value('up{job="nobody"}') is None
    assert client.value("1 + 1") == 2.0


def test_a_fractional_timeout_is_a_valid_parameter(prometheus):
    assert Prometheus(prometheus.url, timeout=2.5).value("1") == 1.0


def test_an_instant_query_returns_labelled_samples(prometheus):
    result = Prometheus(prometheus.url).query("prometheus_build_info")

    (sample,) = result.samples
    assert result.result_type == "vector"
    assert sample.labels["__name__"] == "prometheus_build_info"
    assert sample.labels["version"].startswith("2.")
    assert sample.value == 1.0


def test_special_values_survive(prometheus):
    client = Prometheus(prometheus.url)

    assert math.isnan(client.value("0 / 0"))
    assert client.value("1 / 0") == math.inf


def test_a_query_at_a_given_time(prometheus):
    long_ago = datetime(2001, 1, 1, tzinfo=UTC)

    result = Prometheus(prometheus.url).query("time()", at=long_ago)

    assert result.result_type == "scalar"
    assert result.samples[0].value == long_ago.timestamp()


def test_a_range_query(prometheus):
    end = datetime.now(UTC)

    (series,) = Prometheus(prometheus.url).query_range(
        'up{job="prometheus"}', end - timedelta(seconds=30), end, timedelta(seconds=1)
    )

    assert series.labels == {
        "__name__": "up",
        "instance": series.labels["instance"],
        "job": "prometheus",
    }
    assert series.points and all(value == 1.0 for _, value in series.points)
    times = [moment for moment, _ in series.points]
    assert times == sorted(times) and times[-1] <= end.timestamp() + 1


def test_a_promql_syntax_error_is_prometheus_s_own_words(prometheus):
    with pytest.raises(
        PrometheusError, match=r"PromQL error in 'sum\(rate\(up\[5m\]\)': "
    ) as error:
        Prometheus(prometheus.url).query("sum(rate(up[5m])")
    assert error.value.kind == "bad_data"
    assert "unclosed left parenthesis" in str(error.value) or "unexpected" in str(error.value)


def test_several_series_are_not_one_number(prometheus):
    two = '{__name__=~"up|prometheus_build_info"}'

    with pytest.raises(PrometheusError, match="yields 2 series, not one number: aggregate it"):
        Prometheus(prometheus.url).value(two)


def test_a_url_that_is_not_the_api(prometheus):
    with pytest.raises(PrometheusError, match="not the Prometheus HTTP API") as error:
        Prometheus(f"{prometheus.url}/graph").value("up")
    assert error.value.kind == "not_prometheus"


def test_too_many_points_are_refused_before_asking():
    end = datetime.now(UTC)

    with pytest.raises(PrometheusError, match="use a step of at least 8 s"):
        Prometheus("http://127.0.0.1:1").query_range(
            "up", end - timedelta(days=1), end, timedelta(seconds=1)
        )


def test_nothing_listening_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(
        PrometheusError, match=f"cannot reach Prometheus at http://127.0.0.1:{port}"
    ) as error:
        Prometheus(f"http://127.0.0.1:{port}").value("up")
    assert error.value.kind == "unreachable"


def test_a_silent_server_times_out_readably(silent_port):
    with pytest.raises(PrometheusError, match=r"did not answer within 0\.5 s") as error:
        Prometheus(f"http://127.0.0.1:{silent_port}", timeout=0.5).value("up")
    assert error.value.kind == "timeout"


def test_a_query_is_cancellable(silent_port):
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()

    def check_cancel():
        if stop.is_set():
            raise Cancelled("cancelled")

    client = Prometheus(f"http://127.0.0.1:{silent_port}", timeout=60, cancel=check_cancel)
    with pytest.raises(Cancelled):
        client.value("up")


def test_hosts_off_the_allow_list_are_never_asked():
    with pytest.raises(
        PrometheusError, match="which is not in KAIZEN_ALLOWED_TARGET_HOSTS"
    ) as error:
        Prometheus("http://10.255.255.1:9090").value("up")
    assert error.value.kind == "not_allowed"


def test_only_http_urls():
    with pytest.raises(PrometheusError, match="starts with http:// or https://"):
        Prometheus("prometheus:9090")
