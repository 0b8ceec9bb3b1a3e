"""``./kaizen up``: prepare the embedded run, start every process, supervise them.

Prepares the database (migrate, static files, demo data once), starts the
demo target, the web server, the three Celery workers (analysis, benchmark,
maintenance) and beat, prints the URL
and the demo logins, restarts a process that dies, and on Ctrl-C stops every
process it started. Each process's output goes to ``var/log/<name>.log``.

A first start cannot half-fail: a taken port (web, demo target, fixed twin) is
replaced by the next free one and named, the registered demo targets follow
it (also when the port is taken after the check: the target is moved), a
demo target that keeps exiting is given up on alone, and the demo tour's
runs start on every start until they have run (portal.demo.start_baseline).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import django
from django.apps import apps

# A program (python -m portal.launcher, from ./kaizen up): Django is set up before the
# imports below read models, as any standalone Django script does. Imported by a test,
# it is set up already.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
if not apps.ready:
    django.setup()

from django.conf import settings
from django.core.management import call_command

from departments.models import Department
from examples import pgcluster
from optimizations.targets.crypto import mask_url
from portal import demo_target, observability
from portal.demo import (
    DEMO_PEOPLE,
    DEMO_TARGET_SLUG,
    baseline_pending,
    load_demo,
    new_password,
    start_baseline,
    tour_runs,
)
from portal.demo_target import FIXED_SLUG
from portal.processes import commands

RESTART_LIMIT = 5  # crashes of one process within RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
STOP_GRACE = 8.0
LOG_LIMIT = 20 * 1024 * 1024  # bytes per log file; the previous one is kept as .log.1


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./kaizen up", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("PORT", "8000")),
        help="web port (default 8000; when it is taken the next free one is used, and said)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help=(
            "run the demo target on a throwaway local PostgreSQL cluster under var/pg (the "
            "installed PostgreSQL 15 or newer; Debian 13: apt install postgresql "
            "postgresql-17-hypopg, Ubuntu 24.04: apt install postgresql postgresql-16-hypopg)"
        ),
    )
    parser.add_argument(
        "--demo-port",
        type=int,
        default=8100,
        help=(
            "port of the demo target (default 8100; its fixed twin takes the next one). When "
            "it is taken the next free one is used, the registered target follows, and both "
            "ports are printed"
        ),
    )
    parser.add_argument(
        "--observability",
        action="store_true",
        help=(
            "also start a real Prometheus (Debian's prometheus package) scraping the demo "
            "shops and Kaizen's /metrics, point the demo targets at it, and have the demo "
            "shops send their traces to Kaizen (OTLP)"
        ),
    )
    return parser.parse_args(argv)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def say(message: str = "") -> None:
    print(message, flush=True)


PORT_SPAN = 100  # how far past a taken port to look for a free one
# What uvicorn / Python ("Address already in use") and gunicorn ("Connection in use")
# print when their port is taken.
ADDRESS_IN_USE = ("address already in use", "errno 98", "eaddrinuse", "connection in use")
DEMO_HOST = "127.0.0.1"  # where the demo target and its twin listen (demo_target.base_url)


class NoFreePort(RuntimeError):
    pass


def choose_port(host: str, wanted: int, avoid=()) -> int:
    """``wanted`` when it is free on ``host``, else the next free port (never one in ``avoid``)."""
    for port in range(wanted, min(wanted + PORT_SPAN, 65536)):
        if port not in avoid and port_free(host, port):
            return port
    raise NoFreePort(f"no free port between {wanted} and {wanted + PORT_SPAN - 1} on {host}")


def choose_ports(host: str, web: int, demo: int) -> tuple[int, int, int, list[str]]:
    """The web, demo-target and fixed-twin ports, each the wanted one or the next free one.

    The three never collide with one another (the web server binds later than
    the check, so a demo port must not be the web port). The notes say which
    wanted port was taken and which one is used instead.
    """
    notes = []
    web_port = choose_port(host, web)
    if web_port != web:
        notes.append(
            f"port {web} is taken; the portal runs on {web_port} (choose one with --port N)"
        )
    demo_port = choose_port(DEMO_HOST, demo, {web_port})
    if demo_port != demo:
        notes.append(
            f"port {demo} is taken; the demo target runs on {demo_port} "
            f"(choose one with --demo-port N)"
        )
    fixed_port = choose_port(DEMO_HOST, demo_port + 1, {web_port, demo_port})
    if fixed_port != demo_port + 1:
        notes.append(f"port {demo_port + 1} is taken; the fixed twin runs on {fixed_port}")
    return web_port, demo_port, fixed_port, notes


def address_in_use(output: str) -> bool:
    """Whether a server's output says it could not bind its port."""
    lowered = output.lower()
    return any(marker in lowered for marker in ADDRESS_IN_USE)


def _listening_inodes(port: int) -> set[str] | None:
    inodes = set()
    found_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN.
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes if found_table else None


def serves_port(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` holds the listening socket of ``port``; None when /proc cannot tell.

    Something else answering on a port we chose (it was taken after the check)
    must not pass for the demo target.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return None
    links = set()
    for fd in fds:
        with contextlib.suppress(OSError):  # closed meanwhile (the listing's own, for one)
            links.add(os.readlink(fd))
    return any(f"socket:[{inode}]" in links for inode in inodes)


class Supervisor:
    """Starts named commands in their own sessions and keeps them alive."""

    def __init__(self, log_dir: Path, state_file: Path, optional=()):
        self.log_dir = log_dir
        self.state_file = state_file
        # Processes the portal works without (the demo targets): one that keeps
        # exiting is given up on, with its log's tail, and the rest runs on.
        self.optional = set(optional)
        self.given_up: dict[str, str] = {}
        self.relocations: dict[str, int] = {}
        self.specs: dict[str, tuple[list[str], dict]] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.pumps: dict[str, LogPump] = {}
        self.crashes: dict[str, list[float]] = {}
        self.stopping = False

    def stop_leftovers(self) -> None:
        """Stop processes a previous launcher left running (it was killed hard)."""
        if not self.state_file.exists():
            return
        try:
            previous = json.loads(self.state_file.read_text())
        except ValueError:
            previous = {}
        stopped = []
        for name, pid in previous.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
                say(f"  stopped {name} left over from an earlier run (pid {pid})")
                stopped.append(pid)
        # Wait until they are gone, so that their ports count as free again.
        deadline = time.monotonic() + STOP_GRACE
        while stopped and time.monotonic() < deadline:
            stopped = [pid for pid in stopped if _group_alive(pid)]
            time.sleep(0.1)
        self.state_file.unlink(missing_ok=True)

    def start(self, name: str, argv: list[str], env: dict | None = None) -> None:
        self.specs[name] = (argv, env or {})
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        argv, extra_env = self.specs[name]
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **extra_env},
            start_new_session=True,  # Ctrl-C reaches us only; we stop the children
        )
        self.procs[name] = proc
        # The demo target in slow mode logs every SQL statement (echo=True, on
        # purpose): a long load test would fill the disk without a cap.
        pump = LogPump(self.log_dir / f"{name}.log", proc.stdout, f"started: {' '.join(argv)}")
        pump.start()
        self.pumps[name] = pump
        self._save_state()

    def respawn(self, name: str, argv: list[str]) -> None:
        """Start ``name`` again with another command line (it has exited)."""
        self.specs[name] = (argv, self.specs[name][1])
        self._spawn(name)

    def output(self, name: str) -> str:
        """What the current (exited) process of ``name`` wrote, from its log."""
        pump = self.pumps.get(name)
        if pump is None:
            return ""
        pump.join(2)  # the rest of its output is in the file once the pump reached EOF
        return pump.written_since_start()

    def _save_state(self) -> None:
        self.state_file.write_text(json.dumps({n: p.pid for n, p in self.procs.items()}))

    def restart(self, name: str) -> None:
        """Stop one process on purpose (for instance to change the demo target's mode)."""
        proc = self.procs.get(name)
        if proc is not None:
            self._signal(proc, signal.SIGTERM)
            self._wait([proc], STOP_GRACE)
        self.given_up.pop(name, None)
        self.crashes.pop(name, None)
        self._spawn(name)

    def check(self) -> str | None:
        """Restart whatever died; return a reason to give up, if any."""
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None or self.stopping:
                continue
            now = time.monotonic()
            recent = [t for t in self.crashes.get(name, []) if now - t < RESTART_WINDOW] + [now]
            self.crashes[name] = recent
            if len(recent) > RESTART_LIMIT:
                reason = (
                    f"{name} keeps exiting (code {code}); see {self.log_dir / name}.log\n"
                    + tail(self.log_dir / f"{name}.log")
                )
                if name not in self.optional:
                    return reason
                del self.procs[name]
                self.given_up[name] = reason
                self._save_state()
                say(f"! {reason}\n! Not restarting {name} again; the rest of Kaizen runs on.")
                continue
            say(f"! {name} exited with code {code}; restarting it (log: var/log/{name}.log)")
            self._spawn(name)
        return None

    def stop_all(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            self._signal(proc, signal.SIGTERM)
        self._wait(list(self.procs.values()), STOP_GRACE)
        for proc in self.procs.values():
            if proc.poll() is None:
                self._signal(proc, signal.SIGKILL)
        self._wait(list(self.procs.values()), 2)
        for pump in self.pumps.values():
            pump.join(2)
        self.state_file.unlink(missing_ok=True)

    @staticmethod
    def _signal(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    @staticmethod
    def _wait(procs, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.0, deadline - time.monotonic()))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LogPump(threading.Thread):
    """Copies a child's output to its log file, keeping at most two files of LOG_LIMIT."""

    def __init__(self, path: Path, stream, banner: str):
        super().__init__(daemon=True, name=f"log-{path.stem}")
        self.path, self.stream = path, stream
        self.banner = f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {banner}\n".encode()
        self.recent: list[bytes] = []  # the last lines, for the launcher's diagnosis

    def written_since_start(self) -> str:
        return b"".join(self.recent).decode(errors="replace")

    def run(self) -> None:
        handle = open(self.path, "ab")  # noqa: SIM115 - reopened on rotation
        handle.write(self.banner)
        written = self.path.stat().st_size
        for line in iter(self.stream.readline, b""):
            if written + len(line) > LOG_LIMIT:
                handle.close()
                os.replace(self.path, self.path.with_suffix(".log.1"))
                handle = open(self.path, "ab")  # noqa: SIM115
                written = 0
            handle.write(line)
            handle.flush()
            written += len(line)
            self.recent = [*self.recent[-39:], line]
        handle.close()
        self.stream.close()


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered
        except (urllib.error.URLError, OSError):
            time.sleep(0.3)
    return False


def prepare_database() -> None:
    say("• Migrating the database…")
    call_command("migrate", interactive=False, verbosity=0)
    say("• Collecting static files…")
    call_command("collectstatic", interactive=False, verbosity=0)


def demo_password(var_dir: Path) -> str:
    path = var_dir / "demo_password"
    if path.exists():
        return path.read_text().strip()
    password = new_password()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


DEMO_PROCESSES = {"demo-target": "demo target", "demo-target-fixed": "fixed twin"}
RELOCATIONS = 5  # how often a demo target is moved to another port whose port was taken


def demo_port_of(state, name: str) -> int:
    return state.port if name == "demo-target" else state.fixed_port


def demo_command(state, name: str) -> list[str]:
    return demo_target.command(state) if name == "demo-target" else demo_target.fixed_command(state)


def relocate(supervisor: Supervisor, state, name: str, avoid=()) -> str:
    """Move an exited demo target whose port was taken to a free port; say where.

    The state file and the registered target (its URL) follow, so jobs measure
    the service where it runs now.
    """
    old = demo_port_of(state, name)
    new = choose_port(DEMO_HOST, old + 1, {*avoid, state.port, state.fixed_port})
    if name == "demo-target":
        state.port = new
    else:
        state.fixed_port = new
    demo_target.save_state(state)
    demo_target.register(state)
    supervisor.relocations[name] = supervisor.relocations.get(name, 0) + 1
    supervisor.respawn(name, demo_command(state, name))
    return f"port {old} is taken (by another program); the {DEMO_PROCESSES[name]} runs on {new}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def await_demo_targets(supervisor: Supervisor, state, avoid=(), timeout: float = 60) -> dict:
    """Wait until the demo target and its twin answer, each on its own port.

    A process that exits because its port was taken (after the check, by
    another program) is moved to a free port. Returns, per process, "" when it
    answers, else why not.
    """
    problems = {}
    for name in DEMO_PROCESSES:
        deadline = time.monotonic() + timeout
        problems[name] = f"not answering after {timeout:.0f} s; see var/log/{name}.log"
        while time.monotonic() < deadline:
            proc = supervisor.procs[name]
            port = demo_port_of(state, name)
            code = proc.poll()
            if code is not None:
                output = supervisor.output(name)
                if address_in_use(output) and supervisor.relocations.get(name, 0) < RELOCATIONS:
                    say(f"• {relocate(supervisor, state, name, avoid).capitalize()}")
                    deadline = time.monotonic() + timeout
                    continue
                last = "\n".join(output.strip().splitlines()[-8:])
                problems[name] = f"exited with code {code} (var/log/{name}.log):\n{last}"
                break
            base = state.base_url if name == "demo-target" else state.fixed_base_url
            # Something else answering on our port (it took the port after the check)
            # is not the demo target: ours will exit with "address in use" and move.
            if _answers(base + "/health") and serves_port(proc.pid, port) is not False:
                problems[name] = ""
                break
            time.sleep(0.3)
    return problems


def relocate_exited(supervisor: Supervisor, state, avoid=()) -> None:
    """While running: a demo target that exited because its port was taken moves (once
    per exit) instead of being restarted onto the same taken port."""
    for name in DEMO_PROCESSES:
        proc = supervisor.procs.get(name)
        if proc is None or proc.poll() is None:
            continue
        if supervisor.relocations.get(name, 0) < RELOCATIONS and address_in_use(
            supervisor.output(name)
        ):
            say(f"• {relocate(supervisor, state, name, avoid).capitalize()}")


def web_ready(url: str, proc: subprocess.Popen, port: int, timeout: float = 60) -> bool:
    """Whether our web server answers ``url`` (not another program on its port) in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not wait_for_http(url + "login/", max(0.0, deadline - time.monotonic()), proc):
            return False
        if serves_port(proc.pid, port) is not False:
            return True
        time.sleep(0.3)  # someone else answers; ours exits with "in use" soon
    return False


def postgres_check() -> tuple[str, str]:
    """(problem, note) for --postgres: which PostgreSQL runs the demo, or why none can."""
    try:
        major = pgcluster.server_major(None)
    except pgcluster.ClusterError as error:
        return str(error), ""
    if major is None:
        return (
            f"--postgres needs PostgreSQL {pgcluster.MIN_MAJOR} or newer, and none is installed "
            f"(looked in {pgcluster.PG_ROOT}/*/bin).\n{pgcluster.INSTALL_HINT}",
            "",
        )
    if pgcluster.hypopg_available(major):
        return "", f"PostgreSQL {major} with HypoPG"
    return "", (
        f"PostgreSQL {major} without HypoPG: the DB scan gives no index advice "
        f"(sudo apt install postgresql-{major}-hypopg adds it)"
    )


def start_observability(supervisor: Supervisor, state, var_dir: Path, host: str, web_port: int):
    """Start Prometheus (when installed) and point the demo targets at it; its URL, or ""."""
    program = observability.binary()
    if program is None:
        say(f"• {observability.INSTALL}")
        return ""
    port = choose_port(DEMO_HOST, 9090, {web_port, state.port, state.fixed_port})
    kaizen = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    config = observability.write_config(
        var_dir,
        {
            DEMO_TARGET_SLUG: f"{DEMO_HOST}:{state.port}",
            FIXED_SLUG: f"{DEMO_HOST}:{state.fixed_port}",
        },
        f"{kaizen}:{web_port}",
    )
    url = f"http://{DEMO_HOST}:{port}"
    supervisor.start("prometheus", observability.command(program, config, port))
    observability.use_prometheus([DEMO_TARGET_SLUG, FIXED_SLUG], url)
    observability.use_demo_rules([DEMO_TARGET_SLUG, FIXED_SLUG])
    return url


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    var_dir = Path(settings.VAR_DIR)
    log_dir = var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    optional = {*DEMO_PROCESSES, "prometheus"} if args.observability else DEMO_PROCESSES
    supervisor = Supervisor(log_dir, var_dir / "processes.json", optional=optional)
    supervisor.stop_leftovers()

    if args.postgres:
        problem, note = postgres_check()
        if problem:
            say(problem)
            return 1
        say(f"• {note}")
    try:
        web_port, demo_port, fixed_port, notes = choose_ports(args.host, args.port, args.demo_port)
    except NoFreePort as error:
        say(f"Cannot start: {error}. Choose ports with --port N and --demo-port N.")
        return 1
    for note in notes:
        say(f"• {note[0].upper()}{note[1:]}")

    prepare_database()
    password = demo_password(var_dir)

    try:
        state = demo_target.prepare(
            var_dir,
            use_postgres=args.postgres,
            port=demo_port,
            fixed_port=fixed_port,
            say=say,
        )
    except (pgcluster.ClusterError, subprocess.CalledProcessError) as error:
        say(f"The demo target's database could not be prepared: {error}")
        return 1
    load_demo(password, state.base_url)
    demo_target.register(state)

    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    say("• Starting the demo target, the web server, three Celery workers and beat…")
    shop_env = demo_target.environment(state)  # the key both shops take for writes
    traced: dict[str, dict[str, str]] = {"demo-target": {}, "demo-target-fixed": {}}
    prometheus_url = ""
    if args.observability:
        prometheus_url = start_observability(supervisor, state, var_dir, args.host, web_port)
        kaizen_url = f"http://127.0.0.1:{web_port}"
        traced["demo-target"] = observability.tracing_environment(DEMO_TARGET_SLUG, kaizen_url)
        traced["demo-target-fixed"] = observability.tracing_environment(FIXED_SLUG, kaizen_url)
    supervisor.start(
        "demo-target", demo_target.command(state), env={**shop_env, **traced["demo-target"]}
    )
    supervisor.start(
        "demo-target-fixed",
        demo_target.fixed_command(state),
        env={**shop_env, **traced["demo-target-fixed"]},
    )
    os.environ["KAIZEN_BIND"] = f"{args.host}:{web_port}"
    for name, argv in commands(str(var_dir)).items():
        supervisor.start(name, argv)

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    for _attempt in range(RELOCATIONS + 1):
        url = f"http://{host}:{web_port}/"
        ready = web_ready(url, supervisor.procs["web"], web_port)
        if ready or not address_in_use(supervisor.output("web")):
            break
        # Taken after the check (by another program): the next free port, said.
        old_port = web_port
        web_port = choose_port(args.host, web_port + 1, {state.port, state.fixed_port})
        os.environ["KAIZEN_BIND"] = f"{args.host}:{web_port}"
        say(f"• Port {old_port} is taken (by another program); the portal runs on {web_port}")
        supervisor.respawn("web", commands(str(var_dir))["web"])
    if not ready:
        supervisor.stop_all()
        demo_target.shutdown(state)
        say("The web server did not start. Its log says:\n" + tail(log_dir / "web.log"))
        return 1
    problems = await_demo_targets(supervisor, state, avoid={web_port})
    say()
    say("Kaizen is running.")
    say()
    say(f"  Portal        {url}")
    target_problem = problems["demo-target"]
    say(
        f"  Demo target   {state.base_url}/docs  ({state.mode} mode, {state.database_label})"
        + (f"  — {target_problem}" if target_problem else "")
    )
    say(
        f"  Fixed twin    {state.fixed_base_url}/docs  (fast mode, for A/B comparisons)"
        + (f"  — {problems['demo-target-fixed']}" if problems["demo-target-fixed"] else "")
    )
    if state.database == "postgres":
        say(f"  Demo database {mask_url(state.database_url)}  (pg_stat_statements; data in var/pg)")
    if args.observability:
        say(
            f"  Prometheus    {prometheus_url}  (scrapes both shops and Kaizen's /metrics; "
            "the shops send traces to Kaizen)"
            if prometheus_url
            else f"  Prometheus    {observability.INSTALL}"
        )
    say(f"  Logs          {log_dir}/")
    say()
    if not target_problem:
        # The demo initiative's phase 1 measures the baseline for real: on every
        # start until it has (a first start that half-failed gets it later).
        started = start_baseline()
        if not started and tour_runs():
            runs = ", ".join(f"{url}runs/{run.pk}/ ({run.status})" for run in tour_runs())
            say(f"  First tour    started before: {runs}")
        for task, run, refusal in started:
            if run is not None and run.mode == "custom":
                say(f"  Baseline set  {url}runs/{run.pk}/  (5 short load tests, pinned)")
            elif run is not None:
                say(f"  Baseline      {url}runs/{run.pk}/  (phase 1: “{task.title}”, running now)")
            else:
                say(f"  Baseline      not started for “{task.title}”: {refusal}")
        say()
    elif baseline_pending():
        say("  Baseline      waits for the demo target; it starts once the target answers")
        say()
    say(f"  Demo logins (every password: {password})")
    names = dict(Department.CODES)
    for username, first, last, code, role in DEMO_PEOPLE:
        say(f"    {username:<19} {first + ' ' + last:<18} {role} of {names[code]}")
    say()
    say("Press Ctrl-C to stop.")

    failure = None
    baseline_waits = bool(target_problem)
    while not stop["requested"]:
        time.sleep(0.5)
        if demo_target.mode_changed(state):
            state = demo_target.reload_state(var_dir)
            say(f"• Demo target switching to {state.mode} mode…")
            supervisor.specs["demo-target"] = (
                demo_target.command(state),
                {**demo_target.environment(state), **traced["demo-target"]},
            )
            supervisor.restart("demo-target")
            demo_target.register(state)
        relocate_exited(supervisor, state, avoid={web_port})
        failure = supervisor.check()
        if failure:
            break
        if baseline_waits and _answers(state.base_url + "/health"):
            proc = supervisor.procs.get("demo-target")
            if proc is not None and serves_port(proc.pid, state.port) is not False:
                baseline_waits = False
                for task, run, refusal in start_baseline():
                    what = f"{url}runs/{run.pk}/" if run is not None else f"not started: {refusal}"
                    say(f"• Baseline for “{task.title}”: {what}")
    say("\nStopping…")
    supervisor.stop_all()
    demo_target.shutdown(state)
    if failure:
        say(failure)
        return 1
    say("Stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
