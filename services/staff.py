"""Staff: who of a store could take an order now (the draw's candidates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, func
from sqlalchemy import select as sql_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.selection import Candidate
from models import OPEN_OUTCOMES, Assignment, Staff, StaffRole
from services.points import balance_of
from services.roster import on_duty


def open_orders_of(staff_id: Any) -> ScalarSelect[Any]:
    """How many orders `staff_id` holds (offered or accepted), as a SQL scalar."""
    return (
        select(func.count())
        .select_from(Assignment)
        .where(col(Assignment.staff_id) == staff_id, col(Assignment.outcome).in_(OPEN_OUTCOMES))
        .scalar_subquery()
    )


async def candidates(db: AsyncSession, *, store_id: int, at: datetime) -> list[Candidate]:
    """Every consultant of the store with what the draw weighs: points, open orders, duty."""
    query = (
        sql_select(
            col(Staff.id),
            col(Staff.active),
            col(Staff.rotation_paused),
            col(Staff.capacity),
            balance_of(Staff.id).label("points"),
            open_orders_of(Staff.id).label("open_orders"),
            on_duty(Staff.id, at).label("on_duty"),
        )
        .where(col(Staff.store_id) == store_id, col(Staff.role) == StaffRole.CONSULTANT)
        .order_by(col(Staff.id))
    )
    rows = await (await db.connection()).execute(query)
    return [
        Candidate(
            staff_id=r.id,
            points=int(r.points),
            open_orders=int(r.open_orders),
            capacity=r.capacity,
            on_duty=bool(r.on_duty),
            active=r.active,
            paused=r.rotation_paused,
        )
        for r in rows
    ]
