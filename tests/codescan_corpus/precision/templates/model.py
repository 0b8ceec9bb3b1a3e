from sqlalchemy import create_engine

engine = create_engine("postgresql://tpl:tpl-pass@db/app", echo=True)
