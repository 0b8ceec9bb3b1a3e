"""The load generator process: raw asyncio protocols on uvloop with httptools' parser.

Run as ``python -m optimizations.analyzers.loadgen.engine``: it reads one JSON
line of configuration on stdin, drives HTTP/1.1 keep-alive connections to one
host, writes one JSON line per second on stdout (counts, sparse per-second
histograms, its own CPU) and a final ``result`` line, then exits. SIGTERM,
SIGINT or stdin closing stop the traffic at once (the runner's cancel).

It never outlives the runner that started it: on Linux the kernel sends it
SIGTERM when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere it
checks twice a second that its parent is still the one it was started by, and
a reader that went away (a write to stdout failing with EPIPE) stops it too.
Stopping writes what it can, and exits within ``STOP_DEADLINE`` seconds even
if something hangs (SIGALRM's default action ends the process).

Two models:

* ``open``: requests arrive at a fixed rate (constant or Poisson) whatever the
  target does. Latency counts from the *intended* send time, so a stalled
  target shows up in the percentiles (no coordinated omission); service time
  (from the actual write) is kept beside it. An arrival that finds no free
  connection opens one up to ``max_connections``, else waits in a queue
  ("late"); one that waited longer than ``timeout`` is dropped and counted.
* ``closed``: ``connections`` connections send back to back.

The hot path avoids every allocation it can: requests are prebuilt bytes, each
connection is one Protocol object reused across reconnects, latencies are
appended to a list and counted into histogram buckets once a second
(``bucket_values``, see ``hdr.bucket_index``), an answer whose bytes equal the
last one parsed is not parsed again (``Conn``), and in the closed model the
answer's callback writes the connection's next request itself. Measured on one
core against nginx this way of doing it was ~6x aiohttp and ~60x httpx
(ANALYSIS.md §3; bench/loadgen).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import heapq
import itertools
import json
import os
import random
import resource
import signal
import socket
import ssl
import sys
import time
from collections.abc import Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any, TextIO

import httptools

try:  # uvloop is the fast path; plain asyncio still works, only slower.
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
    uvloop = None  # type: ignore[assignment]  # no uvloop: plain asyncio below

from optimizations.analyzers.loadgen import journeys as journeys_mod
from optimizations.analyzers.loadgen.hdr import DEFAULT_SUB_BITS, MAX_VALUE_US
from optimizations.analyzers.loadgen.machine import MachineSampler
from optimizations.analyzers.loadgen.wire import build_request, weighted_table

ENGINE_VERSION = "1"
ERROR_CLASSES = ("refused", "timeout", "reset", "non_2xx", "malformed")
# The event loop's timers tick in milliseconds: a request planned between two
# ticks would go out up to 1 ms late, and that lateness would land in the
# latency from the intended time. On Linux the pump sleeps on a timerfd armed
# at the absolute planned time (time.perf_counter is CLOCK_MONOTONIC there)
# instead, waking no more often than every MIN_WAKE_GAP so a very high rate
# costs batches rather than one wake-up per request. Elsewhere the pump falls
# back to the loop's timers and MIN_PUMP_DELAY.
MIN_PUMP_DELAY = 0.001
MIN_WAKE_GAP = 0.00005
SWEEP_INTERVAL = 0.1
# A closed-model connection that cannot connect waits this long before it
# tries again, so a refused target is not hammered with connect() calls.
RECONNECT_BACKOFF = 0.01
# How often the engine checks that its parent is alive (the portable half of
# dying with it), and how long a stop may take before the process ends anyway.
PARENT_CHECK_INTERVAL = 0.5
STOP_DEADLINE = 3
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# Per-second counters, in the order kept in Engine.sec (a list: cheaper than attributes).
COUNTERS = ("offered", "sent", "ok", *ERROR_CLASSES, "late", "dropped")
OFFERED, SENT, OK, REFUSED, TIMEOUT, RESET, NON_2XX, MALFORMED, LATE, DROPPED = range(10)


class OpStats:
    """Counters and histogram buckets of one operation (``GET /items/{id}``).

    The hot path only appends each answer's latency and service time (whole
    microseconds) to ``lat_values`` / ``svc_values``; once a second
    ``bucket_values`` counts them in bulk (``collections.Counter`` counts in C)
    into the histogram buckets, sums and maxima. Every value is still recorded.
    """

    __slots__ = (
        "errors",
        "lat_max",
        "lat_sum",
        "lat_values",
        "name",
        "ok",
        "status",
        "svc_max",
        "svc_sum",
        "svc_values",
        "tot_lat",
        "tot_svc",
    )

    def __init__(self, name: str):
        self.name = name
        self.ok = 0
        self.errors = dict.fromkeys(ERROR_CLASSES, 0)
        self.status: dict[int, int] = {}
        self.lat_values: list[int] = []
        self.svc_values: list[int] = []
        self.tot_lat: dict[int, int] = {}
        self.tot_svc: dict[int, int] = {}
        self.lat_sum = self.svc_sum = 0
        self.lat_max = self.svc_max = 0


def bucket_values(values: list[int], sub_bits: int) -> tuple[dict[int, int], int, int]:
    """Histogram buckets, sum and maximum of whole-microsecond ``values`` (capped at
    MAX_VALUE_US, like ``Histogram.record``): the bulk half of the hot path's recording."""
    counts: dict[int, int] = {}
    total = high = 0
    exact_below = 1 << sub_bits
    for value, count in collections.Counter(values).items():
        if value > MAX_VALUE_US:
            value = MAX_VALUE_US
        index = value if value < exact_below else _index(value, sub_bits)
        counts[index] = counts.get(index, 0) + count
        total += value * count
        if value > high:
            high = value
    return counts, total, high


def _fold(into: dict[int, int], counts: dict[int, int]) -> None:
    for index, count in counts.items():
        into[index] = into.get(index, 0) + count


def _sparse(counts: dict[int, int]) -> list[list[int]]:
    return [[index, counts[index]] for index in sorted(counts)]


def _hist(counts: dict[int, int], total_sum: int, high: int) -> dict[str, Any]:
    return {"counts": _sparse(counts), "sum": total_sum, "max": high}


class Slot:
    """One place in the connection pool; it outlives the connections it makes."""

    __slots__ = (
        "busy",
        "conn",
        "connecting",
        "intended",
        "journey",
        "payload",
        "request",
        "sent_at",
        "waiting",
    )

    def __init__(self) -> None:
        self.conn: Conn | None = None
        self.journey: journeys_mod.JourneyRun | None = None  # the journey this request is a step of
        self.payload = b""  # what to write once the connection is made
        self.connecting = False
        self.busy = False  # a request is assigned (in flight, or waiting for the connect)
        self.waiting = False  # assigned but not yet written: the connect is under way
        self.request = 0
        self.intended = 0.0
        self.sent_at = 0.0


class Conn(asyncio.Protocol):
    """One TCP connection of a slot, parsing responses as they stream in.

    A target often answers the same bytes over and over (nginx: the same headers
    and body, only ``Date`` changes once a second). httptools' parse of a whole
    answer from a parser at a message boundary depends on those bytes alone, so
    the engine keeps the last such answer with what the parse found (status,
    keep-alive); a connection at a message boundary that reads exactly those
    bytes again takes that result instead of parsing them again. Anything else
    (another answer, a part of one, two at once, a parser in mid-message) goes
    through httptools as before.
    """

    __slots__ = ("begun", "ended", "engine", "keep_alive", "parser", "slot", "status", "transport")

    # Whether answers on this kind of connection may be taken from the engine's last
    # parsed answer: not where the step needs each answer's headers or body.
    reuses_answers = True

    def __init__(self, engine: Engine, slot: Slot) -> None:
        self.engine = engine
        self.slot = slot
        self.transport: asyncio.Transport | None = None
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.keep_alive = True
        # Answers begun and ended on this connection: equal at a message boundary.
        self.begun = self.ended = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if TYPE_CHECKING:  # create_connection hands a stream transport
            assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.parser = httptools.HttpResponseParser(self)
        self.begun = self.ended = 0

    def data_received(self, data: bytes) -> None:
        engine = self.engine
        ended = self.ended
        if self.begun == ended and data == engine.known_answer:
            # Bytes already parsed whole from a message boundary: the same answer.
            self.status = engine.known_status
            self.keep_alive = engine.known_keep_alive
            self.begun = self.ended = ended + 1
            slot = self.slot
            if slot.conn is self and slot.busy and not slot.waiting:
                engine.complete(slot, self)
            else:
                self.on_message_complete()
            return
        at_boundary = self.begun == ended
        if TYPE_CHECKING:  # (checker only) data arrives after connection_made
            assert self.parser is not None
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self.slot.conn is self:
                self.engine.sample_error(f"malformed response: {exc}")
                self.engine.fail(self.slot, MALFORMED)
            return
        if at_boundary and self.begun == self.ended == ended + 1 and self.reuses_answers:
            # Exactly one whole answer, parsed from a boundary: remember it.
            engine.known_answer = data
            engine.known_status = self.status
            engine.known_keep_alive = self.keep_alive

    def eof_received(self) -> bool:
        return False  # let the transport close; connection_lost reports it

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        slot = self.slot
        # A connection we closed or replaced ourselves is no longer the slot's.
        if slot.conn is self:
            slot.conn = None
            if slot.busy and not slot.waiting:
                detail = f"{type(exc).__name__}: {exc}" if exc else "closed by the server"
                self.engine.sample_error(f"connection lost before the answer: {detail}")
                self.engine.fail(slot, RESET)

    # httptools callbacks ----------------------------------------------------------

    def on_message_begin(self) -> None:
        self.begun += 1

    def on_headers_complete(self) -> None:
        if TYPE_CHECKING:  # (checker only) the parser calls this back
            assert self.parser is not None
        self.status = self.parser.get_status_code()

    def on_message_complete(self) -> None:
        if self.ended < self.begun:  # called back by httptools, not from a known answer
            if TYPE_CHECKING:  # (checker only) the parser calls this back
                assert self.parser is not None
            self.ended = self.begun
            self.keep_alive = self.parser.should_keep_alive()
        slot = self.slot
        if slot.conn is not self:
            return
        if slot.busy and not slot.waiting:
            self.engine.complete(slot, self)
        else:
            self.engine.sample_error("an answer arrived that no request asked for")
            self.engine.fail(slot, MALFORMED)


class CaptureConn(Conn):
    """A connection that keeps an answer's headers and body when its step extracts from them.

    Only scripted journeys use it: httptools looks its callbacks up once, so plain
    scenarios on ``Conn`` never pay for on_header / on_body. A step that extracts
    nothing keeps nothing (at most CAPTURE_LIMIT per connection otherwise).
    """

    __slots__ = ("body", "headers", "keep_body", "keep_headers", "overflow")

    reuses_answers = False  # each answer's headers and body are needed

    def __init__(self, engine: Engine, slot: Slot) -> None:
        super().__init__(engine, slot)
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.overflow = False
        self.keep_headers = self.keep_body = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.headers = []
        self.body = bytearray()
        self.overflow = False
        run = self.slot.journey
        step = run.step if run is not None else None
        self.keep_headers = step is not None and step.needs_headers
        self.keep_body = step is not None and step.needs_body

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.keep_headers:
            self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        if self.overflow or not self.keep_body:
            return
        if len(self.body) + len(body) > journeys_mod.CAPTURE_LIMIT:
            self.overflow = True
            self.body = bytearray()
        else:
            self.body += body


class Engine:
    """Drives the connections of one generator process."""

    # Slots: the hot path reads and writes a dozen of these per answer, and an
    # instance with this many attributes in a __dict__ pays a dict lookup each time.
    __slots__ = (
        "arrival_rate",
        "arrivals",
        "arrivals_open",
        "cancelled",
        "cancelled_in_flight",
        "conn_class",
        "connections",
        "cpu_samples",
        "done",
        "duration",
        "emit",
        "end",
        "error_samples",
        "exact_below",
        "grace",
        "host",
        "host_header",
        "idle",
        "in_flight",
        "interval",
        "journey_count",
        "journeys",
        "known_answer",
        "known_keep_alive",
        "known_status",
        "lag_max",
        "lag_sum",
        "last_completion",
        "later",
        "later_order",
        "loop",
        "machine",
        "max_connections",
        "model",
        "next_allowed",
        "next_arrival",
        "ops",
        "pace",
        "payloads",
        "plain_templates",
        "poisson",
        "port",
        "pump_handle",
        "queue",
        "random",
        "rate",
        "refill",
        "request_op",
        "sec",
        "sec_lag",
        "seed",
        "slots",
        "ssl_context",
        "start",
        "start_signal",
        "steps",
        "stopping",
        "sub_bits",
        "table",
        "table_pos",
        "table_size",
        "tick_cpu",
        "tick_number",
        "tick_wall",
        "timeout",
        "timerfd",
        "tls",
        "tot_lag",
        "totals",
        "variables",
        "wait_for_start",
        "wake_at",
    )

    def __init__(self, config: dict[str, Any], emit: Callable[[dict[str, Any]], None]) -> None:
        self.emit = emit
        self.loop = asyncio.get_running_loop()
        self.wait_for_start = bool(config.get("wait_for_start"))
        self.start_signal: asyncio.Future[float] = self.loop.create_future()
        self.host = config["host"]
        self.port = int(config["port"])
        self.tls = bool(config.get("tls"))
        self.ssl_context = ssl.create_default_context() if self.tls else None
        default_port = 443 if self.tls else 80
        host_header = config.get("host_header") or (
            self.host if self.port == default_port else f"{self.host}:{self.port}"
        )
        self.host_header = host_header
        # Scripted journeys (journeys.py): their steps are the requests, each its own
        # operation; a step that uses ${values} is built when it is sent.
        self.journeys: list[journeys_mod.Journey] = []
        self.steps: list[journeys_mod.Step] = []
        if config.get("journeys"):
            self.journeys, requests = journeys_mod.compile_journeys(config["journeys"])
            self.steps = [step for journey in self.journeys for step in journey.steps]
            self.variables = dict(config.get("variables") or {})
        else:
            requests = config["requests"]
        if not requests:
            raise ValueError("the scenario has no requests")
        # A plain request may use ${journey} (unique per request: generated writes
        # make their unique fields unique with it); it is built when it is sent.
        self.plain_templates = {} if self.steps else journeys_mod.request_templates(requests)
        self.payloads: list[bytes | None] = [
            None
            if (self.steps and not self.steps[i].static) or i in self.plain_templates
            else build_request(host_header, spec)
            for i, spec in enumerate(requests)
        ]
        self.conn_class = CaptureConn if self.journeys else Conn
        # Next steps of journeys, due after their think time: (intended, order, request, run).
        self.later: list[tuple[float, int, int, journeys_mod.JourneyRun]] = []
        self.later_order = itertools.count()
        self.wake_at = float("inf")
        self.pump_handle: asyncio.TimerHandle | None = None
        self.journey_count = 0
        by_name: dict[str, OpStats] = {}
        self.request_op: list[OpStats] = []
        for spec in requests:
            name = spec.get("operation") or f"{spec.get('method', 'GET')} {spec.get('path', '/')}"
            self.request_op.append(by_name.setdefault(name, OpStats(name)))
        self.ops = list(by_name.values())
        seed = int(config.get("seed", 1))
        self.seed = seed
        weights = [j.weight for j in self.journeys] or [
            float(s.get("weight", 1.0)) for s in requests
        ]
        self.table = weighted_table(weights, seed)
        self.table_size = len(self.table)
        self.table_pos = 0
        self.model = config.get("model", "open")
        if self.model not in {"open", "closed"}:
            raise ValueError(f"unknown model {self.model!r}")
        max_rate = float(config.get("max_rate") or 0)
        self.rate = float(config.get("rate") or 0)
        if max_rate:
            self.rate = min(self.rate, max_rate) if self.rate else max_rate
        if self.model == "open" and self.rate <= 0:
            raise ValueError("the open model needs a rate above zero")
        if self.journeys and self.model != "open":
            raise ValueError("scripted journeys run in the open model only")
        # Arrivals per second: requests, or journeys so that their steps add up to the rate.
        self.arrival_rate = self.rate
        if self.journeys and self.rate > 0:
            self.arrival_rate = self.rate / journeys_mod.mean_steps(self.journeys)
        # In the closed model a rate is a ceiling (the target's limit), kept by pacing.
        self.pace = 1.0 / self.arrival_rate if self.arrival_rate > 0 else 0.0
        self.poisson = config.get("arrival", "constant") == "poisson"
        self.random = random.Random(seed)
        self.duration = float(config["duration"])
        if config.get("max_duration"):
            self.duration = min(self.duration, float(config["max_duration"]))
        self.timeout = float(config.get("timeout", 5.0))
        self.grace = float(config.get("grace", self.timeout))
        self.connections = max(1, int(config.get("connections", 10)))
        self.max_connections = max(self.connections, int(config.get("max_connections") or 0))
        self.interval = float(config.get("interval", 1.0))
        self.sub_bits = int(config.get("sub_bits", DEFAULT_SUB_BITS))
        self.exact_below = 1 << self.sub_bits

        self.slots: list[Slot] = []
        self.idle: list[Slot] = []
        # Requests waiting for a free connection: (intended, request, journey run or None).
        self.queue: collections.deque[tuple[float, int, journeys_mod.JourneyRun | None]] = (
            collections.deque()
        )
        self.sec = [0] * len(COUNTERS)
        self.totals = [0] * len(COUNTERS)
        self.sec_lag: dict[int, int] = {}
        self.tot_lag: dict[int, int] = {}
        self.lag_sum = 0
        self.lag_max = 0
        self.timerfd: int | None = None
        # The last whole answer httptools parsed from a message boundary, and what it
        # found in it (Conn.data_received).
        self.known_answer = b""
        self.known_status = 0
        self.known_keep_alive = True
        # Closed model without a rate ceiling and with prebuilt requests, while the
        # arrivals are open: complete() sends a connection's next request itself.
        self.refill = False
        self.error_samples: list[str] = []
        self.in_flight = 0
        self.start = 0.0
        self.end = 0.0
        self.next_arrival = 0.0
        self.arrivals = 0
        self.next_allowed = 0.0
        self.arrivals_open = False
        self.stopping = False
        self.cancelled = False
        self.cancelled_in_flight = 0
        self.last_completion = 0.0
        self.done = self.loop.create_future()
        self.tick_number = 0
        self.tick_wall = 0.0
        self.tick_cpu = 0.0
        self.cpu_samples: list[float] = []
        # The machine around us, per second: the validity guard tells a busy
        # machine from a saturated generator with it (machine.py).
        self.machine = MachineSampler()

    # -- lifecycle -----------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        self.slots = [Slot() for _ in range(self.connections)]
        results = await asyncio.gather(
            *(self._connect(slot) for slot in self.slots), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            self.note(
                f"{len(failures)} of {len(self.slots)} connections could not be opened "
                f"before the start: {type(failures[0]).__name__}: {failures[0]}"
            )
        if self.done.done():  # cancelled while connecting
            return self.result()
        self.emit({"type": "ready", "connections": self.open_connections()})
        if self.wait_for_start:
            # A distributed test (several generators on several hosts): connected, we wait
            # for the instant every generator agreed on ("start <epoch>" on stdin).
            at = await self.start_signal
            # Timers may round to the millisecond (uvloop): never start before the instant.
            while not self.done.done() and (left := at - time.time()) > 0:
                await asyncio.sleep(left)
            if self.done.done():  # cancelled while waiting
                return self.result()
        self.start = time.perf_counter()
        self.end = self.start + self.duration
        self.tick_wall = self.start
        self.tick_cpu = time.process_time()
        self.machine.sample()  # the first second's deltas start here
        self.loop.call_later(self.interval, self._tick)
        self.loop.call_later(SWEEP_INTERVAL, self._sweep)
        self.arrivals_open = True
        if self.model == "open":
            # The pump itself closes the arrivals once the next one falls past the end.
            self._start_timer()
            # Connected slots last: idle.pop() takes from the end.
            self.idle = [slot for slot in self.slots if slot.conn is None]
            self.idle += [slot for slot in self.slots if slot.conn is not None]
            self.next_arrival = self.start
            self._pump()
        else:
            self.loop.call_later(self.duration, self._close_arrivals)
            self.next_allowed = self.start
            self.refill = not self.pace and all(payload is not None for payload in self.payloads)
            for slot in self.slots:
                self._closed_next(slot)
        await self.done
        return self.result()

    def cancel(self) -> None:
        """Stop now: no new request, every connection aborted (the job was cancelled)."""
        if self.done.done():
            return
        self.cancelled = True
        if not self.start_signal.done():
            self.start_signal.set_result(0.0)  # no longer waiting for the agreed start
        self.arrivals_open = self.refill = False
        self.stopping = True
        for slot in self.slots:
            if slot.busy:
                self.cancelled_in_flight += 1
                slot.busy = False
            conn, slot.conn = slot.conn, None
            if conn is not None and conn.transport is not None:
                conn.transport.abort()
        self.in_flight = 0
        self.queue.clear()
        self._stop_timer()
        self._finish()

    def _close_arrivals(self) -> None:
        if not self.arrivals_open:
            return
        self._stop_timer()
        self.arrivals_open = self.refill = False
        self.stopping = True
        # In-flight requests get ``grace`` seconds to finish so that every request
        # sent is accounted for (the target's counters must match ours).
        self.loop.call_later(self.grace, self._give_up)
        self._maybe_finish()

    def _give_up(self) -> None:
        if self.done.done():
            return
        self.sec[DROPPED] += len(self.queue)
        for _, _, run in self.queue:
            self._journey_dropped(run, "dropped (no free connection)")
        self.queue.clear()
        for slot in self.slots:
            if slot.busy:
                self._count_error(slot, TIMEOUT)
                self._drop_connection(slot)
        self._finish()

    def _maybe_finish(self) -> None:
        if self.stopping and not self.arrivals_open and self.in_flight == 0 and not self.queue:
            self._finish()

    def _finish(self) -> None:
        if self.done.done():
            return
        for _, _, _, run in self.later:
            run.journey.unfinished += 1
        self.later.clear()
        self._flush_second(final=True)
        for slot in self.slots:
            conn, slot.conn = slot.conn, None
            if conn is not None and conn.transport is not None:
                conn.transport.close()
        self.done.set_result(None)

    # -- sending -------------------------------------------------------------------

    def _pick(self) -> int:
        pos = self.table_pos
        self.table_pos = pos + 1 if pos + 1 < len(self.table) else 0
        return self.table[pos]

    def _pump(self) -> None:
        """Open model: dispatch every arrival that is due, then sleep until the next."""
        if not self.arrivals_open:
            return
        now = time.perf_counter()
        lag_counts = self.sec_lag
        exact_below, sub_bits = self.exact_below, self.sub_bits
        later = self.later
        while True:
            # Journeys' next steps (always before the end) and new arrivals, in time order.
            step_first = bool(later) and later[0][0] < self.next_arrival
            intended = later[0][0] if step_first else self.next_arrival
            if intended > now:
                break
            if intended >= self.end:
                self._close_arrivals()
                return
            self.sec[OFFERED] += 1
            lag = int((now - intended) * 1e6)
            index = lag if lag < exact_below else _index(lag, sub_bits)
            lag_counts[index] = lag_counts.get(index, 0) + 1
            if lag > self.lag_max:
                self.lag_max = lag
            self.lag_sum += lag
            if step_first:
                _, _, request, run = heapq.heappop(later)
                self._dispatch(request, intended, run)
                continue
            if self.journeys:
                self._start_journey(intended)
            else:
                self._dispatch(self._pick(), intended)
            self.arrivals += 1
            if self.poisson:
                self.next_arrival += self.random.expovariate(self.arrival_rate)
            else:
                # From the count, not by adding up gaps, which drifts by rounding.
                self.next_arrival = self.start + self.arrivals * self.pace
        wake = min(self.next_arrival, self.end)
        if later and later[0][0] < wake:
            wake = later[0][0]
        self.wake_at = wake
        if self.timerfd is not None:
            now = time.perf_counter()
            at = wake if wake - now > MIN_WAKE_GAP else now + MIN_WAKE_GAP
            # os.timerfd_* are Python 3.13's (a timerfd is only made there, _start_timer);
            # the type check targets 3.12, whose os module does not declare them.
            os.timerfd_settime(self.timerfd, flags=os.TFD_TIMER_ABSTIME, initial=at)  # type: ignore[attr-defined]
        else:
            if self.pump_handle is not None:
                self.pump_handle.cancel()
            delay = wake - time.perf_counter()
            self.pump_handle = self.loop.call_later(
                delay if delay > MIN_PUMP_DELAY else MIN_PUMP_DELAY, self._pump
            )

    def _on_timerfd(self) -> None:
        if self.timerfd is None:
            return  # stopped since the wake-up was queued
        try:
            os.read(self.timerfd, 8)
        except BlockingIOError:
            return  # a wake-up already consumed
        self._pump()

    def _start_timer(self) -> None:
        """Use a timerfd for the open model's pump where the platform has one."""
        if sys.version_info < (3, 13) or sys.platform != "linux":
            return
        try:
            fd = os.timerfd_create(time.CLOCK_MONOTONIC, flags=os.TFD_NONBLOCK | os.TFD_CLOEXEC)
            self.loop.add_reader(fd, self._on_timerfd)
        except (OSError, NotImplementedError):
            return
        self.timerfd = fd

    def _stop_timer(self) -> None:
        if self.timerfd is not None:
            self.loop.remove_reader(self.timerfd)
            os.close(self.timerfd)
            self.timerfd = None

    def _dispatch(
        self, request: int, intended: float, run: journeys_mod.JourneyRun | None = None
    ) -> None:
        if self.idle:
            self._send(self.idle.pop(), request, intended, run)
        elif len(self.slots) < self.max_connections:
            slot = Slot()
            self.slots.append(slot)
            self._send(slot, request, intended, run)
        else:
            self.queue.append((intended, request, run))

    def _send(
        self, slot: Slot, request: int, intended: float, run: journeys_mod.JourneyRun | None = None
    ) -> None:
        slot.busy = True
        slot.request = request
        slot.intended = intended
        slot.journey = run
        self.in_flight += 1
        payload = self.payloads[request]
        if payload is None:
            if run is None:
                payload = self._render_plain(request)
            else:
                if TYPE_CHECKING:  # (checker only) _prepare_step built the step's bytes
                    assert run.payload is not None
                payload = run.payload
        conn = slot.conn
        if conn is None:
            slot.waiting = True
            slot.payload = payload
            if not slot.connecting:
                self.loop.create_task(self._connect_and_send(slot))
            return
        slot.sent_at = time.perf_counter()
        self.sec[SENT] += 1
        if TYPE_CHECKING:  # (checker only) a slot's live connection has its transport
            assert conn.transport is not None
        conn.transport.write(payload)

    def _render_plain(self, request: int) -> bytes:
        self.journey_count += 1
        values = {"journey": f"{self.seed}-{self.journey_count}"}
        return build_request(self.host_header, self.plain_templates[request].request(values))

    # -- journeys ------------------------------------------------------------------

    def _start_journey(self, intended: float) -> None:
        """A new virtual user arrives: its journey's first step is sent at ``intended``."""
        journey = self.journeys[self._pick()]
        journey.started += 1
        self.journey_count += 1
        values = dict(self.variables)
        # Unique in the run: engines differ by seed (split_config), journeys by count.
        values["journey"] = f"{self.seed}-{self.journey_count}"
        run = journeys_mod.JourneyRun(journey, values, intended)
        if self._prepare_step(run):
            self._dispatch(run.step.index, intended, run)

    def _prepare_step(self, run: journeys_mod.JourneyRun) -> bool:
        """Build the current step's bytes when it uses values; False: the journey failed."""
        step = run.step
        if step.static:
            run.payload = None
            return True
        try:
            run.payload = build_request(self.host_header, step.request(run.values))
        except KeyError as exc:
            run.journey.fail(f"{step.operation}: no value for {exc.args[0]}")
            return False
        except ValueError as exc:
            run.journey.fail(f"{step.operation}: {exc}")
            return False
        return True

    def _journey_answered(
        self,
        run: journeys_mod.JourneyRun,
        step: journeys_mod.Step,
        status: int,
        ok: bool,
        extracted: dict[str, Any] | str,
        now: float,
    ) -> None:
        """The step answered: fail the journey, finish it, or schedule its next step."""
        journey = run.journey
        if not ok:
            journey.fail(f"{step.operation}: status {status}")
            return
        if isinstance(extracted, str):
            journey.fail(f"{step.operation}: {extracted}")
            return
        run.values.update(extracted)
        if run.position + 1 == len(journey.steps):
            journey.completed += 1
            took = int((now - run.started_at) * 1e6)
            took = min(took, MAX_VALUE_US)
            index = took if took < self.exact_below else _index(took, self.sub_bits)
            journey.durations[index] = journey.durations.get(index, 0) + 1
            journey.duration_sum += took
            journey.duration_max = max(journey.duration_max, took)
            return
        intended = now + step.think_time(self.random)
        if not self.arrivals_open or intended >= self.end:
            journey.unfinished += 1
            return
        run.position += 1
        if not self._prepare_step(run):
            return
        heapq.heappush(self.later, (intended, next(self.later_order), run.step.index, run))
        if intended < self.wake_at:
            # Sooner than the pump was going to wake: let it decide (now, or re-armed).
            self._pump()

    def _journey_dropped(self, run: journeys_mod.JourneyRun | None, why: str) -> None:
        if run is not None:
            run.journey.fail(f"{run.step.operation}: {why}")

    def _closed_next(self, slot: Slot) -> None:
        """Closed model: this connection's next request, paced under the rate ceiling."""
        if not self.arrivals_open:
            return
        now = time.perf_counter()
        if now >= self.end:
            self._close_arrivals()
            return
        if self.pace:
            when = self.next_allowed if self.next_allowed > now else now
            self.next_allowed = when + self.pace
            if when >= self.end:
                return
            if when > now:
                self.loop.call_later(when - now, self._closed_send, slot, when)
                return
            self._closed_send(slot, when)
        else:
            self._closed_send(slot, now)

    def _closed_send(self, slot: Slot, intended: float) -> None:
        if not self.arrivals_open or slot.busy:
            return
        self.sec[OFFERED] += 1
        self._send(slot, self._pick(), intended)

    async def _connect(self, slot: Slot) -> None:
        slot.connecting = True
        conn = self.conn_class(self, slot)
        try:
            await asyncio.wait_for(
                self.loop.create_connection(
                    lambda: conn,
                    self.host,
                    self.port,
                    ssl=self.ssl_context,
                    server_hostname=self.host if self.tls else None,
                ),
                self.timeout,
            )
        finally:
            slot.connecting = False
        transport = conn.transport
        if transport is None:
            # Lost as soon as it was made: connection_lost could not fail the request
            # (the slot did not hold this connection yet), so it fails here as a reset.
            raise ConnectionResetError("the connection was closed as soon as it was made")
        if self.done.done():
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Requests are small and latency-bound: never let Nagle hold one back.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        slot.conn = conn

    async def _connect_and_send(self, slot: Slot) -> None:
        try:
            await self._connect(slot)
        except TimeoutError as exc:
            self._connect_failed(slot, TIMEOUT, exc)
            return
        except ConnectionRefusedError as exc:
            self._connect_failed(slot, REFUSED, exc)
            return
        except ConnectionResetError as exc:
            self._connect_failed(slot, RESET, exc)
            return
        except (OSError, ssl.SSLError) as exc:
            # Unreachable network, TLS failure...: the connection could not be made.
            self._connect_failed(slot, REFUSED, exc)
            return
        if not slot.busy or slot.conn is None:
            return
        slot.waiting = False
        slot.sent_at = time.perf_counter()
        self.sec[SENT] += 1
        if TYPE_CHECKING:  # (checker only) as in _send
            assert slot.conn.transport is not None
        slot.conn.transport.write(slot.payload)

    def _connect_failed(self, slot: Slot, error: int, exc: BaseException) -> None:
        if not slot.busy or self.done.done():
            return
        self.sample_error(f"connect: {type(exc).__name__}: {exc}")
        self._count_error(slot, error)
        if self.model == "closed" and self.arrivals_open:
            self.loop.call_later(RECONNECT_BACKOFF, self._release, slot)
        else:
            self._release(slot)

    # -- outcomes ------------------------------------------------------------------

    def complete(self, slot: Slot, conn: Conn) -> None:
        """``conn``, the live connection of ``slot``, has the whole answer to its request."""
        now = perf_counter()
        status = conn.status
        op = self.request_op[slot.request]
        # Recorded in bulk once a second (_flush_second): here only the values.
        op.lat_values.append(int((now - slot.intended) * 1e6))
        op.svc_values.append(int((now - slot.sent_at) * 1e6))
        self.last_completion = now
        if self.refill and 200 <= status < 300 and conn.keep_alive and now < self.end:
            # Closed model, no rate ceiling, static requests: the connection's next
            # request goes out at once (what _release -> _closed_next -> _send does,
            # inlined: this runs once per answer). The slot stays busy, so in_flight
            # does not change; the request is intended, and written, now.
            sec = self.sec
            sec[OK] += 1
            op.ok += 1
            sec[OFFERED] += 1
            sec[SENT] += 1
            pos = self.table_pos
            request = self.table[pos]
            pos += 1
            self.table_pos = pos if pos < self.table_size else 0
            slot.request = request
            slot.intended = slot.sent_at = now
            conn.transport.write(self.payloads[request])  # type: ignore[union-attr, arg-type]
            return
        run = slot.journey
        if run is None:
            ok = 200 <= status < 300
        else:
            # A journey's step is answered as expected when its status is the one it
            # expects (2xx unless it says otherwise); anything else counts as non_2xx.
            step = self.steps[slot.request]
            ok = step.accepts(status)
            extracted: dict[str, Any] | str = {}
            if ok and step.extract:
                if TYPE_CHECKING:  # (checker only) journeys run on CaptureConn
                    assert isinstance(conn, CaptureConn)
                body = None if conn.overflow else bytes(conn.body)
                try:
                    extracted = step.extract_from(status, conn.headers, body)
                except ValueError as exc:
                    extracted = str(exc)
            slot.journey = None
        if ok:
            self.sec[OK] += 1
            op.ok += 1
        else:
            self.sec[NON_2XX] += 1
            op.errors["non_2xx"] += 1
            op.status[status] = op.status.get(status, 0) + 1
        slot.busy = False
        self.in_flight -= 1
        if not conn.keep_alive:
            self._drop_connection(slot, abort=False)
        self._release(slot)
        if run is not None:
            self._journey_answered(run, step, status, ok, extracted, now)

    def fail(self, slot: Slot, error: int) -> None:
        """The request on ``slot`` failed with ``error``; the connection is dropped."""
        if slot.busy:
            self._count_error(slot, error)
        self._drop_connection(slot)
        if not self.done.done():
            self._release(slot)

    def _drop_connection(self, slot: Slot, abort: bool = True) -> None:
        conn, slot.conn = slot.conn, None
        if conn is not None and conn.transport is not None:
            if abort:
                conn.transport.abort()
            else:
                conn.transport.close()

    def _count_error(self, slot: Slot, error: int) -> None:
        self.sec[error] += 1
        self.request_op[slot.request].errors[COUNTERS[error]] += 1
        if slot.journey is not None:
            self._journey_dropped(slot.journey, COUNTERS[error])
            slot.journey = None
        slot.busy = False
        slot.waiting = False
        self.in_flight -= 1
        self.last_completion = time.perf_counter()

    def _release(self, slot: Slot) -> None:
        """``slot`` is free: give it the next request, or park it."""
        if self.done.done() or slot.busy:
            return
        if self.model == "closed":
            if self.arrivals_open:
                self._closed_next(slot)
            else:
                self._maybe_finish()
            return
        queue = self.queue
        if queue:
            now = time.perf_counter()
            while queue:
                intended, request, run = queue.popleft()
                if now - intended > self.timeout:
                    self.sec[DROPPED] += 1
                    self._journey_dropped(run, "dropped (no free connection)")
                    continue
                self.sec[LATE] += 1
                self._send(slot, request, intended, run)
                return
        self.idle.append(slot)
        if self.stopping:
            self._maybe_finish()

    def _sweep(self) -> None:
        """Every 100 ms: time out stuck requests and drop arrivals that waited too long."""
        if self.done.done():
            return
        now = time.perf_counter()
        limit = now - self.timeout
        for slot in self.slots:
            if slot.busy and not slot.waiting and slot.sent_at < limit:
                self.sample_error(f"no answer within {self.timeout:g} s")
                self.fail(slot, TIMEOUT)
        queue = self.queue
        while queue and queue[0][0] < limit:
            self._journey_dropped(queue.popleft()[2], "dropped (no free connection)")
            self.sec[DROPPED] += 1
        self._maybe_finish()
        if not self.done.done():
            self.loop.call_later(SWEEP_INTERVAL, self._sweep)

    # -- reporting -----------------------------------------------------------------

    def note(self, message: str, level: str = "warning") -> None:
        self.emit({"type": "log", "level": level, "message": message})

    def sample_error(self, message: str) -> None:
        if len(self.error_samples) < 10 and message not in self.error_samples:
            self.error_samples.append(message)

    def open_connections(self) -> int:
        return sum(1 for slot in self.slots if slot.conn is not None)

    def _tick(self) -> None:
        if self.done.done():
            return
        self._flush_second()
        self.loop.call_later(
            max(0.0, self.start + (self.tick_number + 1) * self.interval - time.perf_counter()),
            self._tick,
        )

    def _flush_second(self, final: bool = False) -> None:
        now = time.perf_counter()
        cpu = time.process_time()
        wall = now - self.tick_wall
        cpu_percent = 100.0 * (cpu - self.tick_cpu) / wall if wall > 0 else 0.0
        if wall >= self.interval / 2:
            self.cpu_samples.append(cpu_percent)
        self.tick_number += 1
        self.tick_wall, self.tick_cpu = now, cpu
        latency: dict[int, int] = {}
        service: dict[int, int] = {}
        sub_bits = self.sub_bits
        for op in self.ops:
            if op.lat_values:
                counts, total, high = bucket_values(op.lat_values, sub_bits)
                op.lat_values = []
                _fold(latency, counts)
                _fold(op.tot_lat, counts)
                op.lat_sum += total
                op.lat_max = max(op.lat_max, high)
            if op.svc_values:
                counts, total, high = bucket_values(op.svc_values, sub_bits)
                op.svc_values = []
                _fold(service, counts)
                _fold(op.tot_svc, counts)
                op.svc_sum += total
                op.svc_max = max(op.svc_max, high)
        _fold(self.tot_lag, self.sec_lag)
        row = {
            "type": "tick",
            "t": self.tick_number,
            "elapsed": round(now - self.start, 6),
            "interval": round(wall, 6),
            "final": final,
            "cpu": round(cpu_percent, 2),
            "connections": self.open_connections(),
            "in_flight": self.in_flight,
            "queued": len(self.queue),
            "latency": _sparse(latency),
            "service": _sparse(service),
            "lag": _sparse(self.sec_lag),
            **self.machine.sample(),
        }
        for position, name in enumerate(COUNTERS):
            row[name] = self.sec[position]
            self.totals[position] += self.sec[position]
        self.sec = [0] * len(COUNTERS)
        self.sec_lag = {}
        self.emit(row)

    def result(self) -> dict[str, Any]:
        end = max(self.last_completion, self.start)
        return {
            "type": "result",
            "engine_version": ENGINE_VERSION,
            "loop": "uvloop" if uvloop is not None else "asyncio",
            "model": self.model,
            "rate": self.rate,
            "duration": self.duration,
            # Time from the first arrival to the last answer: what req/s divides by.
            "elapsed": round(max(end - self.start, 1e-9), 6),
            "cancelled": self.cancelled,
            "cancelled_in_flight": self.cancelled_in_flight,
            "sub_bits": self.sub_bits,
            "totals": dict(zip(COUNTERS, self.totals, strict=True)),
            "cpu_samples": [round(value, 2) for value in self.cpu_samples],
            "lag": _hist(self.tot_lag, self.lag_sum, self.lag_max),
            "connections_opened": len(self.slots),
            "error_samples": self.error_samples,
            **(
                {
                    "journey_rate": self.arrival_rate,
                    "journeys": [journey.to_result() for journey in self.journeys],
                }
                if self.journeys
                else {}
            ),
            "operations": [
                {
                    "name": op.name,
                    "ok": op.ok,
                    "errors": op.errors,
                    "status": {str(code): count for code, count in sorted(op.status.items())},
                    "latency": _hist(op.tot_lat, op.lat_sum, op.lat_max),
                    "service": _hist(op.tot_svc, op.svc_sum, op.svc_max),
                }
                for op in self.ops
            ],
        }


def _index(value: int, sub_bits: int) -> int:
    # hdr.bucket_index inlined for values at or above 2 ** sub_bits' lower part.
    if value < (1 << sub_bits):
        return value
    shift = value.bit_length() - sub_bits
    return (shift << (sub_bits - 1)) + (value >> shift)


def _pin(cpu: int | str | None) -> str:
    if cpu is None:
        return ""
    try:
        os.sched_setaffinity(0, {int(cpu)})
    except (AttributeError, OSError, ValueError) as exc:
        return f"could not pin the generator to CPU {cpu}: {exc}"
    return ""


def _raise_file_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def die_with_parent() -> bool:
    """Ask Linux for SIGTERM when the parent dies; False where that is not available.

    The kernel watches the *thread* that started us: run_engines starts its
    engines from the thread that then waits for them, so it outlives them.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def parent_gone(parent_pid: int | None) -> bool:
    """True when the process that started us is no longer our parent (it died and
    we were re-parented to init or a subreaper). Without its pid we cannot tell."""
    return parent_pid is not None and os.getppid() != parent_pid


class Output:
    """One JSON line per message on stdout; a reader that went away stops the engine.

    Writing to a pipe whose reader died raises BrokenPipeError: that used to
    escape from the cancel path and leave the engine running forever. Now the
    first failed write marks the output gone (later messages are dropped),
    points stdout at /dev/null so nothing else fails on it, and calls
    ``on_gone`` — there is nobody left to report to, so the traffic stops.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False
        self.on_gone: Callable[[], object] | None = None

    def __call__(self, message: dict[str, Any]) -> None:
        if self.gone:
            return
        try:
            self.stream.write(json.dumps(message, separators=(",", ":")) + "\n")
            self.stream.flush()
        except (OSError, ValueError):  # BrokenPipeError, or the stream closed
            self.gone = True
            with contextlib.suppress(OSError):
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self.stream.fileno())
                os.close(devnull)
            if self.on_gone is not None:
                self.on_gone()


def main() -> int:
    # First thing, so that a parent dying from now on takes us with it.
    die_with_parent()
    emit = Output(sys.stdout)
    line = sys.stdin.buffer.readline()
    try:
        config = json.loads(line)
    except ValueError:
        emit({"type": "error", "message": "the engine expects one JSON line of configuration"})
        return 2
    parent_pid = config.get("parent_pid")
    if parent_gone(parent_pid):
        # Died before the death signal was armed: nobody would ever read or stop us.
        return 3
    warning = _pin(config.get("cpu"))
    _raise_file_limit(int(config.get("max_connections") or config.get("connections", 10)) + 64)

    async def go() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        engine = Engine(config, emit)

        def stop(why: str = "") -> None:
            # Whatever happens next, the process ends within STOP_DEADLINE seconds:
            # SIGALRM's default action needs no Python code to run.
            if not engine.done.done():
                signal.alarm(STOP_DEADLINE)
                if why:
                    engine.note(why)
            engine.cancel()

        # Called from inside a write: let that write's caller finish first.
        emit.on_gone = lambda: loop.call_soon(stop)
        if warning:
            engine.note(warning)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop)
        stdin_fd = sys.stdin.fileno()

        def on_stdin() -> None:
            # The runner closing our stdin (or dying) means stop, just like SIGTERM.
            try:
                data = os.read(stdin_fd, 4096)
            except OSError:
                data = b""
            if not data or b"stop" in data:
                loop.remove_reader(stdin_fd)
                stop()
                return
            for line in data.splitlines():
                if line.startswith(b"start ") and not engine.start_signal.done():
                    engine.start_signal.set_result(float(line.split()[1]))

        def watch_parent() -> None:
            if engine.done.done():
                return
            if parent_gone(parent_pid):
                stop(f"the runner (pid {parent_pid}) is gone; stopping")
                return
            loop.call_later(PARENT_CHECK_INTERVAL, watch_parent)

        # stdin may be a file or a terminal: then signals alone stop us.
        with contextlib.suppress(OSError, ValueError, NotImplementedError):
            loop.add_reader(stdin_fd, on_stdin)
        loop.call_later(PARENT_CHECK_INTERVAL, watch_parent)
        return await engine.run()

    try:
        result = uvloop.run(go()) if uvloop is not None else asyncio.run(go())
    except (ValueError, KeyError, OSError) as exc:
        emit({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
        return 2
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
