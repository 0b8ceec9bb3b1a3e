"""The target's memory during an endurance run, and whether it keeps growing.

When the target runs on this host, its processes are found by the port it
listens on and their PSS (proportional set size: shared pages split between
the processes that share them, so a forked worker pool is not counted N
times as RSS would) is summed over the whole process tree; the peak is the
sum of each process's VmHWM. Otherwise the target's ``/metrics`` is read
(``process_pss_memory_bytes`` when it has it, else
``process_resident_memory_bytes``). The trend is a Theil-Sen slope with a
Mann-Kendall test over the run after its warm-up.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import time
from typing import Any

from optimizations.analyzers import safehttp
from optimizations.analyzers.base import Log, TargetSpec
from optimizations.analyzers.netguard import HostNotAllowed
from optimizations.analyzers.stats import mann_kendall, median, theil_sen

# Memory rising in the first part of a run is caches and pools filling up.
WARMUP_SHARE = 0.2
MIN_TREND_SAMPLES = 6
TREND_ALPHA = 0.05
METRIC_NAMES = ("process_pss_memory_bytes", "process_resident_memory_bytes")


def _local_addresses() -> set[str]:
    import psutil

    addresses = {"0.0.0.0", "::"}
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            addresses.add(entry.address.split("%", 1)[0])
    return addresses


def is_local(addresses: list[str]) -> bool:
    """Whether the target's addresses belong to this machine."""
    try:
        if all(ipaddress.ip_address(a.split("%", 1)[0]).is_loopback for a in addresses):
            return True
        return bool(set(addresses) & _local_addresses())
    except (ImportError, ValueError, OSError):
        return False


def listening_pids(port: int) -> list[int]:
    """Processes with a TCP socket listening on ``port`` (needs to see other users' sockets)."""
    import psutil

    pids: set[int] = set()
    for conn in psutil.net_connections(kind="tcp"):
        address = conn.laddr  # () for a socket without an address
        if conn.status == psutil.CONN_LISTEN and address and address.port == port and conn.pid:
            pids.add(conn.pid)
    return sorted(pids)


def tree_roots(pids: list[int]) -> list[int]:
    """The topmost of ``pids`` whose parent also listens are dropped (one tree per server)."""
    import psutil

    roots = []
    for pid in pids:
        try:
            parents = {p.pid for p in psutil.Process(pid).parents()}
        except psutil.Error:
            continue
        if not parents & set(pids):
            roots.append(pid)
    return roots


def _hwm(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(roots: list[int]) -> tuple[int, int, int]:
    """(PSS sum, VmHWM sum, process count) over the trees under ``roots``."""
    import psutil

    seen: dict[int, psutil.Process] = {}
    for root in roots:
        try:
            process = psutil.Process(root)
            seen[root] = process
            for child in process.children(recursive=True):
                seen[child.pid] = child
        except psutil.Error:
            continue
    pss = peak = 0
    counted = 0
    for pid, process in seen.items():
        try:
            info = process.memory_full_info()
        except psutil.Error:
            continue  # a worker that just exited
        pss += getattr(info, "pss", info.rss)
        peak += _hwm(pid)
        counted += 1
    return pss, peak, counted


def parse_metrics(text: str) -> dict[str, float]:
    """The unlabelled process memory gauges of a Prometheus text page."""
    values = {}
    for name in METRIC_NAMES:
        match = re.search(rf"^{name}(?:\{{\}})?\s+([0-9.eE+-]+)\s*$", text, re.MULTILINE)
        if match:
            values[name] = float(match.group(1))
    return values


class MemorySampler:
    """Samples the target's memory every ``interval`` seconds while a run goes on."""

    def __init__(
        self,
        target: TargetSpec,
        *,
        addresses: list[str],
        port: int,
        interval: float = 5.0,
        source: str = "auto",
        pid: int | None = None,
        log: Log,
    ) -> None:
        self.target = target
        self.interval = float(interval)
        self.log = log
        self.samples: list[tuple[float, int]] = []
        self.peak = 0
        self.source = ""
        self.roots: list[int] = []
        self.metric = ""
        self.started = time.monotonic()
        self.next_at = self.started
        if source in ("auto", "psutil"):
            if pid:
                self.roots = [int(pid)]
            elif is_local(addresses):
                try:
                    self.roots = tree_roots(listening_pids(port))
                except (ImportError, OSError) as exc:
                    log(f"cannot list listening sockets ({exc})", "warning")
            if self.roots and tree_memory(self.roots)[2]:
                self.source = "psutil"
                log(f"memory: PSS of process tree(s) {self.roots} (listening on port {port})")
            elif source == "psutil":
                log(f"memory: no local process listens on port {port}", "warning")
        wants_metrics = not self.source and source in ("auto", "metrics")
        if wants_metrics and self._read_metrics() is not None:
            self.source = "metrics"
            log(f"memory: {self.metric} from {target.metrics_path}")
        if not self.source:
            log(
                "memory: cannot be read (the target is not on this host and has no usable "
                f"{target.metrics_path})",
                "warning",
            )

    def _read_metrics(self) -> int | None:
        url = self.target.base_url.rstrip("/") + self.target.metrics_path
        auth = self.target.auth_header
        try:
            # Allow-list checked on every hop; the auth header never follows a change of host.
            answer = safehttp.fetch(
                url,
                allowed=self.target.allowed_hosts,
                headers=dict([auth]) if auth else {},
                secret_headers=(auth[0],) if auth else (),
                timeout=2.0,
                max_body=2_000_000,
            )
            if answer.status >= 400:
                return None
            values = parse_metrics(answer.body.decode(errors="replace"))
        except (OSError, ValueError, HostNotAllowed, http.client.HTTPException):
            # Refused, timed out, not allowed, not a number: no reading this time.
            return None
        for name in METRIC_NAMES:
            if name in values:
                self.metric = name
                return int(values[name])
        return None

    def poll(self) -> None:
        """Take a sample when one is due (the runner calls this every 50 ms)."""
        if not self.source:
            return
        now = time.monotonic()
        if now < self.next_at:
            return
        self.next_at = now + self.interval
        pss: int | None
        if self.source == "psutil":
            pss, peak, count = tree_memory(self.roots)
            if not count:
                return
            self.peak = max(self.peak, peak)
        else:
            pss = self._read_metrics()
            if pss is None:
                return
        self.samples.append((round(now - self.started, 3), pss))

    def report(self, growth_threshold: float = 0.05) -> dict[str, Any]:
        """Memory figures and the trend verdict (flat, growing or unknown)."""
        values = [value for _, value in self.samples]
        report = {
            "source": self.source or None,
            "metric": "pss" if self.source == "psutil" or "pss" in self.metric else "rss",
            "samples": [list(sample) for sample in self.samples],
            "growth_threshold": growth_threshold,
            "trend": "unknown",
            "growth": None,
            "detail": "",
        }
        if not values:
            report["detail"] = "the target's memory could not be read"
            return report
        report.update(
            start_bytes=values[0],
            end_bytes=values[-1],
            max_bytes=max(values),
            mean_bytes=round(sum(values) / len(values)),
            peak_hwm_bytes=self.peak or None,
        )
        skip = int(len(self.samples) * WARMUP_SHARE)
        steady = self.samples[skip:]
        if len(steady) < MIN_TREND_SAMPLES:
            report["detail"] = (
                f"{len(steady)} samples after warm-up; a trend needs {MIN_TREND_SAMPLES} "
                "(run longer or sample more often)"
            )
            return report
        xs = [t for t, _ in steady]
        ys = [float(v) for _, v in steady]
        slope, _ = theil_sen(xs, ys)
        _, p_value = mann_kendall(ys)
        window = xs[-1] - xs[0]
        level = median(ys)
        growth = slope * window / level if level else 0.0
        growing = slope > 0 and growth > growth_threshold and p_value < TREND_ALPHA
        report.update(
            trend="growing" if growing else "flat",
            growth=round(growth, 6),
            slope_bytes_per_s=round(slope, 3),
            growth_bytes_per_hour=round(slope * 3600),
            p_value=round(p_value, 6),
            detail=(
                f"{growth:+.1%} over {window:.0f} s after warm-up "
                f"({slope * 3600 / 1048576:+.1f} MiB/h, Mann-Kendall p = {p_value:.3g}); "
                f"growing means > {growth_threshold:.0%} with p < {TREND_ALPHA}"
            ),
        )
        return report
