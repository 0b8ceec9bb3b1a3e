"""SQL text naming tables and columns from our own configuration, beside one from a caller."""

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

INDEX_CONFIGS = {
    "items": {"table": "items", "column": "name"},
    "cards": {"table": "cards", "column": "front"},
}


async def search_index(session: AsyncSession, index: str, query: str):
    config = INDEX_CONFIGS.get(index)
    if not config:
        return []
    table = config["table"]
    sql = f"SELECT id FROM {table} WHERE {config['column']} % :query LIMIT 20"
    return (await session.execute(text(sql), {"query": query})).all()  # ok: our own names


async def drop_index(session: AsyncSession, index_name: str):
    await session.execute(text(f"DROP INDEX IF EXISTS {index_name}"))  # expect: FSA402
