"""Command line and importable entry points of the shop API: serve, seed, schema.

    python -m examples.shop_api serve --mode slow|fast --port 8100 [--database-url URL]
        [--otlp-endpoint URL --trace-sample RATIO]
    python -m examples.shop_api seed [--items N --categories M --seed S] [--reset]
    python -m examples.shop_api schema --mode slow|fast
    python -m examples.shop_api reseed [--items N --categories M --seed S]

Kaizen's management commands call ``seed``, ``apply_schema``, ``create_app`` and ``serve``.
"""

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Sequence

import uvicorn
from fastapi import FastAPI
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from examples.shop_api import MODES
from examples.shop_api.common import tracing
from examples.shop_api.common.config import (
    ConfigurationError,
    backend_name,
    configure_sqlite,
    env_list,
    resolve_database_url,
)
from examples.shop_api.common.seeding import (
    DEFAULT_SEED,
    SeedResult,
    count_items,
    delete_activity,
    delete_all,
    delete_unseeded_items,
    insert_catalogue,
    seeded_size,
)
from examples.shop_api.fast.app import DEFAULT_CORS_ORIGINS
from examples.shop_api.fast.app import create_app as create_fast_app
from examples.shop_api.fast.db import apply_schema as apply_fast_schema
from examples.shop_api.slow.app import create_app as create_slow_app
from examples.shop_api.slow.db import apply_schema as apply_slow_schema

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8100
DEFAULT_MODE = "slow"
# (items, categories). SQLite's default keeps a newcomer's first start to a second or two.
DEFAULT_SIZES = {"sqlite": (20_000, 200), "postgresql": (100_000, 1_000)}

logger = logging.getLogger("examples.shop_api")


def resolve_mode(mode: str | None = None) -> str:
    """``mode``, else ``$SHOP_MODE``, else slow; anything else is an error."""
    chosen = mode or os.environ.get("SHOP_MODE") or DEFAULT_MODE
    if chosen not in MODES:
        raise ConfigurationError(f"unknown mode {chosen!r} (use one of {', '.join(MODES)})")
    return chosen


def default_sizes(database_url: str | None = None) -> tuple[int, int]:
    """Default (items, categories) to seed for this database."""
    return DEFAULT_SIZES[backend_name(resolve_database_url(database_url))]


def create_app(
    mode: str | None = None,
    database_url: str | None = None,
    *,
    redis_url: str | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] | None = None,
    otlp_endpoint: str | None = None,
    trace_sample: float | None = None,
) -> FastAPI:
    """The ASGI application of ``mode`` (environment defaults: SHOP_MODE, DATABASE_URL,
    REDIS_URL, SHOP_API_KEY, SHOP_CORS_ORIGINS, SHOP_OTLP_ENDPOINT, SHOP_TRACE_SAMPLE).

    Traced (OTLP/HTTP) only when an OTLP endpoint is named; see common/tracing.py."""
    chosen = resolve_mode(mode)
    url = resolve_database_url(database_url)
    if chosen == "slow":
        return tracing.install(create_slow_app(url), chosen, otlp_endpoint, trace_sample)
    app = create_fast_app(
        url,
        redis_url=redis_url or os.environ.get("REDIS_URL") or None,
        api_key=api_key or os.environ.get("SHOP_API_KEY") or None,
        cors_origins=cors_origins or env_list("SHOP_CORS_ORIGINS", ",".join(DEFAULT_CORS_ORIGINS)),
    )
    return tracing.install(app, chosen, otlp_endpoint, trace_sample)


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory examples.shop_api.cli:app_from_environment``."""
    return create_app()


async def _apply_schema(engine: AsyncEngine, mode: str) -> None:
    if mode == "slow":
        await apply_slow_schema(engine)
    else:
        await apply_fast_schema(engine)


def _engine(database_url: str | None) -> AsyncEngine:
    engine = create_async_engine(resolve_database_url(database_url))
    configure_sqlite(engine)
    return engine


async def apply_schema_async(database_url: str | None = None, mode: str | None = None) -> None:
    """Create the tables if missing and give them the indexes of ``mode`` (idempotent)."""
    chosen = resolve_mode(mode)
    engine = _engine(database_url)
    try:
        await _apply_schema(engine, chosen)
    finally:
        await engine.dispose()


def apply_schema(database_url: str | None = None, mode: str | None = None) -> None:
    """Synchronous :func:`apply_schema_async`, for management commands and scripts."""
    asyncio.run(apply_schema_async(database_url, mode))


async def seed_async(
    database_url: str | None = None,
    items: int | None = None,
    categories: int | None = None,
    seed: int = DEFAULT_SEED,
    *,
    reset: bool = False,
) -> SeedResult:
    """Fill the catalogue with generated data; repeatable by ``seed``.

    A database that already holds items is left alone unless ``reset`` is true. Missing
    tables are created with the slow schema (the default mode; starting a mode fixes it).
    """
    url = resolve_database_url(database_url)
    default_items, default_categories = default_sizes(url)
    items = default_items if items is None else items
    categories = default_categories if categories is None else categories
    if items < 0 or categories < 1:
        raise ConfigurationError("seed needs items >= 0 and categories >= 1")
    started = time.perf_counter()
    engine = _engine(url)
    try:
        async with engine.connect() as connection:
            has_tables = await connection.run_sync(lambda sync: inspect(sync).has_table("items"))
        if not has_tables:
            await _apply_schema(engine, DEFAULT_MODE)
        async with engine.begin() as connection:
            existing = await count_items(connection)
            if existing and not reset:
                return SeedResult(existing, 0, seed, time.perf_counter() - started, skipped=True)
            await delete_all(connection)
            await insert_catalogue(connection, items=items, categories=categories, seed=seed)
    finally:
        await engine.dispose()
    return SeedResult(items, categories, seed, time.perf_counter() - started)


def seed(
    database_url: str | None = None,
    items: int | None = None,
    categories: int | None = None,
    seed: int = DEFAULT_SEED,
    *,
    reset: bool = False,
) -> SeedResult:
    """Synchronous :func:`seed_async`, for management commands and scripts."""
    return asyncio.run(seed_async(database_url, items, categories, seed, reset=reset))


async def reseed_async(
    database_url: str | None = None,
    items: int | None = None,
    categories: int | None = None,
    seed: int = DEFAULT_SEED,
) -> SeedResult:
    """Put the data back to what seeding made, after writes (integrity probes, scenarios).

    Orders and stock levels go, and so do the items seeding did not create; the data size —
    a comparability key of benchmarks — is then the seeded one again. Sizes not given are
    read from the data (the highest seeded SKU, the categories). When seeded items are
    missing too, the whole catalogue is seeded again (with ``seed``). Customers stay.
    """
    url = resolve_database_url(database_url)
    started = time.perf_counter()
    engine = _engine(url)
    try:
        async with engine.begin() as connection:
            # Sizes not given: the ones this database was seeded with, else the defaults.
            seeded = await seeded_size(connection) or default_sizes(url)
            items = seeded[0] if items is None else items
            categories = seeded[1] if categories is None else categories
            await delete_activity(connection)
            await delete_unseeded_items(connection, items)
            if await count_items(connection) == items:
                return SeedResult(items, categories, seed, time.perf_counter() - started)
    finally:
        await engine.dispose()
    return await seed_async(url, items, categories, seed, reset=True)


def reseed(
    database_url: str | None = None,
    items: int | None = None,
    categories: int | None = None,
    seed: int = DEFAULT_SEED,
) -> SeedResult:
    """Synchronous :func:`reseed_async`, for the portal's integrity jobs and scripts."""
    return asyncio.run(reseed_async(database_url, items, categories, seed))


def build_server(
    app: FastAPI, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, access_log: bool = False
) -> uvicorn.Server:
    """A one-process uvicorn server on uvloop with the httptools parser."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=access_log,
        log_level="info",
    )
    return uvicorn.Server(config)


def serve(
    mode: str | None = None,
    host: str | None = None,
    port: int | None = None,
    database_url: str | None = None,
    *,
    seed_if_empty: bool = True,
    access_log: bool = False,
    otlp_endpoint: str | None = None,
    trace_sample: float | None = None,
) -> None:
    """Run the shop API in this process until interrupted (environment: PORT, HOST too)."""
    chosen = resolve_mode(mode)
    url = resolve_database_url(database_url)
    if seed_if_empty:
        result = seed(url)
        if not result.skipped:
            logger.info("seeded %d items in %.1f s", result.items, result.seconds)
    app = create_app(chosen, url, otlp_endpoint=otlp_endpoint, trace_sample=trace_sample)
    host = host or os.environ.get("HOST") or DEFAULT_HOST
    port = port or int(os.environ.get("PORT") or DEFAULT_PORT)
    logger.info("shop API in %s mode on http://%s:%d (%s)", chosen, host, port, backend_name(url))
    build_server(app, host, port, access_log=access_log).run()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m examples.shop_api", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def database_option(command: argparse.ArgumentParser) -> None:
        command.add_argument("--database-url", help="default: $DATABASE_URL or var/ SQLite")

    serve_command = commands.add_parser("serve", help="run the API (one uvicorn process)")
    serve_command.add_argument("--mode", choices=MODES, help="default: $SHOP_MODE or slow")
    serve_command.add_argument("--host", help=f"default: $HOST or {DEFAULT_HOST}")
    serve_command.add_argument("--port", type=int, help=f"default: $PORT or {DEFAULT_PORT}")
    serve_command.add_argument("--no-seed", action="store_true", help="don't seed an empty DB")
    serve_command.add_argument("--access-log", action="store_true", help="log every request")
    serve_command.add_argument(
        "--otlp-endpoint", help="send traces (OTLP/HTTP) there; default: $SHOP_OTLP_ENDPOINT, off"
    )
    serve_command.add_argument(
        "--trace-sample", type=float, help="share of traces kept; default $SHOP_TRACE_SAMPLE or 1"
    )
    database_option(serve_command)

    seed_command = commands.add_parser("seed", help="fill the catalogue with generated data")
    seed_command.add_argument("--items", type=int, help="default: 20000 SQLite, 100000 PG")
    seed_command.add_argument("--categories", type=int, help="default: 200 SQLite, 1000 PG")
    seed_command.add_argument("--seed", type=int, default=DEFAULT_SEED)
    seed_command.add_argument("--reset", action="store_true", help="replace existing data")
    database_option(seed_command)

    reseed_command = commands.add_parser(
        "reseed", help="drop orders, stock changes and unseeded items (after write tests)"
    )
    reseed_command.add_argument("--items", type=int, help="items seeded (default: as found)")
    reseed_command.add_argument("--categories", type=int, help="categories, for a full reseed")
    reseed_command.add_argument("--seed", type=int, default=DEFAULT_SEED)
    database_option(reseed_command)

    schema_command = commands.add_parser("schema", help="apply the schema of a mode")
    schema_command.add_argument("--mode", choices=MODES, help="default: $SHOP_MODE or slow")
    database_option(schema_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Only our own loggers: the root logger stays free for uvicorn and for echo=True's handler.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        if arguments.command == "serve":
            serve(
                arguments.mode,
                arguments.host,
                arguments.port,
                arguments.database_url,
                seed_if_empty=not arguments.no_seed,
                access_log=arguments.access_log,
                otlp_endpoint=arguments.otlp_endpoint,
                trace_sample=arguments.trace_sample,
            )
        elif arguments.command == "seed":
            result = seed(
                arguments.database_url,
                arguments.items,
                arguments.categories,
                arguments.seed,
                reset=arguments.reset,
            )
            if result.skipped:
                print(f"already seeded ({result.items} items); use --reset to replace them")
            else:
                print(
                    f"seeded {result.items} items in {result.categories} categories "
                    f"(seed {result.seed}) in {result.seconds:.1f} s"
                )
        elif arguments.command == "reseed":
            result = reseed(
                arguments.database_url, arguments.items, arguments.categories, arguments.seed
            )
            print(f"data back to the seeded {result.items} items in {result.seconds:.1f} s")
        else:
            mode = resolve_mode(arguments.mode)
            apply_schema(arguments.database_url, mode)
            print(f"schema of {mode} mode applied")
    except ConfigurationError as error:
        print(f"error: {error}")
        return 2
    return 0
