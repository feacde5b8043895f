"""Head office's sub-sites: list them, open one, change its name, code, domain, the regions
it covers and its default store.

Regions are typed one a line, an ISO 3166-2 code and, after a colon, the cities it is
limited to (`CN-GD: Guangzhou, Shenzhen`). Everything is saved by the API's own functions
(`create_subsite`, `update_subsite`, `update_store` for the default), so their checks —
real subdivision codes (pycountry), one sub-site per region, no store left outside its
sub-site's regions, one default store — and their audit entries are the API's. A refusal
about a field shows at that field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import col, select

from api import stores as api_stores
from api import subsites as api_subsites
from api.deps import DB
from api.public import SubSiteDetail
from console.auth import Form, PageRefused
from console.i18n import translator
from console.routes_hq import HeadOffice, as_head_office
from console.session import Person
from console.web import at_fields, language, redirect, render, undo
from models import SubSite
from services.errors import DomainError

router = APIRouter(prefix="/console/hq/sites", include_in_schema=False)
FIELDS = ("code", "name", "domain", "regions", "default_store")


def regions_text(regions: list[dict[str, Any]]) -> str:
    """The regions as the form shows them: one a line, cities after a colon."""
    lines = []
    for r in regions:
        cities = ", ".join(r.get("cities") or [])
        lines.append(f"{r['code']}: {cities}" if cities else str(r["code"]))
    return "\n".join(lines)


def parse_regions(text: str) -> list[dict[str, Any]]:
    """The form's regions as the API's body (its validators check each code)."""
    regions = []
    for line in text.replace("，", ",").replace("：", ":").splitlines():
        code, _, cities = line.partition(":")
        if code.strip():
            names = [c.strip() for c in cities.split(",") if c.strip()]
            regions.append({"code": code.strip(), "cities": names})
    return regions


async def _list_page(
    request: Request,
    db: DB,
    person: Person,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    sites = (await db.exec(select(SubSite).order_by(col(SubSite.code)))).all()
    return render(
        request,
        "hq_sites.html",
        person=person,
        status=status,
        sites=sites,
        regions_text=regions_text,
        values=values or {},
        errors=errors or {},
        done=request.query_params.get("done", ""),
    )


async def _detail(db: DB, person: Person, subsite_id: int) -> SubSiteDetail:
    try:
        return await api_subsites.get_subsite(
            subsite_id=subsite_id, db=db, caller=as_head_office(person)
        )
    except HTTPException as exc:
        raise PageRefused(exc.status_code, str(exc.detail)) from exc


def _site_page(
    request: Request,
    person: Person,
    site: SubSiteDetail,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    default = next((s.id for s in site.stores if s.is_default), None)
    shown = {
        "code": site.code,
        "name": site.name,
        "domain": site.domain,
        "regions": regions_text(site.regions),
        "default_store": str(default or ""),
    }
    return render(
        request,
        "hq_site.html",
        person=person,
        status=status,
        site=site,
        values=values or shown,
        errors=errors or {},
        done=request.query_params.get("done", ""),
    )


def _form(form: dict[str, str]) -> dict[str, str]:
    return {name: form.get(name, "").strip() for name in FIELDS}


@router.get("")
async def sites_page(request: Request, db: DB, person: HeadOffice) -> Response:
    return await _list_page(request, db, person)


@router.post("")
async def create_site(request: Request, db: DB, person: HeadOffice, form: Form) -> Response:
    """A new sub-site; its domain defaults to `<code>.<root domain>`."""
    typed = _form(form)
    body = {
        "code": typed["code"],
        "name": typed["name"],
        "domain": typed["domain"] or None,
        "regions": parse_regions(typed["regions"]),
    }
    try:
        made = await api_subsites.create_subsite(
            body=api_subsites.SubSiteIn.model_validate(body),
            db=db,
            caller=as_head_office(person),
            response=Response(),
        )
    except (HTTPException, ValidationError, DomainError) as exc:
        answer = at_fields(request, person, exc, FIELDS, "/console/hq/sites")
        if isinstance(answer, Response):
            return answer
        await undo(db, person)
        return await _list_page(request, db, person, values=typed, errors=answer, status=422)
    return redirect(request, f"/console/hq/sites/{made.id}?done=created")


@router.get("/{subsite_id}")
async def site_page(subsite_id: int, request: Request, db: DB, person: HeadOffice) -> Response:
    return _site_page(request, person, await _detail(db, person, subsite_id))


@router.post("/{subsite_id}")
async def change_site(
    subsite_id: int, request: Request, db: DB, person: HeadOffice, form: Form
) -> Response:
    """Change what the form changes: the sub-site's fields, then its default store."""
    site = await _detail(db, person, subsite_id)
    typed = _form(form)
    sent: dict[str, Any] = {
        name: typed[name]
        for name in ("code", "name", "domain")
        if typed[name] != getattr(site, name)
    }
    regions = parse_regions(typed["regions"])
    if regions_text(regions) != regions_text(site.regions):
        sent["regions"] = regions
    default = next((s.id for s in site.stores if s.is_default), None)
    chosen = int(typed["default_store"]) if typed["default_store"].isdigit() else None
    back = f"/console/hq/sites/{subsite_id}"
    caller = as_head_office(person)
    saved = False  # the sub-site's own fields commit before the default store's step
    try:
        if chosen is not None and chosen not in {s.id for s in site.stores}:
            raise HTTPException(422, f"default_store: store {chosen} is not this sub-site's")
        if sent:
            await api_subsites.update_subsite(
                subsite_id=subsite_id,
                body=api_subsites.SubSitePatch.model_validate(sent),
                db=db,
                caller=caller,
            )
            saved = True
        if chosen is not None and chosen != default:
            await api_stores.update_store(
                store_id=chosen,
                body=api_stores.StorePatch(is_default=True),
                request=request,
                db=db,
                caller=caller,
            )
    except (HTTPException, ValidationError, DomainError) as exc:
        answer = at_fields(request, person, exc, FIELDS, back)
        if isinstance(answer, Response):
            return answer
        await undo(db, person)
        if saved:  # say so, rather than let the page suggest nothing changed
            _ = translator(language(request, staff_language=person.staff.language))
            note = _("the sub-site's other changes were saved")
            answer = {field: f"{message} ({note})" for field, message in answer.items()}
        site = await _detail(db, person, subsite_id)
        return _site_page(request, person, site, values=typed, errors=answer, status=422)
    return redirect(request, f"{back}?done=saved")
