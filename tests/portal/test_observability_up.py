"""./kaizen up --observability: the Prometheus configuration it writes is one a real
Prometheus accepts and scrapes Kaizen's own /metrics with; the demo targets read it; the
shops get what they need to send traces."""

import os
import shutil
import stat
import subprocess
import time

import pytest

from optimizations.analyzers.observe.prometheus import Prometheus
from optimizations.models import ObserveSettings
from optimizations.observe import sources
from optimizations.targets.traces import hash_token
from portal import observability
from portal.models import AuditEvent
from tests.conftest import need


@pytest.fixture
def restore_environment():
    before = os.environ.get("KAIZEN_METRICS_TOKEN")
    yield
    if before is None:
        os.environ.pop("KAIZEN_METRICS_TOKEN", None)
    else:
        os.environ["KAIZEN_METRICS_TOKEN"] = before


def test_a_real_prometheus_scrapes_kaizens_metrics_with_the_token(
    tmp_path, live_server, settings, restore_environment
):
    program = observability.binary()
    need(program is not None, "Prometheus is not installed (apt-get install prometheus)")
    address = live_server.url.removeprefix("http://")
    config = observability.write_config(tmp_path, {"shop-api": "127.0.0.1:9"}, address)
    token_file = tmp_path / "metrics_token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    settings.KAIZEN_METRICS_TOKEN = token_file.read_text().strip()
    if shutil.which("promtool"):
        check = subprocess.run(
            ["promtool", "check", "config", str(config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    port = observability.choose_free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        observability.command(program, config, port), stdout=log, stderr=subprocess.STDOUT
    )
    try:
        client = Prometheus(f"http://127.0.0.1:{port}")
        up = None
        for _attempt in range(300):  # readiness: started, then a first scrape (every 5 s)
            try:
                up = client.value('up{job="kaizen"}')
            except Exception:
                up = None
            if up is not None:
                break
            time.sleep(0.1)
        assert up == 1.0, (tmp_path / "prometheus.log").read_text()[-2000:]
        assert client.value('sum(kaizen_jobs{job="kaizen"})') == 0.0
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def test_the_demo_targets_read_prometheus_and_send_traces(target, settings):
    observability.use_prometheus([target.slug], "http://127.0.0.1:9090")

    observe = ObserveSettings.objects.get(target=target)
    assert observe.prometheus_url == "http://127.0.0.1:9090"
    assert observe.queries == sources.defaults(target)
    assert 'job="orders-api"' in observe.queries["requests_1m"]

    observability.use_demo_rules([target.slug])
    observe.refresh_from_db()
    assert [rule["short_window_s"] for rule in observe.rules] == [60, 180, 1800]
    observability.use_demo_rules([target.slug])  # edited or set rules stay as they are
    assert AuditEvent.objects.filter(action="alerts.rules").count() == 1

    env = observability.tracing_environment(target.slug, "http://127.0.0.1:8000")

    assert env["SHOP_OTLP_ENDPOINT"] == "http://127.0.0.1:8000/otlp/orders-api/v1/traces"
    header = env["OTEL_EXPORTER_OTLP_TRACES_HEADERS"]
    assert header.startswith("authorization=Bearer%20")
    target.refresh_from_db()
    assert target.otlp_token_hash == hash_token(header.removeprefix("authorization=Bearer%20"))
