"""What the console's pages read: one query per list, shaped for the templates.

Reads only; every change goes through the JSON API's functions (see routes_*.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from dispatch.phases import Phase
from models import (
    OPEN_OUTCOMES,
    Assignment,
    AssignmentOutcome,
    Customer,
    Order,
    Staff,
)
from models.base import utcnow
from services import customers
from services.customers import Record

# The board's columns and the dispatch loop's phases (dispatch.phases.Phase, the
# projection's `phase`) in each: the one mapping from the loop's state to the board.
BOARD_COLUMNS: tuple[tuple[str, tuple[Phase, ...]], ...] = (
    ("new", (Phase.ROUTING, Phase.SELECTING)),
    ("offered", (Phase.OFFERED,)),
    ("accepted", (Phase.ACCEPTED,)),
    ("waiting_for_shift", (Phase.WAITING_FOR_SHIFT,)),
    ("waiting_for_manager", (Phase.WAITING_FOR_MANAGER,)),
)
TIMED_OUT_COLUMN = "timed_out"  # rounds that timed out lately, whatever the order does now
CANCELLED_COLUMN = "cancelled"  # orders cancelled lately, with the reason
RECENT = timedelta(hours=2)


@dataclass(frozen=True)
class OrderCard:
    order: Order
    assignment: Assignment | None  # the open round, if any
    holder: Staff | None

    @property
    def deadline(self) -> datetime | None:
        a = self.assignment
        if a is None:
            return None
        if a.outcome == AssignmentOutcome.ACCEPTED:
            return a.process_deadline
        return a.accept_deadline


async def _cards(db: AsyncSession, query: object) -> list[OrderCard]:
    rows = (await db.exec(query)).all()  # type: ignore[call-overload]
    return [OrderCard(order=o, assignment=a, holder=s) for o, a, s in rows]


def _with_open_round() -> object:
    return (
        select(Order, Assignment, Staff)
        .outerjoin(
            Assignment,
            (col(Assignment.order_id) == Order.id) & col(Assignment.outcome).in_(OPEN_OUTCOMES),
        )
        .outerjoin(Staff, col(Staff.id) == Assignment.staff_id)
    )


async def board(db: AsyncSession, store_id: int) -> dict[str, list[OrderCard]]:
    """The store's open orders by column (their phase), each with its open round and holder;
    then the rounds that timed out lately, whatever their order does now."""
    phases = [str(p) for _, group in BOARD_COLUMNS for p in group]
    query = (
        _with_open_round()
        .where(col(Order.store_id) == store_id, col(Order.phase).in_(phases))  # type: ignore[attr-defined]
        .order_by(col(Order.priority).desc(), col(Order.created_at))
    )
    cards = await _cards(db, query)
    columns: dict[str, list[OrderCard]] = {name: [] for name, _ in BOARD_COLUMNS}
    for card in cards:
        for name, group in BOARD_COLUMNS:
            if card.order.phase in group:
                columns[name].append(card)
    timed_out = (
        select(Order, Assignment, Staff)
        .join(Assignment, col(Assignment.order_id) == Order.id)
        .join(Staff, col(Staff.id) == Assignment.staff_id)
        .where(
            col(Order.store_id) == store_id,
            col(Assignment.outcome) == AssignmentOutcome.TIMED_OUT,
            col(Assignment.closed_at) > utcnow() - RECENT,
        )
        .order_by(col(Assignment.closed_at).desc())
        .limit(20)
    )
    columns[TIMED_OUT_COLUMN] = await _cards(db, timed_out)
    cancelled = (
        await db.exec(
            select(Order)
            .where(
                col(Order.store_id) == store_id,
                col(Order.phase) == Phase.CANCELLED,
                col(Order.cancelled_at) > utcnow() - RECENT,
            )
            .order_by(col(Order.cancelled_at).desc())
            .limit(20)
        )
    ).all()
    columns[CANCELLED_COLUMN] = [
        OrderCard(order=o, assignment=None, holder=None) for o in cancelled
    ]
    return columns


async def my_orders(db: AsyncSession, staff_id: int) -> dict[str, list[OrderCard]]:
    """A consultant's offered and accepted orders, and their latest closed rounds."""
    rows = await _cards(
        db,
        select(Order, Assignment, Staff)
        .join(Assignment, col(Assignment.order_id) == Order.id)
        .join(Staff, col(Staff.id) == Assignment.staff_id)
        .where(col(Assignment.staff_id) == staff_id)
        .order_by(col(Assignment.assigned_at).desc())
        .limit(40),
    )
    out: dict[str, list[OrderCard]] = {"offered": [], "accepted": [], "recent": []}
    for card in rows:
        outcome = card.assignment.outcome if card.assignment else ""
        if outcome == AssignmentOutcome.OFFERED:
            out["offered"].append(card)
        elif outcome == AssignmentOutcome.ACCEPTED:
            out["accepted"].append(card)
        elif len(out["recent"]) < 10:
            out["recent"].append(card)
    return out


async def open_round(db: AsyncSession, order_id: str) -> Assignment | None:
    return (
        await db.exec(
            select(Assignment).where(
                Assignment.order_id == order_id, col(Assignment.outcome).in_(OPEN_OUTCOMES)
            )
        )
    ).first()


async def round_of(db: AsyncSession, order_id: str, round_: int) -> Assignment | None:
    return (
        await db.exec(
            select(Assignment).where(Assignment.order_id == order_id, Assignment.round == round_)
        )
    ).first()


async def customer_and_records(
    db: AsyncSession, customer_id: int | None
) -> tuple[Customer | None, list[Record]]:
    """The customer and their latest communication records (who served them)."""
    if customer_id is None:
        return None, []
    customer = await db.get(Customer, customer_id)
    return customer, await customers.records_of(db=db, customer_id=customer_id, limit=20)


async def store_staff(db: AsyncSession, store_id: int) -> list[Staff]:
    return list(
        (
            await db.exec(
                select(Staff)
                .where(Staff.store_id == store_id, col(Staff.active))
                .order_by(col(Staff.role).desc(), col(Staff.name))
            )
        ).all()
    )
