"""Stores: the offline shops orders go to. A sub-site admin runs the stores of their
sub-site, head office every store:

- list and read: any caller (the web backend offers stores on its forms);
- create, change: head office, or an admin of the store's sub-site; moving a store to
  another sub-site is head office's;
- one default store per sub-site (the fallback of order diversion): making a store the
  default takes the flag from the one before, in the same transaction;
- a new time zone re-rolls the duty slots of the store's people (patterns are local time);
- a store with active staff is not deactivated (move or deactivate them first, so no open
  order is left in a store nobody works in).
"""

from __future__ import annotations

from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import APIRouter, HTTPException, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import ADMINS, check_store, forbidden, require
from api.deps import DB, Caller, Principal
from api.public import Page, StorePublic, page_of
from api.schemas import EmailAddress, PhoneNumber
from api.staff import wake_stores
from api.subsites import short_code, subdivision_code
from models import Role, Staff, Store, SubSite
from models.base import utcnow
from services import audit
from services.roster_changes import reroll_staff
from services.subsites import check_store_region

router = APIRouter(prefix="/stores", tags=["stores"])

StoreId = Annotated[int, Path(ge=1)]


@cache
def _zones() -> frozenset[str]:
    """The IANA zone names (read from tzdata once, not on every request)."""
    return frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"{value!r} is not an IANA time zone such as Asia/Shanghai")
    return value


class StoreFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    region_code: str | None = Field(default=None, description="ISO 3166-2, e.g. CN-BJ")
    city: str | None = Field(
        default=None, min_length=1, max_length=100, description="as the GeoIP database spells it"
    )
    address: str | None = Field(default=None, max_length=300)
    phone: PhoneNumber = Field(default=None, max_length=32, description="the store's, E.164")
    email: EmailAddress = Field(default=None, max_length=254, description="the store's")
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA, e.g. Asia/Shanghai"
    )
    is_default: bool | None = Field(default=None, description="the sub-site's fallback store")
    active: bool | None = None

    @field_validator("region_code")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        return None if value is None else subdivision_code(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else _timezone(value)


class StoreIn(StoreFields):
    subsite_id: int = Field(ge=1)
    code: str = Field(description="short lowercase code, unique, e.g. bj-chaoyang")
    name: str = Field(min_length=1, max_length=100)
    region_code: str = Field(description="ISO 3166-2, e.g. CN-BJ")
    city: str = Field(min_length=1, max_length=100)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        return short_code(value)


class StorePatch(StoreFields):
    """Only the fields sent change; `null` clears the phone or e-mail."""

    subsite_id: int | None = Field(default=None, ge=1, description="head office only")


def _may_run(caller: Principal, subsite_id: int) -> None:
    require(caller, *ADMINS)
    if caller.role is Role.SUBSITE_ADMIN and caller.subsite_id != subsite_id:
        raise forbidden(f"a sub-site admin runs the stores of sub-site {caller.subsite_id} only")


async def _subsite(db: AsyncSession, subsite_id: int) -> SubSite:
    site = await db.get(SubSite, subsite_id)
    if site is None:
        raise HTTPException(422, f"no sub-site {subsite_id}")
    return site


async def _clear_default(
    db: AsyncSession, subsite_id: int, *, actor: str, keep: int | None = None
) -> None:
    """Before a store becomes the sub-site's default, the one before gives up the flag (the
    unique index allows one; this runs before the new flag is flushed). That store changed
    too: its own audit entry says so."""
    before = await _default_of(db, subsite_id)
    await db.exec(update(Store).where(col(Store.subsite_id) == subsite_id).values(is_default=False))
    if before is not None and before.id != keep:
        await audit.record(
            db,
            actor=actor,
            kind="store",
            object_id=before.id,
            old={"is_default": True},
            new={"is_default": False},
            store_id=before.id,
            subsite_id=subsite_id,
        )


async def _default_of(db: AsyncSession, subsite_id: int) -> Store | None:
    query = select(Store).where(Store.subsite_id == subsite_id, col(Store.is_default))
    return (await db.exec(query)).first()


async def _has_others(db: AsyncSession, store: Store) -> bool:
    query = select(Store.id).where(Store.subsite_id == store.subsite_id, Store.id != store.id)
    return (await db.exec(query)).first() is not None


async def _commit(db: AsyncSession) -> None:
    try:
        await db.commit()
    except IntegrityError as exc:  # the code was taken meanwhile, or a default raced
        await db.rollback()
        raise HTTPException(409, f"conflicts with another store: {exc.orig}") from exc


@router.get("", response_model=Page[StorePublic])
async def list_stores(
    db: DB,
    caller: Caller,
    subsite_id: int | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[StorePublic]:
    """Every store, or a sub-site's."""
    query = select(Store).order_by(col(Store.id))
    if subsite_id is not None:
        query = query.where(Store.subsite_id == subsite_id)
    return await page_of(db, query, StorePublic, limit=limit, offset=offset)


@router.get("/{store_id}", response_model=StorePublic)
async def get_store(store_id: StoreId, db: DB, caller: Caller) -> StorePublic:
    store = await db.get(Store, store_id)
    if store is None:
        raise HTTPException(404, f"no store {store_id}")
    view: StorePublic = StorePublic.of(store)
    return view


@router.post("", status_code=201, response_model=StorePublic)
async def create_store(body: StoreIn, db: DB, caller: Caller, response: Response) -> StorePublic:
    """A new store of a sub-site (head office, or that sub-site's admin)."""
    _may_run(caller, body.subsite_id)
    await _subsite(db, body.subsite_id)
    taken = (await db.exec(select(Store.id).where(Store.code == body.code))).first()
    if taken is not None:
        raise HTTPException(409, f"store {taken} has code {body.code} already")
    await check_store_region(db=db, subsite_id=body.subsite_id, region_code=body.region_code)
    first = await _default_of(db, body.subsite_id) is None  # the first store is the default
    if body.is_default:
        await _clear_default(db, body.subsite_id, actor=caller.name)
    store = Store(**body.model_dump(exclude_none=True) | ({"is_default": True} if first else {}))
    db.add(store)
    await audit.record(
        db,
        actor=caller.name,
        kind="store",
        object_id=None,
        old={},
        new=store,
        subsite_id=store.subsite_id,
    )
    await _commit(db)
    await db.refresh(store)
    response.headers["Location"] = f"/api/v1/stores/{store.id}"
    view: StorePublic = StorePublic.of(store)
    return view


@router.patch("/{store_id}", response_model=StorePublic)
async def update_store(
    store_id: StoreId, body: StorePatch, request: Request, db: DB, caller: Caller
) -> StorePublic:
    """Change the fields sent (see the module doc for who may and what follows)."""
    store = await check_store(db, caller, store_id)
    _may_run(caller, store.subsite_id)
    old = audit.snapshot(store)
    changes = body.model_dump(exclude_unset=True)
    for name in ("name", "region_code", "city", "timezone", "is_default", "active", "subsite_id"):
        if name in changes and changes[name] is None:
            raise HTTPException(422, f"{name} cannot be null")
    if changes.get("is_default") is False and store.is_default:
        raise HTTPException(
            409,
            f"is_default: store {store_id} is its sub-site's default; a sub-site with stores"
            " keeps one: make another store the default instead",
        )
    if changes.get("subsite_id", store.subsite_id) != store.subsite_id:
        require(caller, Role.HEAD_OFFICE)
        await _subsite(db, changes["subsite_id"])
        if store.is_default and await _has_others(db, store):
            raise HTTPException(
                409,
                f"subsite_id: store {store_id} is the default of its sub-site, which has other"
                " stores: make another one the default first",
            )
        target_default = await _default_of(db, changes["subsite_id"])
        changes["is_default"] = changes.get("is_default", target_default is None)
    if "region_code" in changes or "subsite_id" in changes:
        await check_store_region(
            db=db,
            subsite_id=changes.get("subsite_id", store.subsite_id),
            region_code=changes.get("region_code", store.region_code),
        )
    if changes.get("active") is False and store.active:
        staffed = (
            await db.exec(select(func.count()).where(Staff.store_id == store_id, col(Staff.active)))
        ).one()
        if staffed:
            raise HTTPException(
                409, f"store {store_id} has {staffed} active staff: move or deactivate them first"
            )
    rezoned = "timezone" in changes and changes["timezone"] != store.timezone
    if changes.get("is_default"):
        await _clear_default(
            db, changes.get("subsite_id", store.subsite_id), actor=caller.name, keep=store_id
        )
    for name, value in changes.items():
        setattr(store, name, value)
    db.add(store)
    await audit.record(
        db,
        actor=caller.name,
        kind="store",
        object_id=store_id,
        old=old,
        new=store,
        store_id=store_id,
        subsite_id=store.subsite_id,
    )
    await db.flush()
    if rezoned:
        people = (
            await db.exec(select(Staff.id).where(Staff.store_id == store_id, col(Staff.active)))
        ).all()
        now = utcnow()
        for staff_id in people:
            assert staff_id is not None
            await reroll_staff(db, staff_id, at=now)
    await _commit(db)
    await db.refresh(store)
    woken = await wake_stores(request, [store_id]) if rezoned or "active" in changes else None
    view: StorePublic = StorePublic.of(store, woken=woken)
    return view
