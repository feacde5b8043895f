"""`install(app)`: the console's routes, static files and the pages for refusals."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from console import (
    routes_hq,
    routes_hq_rules,
    routes_link,
    routes_manager,
    routes_pages,
    routes_reports,
    routes_signin,
    routes_site,
    routes_stores,
    routes_subsites,
)
from console.auth import CsrfRefused, PageRefused, SignInFirst, sign_in_url
from console.web import HERE, redirect, refused


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInFirst)
    url = sign_in_url(exc.next_url)
    if exc.why:
        url += "&why=lapsed"
    if request.headers.get("hx-request"):  # an htmx fragment: send the whole page over
        return Response(status_code=200, headers={"HX-Redirect": url})
    return redirect(request, url)


async def _page_refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageRefused)
    return refused(request, exc.status, exc.detail, back="/console")


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return refused(request, 403, "csrf", back=request.headers.get("referer", "/console"))


def install(app: FastAPI) -> None:
    """Add the console to the API app (before the site entry's catch-all GET)."""
    modules = (
        routes_signin,
        routes_pages,
        routes_manager,
        routes_reports,
        routes_site,
        routes_stores,
        routes_hq,
        routes_subsites,
        routes_hq_rules,
    )
    for module in (*modules, routes_link):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.add_exception_handler(SignInFirst, _sign_in_first)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(PageRefused, _page_refused)
