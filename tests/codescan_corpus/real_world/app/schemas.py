"""Pydantic schemas named like the ORM models they describe."""

from pydantic import BaseModel, ConfigDict


class Deck(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


class Card(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    front: str
