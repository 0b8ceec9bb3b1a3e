"""How busy the machine under the load generator is, second by second (Linux /proc).

A send lag (a request leaving later than planned) has three possible causes,
and the validity guard must tell them apart (report.validity):

- the generator is saturated — its own CPU near a full core;
- the machine is busy — the generator was ready to run but waited for a CPU:
  its own run-queue wait (``/proc/self/schedstat``), a run queue longer than
  the cores (``procs_running`` in ``/proc/stat``), CPU time stolen by the
  hypervisor (``steal``), or every core busy;
- neither — then the lag is the target's doing only in the sense that it
  answered slowly, which the latency shows, not the send lag.

``MachineSampler.sample()`` is called once a second by the engine; each call
reads three small files (a few microseconds). Where /proc does not exist it
returns an empty dict and the guard falls back to the generator's CPU and
send lag alone.
"""

from __future__ import annotations

import os
from typing import Any


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def cores() -> int:
    """The machine's cores: the run queue and /proc/stat count all of them (the
    engine itself is usually pinned to one, so its own affinity would say 1)."""
    return os.cpu_count() or 1


class MachineSampler:
    """Per-interval deltas of the machine's CPU use, steal, run queue and our own CPU wait."""

    def __init__(self) -> None:
        self.cores = cores()
        self.available = _read("/proc/stat") is not None
        self._cpu = self._cpu_times()
        self._wait = self._own_wait_ns()

    def _cpu_times(self) -> list[int] | None:
        text = _read("/proc/stat") if self.available else None
        if not text:
            return None
        fields = text.split("\n", 1)[0].split()
        if not fields or fields[0] != "cpu":
            return None
        return [int(value) for value in fields[1:]]

    @staticmethod
    def _own_wait_ns() -> int | None:
        text = _read("/proc/self/schedstat")
        if not text:
            return None
        try:
            return int(text.split()[1])
        except (IndexError, ValueError):
            return None

    @staticmethod
    def _procs_running(text: str) -> int | None:
        for line in text.splitlines():
            if line.startswith("procs_running"):
                return int(line.split()[1])
        return None

    def sample(self) -> dict[str, Any]:
        """What changed since the previous call (empty where /proc is not there)."""
        if not self.available:
            return {}
        out: dict[str, Any] = {"cores": self.cores}
        text = _read("/proc/stat") or ""
        now = None
        first = text.split("\n", 1)[0].split()
        if first and first[0] == "cpu":
            now = [int(value) for value in first[1:]]
        if now is not None and self._cpu is not None:
            delta = [b - a for a, b in zip(self._cpu, now, strict=False)]
            total = sum(delta[:8])  # user nice system idle iowait irq softirq steal
            if total > 0:
                idle = delta[3] + (delta[4] if len(delta) > 4 else 0)
                steal = delta[7] if len(delta) > 7 else 0
                out["machine_busy_pct"] = round(100.0 * (total - idle) / total, 1)
                out["steal_pct"] = round(100.0 * steal / total, 1)
        self._cpu = now
        running = self._procs_running(text)
        if running is not None:
            out["run_queue"] = running
        wait = self._own_wait_ns()
        if wait is not None and self._wait is not None:
            out["sched_wait_ms"] = round((wait - self._wait) / 1e6, 3)
        self._wait = wait
        return out
