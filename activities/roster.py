"""Roster activities: the worker's wrappers around the roster changes in
`services/roster_changes.py`, and the roster workflows' inputs.

- `roll_roster`: concrete duty slots rolled forward from each person's weekly pattern.
- `wake_waiting_orders`: signal `roster_changed` to the orders waiting for a shift.
- `release_staff_orders`: a person's open orders re-dispatched (their leave has begun).
- `release_absent_assignees`: the same, swept over every store (the maintenance safety net).

The activities call the services with the worker's own client (`activity.client()`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlmodel import col, select
from temporalio import activity

from models import (
    OPEN_OUTCOMES,
    Assignment,
    Leave,
    Order,
    Staff,
)
from models.db import session
from services.roster import covers
from services.roster_changes import (
    ROSTER_DAYS,
    Released,
    RollRequest,
    RollResult,
    release_open_orders,
    roll,
    wake_waiting,
)

# ---------------------------------------------------------------- rolling the roster


@activity.defn
async def roll_roster(request: RollRequest) -> RollResult:
    """Generate every pattern slot of the next `days` days; slots already there are kept."""
    async with session() as db:
        result = await roll(db, request)
        await db.commit()
    return result


@dataclass(frozen=True)
class WakeRequest:
    store_ids: list[int] | None = None  # None: every store


@activity.defn
async def wake_waiting_orders(request: WakeRequest) -> int:
    """The roster changed: every order waiting for a shift in these stores looks again now."""
    return len(await wake_waiting(activity.client(), request.store_ids))


# ---------------------------------------------------------------- releasing open orders


@dataclass(frozen=True)
class ReleaseRequest:
    staff_id: int
    trigger: str
    reason: str
    by: str = "system"
    leave_id: int | None = None  # a leave's start: only if the leave still stands and covers `at`
    at: datetime | None = None  # the workflow's now (default: the clock's)


@activity.defn
async def release_staff_orders(request: ReleaseRequest) -> list[Released]:
    """Re-dispatch a person's open orders (their leave has begun, say)."""
    if request.leave_id is not None:
        async with session() as db:
            leave = await db.get(Leave, request.leave_id)
        now = request.at or datetime.now(UTC)
        if leave is None or not leave.starts_at <= now < leave.ends_at:
            return []  # cancelled or moved since it was planned
    return await release_open_orders(
        activity.client(),
        request.staff_id,
        trigger=request.trigger,
        reason=request.reason,
        by=request.by,
    )


def _absent_holders(at: datetime) -> Any:
    """Open assignments whose holder cannot handle them: inactive, moved to another store, or
    gone on leave after the order reached them (a manager may name someone already on leave)."""
    on_leave = exists().where(
        col(Leave.staff_id) == Assignment.staff_id,
        covers(col(Leave.starts_at), col(Leave.ends_at), at),
        col(Leave.starts_at) > Assignment.assigned_at,
    )
    moved = and_(col(Order.store_id).is_not(None), col(Order.store_id) != Staff.store_id)
    return (
        select(Assignment.staff_id, Staff.active, moved.label("moved"))
        .join(Staff, col(Staff.id) == Assignment.staff_id)
        .join(Order, col(Order.id) == Assignment.order_id)
        .where(col(Assignment.outcome).in_(OPEN_OUTCOMES), or_(~col(Staff.active), moved, on_leave))
        .order_by(col(Assignment.staff_id))
    )


@dataclass(frozen=True)
class SweepResult:
    released: list[Released] = field(default_factory=list)


@activity.defn
async def release_absent_assignees() -> SweepResult:
    """The safety net: open orders held by someone inactive, moved or on leave are released."""
    async with session() as db:
        rows = (await db.exec(_absent_holders(datetime.now(UTC)))).all()
    triggers: dict[int, str] = {}
    for staff_id, active, moved in rows:
        triggers.setdefault(
            staff_id, "deactivated" if not active else "moved" if moved else "on leave"
        )
    released: list[Released] = []
    for staff_id, trigger in triggers.items():
        released += await release_open_orders(
            activity.client(),
            staff_id,
            trigger=trigger,
            reason=f"roster maintenance found staff {staff_id} {trigger}",
            by="roster-maintenance",
        )
    return SweepResult(released=released)


# ---------------------------------------------------------------- workflow inputs
# (here, outside the workflow module, so the workflow sandbox sees real `datetime`s)


@dataclass(frozen=True)
class RosterMaintenanceInput:
    days: int = ROSTER_DAYS


@dataclass(frozen=True)
class RosterMaintenanceResult:
    staff: int = 0
    slots_added: int = 0
    released: int = 0
    woken: int = 0


@dataclass(frozen=True)
class LeaveStart:
    leave_id: int
    staff_id: int
    starts_at: datetime
    reason: str = ""
    by: str = "system"


def leave_workflow_id(leave_id: int) -> str:
    return f"leave-{leave_id}"


ROSTER_ACTIVITIES: Sequence[Callable[..., Any]] = [
    roll_roster,
    wake_waiting_orders,
    release_staff_orders,
    release_absent_assignees,
]
