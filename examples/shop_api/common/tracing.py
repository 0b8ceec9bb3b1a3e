"""Tracing of the shop API, off by default: OTLP/HTTP exports of FastAPI and SQLAlchemy spans.

Turned on by naming where the spans go — ``serve --otlp-endpoint URL`` or
``SHOP_OTLP_ENDPOINT`` — for Kaizen's OTLP endpoint, an OpenTelemetry
Collector, or any OTLP/HTTP receiver (a URL without a path gets the standard
``/v1/traces``). Every request becomes a server span (``http.route`` is the
route template) with a client span per SQL statement below it, which is what
Kaizen reads for statements per request and runtime N+1.

Sampling is decided here, at the exporter: ``--trace-sample`` or
``SHOP_TRACE_SAMPLE``, a ratio of traces kept (default 1, every request), by
trace id so that a kept trace is kept whole. Credentials for the receiver go in
the standard ``OTEL_EXPORTER_OTLP_TRACES_HEADERS`` (``authorization=Bearer …``),
and ``OTEL_BSP_SCHEDULE_DELAY`` (ms) sets how often a batch is sent.

The application's engine is instrumented once the app has started (it is made
in the lifespan); the remaining spans are flushed when it stops. The
OpenTelemetry packages come with the ``demo`` extra and are imported only when
tracing is on.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

from examples.shop_api.common.config import ConfigurationError

ENDPOINT_VARIABLE = "SHOP_OTLP_ENDPOINT"
SAMPLE_VARIABLE = "SHOP_TRACE_SAMPLE"
SERVICE_NAME = "shop-api"
# Prometheus scrapes every few seconds; a trace per scrape would drown the requests.
EXCLUDED_URLS = "/metrics"

logger = logging.getLogger("examples.shop_api")


def resolve_endpoint(endpoint: str | None = None) -> str | None:
    """``endpoint``, else ``$SHOP_OTLP_ENDPOINT``; None means tracing is off."""
    chosen = (endpoint or os.environ.get(ENDPOINT_VARIABLE) or "").strip()
    if not chosen:
        return None
    parts = urlsplit(chosen)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"the OTLP endpoint must be an http(s) URL, not {chosen!r}")
    if parts.path in ("", "/"):
        chosen = chosen.rstrip("/") + "/v1/traces"
    return chosen


def resolve_sample(sample: float | None = None) -> float:
    """The share of traces kept: ``sample``, else ``$SHOP_TRACE_SAMPLE``, else 1."""
    raw: Any = sample if sample is not None else os.environ.get(SAMPLE_VARIABLE) or 1.0
    try:
        ratio = float(raw)
    except ValueError:
        raise ConfigurationError(f"the trace sample must be a number, not {raw!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ConfigurationError(f"the trace sample is a share between 0 and 1, not {ratio}")
    return ratio


def install(
    app: FastAPI, mode: str, endpoint: str | None = None, sample: float | None = None
) -> FastAPI:
    """Trace ``app`` when an endpoint is named (argument or environment); else leave it be."""
    target = resolve_endpoint(endpoint)
    if target is None:
        return app
    ratio = resolve_sample(sample)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
    except ImportError as missing:
        raise ConfigurationError(
            f"tracing needs the OpenTelemetry packages of the demo extra ({missing.name} is "
            "missing): pip install -e '.[demo]'"
        ) from None

    provider = TracerProvider(
        resource=Resource.create({"service.name": SERVICE_NAME, "shop.mode": mode}),
        sampler=ParentBased(TraceIdRatioBased(ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=target)))
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=EXCLUDED_URLS,
        # The ASGI "http receive/send" spans say nothing about where the time goes.
        exclude_spans=["receive", "send"],
    )
    started = app.router.lifespan_context

    @asynccontextmanager
    async def traced_lifespan(running: FastAPI) -> AsyncIterator[Any]:
        async with started(running) as state:
            instrumented = _instrument_engine(running, provider)
            logger.info("tracing to %s (sample %g)", target, ratio)
            try:
                yield state
            finally:
                if instrumented:
                    _uninstrument_engines()
        # Whatever is still batched goes out before the process ends.
        await asyncio.to_thread(provider.shutdown)

    app.router.lifespan_context = traced_lifespan
    app.state.tracing = {"endpoint": target, "sample": ratio}
    return app


def _instrument_engine(app: FastAPI, provider: Any) -> bool:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        # One traced app per process (as ``serve`` runs it); a second one's SQL is not traced.
        logger.warning("SQLAlchemy is already traced in this process; statements not traced")
        return False
    instrumentor.instrument(
        engine=app.state.engine.sync_engine,
        tracer_provider=provider,
        # Its declared range ends below SQLAlchemy 2.1, whose engine events it uses are
        # unchanged (tests/shop_api/test_tracing.py checks the statements arrive).
        skip_dep_check=True,
    )
    return True


def _uninstrument_engines() -> None:
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    SQLAlchemyInstrumentor().uninstrument()
