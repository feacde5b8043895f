"""The HTTP API: `create_app()` wires the routers; `/docs` serves the OpenAPI UI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from sqlalchemy import text
from sqlalchemy.exc import DataError
from temporalio.service import RPCError

from api import (
    audit,
    customers,
    directory,
    geo,
    orders,
    reports,
    rules,
    staff,
    stores,
    subsites,
    tokens,
)
from api import stuck as stuck_orders
from api.deps import DB, Temporal
from api.edge import install as install_edge_rules
from api.edge import known_query_only
from api.public import Health
from console.app import install as install_console
from models.db import require_current_schema
from observability.api import instrument
from settings import settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    require_current_schema()  # migrations run once, elsewhere (`o2o migrate`)
    yield
    client = getattr(app.state, "temporal", None)
    if client is not None:
        app.state.temporal = None


health = APIRouter(tags=["health"])


@health.get("/health", response_model=Health, responses={503: {"model": Health}})
async def get_health(db: DB, client: Temporal) -> JSONResponse:
    """200 when the database and Temporal both answer; 503 naming what does not."""
    checks: dict[str, Any] = {}
    try:
        await db.exec(text("SELECT 1"))  # type: ignore[call-overload]
        checks["database"] = "ok"
    except Exception as exc:  # any failure is the answer here
        checks["database"] = f"unreachable: {exc.__class__.__name__}"
    try:
        serving = await client.service_client.check_health()
        checks["temporal"] = "ok" if serving else "not serving"
    except Exception as exc:
        checks["temporal"] = f"unreachable: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503
    )


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A number or text the database cannot hold (e.g. an id past 2^31-1) is bad input."""
    cause = getattr(exc, "orig", None) or exc
    detail = str(cause).splitlines()[0] if str(cause) else "a value is out of range"
    return JSONResponse({"detail": f"invalid value: {detail}"}, status_code=422)


async def _temporal_busy(request: Request, exc: Exception) -> JSONResponse:
    """Temporal refused or did not answer in time (e.g. an order whose workflow task is being
    retried after a worker crash): a 503 to retry, never a 500. Retrying is safe: an order's
    start is idempotent on its id and a repeated action is refused as already done."""
    status = exc.status.name if isinstance(exc, RPCError) else type(exc).__name__
    message = str(exc).splitlines()[0] if str(exc) else "no answer"
    return JSONResponse(
        {"detail": f"Temporal could not take the request now ({status}: {message}); try again"},
        status_code=503,
        headers={"Retry-After": "2"},
    )


def create_app() -> FastAPI:
    # Swagger UI and ReDoc from files shipped in the wheel: /docs works with no internet.
    app = FastAPIOffline(
        title="o2o-dispatch",
        version="0.1.0",
        description="Routes online orders to offline stores and their staff, durably, on Temporal.",
        lifespan=lifespan,
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from outside
    )
    v1 = APIRouter(prefix="/api/v1", dependencies=[Depends(known_query_only)])
    v1.include_router(stuck_orders.router)  # before orders: /orders/stuck is no order id
    for router in (health, orders.router, rules.router, rules.subsite_router, directory.router):
        v1.include_router(router)
    for router in (customers.router, subsites.router, stores.router, geo.router):
        v1.include_router(router)
    for router in (staff.router, tokens.router, audit.router, reports.router):
        v1.include_router(router)
    app.include_router(v1)
    install_edge_rules(app)
    app.add_exception_handler(DataError, _out_of_range)
    app.add_exception_handler(RPCError, _temporal_busy)
    instrument(app)  # /metrics, before the web entry's catch-all GET
    install_console(app)  # the browser console's pages, before the catch-all below
    app.include_router(geo.site_router)  # last: every other GET is the web entry (redirect)
    return app


app = create_app()


def serve() -> None:
    import uvicorn

    # proxy_headers=False: X-Forwarded-For is read by api/geo.py against TRUSTED_PROXIES
    # only; uvicorn's own rewrite (trusting 127.0.0.1 by default) would bypass that setting.
    uvicorn.run(
        app,
        host=settings.API_HOST,
        port=settings.API_PORT,
        log_level="info",
        proxy_headers=False,
    )
