"""``./kaizen up --observability``: a real Prometheus scraping the demo shops and Kaizen,
and the demo shops sending their traces to Kaizen.

Prometheus is Debian's ``prometheus`` package (``apt-get install prometheus``); when it
is not installed the launcher says how to install it and starts everything else. Its
configuration and data live under ``var/prometheus``: each demo shop is a scrape job
named after its target's slug (the job the default PromQL of
optimizations.observe.sources selects), and Kaizen's own ``/metrics`` a job with the
bearer token kept in ``var/metrics_token``. The demo targets are pointed at this
Prometheus with the default expressions, and each demo shop gets a fresh OTLP ingestion
token for its target (the previous one stops working) to export its traces with.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from pathlib import Path
from urllib.parse import quote

from django.urls import reverse

from optimizations.models import TargetService
from optimizations.observe import alerting, sources
from optimizations.targets.traces import do_issue_token

INSTALL = (
    "Prometheus is not installed, so --observability starts no Prometheus: install Debian's "
    "package (sudo apt-get install prometheus) and start again. Traces still go to Kaizen."
)
SCRAPE_SECONDS = 5

CONFIG = """\
# Written by ./kaizen up --observability on every start.
global:
  scrape_interval: {interval}s
  evaluation_interval: {interval}s
scrape_configs:
{jobs}"""

JOB = """\
  - job_name: {job}
    metrics_path: {path}
    static_configs:
      - targets: ["{address}"]
"""

KAIZEN_JOB = """\
  - job_name: kaizen
    metrics_path: /metrics
    authorization:
      credentials_file: {token_file}
    static_configs:
      - targets: ["{address}"]
"""


def choose_free_port() -> int:
    """A free loopback port (for a test's Prometheus; the launcher chooses its own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def binary() -> str | None:
    return shutil.which("prometheus")


def metrics_token(var_dir: Path) -> Path:
    """The token of Kaizen's own /metrics (made once, 0600), set for the processes started
    after this; the file is what Prometheus reads."""
    path = var_dir / "metrics_token"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
    os.environ["KAIZEN_METRICS_TOKEN"] = path.read_text().strip()
    return path


def write_config(var_dir: Path, shops: dict[str, str], kaizen_address: str) -> Path:
    """``shops``: {target slug: "host:port"} of the demo shops' /metrics."""
    directory = var_dir / "prometheus"
    directory.mkdir(parents=True, exist_ok=True)
    jobs = "".join(
        JOB.format(job=slug, path="/metrics", address=address) for slug, address in shops.items()
    )
    jobs += KAIZEN_JOB.format(token_file=metrics_token(var_dir), address=kaizen_address)
    config = directory / "prometheus.yml"
    config.write_text(CONFIG.format(interval=SCRAPE_SECONDS, jobs=jobs))
    return config


def command(program: str, config: Path, port: int) -> list[str]:
    return [
        program,
        f"--config.file={config}",
        f"--storage.tsdb.path={config.parent / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]


def use_prometheus(slugs: list[str], url: str) -> None:
    """Point the demo targets at this Prometheus with the default expressions (audited as
    the system's change); a target already reading it keeps its own expressions."""
    for target in TargetService.objects.filter(slug__in=slugs):
        observe = sources.settings_of(target)
        if observe.prometheus_url == url and observe.queries:
            continue
        alerting.do_save_sources(None, target, url, observe.queries or sources.defaults(target))


# The demo's rules: the workbook's burn rates over windows a twelfth as long, so that
# stopping a demo shop opens an incident within a minute or two and restarting it resolves
# it a few minutes later (the workbook's own windows would keep it open for half an hour).
DEMO_RULES = [
    {
        "name": "fast burn",
        "severity": "page",
        "burn_rate": 14.4,
        "long_window_s": 300,
        "short_window_s": 60,
        "route": "critical",
    },
    {
        "name": "slow burn",
        "severity": "page",
        "burn_rate": 6.0,
        "long_window_s": 1800,
        "short_window_s": 180,
        "route": "critical",
    },
    {
        "name": "steady burn",
        "severity": "ticket",
        "burn_rate": 1.0,
        "long_window_s": 6 * 3600,
        "short_window_s": 1800,
        "route": "medium",
    },
]


def use_demo_rules(slugs: list[str]) -> None:
    """Short windows for the demo targets that still have the default rules (audited as
    the system's change; rules someone edited stay as they are)."""
    for target in TargetService.objects.filter(slug__in=slugs):
        if not sources.settings_of(target).rules:
            alerting.do_save_rules(None, target, DEMO_RULES)


def tracing_environment(slug: str, kaizen_url: str) -> dict[str, str]:
    """What a demo shop needs to send its traces to its target in Kaizen (a new token)."""
    target = TargetService.objects.filter(slug=slug).first()
    if target is None:
        return {}
    key = do_issue_token(None, target)
    endpoint = kaizen_url.rstrip("/") + reverse("otlp_traces", args=[slug])
    return {
        "SHOP_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"authorization={quote('Bearer ' + key)}",
        "OTEL_BSP_SCHEDULE_DELAY": "1000",
    }
