"""The API's `/metrics`: request rate, latency and errors per route template
(prometheus-fastapi-instrumentator), and the stuck orders the database shows.

The live-update streams are left out: a server-sent-events request lasts as long as the page
is open, so its "latency" would drown the rest. Stuck orders are counted from the database
kinds only (waiting too long, escalated and untouched, notices failed), at most once a
minute: the Temporal kinds would describe every running workflow per scrape, and Temporal's
own metrics already alert on failing workflow tasks and activities (deploy/prometheus/).
"""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_fastapi_instrumentator import Instrumentator

from observability.tracing import instrument_app
from operations.stuck import StuckKind, find_stuck

# Regular expressions over the route template: the metrics page itself and every stream.
EXCLUDED = [r"^/metrics$", r".*/events$", r".*/events/.*", r".*/stream$"]
DATABASE_KINDS = frozenset(
    {StuckKind.WAITING_FOR_SHIFT, StuckKind.ESCALATED_UNTOUCHED, StuckKind.NOTICES_FAILED}
)
STUCK_REFRESH_SECONDS = 60.0


class StuckGauge:
    """`o2o_stuck_orders{kind}`, counted again when a scrape finds it older than a minute."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.gauge = Gauge(
            "o2o_stuck_orders", "stuck orders by kind (database kinds)", ["kind"], registry=registry
        )
        self.counted_at = -STUCK_REFRESH_SECONDS
        self.lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self.lock:
            if time.monotonic() - self.counted_at < STUCK_REFRESH_SECONDS:
                return
            self.counted_at = time.monotonic()
            try:
                found = await find_stuck(None, kinds=DATABASE_KINDS)
            except Exception:  # the database is down: the last counts stay, the page serves
                return
            for kind in DATABASE_KINDS:
                self.gauge.labels(kind=kind.value).set(sum(s.kind is kind for s in found))


def instrument(app: FastAPI) -> None:
    """Count every request of `app` and serve the counts at `/metrics` (not in the docs).

    Each app has a registry of its own: tests build many apps in one process, and metrics
    registered twice in the global registry are refused."""
    registry = CollectorRegistry()
    Instrumentator(
        excluded_handlers=EXCLUDED,
        registry=registry,
        should_group_status_codes=False,  # 404 vs 409 vs 422 tell different stories
    ).instrument(app)
    stuck = StuckGauge(registry)
    instrument_app(app)  # tracing, when TRACING is on

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await stuck.refresh()
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
