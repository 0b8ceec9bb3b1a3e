from sqlalchemy.orm import Session

from repo import ItemRepository


class ItemService:
    def __init__(self, session: Session):
        self.repo = ItemRepository(session)

    def catalogue(self):
        return self.repo.list_items()
