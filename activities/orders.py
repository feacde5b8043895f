"""Order activities: routing, selection, and keeping the database projection in step.

Every activity here is idempotent: it may run again after a crash or a retry and leaves
the database as one run would (unique keys per order+round, per event key; updates that
only move an order forward).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dispatch.roster import Window, next_free_start
from dispatch.selection import Candidate, Decision
from dispatch.selection import select as select_staff
from models import (
    OPEN_OUTCOMES,
    AllocationRule,
    Assignment,
    AssignmentOutcome,
    CommunicationRecord,
    Customer,
    DutySlot,
    Leave,
    Order,
    OrderEvent,
    OrderStatus,
    PointsEntry,
    Staff,
    StaffRole,
    Store,
    SubSite,
    SubSiteAdmin,
)
from models.db import session
from workflows.contracts import (
    AssignRequest,
    AssignResult,
    OrderRequest,
    RoutedOrder,
    Rule,
    StaffCheck,
    StoreContacts,
    Transition,
)

# ---------------------------------------------------------------- routing


async def _customer_for(db: AsyncSession, order: OrderRequest, known: int | None) -> int | None:
    """The customer record for this order: found by phone, then email, else created once."""
    if known is not None:  # a retry after the order row was written
        return known
    c = order.customer
    if c.phone:  # phone is unique: concurrent orders of one customer meet on it
        await db.exec(
            insert(Customer)
            .values(name=c.name, phone=c.phone, email=c.email)
            .on_conflict_do_nothing(index_elements=["phone"])
        )
        return (await db.exec(select(Customer.id).where(Customer.phone == c.phone))).one()
    if c.email:
        found = (await db.exec(select(Customer.id).where(Customer.email == c.email))).first()
        if found is not None:
            return found
    if not (c.name or c.email):
        return None
    customer = Customer(name=c.name, email=c.email)
    db.add(customer)
    await db.flush()
    return customer.id


async def _default_store(db: AsyncSession, *, subsite_id: int | None) -> Store | None:
    query = select(Store).join(SubSite).where(Store.active, Store.is_default)
    if subsite_id is None:
        query = query.where(SubSite.is_head_office)
    else:
        query = query.where(Store.subsite_id == subsite_id)
    return (await db.exec(query)).first()


async def _choose_store(db: AsyncSession, order: OrderRequest) -> tuple[Store | None, str]:
    if order.store_id is not None:
        store = await db.get(Store, order.store_id)
        if store is not None and store.active:
            return store, "store named on the order"
    store = await _default_store(db, subsite_id=None)
    return store, "head-office default store"


@activity.defn
async def route_order(order: OrderRequest) -> RoutedOrder:
    """Record the order and tie it to exactly one store (the first decision of every flow)."""
    async with session() as db:
        existing = await db.get(Order, order.order_id)
        customer_id = await _customer_for(db, order, existing.customer_id if existing else None)
        if existing is not None and existing.store_id is not None:
            store = await db.get(Store, existing.store_id)
            reason = existing.store_reason
        else:
            store, reason = await _choose_store(db, order)
        values: dict[str, Any] = {
            "id": order.order_id,
            "type": order.type,
            "category": order.category,
            "priority": order.priority,
            "customer_id": customer_id,
            "customer_name": order.customer.name,
            "client_ip": order.client_ip,
            "host": order.host,
            "requested_store_id": order.store_id,
            "preferred_staff_id": order.preferred_staff_id,
            "store_id": store.id if store else None,
            "subsite_id": store.subsite_id if store else None,
            "store_reason": reason if store else "no active store could take it",
            "workflow_id": f"order-{order.order_id}",
        }
        await db.exec(insert(Order).values(**values).on_conflict_do_nothing(index_elements=["id"]))
        subsite = await db.get(SubSite, store.subsite_id) if store else None
        await _event(
            db,
            order.order_id,
            "routed",
            "routed",
            {"store_id": values["store_id"], "reason": values["store_reason"]},
        )
        await db.commit()
    return RoutedOrder(
        store_id=store.id if store else None,
        reason=values["store_reason"],
        subsite_id=subsite.id if subsite else None,
        subsite_code=subsite.code if subsite else "",
        store_name=store.name if store else "",
        customer_name=order.customer.name,
        category=order.category,
        preferred_staff_id=order.preferred_staff_id,
    )


# ---------------------------------------------------------------- rules


def rule_snapshot(rule: AllocationRule) -> Rule:
    return Rule(
        order_type=rule.order_type,
        accept_timeout_seconds=rule.accept_timeout_seconds,
        process_timeout_seconds=rule.process_timeout_seconds,
        reassign_period_seconds=rule.reassign_period_seconds,
        reminder_before_seconds=rule.reminder_before_seconds,
        max_rounds=rule.max_rounds,
        skip_previous_assignees=rule.skip_previous_assignees,
        capacity_per_staff=rule.capacity_per_staff,
        after_escalation=rule.after_escalation,
        channels=dict(rule.channels),
    )


async def get_or_create_rule(db: AsyncSession, order_type: str) -> AllocationRule:
    rule = await db.get(AllocationRule, order_type)
    if rule is None:
        await db.exec(
            insert(AllocationRule)
            .values(**AllocationRule(order_type=order_type).model_dump())
            .on_conflict_do_nothing(index_elements=["order_type"])
        )
        await db.commit()
        rule = await db.get(AllocationRule, order_type)
    assert rule is not None
    return rule


@activity.defn
async def load_rule(order_type: str) -> Rule:
    """The rule in force now: running orders read it again at every round."""
    async with session() as db:
        return rule_snapshot(await get_or_create_rule(db, order_type))


# ---------------------------------------------------------------- selection

_CANDIDATES = text(
    """
    SELECT s.id, s.active, s.rotation_paused, s.capacity,
           COALESCE((SELECT sum(p.delta) FROM points_entry p WHERE p.staff_id = s.id), 0)
               AS points,
           (SELECT count(*) FROM assignment a
             WHERE a.staff_id = s.id AND a.outcome IN ('offered', 'accepted')) AS open_orders,
           EXISTS (SELECT 1 FROM duty_slot d
                    WHERE d.staff_id = s.id AND d.starts_at <= :at AND d.ends_at > :at)
           AND NOT EXISTS (SELECT 1 FROM leave l
                    WHERE l.staff_id = s.id AND l.starts_at <= :at AND l.ends_at > :at)
               AS on_duty
      FROM staff s
     WHERE s.store_id = :store_id AND s.role = :role
     ORDER BY s.id
    """
)


async def candidates(db: AsyncSession, *, store_id: int, at: datetime) -> list[Candidate]:
    params = {"store_id": store_id, "at": at, "role": StaffRole.CONSULTANT.value}
    rows = await db.execute(_CANDIDATES, params)
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


def _forced_decision(request: AssignRequest, pool: list[Candidate]) -> Decision:
    """A named person (manager's pick, imported assignee): only being inactive stops it."""
    person = next((c for c in pool if c.staff_id == request.forced_staff_id), None)
    if person is None or not person.active:
        why = "not a consultant of this store" if person is None else "inactive"
        return Decision(staff_id=None, method="named", excluded={request.forced_staff_id or 0: why})
    return Decision(staff_id=person.staff_id, method="named")


async def _existing_assignment(db: AsyncSession, order_id: str, round_: int) -> Assignment | None:
    query = select(Assignment).where(Assignment.order_id == order_id, Assignment.round == round_)
    return (await db.exec(query)).first()


async def _result(db: AsyncSession, assignment: Assignment) -> AssignResult:
    staff = await db.get(Staff, assignment.staff_id)
    return AssignResult(
        staff_id=assignment.staff_id,
        staff_name=staff.name if staff else "",
        accept_deadline=assignment.accept_deadline,
        reason=assignment.reason,
    )


@activity.defn
async def assign_order(request: AssignRequest) -> AssignResult:
    """Choose one staff member for this round and record the assignment, exactly once."""
    async with session() as db:
        done = await _existing_assignment(db, request.order_id, request.round)
        if done is not None:  # a retry after the commit: the same decision, not a new draw
            return await _result(db, done)
        rule = request.rule
        pool = await candidates(db, store_id=request.store_id, at=request.at)
        if rule.capacity_per_staff is not None or any(c.capacity for c in pool):
            # Capacity is a count over all orders of the store: decide one order at a time.
            await db.execute(text("SELECT pg_advisory_xact_lock(1, :s)"), {"s": request.store_id})
            pool = await candidates(db, store_id=request.store_id, at=request.at)
        if request.forced_staff_id is not None:
            decision = _forced_decision(request, pool)
        else:
            decision = select_staff(
                pool,
                draw=random.random(),
                previous=frozenset(request.previous),
                skip_previous=rule.skip_previous_assignees,
                rule_capacity=rule.capacity_per_staff,
            )
        reason = decision.as_reason() | {"round": request.round}
        if request.forced_reason:
            reason["note"] = request.forced_reason
        if decision.staff_id is None:
            await _event(
                db,
                request.order_id,
                f"nobody:{request.round}:{request.at.isoformat()}",
                "nobody_available",
                reason,
            )
            await db.commit()
            return AssignResult(staff_id=None, reason=reason)
        staff = await db.get(Staff, decision.staff_id)
        reason["warnings"] = [w for w in _reachability(staff) if w]
        deadline = request.at + timedelta(seconds=rule.accept_timeout_seconds)
        assignment = Assignment(
            order_id=request.order_id,
            staff_id=decision.staff_id,
            round=request.round,
            assigned_at=request.at,
            accept_deadline=deadline,
            reason=reason,
        )
        db.add(assignment)
        order = await db.get(Order, request.order_id, with_for_update=True)
        assert order is not None, "route_order records the order first"
        order.assignee_id = decision.staff_id
        order.round = request.round
        order.reassign_count = max(0, request.round - 1)
        order.status = OrderStatus.ESCALATED if order.escalated else OrderStatus.ASSIGNED
        order.assigned_at = request.at
        order.updated_at = request.at
        await _event(db, request.order_id, f"assigned:{request.round}", "assigned", reason)
        await db.commit()
        return await _result(db, assignment)


def _reachability(staff: Staff | None) -> list[str]:
    if staff is None or staff.phone or staff.email:
        return []
    return [f"staff {staff.id} has neither phone nor email: notices cannot reach them"]


# ---------------------------------------------------------------- transitions

_CLOSING = {
    "completed": AssignmentOutcome.COMPLETED,
    "timed_out": AssignmentOutcome.TIMED_OUT,
    "declined": AssignmentOutcome.DECLINED,
    "reassigned": AssignmentOutcome.REASSIGNED,
    "released": AssignmentOutcome.RELEASED,
}


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


async def _book_points(db: AsyncSession, t: Transition, rule: AllocationRule) -> None:
    delta = {"completed": rule.points_processed_in_time, "timed_out": rule.points_timed_out}.get(
        t.kind
    )
    if not delta or t.staff_id is None:
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


async def _remember_service(db: AsyncSession, order: Order, staff_id: int, at: datetime) -> None:
    """A handled order is a communication record: the customer's next order knows who served."""
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
            summary=f"Handled order {order.id} ({order.category or order.type})",
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
            elif t.kind in _CLOSING:
                current.outcome = _CLOSING[t.kind]
                current.closed_at = t.at
        order.updated_at = t.at
        if t.kind == "accepted":
            order.status, order.accepted_at = OrderStatus.ACCEPTED, t.at
        elif t.kind == "completed":
            order.status, order.completed_at = OrderStatus.COMPLETED, t.at
            if t.staff_id is not None:
                await _remember_service(db, order, t.staff_id, t.at)
        elif t.kind == "escalated":
            order.escalated, order.status = True, OrderStatus.ESCALATED
        elif t.kind == "waiting":
            order.status, order.assignee_id = OrderStatus.WAITING, None
        elif t.kind in _CLOSING and order.status != OrderStatus.COMPLETED:
            order.assignee_id = None
            order.status = OrderStatus.ESCALATED if order.escalated else OrderStatus.RECEIVED
        rule = await get_or_create_rule(db, order.type)
        await _book_points(db, t, rule)
        detail = {"round": t.round, "staff_id": t.staff_id, "note": t.note}
        await _event(db, t.order_id, f"{t.kind}:{t.round}:{t.occasion}", t.kind, detail, t.actor)
        await db.commit()


# ---------------------------------------------------------------- roster and contacts


@activity.defn
async def next_duty_start(store_id: int, after: datetime) -> datetime | None:
    """When someone of the store is next on duty and free (None: nobody in the roster ahead)."""
    async with session() as db:
        people = select(Staff.id).where(
            Staff.store_id == store_id,
            Staff.active,
            Staff.role == StaffRole.CONSULTANT,
            col(Staff.rotation_paused).is_(False),
        )
        slots = (
            await db.exec(
                select(DutySlot).where(col(DutySlot.staff_id).in_(people), DutySlot.ends_at > after)
            )
        ).all()
        leaves = (
            await db.exec(
                select(Leave).where(col(Leave.staff_id).in_(people), Leave.ends_at > after)
            )
        ).all()
    by_staff: dict[int, list[Window]] = {}
    for lv in leaves:
        by_staff.setdefault(lv.staff_id, []).append(Window(lv.starts_at, lv.ends_at))
    starts = [
        start
        for slot in slots
        if (
            start := next_free_start(
                after, [Window(slot.starts_at, slot.ends_at)], by_staff.get(slot.staff_id, [])
            )
        )
        is not None
    ]
    return min(starts, default=None)


@activity.defn
async def store_contacts(store_id: int) -> StoreContacts:
    """The store's managers and its sub-site's admins: who hears of timeouts and escalations."""
    async with session() as db:
        managers = (
            await db.exec(
                select(Staff.id).where(
                    Staff.store_id == store_id, Staff.role == StaffRole.MANAGER, Staff.active
                )
            )
        ).all()
        admins = (
            await db.exec(
                select(SubSiteAdmin.staff_id)
                .join(Store, col(Store.subsite_id) == SubSiteAdmin.subsite_id)
                .where(Store.id == store_id)
            )
        ).all()
    return StoreContacts(
        manager_ids=sorted(m for m in managers if m is not None),
        admin_ids=sorted(set(admins) - set(managers)),
    )


@activity.defn
async def check_staff_in_store(check: StaffCheck) -> str:
    """A manager may reassign only to an active consultant of the order's store."""
    async with session() as db:
        staff = await db.get(Staff, check.staff_id)
    if staff is None:
        raise ApplicationError(
            f"staff {check.staff_id} does not exist", type="NotFound", non_retryable=True
        )
    if staff.store_id != check.store_id or staff.role != StaffRole.CONSULTANT:
        raise ApplicationError(
            f"staff {check.staff_id} is not a consultant of store {check.store_id}",
            type="Forbidden",
            non_retryable=True,
        )
    if not staff.active:
        raise ApplicationError(
            f"staff {check.staff_id} is inactive", type="Conflict", non_retryable=True
        )
    return staff.name


ORDER_ACTIVITIES: list[Callable[..., Any]] = [
    route_order,
    load_rule,
    assign_order,
    record_transition,
    next_duty_start,
    store_contacts,
    check_staff_in_store,
]
