from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field, validator  # expect: FSA501
from sqlalchemy.orm import Session

from db import Product, get_db

app = FastAPI()


class ProductIn(BaseModel):
    name: str = Field(..., regex="^[a-z]+$")  # expect: FSA501
    price: float

    @validator("price")  # expect: FSA501
    def positive(cls, value):
        return value


class ProductOut(BaseModel):
    id: int
    name: str

    class Config:
        orm_mode = True  # expect: FSA501


@app.post("/products", response_model=ProductOut)
def create(payload: ProductIn, db: Session = Depends(get_db)):
    product = Product(**payload.dict())  # expect: FSA501
    db.add(product)
    db.commit()
    return ProductOut.from_orm(product)  # expect: FSA501


@app.get("/products", response_model=list[ProductOut])
def listing(db: Session = Depends(get_db)):
    return db.query(Product).limit(20).all()  # expect: FSA502


@app.get("/products/{product_id}/raw")
async def raw(product_id: int) -> dict:
    import httpx

    async with httpx.AsyncClient() as client:
        answer = await client.get(f"https://example.org/{product_id}", timeout=5)
    return answer.json()  # ok: an HTTP response's json(), not Pydantic's
