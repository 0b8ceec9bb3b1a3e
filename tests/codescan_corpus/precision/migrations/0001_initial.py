from sqlalchemy import create_engine, text

engine = create_engine("postgresql://migrator:m1gr4te@db/app", echo=True)


def upgrade(session):
    for table in session.execute(text("SELECT tablename FROM pg_tables")).all():
        session.execute(text(f"ANALYZE {table}"))
