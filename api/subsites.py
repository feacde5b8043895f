"""Sub-sites: regional sites on their own second-level domains, the regions they cover, admins.

Who may do what:

- list and read: any caller (clients need the sites to build links and forms);
- create, and change code, domain, `active` or `is_head_office`: head office;
- change name and regions: head office or that sub-site's admin;
- make a staff member an admin, or remove one: head office or that sub-site's admin.

"That sub-site's admin" is a `subsite_admin` token of the sub-site whose person is still
listed as one of its admins (api/deps.py checks the listing on every request). Only a staff
member of one of the sub-site's stores can be its admin.
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import forbidden, require
from api.deps import DB, Caller, Principal
from api.public import AdminPublic, Page, StorePublic, SubSiteDetail, SubSitePublic, page_of
from dispatch.routing import split_host
from models import Role, Staff, Store, SubSite, SubSiteAdmin
from services import audit
from services.subsites import check_coverage, real_subdivision
from settings import settings

router = APIRouter(prefix="/subsites", tags=["subsites"])

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
# ISO 3166-2: the country's alpha-2 code, a hyphen, one to three letters or digits.
_SUBDIVISION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")
_MAIN_LABELS = {"www"}  # www.<root> is the main site (dispatch.routing.is_main_host)


class RegionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="ISO 3166-2 subdivision code, e.g. CN-BJ")
    cities: list[str] = Field(
        default_factory=list,
        max_length=200,
        description="English city names as the GeoIP database spells them; none: all",
    )

    @field_validator("code")
    @classmethod
    def _iso_3166_2(cls, value: str) -> str:
        return subdivision_code(value)

    @field_validator("cities")
    @classmethod
    def _cities(cls, value: list[str]) -> list[str]:
        cities: list[str] = []
        for city in value:
            name = " ".join(city.split())
            if not name or len(name) > 100:
                raise ValueError("a city name is 1 to 100 characters")
            if name.casefold() not in {c.casefold() for c in cities}:
                cities.append(name)
        return cities


def subdivision_code(value: str) -> str:
    """An ISO 3166-2 subdivision code, upper-cased (sub-site regions, a store's region)."""
    code = value.strip().upper()
    if not _SUBDIVISION.match(code):
        raise ValueError(f"{value!r} is not an ISO 3166-2 subdivision code such as CN-BJ")
    return real_subdivision(code)


Regions = Annotated[list[RegionIn], Field(max_length=200)]


def _unique_regions(value: list[RegionIn] | None) -> list[RegionIn] | None:
    if value is None:
        return None
    codes = [r.code for r in value]
    repeated = sorted({c for c in codes if codes.count(c) > 1})
    if repeated:
        raise ValueError(f"region {', '.join(repeated)} is listed twice; list its cities once")
    return value


def _domain(value: str) -> str:
    """A second-level label under the root domain: ``bj.<ROOT_DOMAIN>``."""
    domain, port = split_host(value)
    root, _ = split_host(settings.ROOT_DOMAIN)
    if port is not None:
        raise ValueError("a domain has no port")
    label, dot, rest = domain.partition(".")
    if not dot or rest != root or not _LABEL.match(label):
        raise ValueError(f"must be one label under the root domain, e.g. bj.{root}")
    if label in _MAIN_LABELS:
        raise ValueError(f"{domain} is the main site")
    return domain


def short_code(value: str) -> str:
    """A sub-site's or store's code: lowercase, URL- and label-safe."""
    code = value.strip().lower()
    if not _CODE.match(code) or code in ("main", "www"):
        raise ValueError("1 to 32 lowercase letters, digits or inner hyphens; not 'main' or 'www'")
    return code


class SubSiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(description="short lowercase code, e.g. bj; also the ?site= choice")
    name: str = Field(min_length=1, max_length=100)
    domain: str | None = Field(default=None, description="defaults to <code>.<ROOT_DOMAIN>")
    regions: Regions = Field(default_factory=list)
    is_head_office: bool = False
    active: bool = True

    @field_validator("code")
    @classmethod
    def _valid_code(cls, value: str) -> str:
        return short_code(value)

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str | None) -> str | None:
        return None if value is None else _domain(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[RegionIn]) -> list[RegionIn]:
        return _unique_regions(value) or []


class SubSitePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    domain: str | None = None
    regions: Regions | None = None
    is_head_office: bool | None = None
    active: bool | None = None

    @field_validator("code")
    @classmethod
    def _valid_code(cls, value: str | None) -> str | None:
        return None if value is None else short_code(value)

    @field_validator("domain")
    @classmethod
    def _valid_domain(cls, value: str | None) -> str | None:
        return None if value is None else _domain(value)

    @field_validator("regions")
    @classmethod
    def _regions(cls, value: list[RegionIn] | None) -> list[RegionIn] | None:
        return _unique_regions(value)


HEAD_OFFICE_ONLY = ("code", "domain", "active", "is_head_office")


async def _subsite(db: AsyncSession, subsite_id: int) -> SubSite:
    site = await db.get(SubSite, subsite_id)
    if site is None:
        raise HTTPException(404, f"no sub-site {subsite_id}")
    return site


def is_admin_of(caller: Principal, subsite_id: int) -> bool:
    """Head office, or a subsite_admin token of this sub-site (whose person `principal`
    has checked is still listed as its admin). Being listed is not enough on its own: a
    staff token of a listed person keeps the staff role."""
    if caller.role is Role.HEAD_OFFICE:
        return True
    return caller.role is Role.SUBSITE_ADMIN and caller.subsite_id == subsite_id


async def _conflicts(
    db: AsyncSession, *, code: str | None, domain: str | None, head_office: bool, exclude: int
) -> None:
    """409 naming what another sub-site already has (the unique indexes stay the backstop)."""
    checks = []
    if code is not None:
        checks.append(("code", code, col(SubSite.code) == code))
    if domain is not None:
        checks.append(("domain", domain, col(SubSite.domain) == domain))
    if head_office:
        checks.append(("head office", "", col(SubSite.is_head_office).is_(True)))
    for what, value, condition in checks:
        other = (await db.exec(select(SubSite).where(condition, SubSite.id != exclude))).first()
        if other is not None:
            # Led by the field's name, so a form shows the message at that field.
            detail = f"{what}: sub-site {other.code} (#{other.id}) already has {what} {value}"
            if what == "head office":
                detail = f"is_head_office: sub-site {other.code} (#{other.id}) is the head office"
                detail += " already"
            raise HTTPException(409, detail.rstrip())


async def _commit(db: AsyncSession) -> None:
    try:
        await db.commit()
    except IntegrityError as exc:  # a concurrent request took the code or domain first
        await db.rollback()
        raise HTTPException(409, f"conflicts with another sub-site: {exc.orig}") from exc


async def _view(db: AsyncSession, site: SubSite) -> SubSiteDetail:
    stores = (
        await db.exec(select(Store).where(Store.subsite_id == site.id).order_by(col(Store.id)))
    ).all()
    admins = (
        await db.exec(
            select(Staff)
            .join(SubSiteAdmin, col(SubSiteAdmin.staff_id) == Staff.id)
            .where(SubSiteAdmin.subsite_id == site.id)
            .order_by(col(Staff.id))
        )
    ).all()
    view: SubSiteDetail = SubSiteDetail.of(
        site, stores=[StorePublic.of(s) for s in stores], admins=[AdminPublic.of(a) for a in admins]
    )
    return view


@router.get("", response_model=Page[SubSitePublic])
async def list_subsites(
    db: DB,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[SubSitePublic]:
    """Every sub-site, by code."""
    query = select(SubSite).order_by(col(SubSite.code))
    return await page_of(db, query, SubSitePublic, limit=limit, offset=offset)


@router.post("", status_code=201, response_model=SubSiteDetail)
async def create_subsite(
    body: SubSiteIn, db: DB, caller: Caller, response: Response
) -> SubSiteDetail:
    """A new sub-site (head office); its domain defaults to ``<code>.<ROOT_DOMAIN>``."""
    require(caller, Role.HEAD_OFFICE)
    try:
        domain = body.domain or _domain(f"{body.code}.{settings.ROOT_DOMAIN}")
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc
    await _conflicts(db, code=body.code, domain=domain, head_office=body.is_head_office, exclude=-1)
    regions = [r.model_dump() for r in body.regions]
    await check_coverage(db=db, regions=regions, subsite_id=None)
    site = SubSite(
        code=body.code,
        name=body.name,
        domain=domain,
        regions=regions,
        is_head_office=body.is_head_office,
        active=body.active,
    )
    db.add(site)
    await audit.record(db, actor=caller.name, kind="subsite", object_id=None, old={}, new=site)
    await _commit(db)
    response.headers["Location"] = f"/api/v1/subsites/{site.id}"
    return await _view(db, site)


SubSiteId = Annotated[int, Path(ge=1)]


@router.get("/{subsite_id}", response_model=SubSiteDetail)
async def get_subsite(subsite_id: SubSiteId, db: DB, caller: Caller) -> SubSiteDetail:
    """One sub-site with its stores and admins."""
    return await _view(db, await _subsite(db, subsite_id))


@router.patch("/{subsite_id}", response_model=SubSiteDetail)
async def update_subsite(
    subsite_id: SubSiteId, body: SubSitePatch, db: DB, caller: Caller
) -> SubSiteDetail:
    """Change a sub-site; only the fields given change (see the module doc for who may)."""
    site = await _subsite(db, subsite_id)
    if not is_admin_of(caller, subsite_id):
        raise forbidden(f"only head office or an admin of sub-site {site.code} may change it")
    changes = body.model_dump(exclude_unset=True)
    for name in ("code", "name", "domain", "is_head_office", "active"):
        if name in changes and changes[name] is None:
            raise HTTPException(422, f"{name} cannot be null")
    restricted = sorted(n for n in changes if n in HEAD_OFFICE_ONLY)
    if restricted and caller.role is not Role.HEAD_OFFICE:
        raise forbidden(f"only head office may change {', '.join(restricted)}")
    await _conflicts(
        db,
        code=changes.get("code"),
        domain=changes.get("domain"),
        head_office=bool(changes.get("is_head_office")),
        exclude=subsite_id,
    )
    if "regions" in changes:
        changes["regions"] = [r.model_dump() for r in body.regions or []]
        await check_coverage(db=db, regions=changes["regions"], subsite_id=subsite_id)
    old = audit.snapshot(site)
    for name, value in changes.items():
        setattr(site, name, value)
    db.add(site)
    await audit.record(
        db,
        actor=caller.name,
        kind="subsite",
        object_id=subsite_id,
        old=old,
        new=site,
        subsite_id=subsite_id,
    )
    await _commit(db)
    return await _view(db, site)


async def _manage_admins(db: AsyncSession, caller: Principal, subsite_id: int) -> SubSite:
    site = await _subsite(db, subsite_id)
    if not is_admin_of(caller, subsite_id):
        raise forbidden(f"only head office or an admin of sub-site {site.code} manages its admins")
    return site


@router.put("/{subsite_id}/admins/{staff_id}", response_model=SubSiteDetail)
async def add_admin(
    subsite_id: SubSiteId, staff_id: Annotated[int, Path(ge=1)], db: DB, caller: Caller
) -> SubSiteDetail:
    """Make a staff member of one of the sub-site's stores its admin (idempotent)."""
    site = await _manage_admins(db, caller, subsite_id)
    staff = await db.get(Staff, staff_id)
    if staff is None:
        raise HTTPException(404, f"no staff member {staff_id}")
    store = await db.get(Store, staff.store_id)
    if store is None or store.subsite_id != subsite_id:
        raise HTTPException(
            422, f"staff {staff_id} works in no store of sub-site {site.code}: cannot be its admin"
        )
    if not staff.active:
        raise HTTPException(422, f"staff {staff_id} is inactive")
    if await db.get(SubSiteAdmin, (subsite_id, staff_id)) is None:
        made = SubSiteAdmin(subsite_id=subsite_id, staff_id=staff_id)
        db.add(made)
        await audit.record(
            db,
            actor=caller.name,
            kind="admin",
            object_id=f"{subsite_id}/{staff_id}",
            old={},
            new=made,
            subsite_id=subsite_id,
        )
        try:
            await db.commit()
        except IntegrityError:  # made an admin by a concurrent request: the same outcome
            await db.rollback()
    return await _view(db, site)


@router.delete("/{subsite_id}/admins/{staff_id}", status_code=204)
async def remove_admin(
    subsite_id: SubSiteId, staff_id: Annotated[int, Path(ge=1)], db: DB, caller: Caller
) -> Response:
    """The staff member is no longer an admin of the sub-site (404 if they were not one)."""
    await _manage_admins(db, caller, subsite_id)
    admin = await db.get(SubSiteAdmin, (subsite_id, staff_id))
    if admin is None:
        raise HTTPException(404, f"staff {staff_id} is not an admin of sub-site {subsite_id}")
    await db.delete(admin)
    await audit.record(
        db,
        actor=caller.name,
        kind="admin",
        object_id=f"{subsite_id}/{staff_id}",
        old=audit.snapshot(admin),
        new=None,
        subsite_id=subsite_id,
    )
    await db.commit()
    return Response(status_code=204)
