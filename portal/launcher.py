"""``./kaizen up``: prepare the embedded run, start every process, supervise them.

Prepares the database (migrate, static files, demo data once), starts the
demo target, the web server, the three Celery workers (analysis, benchmark,
maintenance) and beat, prints the URL
and the demo logins, restarts a process that dies, and on Ctrl-C stops every
process it started. Each process's output goes to ``var/log/<name>.log``.
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

RESTART_LIMIT = 5  # crashes of one process within RESTART_WINDOW before giving up
RESTART_WINDOW = 60.0
STOP_GRACE = 8.0
LOG_LIMIT = 20 * 1024 * 1024  # bytes per log file; the previous one is kept as .log.1


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="./kaizen up", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("PORT", "8000")), help="web port"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for every interface)"
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="run the demo target on a throwaway local PostgreSQL cluster under var/pg",
    )
    parser.add_argument(
        "--demo-port", type=int, default=8100, help="port of the demo target (default 8100)"
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


class Supervisor:
    """Starts named commands in their own sessions and keeps them alive."""

    def __init__(self, log_dir: Path, state_file: Path):
        self.log_dir = log_dir
        self.state_file = state_file
        self.specs: dict[str, tuple[list[str], dict]] = {}
        self.procs: dict[str, subprocess.Popen] = {}
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
        for name, pid in previous.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
                say(f"  stopped {name} left over from an earlier run (pid {pid})")
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
        self._save_state()

    def _save_state(self) -> None:
        self.state_file.write_text(json.dumps({n: p.pid for n, p in self.procs.items()}))

    def restart(self, name: str) -> None:
        """Stop one process on purpose (for instance to change the demo target's mode)."""
        self._signal(self.procs[name], signal.SIGTERM)
        self._wait([self.procs[name]], STOP_GRACE)
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
                return (
                    f"{name} keeps exiting (code {code}); see {self.log_dir / name}.log\n"
                    + tail(self.log_dir / f"{name}.log")
                )
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


class LogPump(threading.Thread):
    """Copies a child's output to its log file, keeping at most two files of LOG_LIMIT."""

    def __init__(self, path: Path, stream, banner: str):
        super().__init__(daemon=True, name=f"log-{path.stem}")
        self.path, self.stream = path, stream
        self.banner = f"\n--- {time.strftime('%Y-%m-%d %H:%M:%S')} {banner}\n".encode()

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
        handle.close()


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
    from django.core.management import call_command

    say("• Migrating the database…")
    call_command("migrate", interactive=False, verbosity=0)
    say("• Collecting static files…")
    call_command("collectstatic", interactive=False, verbosity=0)


def demo_password(var_dir: Path) -> str:
    from portal.demo import new_password

    path = var_dir / "demo_password"
    if path.exists():
        return path.read_text().strip()
    password = new_password()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(password + "\n")
    return password


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    django.setup()
    from django.conf import settings

    from departments.models import Department
    from portal import demo_target
    from portal.demo import DEMO_PEOPLE, load_demo, start_baseline
    from portal.processes import commands

    var_dir = Path(settings.VAR_DIR)
    log_dir = var_dir / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(log_dir, var_dir / "processes.json")
    supervisor.stop_leftovers()

    if not port_free(args.host, args.port):
        say(
            f"Port {args.port} on {args.host} is in use. Stop what uses it, or pick another "
            f"port: ./kaizen up --port {args.port + 1}"
        )
        return 1

    prepare_database()
    password = demo_password(var_dir)

    state = demo_target.prepare(var_dir, use_postgres=args.postgres, port=args.demo_port, say=say)
    first_start = load_demo(password, state.base_url)
    demo_target.register(state)

    stop = {"requested": False}

    def request_stop(signum, frame):
        stop["requested"] = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    say("• Starting the demo target, the web server, three Celery workers and beat…")
    supervisor.start("demo-target", demo_target.command(state))
    supervisor.start("demo-target-fixed", demo_target.fixed_command(state))
    os.environ["KAIZEN_BIND"] = f"{args.host}:{args.port}"
    for name, argv in commands(str(var_dir)).items():
        supervisor.start(name, argv)

    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    url = f"http://{host}:{args.port}/"
    ready = wait_for_http(url + "login/", 60, supervisor.procs["web"])
    target_ready = wait_for_http(state.base_url + "/health", 60, supervisor.procs["demo-target"])
    if not ready:
        supervisor.stop_all()
        say("The web server did not start. Its log says:\n" + tail(log_dir / "web.log"))
        return 1
    say()
    say("Kaizen is running.")
    say()
    say(f"  Portal        {url}")
    say(
        f"  Demo target   {state.base_url}/docs  ({state.mode} mode, {state.database_label})"
        + ("" if target_ready else "  — not answering yet, see var/log/demo-target.log")
    )
    say(f"  Fixed twin    {state.fixed_base_url}/docs  (fast mode, for A/B comparisons)")
    if state.database == "postgres":
        from optimizations.crypto import mask_url

        say(f"  Demo database {mask_url(state.database_url)}  (pg_stat_statements; data in var/pg)")
    say(f"  Logs          {log_dir}/")
    say()
    if first_start and target_ready:
        # The demo initiative's phase 1 measures the baseline for real, once.
        for task, run, refusal in start_baseline():
            if run is not None and run.mode == "custom":
                say(f"  Baseline set  {url}runs/{run.pk}/  (5 short load tests, pinned)")
            elif run is not None:
                say(f"  Baseline      {url}runs/{run.pk}/  (phase 1: “{task.title}”, running now)")
            else:
                say(f"  Baseline      not started for “{task.title}”: {refusal}")
        say()
    say(f"  Demo logins (every password: {password})")
    names = dict(Department.CODES)
    for username, first, last, code, role in DEMO_PEOPLE:
        say(f"    {username:<19} {first + ' ' + last:<18} {role} of {names[code]}")
    say()
    say("Press Ctrl-C to stop.")

    failure = None
    while not stop["requested"]:
        time.sleep(0.5)
        if demo_target.mode_changed(state):
            state = demo_target.reload_state(var_dir)
            say(f"• Demo target switching to {state.mode} mode…")
            supervisor.specs["demo-target"] = (demo_target.command(state), {})
            supervisor.restart("demo-target")
            demo_target.register(state)
        failure = supervisor.check()
        if failure:
            break
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
