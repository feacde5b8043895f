"""The notice log (stores: api/stores.py; sub-sites: api/subsites.py; staff: api/staff.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlmodel import col, select

from api.access import STAFF_READERS, require
from api.deps import DB, Caller
from api.public import NoticePublic, Page, page_of
from models import Notification, Staff, Store
from services import scope

router = APIRouter(tags=["directory"])

Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("/notifications", response_model=Page[NoticePublic])
async def list_notifications(
    db: DB,
    caller: Caller,
    staff_id: int | None = None,
    order_id: str | None = None,
    limit: Limit = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[NoticePublic]:
    """The delivery log: every notice with its status, newest first (in the caller's scope:
    a staff member's own notices, a manager's store's, an admin's sub-site's)."""
    require(caller, *STAFF_READERS)
    await scope.check_filters(db=db, caller=caller, staff_id=staff_id)
    query = select(Notification).order_by(col(Notification.id).desc())
    mine = scope.visible(
        caller, store=Staff.store_id, subsite=Store.subsite_id, staff=Notification.staff_id
    )
    if mine is not None:
        query = query.join(Staff, col(Staff.id) == Notification.staff_id)
        query = query.join(Store, col(Store.id) == Staff.store_id).where(mine)
    if staff_id is not None:
        query = query.where(Notification.staff_id == staff_id)
    if order_id is not None:
        query = query.where(Notification.order_id == order_id)
    return await page_of(db, query, NoticePublic, limit=limit, offset=offset)
