from sqlalchemy import select
from sqlalchemy.orm import Session

from models import Item


class ItemRepository:
    def __init__(self, session: Session):
        self.session = session

    def list_items(self):
        return self.session.scalars(select(Item).limit(50)).all()  # expect: FSA104

    def count(self):
        return len(self.list_items())  # expect: FSA108
