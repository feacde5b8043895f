"""Read-only lists clients need: sub-sites, stores, staff, and the notice delivery log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.deps import DB, Caller
from models import Notification, Staff, Store, SubSite

router = APIRouter(tags=["directory"])

Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/subsites")
async def list_subsites(db: DB, caller: Caller) -> list[dict[str, Any]]:
    rows = (await db.exec(select(SubSite).order_by(col(SubSite.code)))).all()
    return [r.model_dump(mode="json") for r in rows]


@router.get("/stores")
async def list_stores(
    db: DB, caller: Caller, subsite_id: int | None = None
) -> list[dict[str, Any]]:
    query = select(Store).order_by(col(Store.id))
    if subsite_id is not None:
        query = query.where(Store.subsite_id == subsite_id)
    return [r.model_dump(mode="json") for r in (await db.exec(query)).all()]


@router.get("/staff")
async def list_staff(
    db: DB,
    caller: Caller,
    store_id: int | None = None,
    subsite_id: int | None = None,
    active: bool | None = None,
    limit: Limit = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    query = select(Staff).order_by(col(Staff.id))
    if store_id is not None:
        query = query.where(Staff.store_id == store_id)
    if subsite_id is not None:
        query = query.join(Store).where(Store.subsite_id == subsite_id)
    if active is not None:
        query = query.where(Staff.active == active)
    rows = (await db.exec(query.limit(limit).offset(offset))).all()
    return [r.model_dump(mode="json") for r in rows]


@router.get("/notifications")
async def list_notifications(
    db: DB,
    caller: Caller,
    staff_id: int | None = None,
    order_id: str | None = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The delivery log: every notice with its status, newest first."""
    query = select(Notification).order_by(col(Notification.id).desc())
    if staff_id is not None:
        query = query.where(Notification.staff_id == staff_id)
    if order_id is not None:
        query = query.where(Notification.order_id == order_id)
    rows = (await db.exec(query.limit(limit).offset(offset))).all()
    return [r.model_dump(mode="json") for r in rows]
