"""Deterministic, skewed demo data for the shop API and its bulk insert.

The same seed always gives the same rows. Category sizes follow a Zipf-like law, so a few
categories hold most items, as in a real catalogue.
"""

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Uuid,
    and_,
    column,
    delete,
    func,
    insert,
    inspect,
    not_,
    select,
)
from sqlalchemy import table as table_clause
from sqlalchemy.ext.asyncio import AsyncConnection

DEFAULT_SEED = 42
BATCH_SIZE = 2_000
CATALOGUE_START = datetime(2025, 1, 1)
CATALOGUE_SPAN = timedelta(days=365)
ZIPF_EXPONENT = 1.0

# No word is a substring of another, so a word search means the same in both modes.
ADJECTIVES = (
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Compact",
    "Durable",
    "Elegant",
    "Practical",
    "Gorgeous",
    "Handmade",
    "Modern",
    "Vintage",
    "Lightweight",
    "Premium",
    "Classic",
    "Foldable",
    "Smart",
)
MATERIALS = (
    "Steel",
    "Cotton",
    "Granite",
    "Bamboo",
    "Leather",
    "Copper",
    "Marble",
    "Plastic",
    "Linen",
    "Walnut",
    "Ceramic",
    "Rubber",
)
NOUNS = (
    "Chair",
    "Table",
    "Lamp",
    "Kettle",
    "Backpack",
    "Wallet",
    "Blender",
    "Pillow",
    "Shelf",
    "Bottle",
    "Helmet",
    "Jacket",
    "Keyboard",
    "Mirror",
    "Umbrella",
    "Candle",
    "Clock",
    "Basket",
    "Speaker",
    "Bicycle",
)
DEPARTMENTS = (
    "Home",
    "Garden",
    "Kitchen",
    "Outdoor",
    "Office",
    "Sports",
    "Travel",
    "Music",
    "Toys",
    "Books",
    "Beauty",
    "Tools",
    "Pets",
    "Automotive",
    "Health",
    "Fashion",
)
COLORS = ("red", "green", "blue", "black", "white", "grey", "yellow", "orange", "purple")

# Lightweight table clauses: the seeder writes rows, each mode's models own the schema.
categories_table = table_clause(
    "categories",
    column("id", Uuid()),
    column("name", String()),
    column("slug", String()),
    column("created_at", DateTime()),
)
items_table = table_clause(
    "items",
    column("id", Uuid()),
    column("sku", String()),
    column("name", String()),
    column("price_cents", Integer()),
    column("cost_cents", Integer()),
    column("attributes", JSON()),
    column("category_id", Uuid()),
    column("created_at", DateTime()),
    column("updated_at", DateTime()),
)


@dataclass(frozen=True)
class SeedResult:
    """What a seeding run did."""

    items: int
    categories: int
    seed: int
    seconds: float
    skipped: bool = False


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _id_stream(seed: int, kind: str) -> random.Random:
    # Separate streams keep ids stable whatever the sizes asked for.
    return random.Random(f"shop-api:{seed}:{kind}")


def example_ids(seed: int = DEFAULT_SEED) -> tuple[uuid.UUID, uuid.UUID]:
    """The first category id and the first item id that seeding with ``seed`` creates."""
    return _uuid(_id_stream(seed, "category-ids")), _uuid(_id_stream(seed, "item-ids"))


def generate_categories(count: int, seed: int) -> list[dict]:
    """Return ``count`` category rows, biggest first (the first holds the most items)."""
    ids = _id_stream(seed, "category-ids")
    rng = _id_stream(seed, "categories")
    rows = []
    for index in range(count):
        department = DEPARTMENTS[index % len(DEPARTMENTS)]
        name = f"{department} {index + 1:04d}"
        rows.append(
            {
                "id": _uuid(ids),
                "name": name,
                "slug": name.lower().replace(" ", "-"),
                "created_at": CATALOGUE_START - timedelta(minutes=rng.randrange(1, 100_000)),
            }
        )
    return rows


def generate_items(count: int, category_ids: list[uuid.UUID], seed: int) -> Iterator[dict]:
    """Yield ``count`` item rows spread over the categories with a Zipf-like skew."""
    ids = _id_stream(seed, "item-ids")
    rng = _id_stream(seed, "items")
    weights = [1 / (rank + 1) ** ZIPF_EXPONENT for rank in range(len(category_ids))]
    cumulative = []
    running = 0.0
    for weight in weights:
        running += weight
        cumulative.append(running)
    span_seconds = CATALOGUE_SPAN.total_seconds()
    for index in range(count):
        price = int(rng.lognormvariate(8.0, 1.0)) + 99
        created = CATALOGUE_START + timedelta(seconds=rng.uniform(0, span_seconds))
        yield {
            "id": _uuid(ids),
            "sku": seeded_sku(index + 1),
            "name": f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(NOUNS)}",
            "price_cents": price,
            "cost_cents": price * rng.randrange(40, 80) // 100,
            "attributes": {
                "color": rng.choice(COLORS),
                "weight_g": rng.randrange(50, 20_000),
                "tags": rng.sample(COLORS, 2),
            },
            "category_id": rng.choices(category_ids, cum_weights=cumulative)[0],
            "created_at": created,
            "updated_at": created + timedelta(hours=rng.randrange(0, 2_000)),
        }


async def count_items(connection: AsyncConnection) -> int:
    """Number of rows in the items table."""
    return (await connection.execute(select(func.count()).select_from(items_table))).scalar_one()


# What customers and probes write: orders and stock changes, both referencing items.
activity_tables = (
    table_clause("orders", column("id", Uuid())),
    table_clause("stock_levels", column("item_id", Uuid())),
)


def seeded_sku(index: int) -> str:
    return f"SKU-{index:08d}"


async def delete_activity(connection: AsyncConnection) -> None:
    """Remove every order and stock level (tables made before they existed have none)."""
    names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    for activity in activity_tables:
        if activity.name in names:
            await connection.execute(delete(activity))


async def delete_all(connection: AsyncConnection) -> None:
    """Remove every order, stock level, item and category (referencing rows first)."""
    await delete_activity(connection)
    await connection.execute(delete(items_table))
    await connection.execute(delete(categories_table))


async def seeded_size(connection: AsyncConnection) -> tuple[int, int] | None:
    """(items, categories) the catalogue was seeded with — read from the highest seeded
    SKU and the category count — or None when nothing seeded is there."""
    highest = (
        await connection.execute(
            select(func.max(items_table.c.sku)).where(items_table.c.sku.like("SKU-________"))
        )
    ).scalar_one()
    if highest is None or not highest[4:].isdigit():
        return None
    categories = (
        await connection.execute(select(func.count()).select_from(categories_table))
    ).scalar_one()
    return int(highest[4:]), categories


async def delete_unseeded_items(connection: AsyncConnection, items: int) -> int:
    """Remove the items seeding did not create (SKU-00000001 … SKU-<items>); their count."""
    sku = items_table.c.sku
    seeded = and_(sku.like("SKU-________"), sku >= seeded_sku(1), sku <= seeded_sku(max(items, 1)))
    result = await connection.execute(delete(items_table).where(not_(seeded)))
    return result.rowcount


async def insert_catalogue(
    connection: AsyncConnection, *, items: int, categories: int, seed: int
) -> None:
    """Insert the generated categories and items in batches, inside the caller's transaction."""
    category_rows = generate_categories(categories, seed)
    await connection.execute(insert(categories_table), category_rows)
    category_ids = [row["id"] for row in category_rows]
    batch: list[dict] = []
    for row in generate_items(items, category_ids, seed):
        batch.append(row)
        if len(batch) == BATCH_SIZE:
            await connection.execute(insert(items_table), batch)
            batch = []
    if batch:
        await connection.execute(insert(items_table), batch)
