"""Application factory of the slow mode."""

import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse

from examples.shop_api.common.auth import TokenSigner
from examples.shop_api.common.config import backend_name
from examples.shop_api.common.docs import install_docs
from examples.shop_api.common.metrics import (
    InstrumentationMiddleware,
    Metrics,
    install_sqlalchemy_listeners,
)
from examples.shop_api.common.metrics import router as metrics_router
from examples.shop_api.slow import routes
from examples.shop_api.slow.db import apply_schema, create_engine, create_sessionmaker


async def _error_with_traceback(_request: Request, exc: Exception) -> JSONResponse:
    # PLANTED (security scan: error leakage): the stack trace goes back to the client.
    return JSONResponse(
        status_code=500,
        content={
            "detail": str(exc),
            "error": type(exc).__name__,
            "traceback": traceback.format_exception(exc),
        },
    )


async def _cache_entries() -> int:
    return routes.cache_size()


def create_app(database_url: str) -> FastAPI:
    """Build the slow-mode application for an async SQLAlchemy ``database_url``."""
    metrics = Metrics(mode="slow", database=backend_name(database_url))
    metrics.watch_cache("memory", _cache_entries)
    install_sqlalchemy_listeners()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url)
        await apply_schema(engine)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        metrics.watch_engine(engine)
        yield
        await engine.dispose()

    app = FastAPI(
        docs_url=None,
        redoc_url=None,
        title="Shop API (slow mode)",
        version="1.0.0",
        description="Kaizen's demo target with the classic problems planted. See README.md.",
        lifespan=lifespan,
    )
    app.state.database_url = database_url
    app.state.metrics = metrics
    app.state.tokens = TokenSigner()
    # PLANTED FSA401: CORS with "*" origins and credentials; Starlette then mirrors any Origin.
    # PLANTED (security scan): no GZip for large responses, no security headers.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.add_middleware(InstrumentationMiddleware, metrics=metrics)
    app.add_exception_handler(Exception, _error_with_traceback)
    app.include_router(routes.router)
    install_docs(app)
    app.include_router(metrics_router)
    return app
