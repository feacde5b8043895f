"""Points: the ledger, the one definition of a balance, and the weight it gives in the draw.

A balance is the sum of a person's ledger entries (0 without any). The weight shown is
the weight the draw would use now: `dispatch.weights.weight` under the rule in force for
the person's store's sub-site (its `weight_cap`), per order type.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ScalarSelect, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.weights import weight
from models import Order, OrderType, PointsEntry, Staff, Store
from services import audit
from services.errors import Forbidden, Invalid
from services.rules import rule_in_force


def balance_of(staff_id: Any) -> ScalarSelect[Any]:
    """The balance of `staff_id` (a value or a column) as a SQL scalar."""
    return (
        select(func.coalesce(func.sum(PointsEntry.delta), 0))
        .where(col(PointsEntry.staff_id) == staff_id)
        .scalar_subquery()
    )


async def balance(*, db: AsyncSession, staff_id: int) -> int:
    return int((await db.exec(select(balance_of(staff_id)))).one())


async def weight_caps(*, db: AsyncSession, store_id: int) -> dict[str, int | None]:
    """The weight cap per order type of the rules in force for the store's sub-site."""
    store = await db.get(Store, store_id)
    subsite_id = store.subsite_id if store else None
    return {t.value: (await rule_in_force(db, t.value, subsite_id)).weight_cap for t in OrderType}


def weights_under(points: int, caps: dict[str, int | None]) -> dict[str, int]:
    """The weight `points` gives in the draw, per order type, under `caps`."""
    return {order_type: weight(points, cap=cap) for order_type, cap in caps.items()}


async def weights(*, db: AsyncSession, staff: Staff, points: int) -> dict[str, int]:
    """The weight `points` gives `staff` in the draw now, per order type, under the rule in
    force for their store's sub-site."""
    return weights_under(points, await weight_caps(db=db, store_id=staff.store_id))


async def adjust(
    *,
    db: AsyncSession,
    staff_id: int,
    delta: int,
    reason: str,
    actor: str,
    actor_staff_id: int | None,
    order_id: str | None = None,
) -> PointsEntry:
    """A manual entry in `staff_id`'s ledger, by `actor` (nobody adjusts their own points)."""
    if actor_staff_id is not None and actor_staff_id == staff_id:
        raise Forbidden("a manager may not grant points to themselves; ask another manager")
    if order_id is not None and await db.get(Order, order_id) is None:
        raise Invalid.field("body", "order_id", msg=f"no order {order_id!r}")
    entry = PointsEntry(
        staff_id=staff_id, delta=delta, reason=reason, actor=actor[:100], order_id=order_id
    )
    db.add(entry)
    staff = await db.get(Staff, staff_id)
    await audit.record(
        db,
        actor=actor,
        kind="points",
        object_id=staff_id,
        old={},
        new={"delta": delta, "reason": reason, "order_id": order_id},
        action="adjusted",
        store_id=staff.store_id if staff else None,
    )
    await db.commit()
    await db.refresh(entry)
    return entry
