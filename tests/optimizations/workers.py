"""Real Celery worker processes and small HTTP targets for the fault tests."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.db import connection

from portal.celery import app

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the test database, for a worker process to use as its own."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db["USER"] or "postgres"
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{user}{password}@{host}{port}/{db['NAME']}"


def broker_settings(kind: str, var_dir: Path) -> tuple[str, dict]:
    if kind == "redis":
        return "redis://127.0.0.1:6379/15", {"socket_connect_timeout": 3}
    folders = {name: var_dir / "broker" / name for name in ("queue", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    return "filesystem://localhost/", {
        "data_folder_in": str(folders["queue"]),
        "data_folder_out": str(folders["queue"]),
        "processed_folder": str(folders["processed"]),
        "control_folder": str(folders["control"]),
        "store_processed": False,
        "polling_interval": 0.1,
    }


@contextlib.contextmanager
def use_broker(url: str, options: dict):
    """Point this process's Celery app (the publisher) at the test broker."""
    saved = (settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    saved_conf = (app.conf.broker_url, app.conf.broker_transport_options)
    # Celery reads CELERY_BROKER_URL from the environment before its own
    # configuration (CI sets it to Redis for the whole second pass).
    saved_env = os.environ.get("CELERY_BROKER_URL")

    def reset():
        # kombu keeps one pool per broker URL for the whole process; drop only
        # the app's references so the next publish picks the current URL.
        app._pool = None
        app.amqp._producer_pool = None

    settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS = url, options
    # Celery's settings are writable; celery-types declares broker_url a read-only property.
    app.conf.broker_url, app.conf.broker_transport_options = url, options  # type: ignore[misc]
    os.environ["CELERY_BROKER_URL"] = url
    reset()
    try:
        yield
    finally:
        reset()
        settings.CELERY_BROKER_URL, settings.CELERY_BROKER_TRANSPORT_OPTIONS = saved
        app.conf.broker_url, app.conf.broker_transport_options = saved_conf  # type: ignore[misc]  # (above)
        if saved_env is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = saved_env


def purge(queue: str = "analysis") -> None:
    with app.connection_for_write() as conn, contextlib.suppress(Exception):
        # kombu's channels purge a queue (queue_purge); the stubs' StdChannel lacks it.
        conn.default_channel.queue_purge(queue)  # type: ignore[attr-defined]


@contextlib.contextmanager
def running_broker(kind: str, var_dir: Path):
    """A real broker of ``kind`` ("filesystem" or "redis") for this process and its
    workers, empty before and after; yields its URL."""
    url, options = broker_settings(kind, var_dir)
    with use_broker(url, options):
        purge()
        try:
            yield url
        finally:
            purge()


class Worker:
    """A real `celery worker` process serving one queue, killable like in production."""

    def __init__(
        self, broker_url: str, var_dir: Path, queue: str = "analysis", env: dict | None = None
    ):
        self.log_path = var_dir / f"worker-{uuid.uuid4().hex[:6]}.log"
        extra = dict(env or {})
        env = {
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": broker_url,
            "KAIZEN_VAR_DIR": str(var_dir),
            "SECRET_KEY": settings.SECRET_KEY,
            "KAIZEN_ENCRYPTION_KEY": settings.KAIZEN_ENCRYPTION_KEY,
            "KAIZEN_ALLOWED_TARGET_HOSTS": ",".join(settings.KAIZEN_ALLOWED_TARGET_HOSTS),
            **extra,
        }
        self.name = f"test-{uuid.uuid4().hex[:8]}"
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--queues",
            queue,
            "--concurrency",
            "1",
            "--pool",
            "prefork",
            "--hostname",
            f"{self.name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "INFO",
        ]
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.output():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the worker did not start:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL the worker and its pool children, as the OOM killer would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()

    def alive(self) -> bool:
        return self.proc.poll() is None


def wait_for(predicate, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


OPENAPI = {
    "openapi": "3.1.0",
    "info": {"title": "Test target", "version": "1"},
    "paths": {
        "/health": {"get": {"summary": "Health"}},
        "/slow": {"get": {"summary": "Slow on purpose"}},
    },
}


class StubTarget:
    """A tiny HTTP service with a health endpoint, OpenAPI, and chosen misbehaviour."""

    def __init__(self, slow_seconds: float = 0.0, openapi: bytes | None = None, hang=False):
        outer = self
        self.requests = 0
        self.release = threading.Event()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.requests += 1
                if hang:
                    outer.release.wait(60)
                    return
                if self.path == "/openapi.json":
                    body = openapi if openapi is not None else json.dumps(OPENAPI).encode()
                    return self._send(200, body, "application/json")
                if self.path == "/slow":
                    outer.release.wait(slow_seconds)
                    return self._send(200, b'{"ok": true}', "application/json")
                if self.path == "/health":
                    return self._send(200, b'{"status": "ok"}', "application/json")
                return self._send(404, b'{"detail": "Not Found"}', "application/json")

            def _send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
