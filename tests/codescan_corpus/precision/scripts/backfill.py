from sqlalchemy import create_engine

engine = create_engine("postgresql://test:t3st@localhost/test", echo=True)


def test_things(session):
    for thing in session.query(object).all():
        session.query(object).get(thing.id)
