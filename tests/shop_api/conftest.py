"""Live shop API servers for the tests: a seeded database per backend and mode, real uvicorn.

Each server runs in a thread on a free port, exactly as ``serve`` runs it (uvloop, httptools),
so gzip, CORS, headers and error bodies are what a client sees. PostgreSQL databases are
throwaway ones (``kaizen_shop_test_<random>``) dropped at the end of the session.
"""

import os
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import create_engine, inspect, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from examples.shop_api import cli
from tests.conftest import need

SEED = 7
ITEMS = 300
CATEGORIES = 12
API_KEY = "test-api-key"
ALLOWED_ORIGIN = "http://127.0.0.1:8000"
SECRET_MESSAGE = "secret-internal-detail-1234"
POSTGRES_ADMIN_URL = os.environ.get(
    "SHOP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SHOP_PARAMS = [
    pytest.param(("sqlite", "slow"), id="sqlite-slow"),
    pytest.param(("sqlite", "fast"), id="sqlite-fast"),
    pytest.param(("postgres", "slow"), id="postgres-slow", marks=pytest.mark.postgres),
    pytest.param(("postgres", "fast"), id="postgres-fast", marks=pytest.mark.postgres),
]
_METRIC_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)$")


def _boom() -> None:
    raise RuntimeError(SECRET_MESSAGE)


def _pool_timeout() -> None:
    # What SQLAlchemy raises when no pooled connection frees up within pool_timeout.
    raise sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")


@dataclass
class LiveShop:
    """A running shop API and an HTTP client pointed at it."""

    mode: str
    backend: str
    database_url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread
    client: httpx.Client = field(repr=False)

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def queries(self, path: str, **kwargs) -> int:
        """Statements the server ran for one GET, from the X-DB-Queries header."""
        response = self.get(path, **kwargs)
        assert response.status_code == 200, response.text
        return int(response.headers["X-DB-Queries"])

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        return parse_metrics(self.get("/metrics").text)

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics()[(name, frozenset(labels.items()))]

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def parse_metrics(body: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text into {(name, labels): value}; raises on a line it cannot read."""
    samples = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _METRIC_LINE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples


def sync_url(database_url: str) -> str:
    """The same database through a synchronous driver, for inspecting it from a test."""
    url = make_url(database_url)
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def index_names(database_url: str) -> dict[str | None, list]:
    """Indexes of the items table: name -> columns (expressions show as None)."""
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                index["name"]: index["column_names"]
                for index in inspect(connection).get_indexes("items")
            }
    finally:
        engine.dispose()


def sqlite_objects(database_url: str) -> set[str]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as connection:
            return set(connection.scalars(text("SELECT name FROM sqlite_master")))
    finally:
        engine.dispose()


def start_shop(mode: str, backend: str, database_url: str, **app_options) -> LiveShop:
    """Start the app of ``mode`` under uvicorn on a free loopback port; wait until it serves."""
    if mode == "fast":
        app_options.setdefault("api_key", API_KEY)
        app_options.setdefault("cors_origins", [ALLOWED_ORIGIN])
    app = cli.create_app(mode, database_url, **app_options)
    app.add_api_route("/test/boom", _boom)
    app.add_api_route("/test/pool-timeout", _pool_timeout)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = cli.build_server(app, "127.0.0.1", port)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name=f"shop-{mode}-{backend}"
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the {mode} shop API on {backend} did not start")
        time.sleep(0.02)
    listener.close()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    return LiveShop(mode, backend, database_url, app, server, thread, client)


class Databases:
    """Seeded databases on demand; PostgreSQL ones are created here and dropped at the end."""

    def __init__(self, tmp_dir: Path) -> None:
        self.tmp_dir = tmp_dir
        self.created: list[str] = []
        self._postgres_reason: str | None = None
        self._postgres_checked = False

    def postgres_unavailable(self) -> str | None:
        if not self._postgres_checked:
            self._postgres_checked = True
            try:
                with psycopg.connect(POSTGRES_ADMIN_URL, connect_timeout=3):
                    pass
            except psycopg.Error as error:
                self._postgres_reason = (
                    f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {error}".strip()
                )
        return self._postgres_reason

    def new(self, backend: str, *, seeded: bool = True) -> str:
        name = f"kaizen_shop_test_{secrets.token_hex(4)}"
        if backend == "sqlite":
            url = f"sqlite:///{self.tmp_dir / name}.sqlite3"
        else:
            reason = self.postgres_unavailable()
            need(reason is None, reason or "")
            with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
            url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(False)
        url = cli.resolve_database_url(url)
        if seeded:
            cli.seed(url, items=ITEMS, categories=CATEGORIES, seed=SEED)
        return url

    def drop_all(self) -> None:
        if not self.created:
            return
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Shops:
    """Live servers by (backend, mode, dataset), started once and stopped at the end."""

    def __init__(self, databases: Databases) -> None:
        self.databases = databases
        self.running: dict[tuple[str, str, str], LiveShop] = {}

    def get(self, backend: str, mode: str, dataset: str = "shared") -> LiveShop:
        key = (backend, mode, dataset)
        if key not in self.running:
            self.running[key] = start_shop(mode, backend, self.databases.new(backend))
        return self.running[key]

    def stop_all(self) -> None:
        for shop in self.running.values():
            shop.stop()


@pytest.fixture(scope="session")
def databases(tmp_path_factory) -> Iterator[Databases]:
    registry = Databases(tmp_path_factory.mktemp("shop_api"))
    yield registry
    registry.drop_all()


@pytest.fixture(scope="session")
def shops(databases) -> Iterator[Shops]:
    registry = Shops(databases)
    yield registry
    registry.stop_all()


@pytest.fixture(params=SHOP_PARAMS)
def shop(request, shops) -> LiveShop:
    """A seeded shop API, once per backend and mode."""
    backend, mode = request.param
    return shops.get(backend, mode)


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def slow_shop(shops, backend) -> LiveShop:
    return shops.get(backend, "slow")


@pytest.fixture
def fast_shop(shops, backend) -> LiveShop:
    return shops.get(backend, "fast")


@pytest.fixture
def scratch_shop(databases) -> Iterator:
    """Start a server on a database of its own, for tests that write; stopped afterwards."""
    started: list[LiveShop] = []

    def start(backend: str, mode: str, **app_options) -> LiveShop:
        shop = start_shop(mode, backend, databases.new(backend), **app_options)
        started.append(shop)
        return shop

    yield start
    for shop in started:
        shop.stop()
