"""What the reports read from the recorded orders."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import Assignment, Order
from reports.fairness import Fairness, RecordedDraw, fairness


async def first_round_draws(
    db: AsyncSession, *, store_id: int, since: datetime, until: datetime
) -> list[RecordedDraw]:
    """Every first-round weighted draw of the store's orders offered in [since, until)."""
    rows = (
        await db.exec(
            select(Assignment)
            .join(Order, col(Order.id) == Assignment.order_id)
            .where(
                col(Order.store_id) == store_id,
                col(Assignment.round) == 1,
                col(Assignment.assigned_at) >= since,
                col(Assignment.assigned_at) < until,
            )
        )
    ).all()
    draws = []
    for a in rows:
        values = a.reason.get("values") or {}
        if a.reason.get("method") == "weighted_random" and values:
            draws.append(RecordedDraw({int(k): int(v) for k, v in values.items()}, a.staff_id))
    return draws


async def store_fairness(
    db: AsyncSession, *, store_id: int, since: datetime, until: datetime
) -> Fairness:
    return fairness(await first_round_draws(db, store_id=store_id, since=since, until=until))
