"""The database projection of an order's workflow: events, transitions, points, service records.

Every write here is idempotent (unique keys per order+round, per event key; updates that
only move an order forward), so an activity may run again after a crash or a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models import (
    OPEN_OUTCOMES,
    AllocationRule,
    Assignment,
    AssignmentOutcome,
    CommunicationRecord,
    Order,
    OrderEvent,
    OrderStatus,
    PointsEntry,
    SubSiteRule,
)
from models.db import session
from observability import domain as domain_metrics
from services.rules import rule_in_force
from workflows.contracts import (
    Transition,
)

# ---------------------------------------------------------------- transitions

_CLOSING = {
    "completed": AssignmentOutcome.COMPLETED,
    "timed_out": AssignmentOutcome.TIMED_OUT,
    "declined": AssignmentOutcome.DECLINED,
    "reassigned": AssignmentOutcome.REASSIGNED,
    "released": AssignmentOutcome.RELEASED,
    "cancelled": AssignmentOutcome.CANCELLED,
}
_ENDED = (OrderStatus.COMPLETED, OrderStatus.CANCELLED)


async def _event(
    db: AsyncSession,
    order_id: str,
    key: str,
    kind: str,
    detail: dict[str, Any],
    actor: str = "workflow",
) -> None:
    await db.exec(
        insert(OrderEvent)
        .values(order_id=order_id, key=key, kind=kind, actor=actor, detail=detail)
        .on_conflict_do_nothing(constraint="one_event_per_key")
    )


_POINTS_FOR: dict[str, Callable[[AllocationRule | SubSiteRule], int]] = {
    "completed": lambda rule: rule.points_processed_in_time,
    "timed_out": lambda rule: rule.points_timed_out,
}


async def _book_points(db: AsyncSession, t: Transition, order: Order) -> None:
    """Points for the transitions that earn them, by the rule in force for the order."""
    points = _POINTS_FOR.get(t.kind)
    if points is None or t.staff_id is None:
        return  # most transitions: no rule to read
    delta = points(await rule_in_force(db, order.type, order.subsite_id))
    if not delta:
        return
    await db.exec(
        insert(PointsEntry)
        .values(
            staff_id=t.staff_id,
            delta=delta,
            reason=f"order {t.kind.replace('_', ' ')}",
            order_id=t.order_id,
            idempotency_key=f"{t.order_id}:{t.round}:{t.kind}",
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )


async def _remember_service(
    db: AsyncSession, order: Order, staff_id: int, at: datetime, note: str = ""
) -> None:
    """A handled order is a communication record: the customer's next order knows who served,
    and what was said (the completion note)."""
    if order.customer_id is None or order.store_id is None:
        return
    await db.exec(
        insert(CommunicationRecord)
        .values(
            customer_id=order.customer_id,
            staff_id=staff_id,
            store_id=order.store_id,
            order_id=order.id,
            channel="order",
            occurred_at=at,
            summary=(
                f"Handled order {order.id} ({order.category or order.type})"
                + (f": {note}" if note else "")
            )[:500],
        )
        .on_conflict_do_nothing(index_elements=["order_id"])
    )


@activity.defn
async def record_transition(t: Transition) -> None:
    """Bring the order's rows in step with one workflow transition; safe to run twice."""
    async with session() as db:
        order = await db.get(Order, t.order_id, with_for_update=True)
        if order is None:
            raise ApplicationError(f"order {t.order_id} is not recorded", non_retryable=True)
        current = (
            await db.exec(
                select(Assignment).where(
                    Assignment.order_id == t.order_id, col(Assignment.outcome).in_(OPEN_OUTCOMES)
                )
            )
        ).first()
        if current is not None and current.round == t.round:
            if t.kind == "accepted":
                current.outcome = AssignmentOutcome.ACCEPTED
                current.accepted_at = t.at
                current.process_deadline = t.process_deadline
            elif t.kind == "deadline_moved" and t.accept_deadline is not None:
                current.accept_deadline = t.accept_deadline
            elif t.kind in _CLOSING:
                current.outcome = _CLOSING[t.kind]
                current.closed_at = t.at
        order.updated_at = t.at
        ended_before = order.status in _ENDED
        if ended_before:
            pass  # a late or repeated write never reopens an ended order
        elif t.kind == "accepted":
            order.status, order.accepted_at = OrderStatus.ACCEPTED, t.at
        elif t.kind == "completed":
            order.status, order.completed_at = OrderStatus.COMPLETED, t.at
            if t.staff_id is not None:
                await _remember_service(db, order, t.staff_id, t.at, t.note)
        elif t.kind == "cancelled":
            order.status, order.assignee_id = OrderStatus.CANCELLED, None
            order.cancelled_at, order.cancel_reason = t.at, t.note[:300]
        elif t.kind == "escalated":
            order.escalated = True
            if order.status != OrderStatus.WAITING:
                order.status = OrderStatus.ESCALATED
        elif t.kind == "waiting":
            order.status, order.assignee_id = OrderStatus.WAITING, None
        elif t.kind in _CLOSING:
            order.assignee_id, order.accepted_at = None, None
            order.status = OrderStatus.ESCALATED if order.escalated else OrderStatus.RECEIVED
        if t.phase and not ended_before:
            order.phase, order.wait_reason = t.phase, t.wait_reason
        await _book_points(db, t, order)
        detail = {"round": t.round, "staff_id": t.staff_id, "note": t.note, "phase": t.phase}
        await _event(db, t.order_id, f"{t.kind}:{t.round}:{t.occasion}", t.kind, detail, t.actor)
        await db.commit()
    domain_metrics.count_transition(t, store_id=order.store_id, received_at=order.created_at)
