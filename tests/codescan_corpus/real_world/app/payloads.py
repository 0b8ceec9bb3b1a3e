"""`.dict()` on Pydantic models, on a model with its own dict(), and on other objects."""

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()


class ItemIn(BaseModel):
    name: str
    price: int


class Envelope(BaseModel):
    kind: str
    body: str

    def dict(self, **kwargs):  # a deliberate override with its own meaning
        return {"kind": self.kind, "body": self.body.strip()}


class Snapshot:
    def __init__(self, values: dict[str, int]):
        self.values = values

    def dict(self) -> dict[str, int]:
        return dict(self.values)


def store(schema):
    return schema.dict(exclude_unset=True)  # expect: FSA501


@router.post("/items")
def create_item(item: ItemIn):
    stored = store(item)
    return {"stored": stored, "echo": item.dict()}  # expect: FSA501


@router.post("/envelopes")
def create_envelope(envelope: Envelope):
    snapshot = Snapshot({"size": len(envelope.body)})
    return {"envelope": envelope.dict(), "snapshot": snapshot.dict()}  # ok: their own dict()
