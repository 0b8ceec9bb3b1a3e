"""The seeder, the schema of each mode on a shared database, and the command line."""

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from examples.shop_api import cli
from examples.shop_api.common.config import (
    DEFAULT_SQLITE_PATH,
    REPOSITORY_ROOT,
    ConfigurationError,
    resolve_database_url,
)
from examples.shop_api.common.seeding import (
    ADJECTIVES,
    MATERIALS,
    NOUNS,
    example_ids,
    generate_categories,
    generate_items,
)
from tests.shop_api.conftest import index_names, sqlite_objects, start_shop


def test_generated_data_is_repeatable_by_seed():
    categories = generate_categories(20, seed=3)
    ids = [c["id"] for c in categories]

    assert generate_categories(20, seed=3) == categories
    assert list(generate_items(50, ids, seed=3)) == list(generate_items(50, ids, seed=3))
    assert generate_categories(20, seed=4) != categories


def test_a_few_categories_hold_most_items():
    ids = [c["id"] for c in generate_categories(200, seed=1)]

    sizes = sorted(Counter(i["category_id"] for i in generate_items(20_000, ids, seed=1)).values())

    assert sum(sizes[-10:]) > 0.4 * 20_000  # the biggest 5 % hold over 40 %
    assert sizes[-1] > 20 * sizes[len(sizes) // 2]


def test_example_ids_are_the_first_seeded_rows():
    categories = generate_categories(5, seed=9)
    first_item = next(generate_items(1, [c["id"] for c in categories], seed=9))

    assert example_ids(9) == (categories[0]["id"], first_item["id"])


def test_no_name_word_contains_another():
    # Keeps slow mode's substring search and fast mode's word search comparable.
    words = [w.lower() for w in ADJECTIVES + MATERIALS + NOUNS]

    assert not [(a, b) for a in words for b in words if a != b and a in b]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/shop", "postgresql+asyncpg://u:p@db:5432/shop"),
        ("postgres://u@db/shop", "postgresql+asyncpg://u@db/shop"),
        ("postgresql+psycopg://u@db/shop", "postgresql+psycopg://u@db/shop"),
        ("sqlite:////tmp/shop.sqlite3", "sqlite+aiosqlite:////tmp/shop.sqlite3"),
    ],
)
def test_database_urls_are_made_async(given, expected):
    assert resolve_database_url(given) == expected


@pytest.mark.parametrize("url", ["mysql://db/shop", "sqlite://", "not a url"])
def test_unusable_database_urls_are_refused(url):
    with pytest.raises(ConfigurationError):
        resolve_database_url(url)


def test_default_database_is_the_sqlite_file_under_var(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)

    assert DEFAULT_SQLITE_PATH == REPOSITORY_ROOT / "var" / "shop_api.sqlite3"
    assert resolve_database_url() == f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}"
    assert cli.default_sizes() == (20_000, 200)
    assert cli.default_sizes("postgresql://u@db/shop") == (100_000, 1_000)


def test_mode_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("SHOP_MODE", "fast")
    assert cli.resolve_mode() == "fast"
    assert cli.resolve_mode("slow") == "slow"
    monkeypatch.setenv("SHOP_MODE", "turbo")
    with pytest.raises(ConfigurationError):
        cli.resolve_mode()


def test_seed_leaves_existing_data_alone_unless_reset(databases, backend):
    url = databases.new(backend, seeded=False)

    first = cli.seed(url, items=40, categories=4, seed=1)
    again = cli.seed(url, items=10, categories=2, seed=1)
    reset = cli.seed(url, items=10, categories=2, seed=2, reset=True)

    assert (first.items, first.categories, first.skipped) == (40, 4, False)
    assert (again.items, again.skipped) == (40, True)
    assert (reset.items, reset.categories, reset.skipped) == (10, 2, False)


def test_switching_modes_on_one_database_swaps_the_indexes(databases, backend):
    url = databases.new(backend)

    cli.apply_schema(url, "fast")
    fast = index_names(url)
    cli.apply_schema(url, "slow")
    slow = index_names(url)
    cli.apply_schema(url, "fast")

    assert {"ix_items_category_created", "ix_items_created_id"} <= set(fast)
    assert not {"ix_items_sku", "ix_items_updated_at"} & set(fast)
    assert {"ix_items_sku", "ix_items_updated_at"} <= set(slow)
    assert not {"ix_items_category_created", "ix_items_created_id", "ix_items_name_fts"} & set(slow)
    assert index_names(url) == fast


def test_fast_search_finds_rows_seeded_while_in_slow_mode(databases, backend):
    url = databases.new(backend)
    cli.apply_schema(url, "slow")
    if backend == "sqlite":
        assert "items_fts" not in sqlite_objects(url)

    shop = start_shop("fast", backend, url)
    try:
        found = shop.get("/items/search", params={"q": "chair", "limit": 100}).json()
    finally:
        shop.stop()

    assert found
    assert all("chair" in item["name"].lower().split() for item in found)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_command_line_seeds_applies_a_schema_and_serves(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "SHOP_MODE": "fast", "SHOP_API_KEY": "k"}
    run = [sys.executable, "-m", "examples.shop_api"]

    seeded = subprocess.run(
        [*run, "seed", "--items", "30", "--categories", "3"],
        cwd=REPOSITORY_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    schema = subprocess.run(
        [*run, "schema"],
        cwd=REPOSITORY_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    port = _free_port()
    server = subprocess.Popen(
        [*run, "serve", "--port", str(port)],
        cwd=REPOSITORY_ROOT,
        env={**env, "SHOP_MODE": "slow"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 20
        while health is None and time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=10)

    assert "seeded 30 items in 3 categories" in seeded.stdout
    assert "schema of fast mode applied" in schema.stdout
    assert health == {"status": "ok", "mode": "slow", "database": "sqlite"}
    assert "shop API in slow mode" in errors


def test_command_line_rejects_an_unknown_mode():
    with pytest.raises(SystemExit):
        cli.main(["serve", "--mode", "turbo"])


def test_sizes_of_a_category_are_sorted_biggest_first():
    ids = [c["id"] for c in generate_categories(30, seed=5)]
    counts = Counter(i["category_id"] for i in generate_items(3_000, ids, seed=5))

    sizes = [counts[category_id] for category_id in ids[:5]]
    assert all(a >= b * 0.8 for a, b in pairwise(sizes))
