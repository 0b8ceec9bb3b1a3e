"""The seed document's code sample 2 of 5, verbatim (expect markers added)."""

from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.encoders import jsonable_encoder
import orjson

# 高速JSON レスポンス
class ORJSONResponse(JSONResponse):
    media_type = "application/json"

    def render(self, content) -> bytes:
        return orjson.dumps(content, default=str)

app = FastAPI(default_response_class=ORJSONResponse)

# ストリーミングレスポンス
@app.get("/api/large-dataset/")
async def stream_large_dataset(db: AsyncSession = Depends(get_db)):
    async def generate():
        async with db.stream(select(LargeTable)) as result:  # expect: FSA112
            async for row in result:
                yield orjson.dumps(row._asdict()) + b'\n'
    
    return StreamingResponse(
        generate(),
        media_type="application/x-ndjson"
    )

# ページネーション最適化
@app.get("/api/items/")
async def get_items(
    page: int = 1,
    size: int = 20,  # expect: FSA105
    db: AsyncSession = Depends(get_db)
):
    offset = (page - 1) * size
    
    # カウントクエリとデータクエリを並列実行
    count_task = asyncio.create_task(
        db.scalar(select(func.count(Item.id)))
    )
    items_task = asyncio.create_task(  # expect: FSA103
        db.execute(
            select(Item)  # expect: FSA106
            .offset(offset)
            .limit(size)
            .options(selectinload(Item.related_data))
        )
    )
    
    total, items_result = await asyncio.gather(count_task, items_task)
    items = items_result.scalars().all()
    
    return {
        "items": items,
        "total": total,
        "page": page,
        "pages": (total + size - 1) // size
    }
