"""The load-engine process never outlives its parent and honours SIGTERM.

A worker killed with SIGKILL (the OOM killer, ``docker kill``, a hard restart)
cannot stop its engines: each engine must notice by itself and stop sending.
Every engine here is a real process against the local test server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from optimizations.analyzers.loadgen import engine as engine_module
from optimizations.analyzers.loadgen.runner import ENGINE_MODULE, PROJECT_ROOT
from tests.analyzers.loadgen_server import LoadgenServer

# "Within a few seconds": the engine checks on its parent twice a second.
EXIT_WITHIN = 5.0


@pytest.fixture(scope="module")
def server():
    running = LoadgenServer()
    yield running
    running.stop()


def engine_config(port: int, **extra) -> dict:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "requests": [{"method": "GET", "path": "/ok"}],
        "model": "open",
        "rate": 50,
        "duration": 120,
        "timeout": 2,
        "connections": 2,
        "cpu": None,
    }
    config.update(extra)
    return config


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout:g} s: {what}")


def requests_seen(server) -> int:
    return server.stats()["requests"]


def assert_exits(pid: int, timeout: float) -> None:
    try:
        process = psutil.Process(pid)
        process.wait(timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        process.kill()
        raise AssertionError(f"the engine (pid {pid}) still ran {timeout:g} s later") from None


def engine_child_of(parent_pid: int) -> int:
    def find():
        try:
            children = psutil.Process(parent_pid).children()
        except psutil.NoSuchProcess:
            return None
        for child in children:
            with_args = " ".join(child.cmdline())
            if ENGINE_MODULE in with_args:
                return child.pid
        return None

    return wait_until(find, 15, "the parent started its engine")


def start_engine(config: dict, **popen) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", ENGINE_MODULE],
        cwd=PROJECT_ROOT,
        stdin=popen.pop("stdin", subprocess.PIPE),
        stdout=popen.pop("stdout", subprocess.PIPE),
        stderr=subprocess.PIPE,
        **popen,
    )
    assert process.stdin is not None  # a pipe, unless the test passed its own
    process.stdin.write(json.dumps(config).encode() + b"\n")
    process.stdin.flush()
    return process


def test_the_engine_of_a_sigkilled_runner_stops_sending_and_exits(server):
    """The runner (a Celery worker's child in real life) dies hard mid-run."""
    server.reset()
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from optimizations.analyzers.base import LocalContext
                from optimizations.analyzers.loadgen.runner import run_engines
                run_engines({engine_config(server.port)!r}, LocalContext(), cpu=None)
                """
            ),
        ],
        cwd=PROJECT_ROOT,
    )
    try:
        child = engine_child_of(parent.pid)
        wait_until(lambda: requests_seen(server) > 10, 15, "the engine is sending")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert_exits(child, EXIT_WITHIN)
        settled = requests_seen(server)
        time.sleep(0.5)
        assert requests_seen(server) == settled, "traffic went on after the engine's parent died"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# The engine as started by the runner, and one whose kernel death signal is
# switched off, so that only the portable parent watch can notice.
AS_RUN = [sys.executable, "-m", ENGINE_MODULE]
WATCH_ONLY = [
    sys.executable,
    "-c",
    f"import sys; import {ENGINE_MODULE} as engine; "
    "engine.die_with_parent = lambda: False; sys.exit(engine.main())",
]


@pytest.mark.parametrize("argv", [AS_RUN, WATCH_ONLY], ids=["as-run", "parent-watch-only"])
def test_the_engine_dies_with_its_parent_even_when_its_stdin_stays_open(server, argv):
    """Another process holding the engine's stdin pipe must not keep it alive:
    the kernel's parent-death signal, or else the parent watch, stops it."""
    read_end, write_end = os.pipe()
    config = json.dumps(engine_config(server.port, parent_pid=None))
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import json, os, subprocess, sys, time
                config = json.loads({config!r})
                config["parent_pid"] = os.getpid()
                engine = subprocess.Popen(
                    {argv!r}, stdin={read_end}, stdout=subprocess.DEVNULL, pass_fds=[{read_end}],
                )
                os.write({write_end}, json.dumps(config).encode() + b"\\n")
                time.sleep(600)
                """
            ),
        ],
        cwd=PROJECT_ROOT,
        pass_fds=[read_end, write_end],
    )
    os.close(read_end)
    try:
        server.reset()
        child = engine_child_of(parent.pid)
        wait_until(lambda: requests_seen(server) > 10, 15, "the engine is sending")
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert_exits(child, EXIT_WITHIN)
    finally:
        os.close(write_end)
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def read_messages(stream) -> list[dict]:
    return [json.loads(line) for line in stream.read().splitlines() if line.strip()]


def test_sigterm_stops_the_traffic_flushes_the_last_second_and_exits(server):
    server.reset()
    engine = start_engine(engine_config(server.port, parent_pid=os.getpid()))
    try:
        wait_until(lambda: requests_seen(server) > 10, 15, "the engine is sending")
        engine.send_signal(signal.SIGTERM)
        assert engine.wait(EXIT_WITHIN) == 0
        messages = read_messages(engine.stdout)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        engine.stdout.close()
        engine.stdin.close()
        engine.stderr.close()
    ticks = [m for m in messages if m["type"] == "tick"]
    assert ticks and ticks[-1]["final"] is True
    result = messages[-1]
    assert result["type"] == "result" and result["cancelled"] is True
    assert result["totals"]["sent"] > 10
    settled = requests_seen(server)
    time.sleep(0.3)
    assert requests_seen(server) == settled


def test_sigterm_with_nobody_reading_its_output_still_exits(server):
    """The old cancel path died on BrokenPipeError writing its last second, and
    the engine then kept running forever."""
    server.reset()
    engine = start_engine(engine_config(server.port, parent_pid=os.getpid()))
    try:
        wait_until(lambda: requests_seen(server) > 10, 15, "the engine is sending")
        engine.stdout.close()  # the reader is gone: every write now fails with EPIPE
        engine.send_signal(signal.SIGTERM)
        engine.wait(EXIT_WITHIN)
        stderr = engine.stderr.read().decode()
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        engine.stdin.close()
        engine.stderr.close()
    assert "BrokenPipeError" not in stderr
    assert "Traceback" not in stderr


def test_a_reader_that_goes_away_stops_the_engine_without_a_signal(server):
    server.reset()
    engine = start_engine(engine_config(server.port, parent_pid=os.getpid()))
    try:
        wait_until(lambda: requests_seen(server) > 10, 15, "the engine is sending")
        engine.stdout.close()  # its next per-second line finds no reader
        engine.wait(EXIT_WITHIN)
    finally:
        if engine.poll() is None:
            engine.kill()
            engine.wait()
        engine.stdin.close()
        engine.stderr.close()


def test_an_engine_whose_parent_is_already_gone_does_not_start():
    """The parent died between fork and the engine's first line: nothing is sent."""
    assert engine_module.parent_gone(os.getppid()) is False
    assert engine_module.parent_gone(None) is False
    assert engine_module.parent_gone(2**22 + 7) is True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")
def test_on_linux_the_kernel_is_asked_for_sigterm_when_the_parent_dies():
    code = textwrap.dedent(
        """
        import ctypes
        from optimizations.analyzers.loadgen.engine import die_with_parent
        assert die_with_parent()
        libc = ctypes.CDLL(None, use_errno=True)
        signal = ctypes.c_int()
        libc.prctl(2, ctypes.byref(signal), 0, 0, 0)  # PR_GET_PDEATHSIG
        print(signal.value)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert int(out.stdout) == signal.SIGTERM
