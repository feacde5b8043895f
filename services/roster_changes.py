"""Roster changes the API, the CLI and the roster activities share (no Temporal activity here).

- `roll` / `reroll_staff`: concrete duty slots rolled forward from each person's weekly
  pattern (after a pattern change or a move: the person's future pattern slots again).
- `wake_waiting`: signal `roster_changed` to the orders waiting for a shift.
- `release_open_orders`: a person who can no longer handle their orders (deactivated, moved,
  on leave) has each open order re-dispatched at once, with the reason recorded.

They take a database session or a Temporal client, so the API and the CLI call them
directly; `activities/roster.py` wraps them with the worker's own client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from dispatch.roster import WeeklyShift, windows_from_patterns
from models import (
    OPEN_OUTCOMES,
    Assignment,
    DutyPattern,
    DutySlot,
    Order,
    OrderEvent,
    OrderStatus,
    SlotSource,
    Staff,
    Store,
)
from models.db import session
from services.orders import workflow_id as order_workflow_id
from workflows.contracts import ManagerAction, OrderView

# How far ahead the roster is kept: the maintenance schedule and every re-roll use it.
ROSTER_DAYS = 14
# A re-dispatch waits for its round to be served; a worker that is down must not hang callers.
UPDATE_TIMEOUT = timedelta(seconds=30)


# ---------------------------------------------------------------- rolling the roster


@dataclass(frozen=True)
class RollRequest:
    days: int = ROSTER_DAYS
    first_day: date | None = None  # default: today (UTC date)
    staff_ids: list[int] | None = None  # only these people (default: every active one)


@dataclass(frozen=True)
class RollResult:
    staff: int
    slots_added: int


async def roll(db: AsyncSession, request: RollRequest) -> RollResult:
    """Insert every pattern slot of the next `days` days that is not there yet (no commit)."""
    first_day = request.first_day or datetime.now(UTC).date()
    query = (
        select(DutyPattern, Staff, Store)
        .join(Staff, col(Staff.id) == DutyPattern.staff_id)
        .join(Store, col(Store.id) == Staff.store_id)
        .where(Staff.active)
    )
    if request.staff_ids is not None:
        query = query.where(col(Staff.id).in_(request.staff_ids))
    rows = (await db.exec(query)).all()
    by_staff: dict[int, tuple[Store, list[WeeklyShift]]] = {}
    for pattern, staff, store in rows:
        assert staff.id is not None
        entry = by_staff.setdefault(staff.id, (store, []))
        entry[1].append(WeeklyShift(pattern.weekday, pattern.start, pattern.end))
    # Windows given away by a swap stay given away: the roll never regenerates them.
    horizon_start = datetime.combine(first_day - timedelta(days=2), datetime.min.time(), UTC)
    swapped = set(
        (
            await db.exec(
                select(DutySlot.replaces_staff_id, DutySlot.starts_at).where(
                    col(DutySlot.replaces_staff_id).in_(list(by_staff)),
                    DutySlot.starts_at >= horizon_start,
                )
            )
        ).all()
    )
    added = 0
    for staff_id, (store, shifts) in by_staff.items():
        # Start a day early so an overnight shift from yesterday is covered too.
        windows = windows_from_patterns(
            shifts,
            zone=store.timezone,
            first_day=first_day - timedelta(days=1),
            days=request.days + 1,
        )
        values = [
            {
                "staff_id": staff_id,
                "store_id": store.id,
                "starts_at": w.starts_at,
                "ends_at": w.ends_at,
                "source": SlotSource.PATTERN.value,
            }
            for w in windows
            if (staff_id, w.starts_at) not in swapped
        ]
        if not values:
            continue
        inserted = await db.exec(
            insert(DutySlot)
            .values(values)
            .on_conflict_do_nothing(constraint="one_slot_per_start")
            .returning(col(DutySlot.id))
        )
        added += len(inserted.all())  # rowcount is not reliable for a multi-row insert
    return RollResult(staff=len(by_staff), slots_added=added)


async def reroll_staff(db: AsyncSession, staff_id: int, *, at: datetime) -> RollResult:
    """After a pattern change or a move: drop the person's pattern slots not yet begun, roll
    again from their current pattern and store (no commit). Swapped slots are kept."""
    await db.exec(
        delete(DutySlot).where(
            col(DutySlot.staff_id) == staff_id,
            col(DutySlot.source) == SlotSource.PATTERN.value,
            col(DutySlot.starts_at) > at,
        )
    )
    return await roll(db, RollRequest(days=ROSTER_DAYS, staff_ids=[staff_id]))


# ---------------------------------------------------------------- waking waiting orders


async def waiting_orders(db: AsyncSession, store_ids: Iterable[int] | None) -> list[str]:
    query = select(Order.id).where(Order.status == OrderStatus.WAITING)
    if store_ids is not None:
        query = query.where(col(Order.store_id).in_(list(store_ids)))
    return list((await db.exec(query.order_by(col(Order.priority).desc(), col(Order.id)))).all())


async def wake_waiting(
    client: Client, store_ids: Iterable[int] | None, staff_ids: list[int] | None = None
) -> list[str]:
    """Signal `roster_changed` to every order of these stores waiting for a shift; naming
    the staff whose roster changed (`staff_ids`) lets an order waiting for one consultant's
    shift ignore a change of someone else's."""
    concerned = [] if staff_ids is None else [staff_ids]
    async with session() as db:
        ids = await waiting_orders(db, store_ids)

    async def wake(order_id: str) -> str | None:
        try:
            handle = client.get_workflow_handle(order_workflow_id(order_id))
            await handle.signal("roster_changed", args=concerned)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:  # ended since: nothing to wake
                raise
            return None
        return order_id

    woken = await asyncio.gather(*(wake(i) for i in ids))
    return [i for i in woken if i is not None]


# ---------------------------------------------------------------- releasing open orders


@dataclass(frozen=True)
class Released:
    """What became of one open order taken from someone who cannot handle it any more."""

    order_id: str
    result: str  # "redispatched" | "skipped: …" | "failed: …"
    assignee_id: int | None = None  # the new assignee, once the round has served it
    status: str = ""


def _failure_message(exc: WorkflowUpdateFailedError) -> str:
    cause: BaseException | None = exc.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or exc)


async def _redispatch(
    client: Client, order_id: str, staff_id: int, action: ManagerAction
) -> Released:
    handle = client.get_workflow_handle(order_workflow_id(order_id))
    try:
        live: OrderView = await handle.query(
            "state", result_type=OrderView, rpc_timeout=UPDATE_TIMEOUT
        )
        if live.assignee_id != staff_id:
            return Released(order_id, "skipped: no longer with them", live.assignee_id, live.status)
        view: OrderView = await handle.execute_update(
            "redispatch", action, result_type=OrderView, rpc_timeout=UPDATE_TIMEOUT
        )
    except WorkflowUpdateFailedError as exc:
        return Released(order_id, f"skipped: {_failure_message(exc)}")
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Released(order_id, "skipped: the order's workflow has ended")
        return Released(order_id, f"failed: {exc.message}")
    except Exception as exc:  # a timeout or an unreachable server: reported, never raised
        return Released(order_id, f"failed: {exc.__class__.__name__}: {exc}")
    return Released(order_id, "redispatched", view.assignee_id, view.status)


async def release_open_orders(
    client: Client, staff_id: int, *, trigger: str, reason: str, by: str
) -> list[Released]:
    """Re-dispatch every open order of `staff_id` now; the reason goes into each order's story.

    `trigger` names the occasion ("deactivated", "moved to store 4", "on leave"); the workflow
    records the take-back as `reassigned` by `system: staff N <trigger>` with the reason, and
    this records who caused it (`by`) as an `assignee_released` event first.
    """
    async with session() as db:
        open_rows = (
            await db.exec(
                select(Assignment.order_id, Assignment.round).where(
                    Assignment.staff_id == staff_id, col(Assignment.outcome).in_(OPEN_OUTCOMES)
                )
            )
        ).all()
        for order_id, round_ in open_rows:
            await db.exec(
                insert(OrderEvent)
                .values(
                    order_id=order_id,
                    key=f"released:{staff_id}:{round_}",
                    kind="assignee_released",
                    actor=by[:100],
                    detail={"staff_id": staff_id, "trigger": trigger, "reason": reason},
                )
                .on_conflict_do_nothing(constraint="one_event_per_key")
            )
        await db.commit()
    action = ManagerAction(actor=f"system: staff {staff_id} {trigger}"[:100], reason=reason)
    return list(
        await asyncio.gather(
            *(_redispatch(client, order_id, staff_id, action) for order_id, _ in open_rows)
        )
    )
