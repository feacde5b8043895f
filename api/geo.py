"""IP location: resolve an address to its region and sub-site; send main-site visitors home.

Two routers:

- `router` (under /api/v1): ``GET /geo/resolve?ip=…`` answers where an address is and
  which sub-site covers it.
- `site_router` (at the root, registered after everything else): every other GET that is
  not an API path. On the root domain a visitor is redirected (302) to their region's
  sub-site, keeping path and query, unless they chose a site (``?site=`` or the
  ``o2o_site`` cookie; a ``?site=`` choice is remembered in the cookie). A request that is
  not redirected gets a tiny page saying which site it is on.

The visitor's address is the TCP peer, or what X-Forwarded-For says when the peer is one
of `settings.TRUSTED_PROXIES` (and then X-Forwarded-Proto gives the scheme);
`dispatch.routing.redirect_decision` decides, `geo.locate` reads the database.
"""

from __future__ import annotations

import html
import ipaddress
import logging
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from maxminddb import InvalidDatabaseError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import DB, Caller
from api.public import Resolved, SiteRef
from dispatch.routing import (
    SITE_PARAM,
    SiteInfo,
    is_main_host,
    redirect_decision,
    split_host,
    subsite_for_host,
    subsite_for_region,
)
from geo.locate import Location, Locator, client_ip, parse_ip, shared_locator
from models import SubSite
from services.subsites import site_infos
from settings import settings

log = logging.getLogger(__name__)

router = APIRouter(prefix="/geo", tags=["geo"])
site_router = APIRouter(tags=["site"])

SITE_COOKIE = "o2o_site"
COOKIE_MAX_AGE = 180 * 86400


def locator() -> Locator:
    try:
        return shared_locator()
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        raise HTTPException(503, f"the GeoIP database cannot be opened: {exc}") from exc


def _locate_visitor(address: str | None) -> Location | None:
    """The visitor's location; None when unknown or the database cannot be opened (a broken
    database must not take the site down: the visitor stays where they are)."""
    if address is None:
        return None
    try:
        return shared_locator().resolve(address)
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        log.warning("GeoIP database unavailable (%s); %s is not located", exc, address)
        return None


async def all_sites(db: AsyncSession) -> list[SiteInfo]:
    return site_infos((await db.exec(select(SubSite))).all())


def _peer_is_trusted(peer: str | None) -> bool:
    addr = parse_ip(peer) if peer else None
    return addr is not None and any(
        addr in ipaddress.ip_network(n, strict=False) for n in settings.TRUSTED_PROXIES
    )


def visitor_ip(request: Request) -> str | None:
    """The client's address: X-Forwarded-For is believed only from a trusted proxy."""
    peer = request.client.host if request.client else None
    forwarded = ",".join(request.headers.getlist("x-forwarded-for")) or None
    return client_ip(peer, forwarded, settings.TRUSTED_PROXIES)


def _scheme(request: Request) -> str:
    if _peer_is_trusted(request.client.host if request.client else None):
        proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
        if proto in ("http", "https"):
            return proto
    return "https" if request.url.scheme == "https" else "http"


@router.get("/resolve", response_model=Resolved)
async def resolve(
    request: Request,
    db: DB,
    caller: Caller,
    ip: Annotated[
        str | None, Query(max_length=64, description="defaults to the caller's own address")
    ] = None,
) -> Resolved:
    """Where an address is (region, city, kind) and the sub-site covering it, if any.

    `kind`: ok (in the home country), foreign, private, unknown; only ok reaches a sub-site.
    A malformed address is a 422.
    """
    address = ip if ip is not None else visitor_ip(request)
    location = locator().resolve(address)
    if location.kind == "malformed":
        raise HTTPException(422, f"{address!r} is not an IPv4 or IPv6 address")
    site = None
    where = " ".join(p for p in (location.region_code, location.city) if p) or "no region"
    if location.kind != "ok":
        reason = f"location is {location.kind}: the main site"
    else:
        sites = await all_sites(db)
        site = subsite_for_region(location.region_code, location.city, sites)
        reason = (
            f"sub-site {site.code} covers {where}"
            if site
            else f"no sub-site covers {where}: the main site"
        )
    return Resolved(
        **asdict(location),
        subsite=SiteRef(id=site.id, code=site.code, domain=site.domain) if site else None,
        reason=reason,
    )


def _page(title: str, lines: list[str], site_code: str) -> HTMLResponse:
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    document = (
        '<!doctype html><html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(document, headers={"X-O2O-Site": site_code})


@site_router.get("/{path:path}", include_in_schema=False)
async def site_entry(path: str, request: Request, db: DB) -> Response:
    """The web entry: redirect main-domain visitors to their sub-site, else say where they are."""
    if path == "api" or path.startswith("api/"):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    host = request.headers.get("host", "")
    sites = await all_sites(db)
    root = split_host(settings.ROOT_DOMAIN)[0]
    remember: str | None = None
    if is_main_host(host, settings.ROOT_DOMAIN):
        address = visitor_ip(request)
        decision = redirect_decision(
            host=host,
            path=request.url.path,
            query=request.url.query,
            scheme=_scheme(request),
            root_domain=settings.ROOT_DOMAIN,
            location=_locate_visitor(address),
            subsites=sites,
            cookie_site=request.cookies.get(SITE_COOKIE),
            site_param=request.query_params.get(SITE_PARAM),
        )
        remember = decision.remember
        if decision.url is not None:
            response: Response = RedirectResponse(decision.url, status_code=302)
        else:
            choices = ", ".join(f"?site={s.code}" for s in sites if s.active) or "none yet"
            response = _page(
                f"Main site · {root}",
                [
                    f"You are on the main site ({root}).",
                    f"Why: {decision.reason}.",
                    f"Choose a sub-site: {choices}; ?site=main stays here.",
                ],
                "main",
            )
    else:
        site = subsite_for_host(host, settings.ROOT_DOMAIN, sites)
        if site is not None:
            row = await db.get(SubSite, site.id)
            name = row.name if row is not None else site.code
            response = _page(
                f"{name} · {site.domain}",
                [f"You are on sub-site {site.code} ({name}, {site.domain})."],
                site.code,
            )
        else:
            response = _page(
                f"o2o-dispatch · {root}",
                [
                    f"{split_host(host)[0] or 'This host'} is not one of our sites; the main site "
                    f"is {root}."
                ],
                "none",
            )
    if remember is not None:
        response.set_cookie(SITE_COOKIE, remember, max_age=COOKIE_MAX_AGE, path="/", samesite="lax")
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Vary"] = "Cookie"
    return response
