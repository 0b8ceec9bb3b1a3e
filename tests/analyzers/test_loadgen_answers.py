"""The engine's answer path in process: answers it has parsed before, and recording in bulk.

A connection that reads exactly the bytes of the last whole answer parsed from
a message boundary takes that parse's result (engine.Conn); these tests hold
it to counting exactly what parsing every answer with httptools counts,
including where the same bytes mean something else (inside a body, two answers
in one read, ``Connection: close``). Fake transports, no network.
"""

import asyncio
import random
import time

from optimizations.analyzers.loadgen import engine as engine_mod
from optimizations.analyzers.loadgen.hdr import MAX_VALUE_US, Histogram

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n"
CLOSING = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
    b"Connection: close\r\n\r\nok\n"
)


class FakeTransport:
    def __init__(self):
        self.written = []
        self.closed = False

    def write(self, data):
        self.written.append(data)

    def close(self):
        self.closed = True

    def abort(self):
        self.closed = True

    def get_extra_info(self, name, default=None):
        return default


def drive(script, model="open", connections=2):
    """Connect ``connections`` fake connections, send one request on each, run
    ``script(conns)`` and return the second's row (counts) after it."""
    rows = []

    async def go():
        config = {
            "host": "127.0.0.1",
            "port": 9,
            "requests": [{"method": "GET", "path": "/"}],
            "connections": connections,
            "model": model,
            "rate": 1000 if model == "open" else 0,
            "duration": 3600,
        }
        engine = engine_mod.Engine(config, rows.append)
        engine.slots = [engine_mod.Slot() for _ in range(connections)]
        conns = []
        for slot in engine.slots:
            conn = engine.conn_class(engine, slot)
            conn.connection_made(FakeTransport())
            slot.conn = conn
            conns.append(conn)
        engine.start = engine.tick_wall = time.perf_counter()
        engine.end = engine.start + 3600
        engine.arrivals_open = True
        if model == "closed":
            engine.refill = True
            for slot in engine.slots:
                engine._closed_send(slot, time.perf_counter())
        else:
            engine.idle = list(engine.slots)
            for _ in engine.slots:
                engine._dispatch(0, time.perf_counter())
        script(conns)
        engine._flush_second()
        engine.cancel()

    asyncio.run(go())
    return rows[-2] if rows[-1]["final"] and len(rows) > 1 else rows[-1]


def test_a_repeated_answer_counts_like_a_parsed_one_and_the_next_request_goes_out():
    def script(conns):
        for _ in range(3):
            for conn in conns:
                conn.data_received(ANSWER)

    row = drive(script, model="closed")
    assert row["ok"] == 6
    assert row["sent"] == row["offered"] == 8  # two first requests and one after each answer
    assert sum(count for _, count in row["latency"]) == 6
    assert sum(count for _, count in row["service"]) == 6
    assert row["malformed"] == row["non_2xx"] == 0


def test_a_repeated_error_answer_in_the_closed_model_counts_and_sends_the_next():
    failing = b"HTTP/1.1 503 X\r\nContent-Length: 0\r\n\r\n"

    def script(conns):
        for _ in range(2):
            for conn in conns:
                conn.data_received(failing)
        assert [len(conn.transport.written) for conn in conns] == [3, 3]

    row = drive(script, model="closed")
    assert row["non_2xx"] == 4
    assert row["ok"] == 0
    assert row["sent"] == 6


def test_the_same_bytes_inside_a_body_are_the_body_not_an_answer():
    # A 503 whose body happens to be the bytes of the answer already known.
    head = b"HTTP/1.1 503 X\r\nContent-Length: %d\r\n\r\n" % len(ANSWER)

    def script(conns):
        conns[0].data_received(ANSWER)  # now known
        conns[1].data_received(head)  # mid-message from here...
        conns[1].data_received(ANSWER)  # ...so this is its body

    row = drive(script)
    assert row["ok"] == 1
    assert row["non_2xx"] == 1
    assert row["malformed"] == 0


def test_two_answers_in_one_read_count_the_same_on_every_connection():
    def script(conns):
        for conn in conns:  # the second may only reuse what the first parsed
            conn.data_received(ANSWER + ANSWER)
        # Each read: the answer to its request, then one nobody asked for, which
        # drops the connection (nothing was in flight on it to count as failed).
        assert [conn.transport.closed for conn in conns] == [True, True]
        assert all(conn.slot.conn is None for conn in conns)

    row = drive(script)
    assert row["ok"] == 2
    assert row["malformed"] == 0


def test_a_repeated_connection_close_answer_still_closes_the_connection():
    def script(conns):
        for conn in conns:
            conn.data_received(CLOSING)
        assert [conn.transport.closed for conn in conns] == [True, True]
        assert all(conn.slot.conn is None for conn in conns)

    row = drive(script)
    assert row["ok"] == 2
    assert row["reset"] == row["malformed"] == 0


def test_an_answer_split_across_reads_then_read_whole_counts_once_each():
    def script(conns):
        conns[0].data_received(ANSWER[:20])
        conns[0].data_received(ANSWER[20:])
        conns[1].data_received(ANSWER)

    row = drive(script)
    assert row["ok"] == 2
    assert row["malformed"] == 0


def test_bulk_bucketing_equals_recording_each_value():
    generator = random.Random(7)
    values = [0, 1, 1023, 1024, 1025, 2047, 2048, MAX_VALUE_US, MAX_VALUE_US + 5]
    values += [generator.randrange(0, 5_000_000) for _ in range(5000)]
    values += [generator.randrange(0, 2000) for _ in range(5000)]
    for sub_bits in (3, 10):
        one_by_one = Histogram(sub_bits)
        for value in values:
            one_by_one.record(value)
        counts, total, high = engine_mod.bucket_values(values, sub_bits)
        assert counts == one_by_one.counts
        assert total == one_by_one.sum
        assert high == one_by_one.max
