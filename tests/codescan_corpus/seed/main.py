"""The seed document's code sample 1 of 5, verbatim (expect markers added)."""

from fastapi import FastAPI, Depends, HTTPException, BackgroundTasks
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from contextlib import asynccontextmanager
import asyncio
from typing import List, Optional
import uvloop

# 高性能非同期ループ設定
asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # expect: FSA306

# アプリケーション起動最適化
@asynccontextmanager
async def lifespan(app: FastAPI):
    # 起動時処理
    await initialize_database_pool()
    await setup_redis_connection()
    await start_background_services()
    
    yield
    
    # 終了時処理
    await cleanup_database_pool()
    await close_redis_connection()

app = FastAPI(
    title="Enterprise API",
    version="2.0.0",
    lifespan=lifespan
)

# ミドルウェア最適化
app.add_middleware(GZipMiddleware, minimum_size=1000)
app.add_middleware(  # expect: FSA401
    CORSMiddleware,
    allow_origins=["*"],
    allow_credentials=True,
    allow_methods=["*"],
    allow_headers=["*"],
)

# 接続プール最適化
from sqlalchemy.ext.asyncio import create_async_engine, AsyncSession
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

engine = create_async_engine(  # expect: FSA205
    DATABASE_URL,
    poolclass=NullPool,  # PgBouncer使用時
    pool_pre_ping=True,
    pool_recycle=3600,
    echo=False,
    future=True
)

AsyncSessionLocal = sessionmaker(
    engine, 
    class_=AsyncSession, 
    expire_on_commit=False
)

async def get_db():
    async with AsyncSessionLocal() as session:
        try:
            yield session
        finally:
            await session.close()

# 高速バルク操作API
@app.post("/api/bulk-operations/")
async def bulk_create_items(
    items: List[ItemCreate],
    background_tasks: BackgroundTasks,
    db: AsyncSession = Depends(get_db)
):
    # バルク挿入最適化
    items_data = [item.dict() for item in items]
    
    # 大量データは分割処理
    if len(items_data) > 1000:
        background_tasks.add_task(process_bulk_items, items_data)  # expect: FSA302
        return {"status": "accepted", "message": "Bulk processing started"}
    
    # 小量データは即座に処理
    result = await db.execute(
        insert(Item).values(items_data)
    )
    await db.commit()
    
    return {"status": "completed", "inserted": len(items_data)}

# キャッシュ統合
from functools import lru_cache
import redis.asyncio as redis

redis_client = redis.Redis(
    host='localhost',
    port=6379,
    decode_responses=True,
    max_connections=20
)

@lru_cache(maxsize=128)
def get_settings():
    return Settings()

async def cached_query(cache_key: str, query_func, ttl: int = 300):
    # Redis キャッシュ確認
    cached_result = await redis_client.get(cache_key)
    if cached_result:
        return json.loads(cached_result)
    
    # キャッシュ未命中時はDBクエリ実行
    result = await query_func()
    
    # 結果をキャッシュに保存
    await redis_client.setex(
        cache_key, 
        ttl, 
        json.dumps(result, default=str)
    )
    
    return result
