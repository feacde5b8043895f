"""The notification log: every notice tried, with its outcome, for the API and the CLI."""

from __future__ import annotations

from sqlmodel import col, select

from models.db import session
from models.notifications import Notification


async def notification_log(
    *, order_id: str | None = None, staff_id: int | None = None, limit: int | None = None
) -> list[Notification]:
    """Notices of one order and/or one recipient, oldest first (all of them if no filter)."""
    query = select(Notification)
    if order_id is not None:
        query = query.where(Notification.order_id == order_id)
    if staff_id is not None:
        query = query.where(Notification.staff_id == staff_id)
    query = query.order_by(col(Notification.created_at), col(Notification.id))
    if limit is not None:
        query = query.limit(limit)
    async with session() as db:
        return list((await db.exec(query)).all())
