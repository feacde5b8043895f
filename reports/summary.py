"""A period's report for a store, a sub-site or head office: orders by status, time to
accept (p50/p90), timeouts and declines per consultant, escalations, the backlog waiting
for a shift, notices by channel and outcome. Each section is a list of rows, so the API,
the page and the CSV export all show the same rows."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.phases import Phase
from models import Assignment, AssignmentOutcome, Notification, Order, Staff

SECTIONS = ("status", "accept", "consultants", "escalations", "backlog", "notices")


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th quantile (0..1) by linear interpolation between the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    at = q * (len(ordered) - 1)
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


@dataclass(frozen=True)
class Where:
    """The report's scope: one store, one sub-site, or (both None) every store."""

    since: datetime
    until: datetime
    store_id: int | None = None
    subsite_id: int | None = None

    def orders(self) -> list[Any]:
        """The orders received in the period, in the scope."""
        period = [col(Order.created_at) >= self.since, col(Order.created_at) < self.until]
        return period + self.scope()

    def scope(self) -> list[Any]:
        conditions: list[Any] = []
        if self.store_id is not None:
            conditions.append(col(Order.store_id) == self.store_id)
        if self.subsite_id is not None:
            conditions.append(col(Order.subsite_id) == self.subsite_id)
        return conditions


@dataclass
class Summary:
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


async def summary(db: AsyncSession, where: Where) -> Summary:
    out = Summary()
    by_status = (
        await db.exec(
            select(Order.status, func.count())
            .where(*where.orders())
            .group_by(col(Order.status))
            .order_by(col(Order.status))
        )
    ).all()
    out.sections["status"] = [{"status": s, "orders": n} for s, n in by_status]

    accepted = (
        await db.exec(
            select(Assignment.assigned_at, Assignment.accepted_at)
            .join(Order, col(Order.id) == Assignment.order_id)
            .where(*where.orders(), col(Assignment.accepted_at).is_not(None))
        )
    ).all()
    waits = [(a - s).total_seconds() for s, a in accepted if a is not None]
    p50, p90 = percentile(waits, 0.5), percentile(waits, 0.9)
    out.sections["accept"] = [
        {"accepted": len(waits), "p50_seconds": _round(p50), "p90_seconds": _round(p90)}
    ]

    outcomes = (
        await db.exec(
            select(Staff.id, Staff.name, Assignment.outcome, func.count())
            .join(Assignment, col(Assignment.staff_id) == Staff.id)
            .join(Order, col(Order.id) == Assignment.order_id)
            .where(*where.orders())
            .group_by(col(Staff.id), col(Staff.name), col(Assignment.outcome))
        )
    ).all()
    people: dict[int, dict[str, Any]] = {}
    for staff_id, name, outcome, n in outcomes:
        row = people.setdefault(
            int(staff_id or 0),
            {"staff_id": staff_id, "name": name, "offers": 0, "timed_out": 0, "declined": 0},
        )
        row["offers"] += n
        if outcome in (AssignmentOutcome.TIMED_OUT, AssignmentOutcome.DECLINED):
            row[str(outcome)] += n
    out.sections["consultants"] = sorted(people.values(), key=lambda r: r["name"])

    escalated = (
        await db.exec(select(func.count()).where(*where.orders(), col(Order.escalated)))
    ).one()
    out.sections["escalations"] = [{"escalated": escalated}]

    backlog = (
        await db.exec(
            select(Order.wait_reason, func.count())
            .where(
                *where.scope(), col(Order.phase) == Phase.WAITING_FOR_SHIFT
            )  # now, not in the period
            .group_by(col(Order.wait_reason))
        )
    ).all()
    out.sections["backlog"] = [{"wait_reason": r, "orders": n} for r, n in backlog]

    notices = (
        await db.exec(
            select(Notification.channel, Notification.status, func.count())
            .join(Order, col(Order.id) == Notification.order_id)
            .where(*where.orders())
            .group_by(col(Notification.channel), col(Notification.status))
            .order_by(col(Notification.channel), col(Notification.status))
        )
    ).all()
    out.sections["notices"] = [{"channel": c, "status": s, "notices": n} for c, s, n in notices]
    return out


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
