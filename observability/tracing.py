"""OpenTelemetry tracing, off unless TRACING=true: then the Temporal client (and so every
worker built on it) carries the SDK's TracingInterceptor, the FastAPI app and SQLAlchemy are
instrumented, and spans leave by OTLP over HTTP to OTLP_ENDPOINT (a collector, Jaeger,
Tempo). Off, nothing of OpenTelemetry is imported: every function here returns at once.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from settings import settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.client import Interceptor


@cache
def _provider(service: str) -> bool:
    """Install the global tracer provider once per process (the first caller names it)."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from models.db import engine

    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    endpoint = settings.OTLP_ENDPOINT.rstrip("/") + "/v1/traces"
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    # The instrumentation declares SQLAlchemy < 2.1; its engine events work on 2.1 (tested).
    SQLAlchemyInstrumentor().instrument(engine=engine().sync_engine, skip_dep_check=True)
    return True


def client_interceptors(service: str = "o2o-dispatch") -> list[Interceptor]:
    """The Temporal client's interceptors: the tracing one when tracing is on."""
    if not settings.TRACING:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    _provider(service)
    return [TracingInterceptor()]


def instrument_app(app: FastAPI) -> None:
    """Spans for every request of the API (and its SQL), when tracing is on."""
    if not settings.TRACING:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    _provider("o2o-api")
    FastAPIInstrumentor.instrument_app(app, excluded_urls="/metrics,.*/events")


def flush() -> None:
    """Send the spans still buffered (tests, and a process about to `os._exit`)."""
    if not settings.TRACING:
        return
    from opentelemetry import trace

    force = getattr(trace.get_tracer_provider(), "force_flush", None)
    if force is not None:
        force()
