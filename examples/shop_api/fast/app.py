"""Application factory of the fast mode."""

import logging
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from examples.shop_api.common.auth import TokenSigner
from examples.shop_api.common.config import backend_name
from examples.shop_api.common.docs import install_docs
from examples.shop_api.common.metrics import (
    InstrumentationMiddleware,
    Metrics,
    install_sqlalchemy_listeners,
)
from examples.shop_api.common.metrics import router as metrics_router
from examples.shop_api.fast import routes
from examples.shop_api.fast.cache import create_cache
from examples.shop_api.fast.db import apply_schema, create_engine, create_sessionmaker
from examples.shop_api.fast.security import SecurityHeadersMiddleware

DEFAULT_CORS_ORIGINS = ("http://127.0.0.1:8000", "http://localhost:8000")
GZIP_MINIMUM_BYTES = 1_024

logger = logging.getLogger(__name__)


async def _safe_error(_request: Request, exc: Exception) -> JSONResponse:
    """No internals in the body; the request id ties the response to the server log."""
    request_id = uuid.uuid4().hex
    logger.error("request %s failed with %s", request_id, type(exc).__name__)
    if isinstance(exc, sa_exc.TimeoutError):
        return JSONResponse(
            status_code=503,
            content={"detail": "Service busy, retry later", "request_id": request_id},
            headers={"Retry-After": "1"},
        )
    return JSONResponse(
        status_code=500, content={"detail": "Internal Server Error", "request_id": request_id}
    )


def create_app(
    database_url: str,
    *,
    redis_url: str | None = None,
    api_key: str | None = None,
    cors_origins: Sequence[str] = DEFAULT_CORS_ORIGINS,
) -> FastAPI:
    """Build the fast-mode application for an async SQLAlchemy ``database_url``.

    Writes need ``X-API-Key: <api_key>``; without one a random key is made and logged.
    """
    metrics = Metrics(mode="fast", database=backend_name(database_url))
    install_sqlalchemy_listeners()
    if api_key is None:
        api_key = secrets.token_urlsafe(24)
        logger.warning("no SHOP_API_KEY set; writes need X-API-Key: %s", api_key)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url)
        await apply_schema(engine)
        cache = create_cache(metrics, redis_url)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.cache = cache
        metrics.watch_engine(engine)
        metrics.watch_cache(cache.backend, cache.size)
        yield
        await cache.close()
        await engine.dispose()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Shop API (fast mode)",
        version="1.0.0",
        description="Kaizen's demo target with every planted problem fixed. See README.md.",
        lifespan=lifespan,
    )
    app.state.database_url = database_url
    app.state.metrics = metrics
    app.state.api_key = api_key
    app.state.tokens = TokenSigner()
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MINIMUM_BYTES, compresslevel=5)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(cors_origins),
        allow_credentials=False,
        allow_methods=["GET", "POST", "PATCH"],
        allow_headers=["Content-Type", "X-API-Key", "Authorization", "Idempotency-Key"],
        max_age=600,
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(InstrumentationMiddleware, metrics=metrics)
    app.add_exception_handler(Exception, _safe_error)
    app.include_router(routes.router)
    install_docs(app)
    app.include_router(metrics_router)
    return app
