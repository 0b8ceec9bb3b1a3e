from pydantic import BaseModel, ConfigDict


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str


class OrderOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    reference: str
    customer: CustomerOut


class OrderBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    reference: str
