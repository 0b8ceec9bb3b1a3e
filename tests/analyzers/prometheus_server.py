"""A real Prometheus (Debian's ``prometheus`` package) on a free loopback port, for tests.

It scrapes itself every second into a throwaway storage directory, so queries
have real series (``up``, ``prometheus_build_info``, its own HTTP counters)
within a second or two of the start.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import need

CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""
# Another server to scrape (a target's /metrics), as a job of its own.
JOB = """\
  - job_name: {job}
    static_configs:
      - targets: ["{address}"]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrometheusServer:
    """``start()`` waits until it is ready and has scraped itself once; ``stop()`` ends it."""

    def __init__(self, directory: Path, scrape: dict[str, str] | None = None) -> None:
        """``scrape``: more jobs, {job name: "host:port"} (their /metrics)."""
        binary = shutil.which("prometheus")
        need(binary is not None, "Prometheus is not installed (apt-get install prometheus)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / "prometheus.yml"
        jobs = "".join(
            JOB.format(job=job, address=address) for job, address in (scrape or {}).items()
        )
        config.write_text(CONFIG.format(port=self.port) + jobs)
        self.log = directory / "prometheus.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def start(self, timeout: float = 60.0) -> PrometheusServer:
        deadline = time.monotonic() + timeout
        query = f"{self.url}/api/v1/query?query=up"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(query, timeout=2) as answer:
                    if b'"value"' in answer.read():
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"Prometheus did not start; its log:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
