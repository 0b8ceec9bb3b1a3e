"""Search indexes: a trigram index on items.name, declared the Alembic way."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        "ix_items_name_trgm",
        "items",
        ["name"],
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    for row in op.get_bind().execute(sa.text("select id from items")).all():
        op.get_bind().execute(sa.text("update items set name = trim(name) where id = :id"), row)
