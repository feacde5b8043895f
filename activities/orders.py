"""Order activities: routing, selection, and keeping the database projection in step.

Every activity here is idempotent: it may run again after a crash or a retry and leaves
the database as one run would (unique keys per order+round, per event key; updates that
only move an order forward).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from maxminddb import InvalidDatabaseError
from sqlalchemy import ColumnElement, func, or_, text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dispatch.roster import Window, next_free_start, on_duty
from dispatch.routing import SiteInfo, StoreInfo, choose_store, regions_from_json, subsite_for_order
from dispatch.selection import Candidate, Decision
from dispatch.selection import select as select_staff
from geo.locate import Location, shared_locator
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
    SubSiteRule,
)
from models.db import session
from settings import settings
from workflows.contracts import (
    AssignRequest,
    AssignResult,
    ConsultantStatus,
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


def site_infos(subsites: Iterable[SubSite]) -> list[SiteInfo]:
    """What routing needs to know of each sub-site (also the API's geo resolve and redirect)."""
    return [
        SiteInfo(
            id=s.id,
            code=s.code,
            domain=s.domain,
            regions=regions_from_json(s.regions),
            active=s.active,
        )
        for s in subsites
        if s.id is not None
    ]


def _located(ip: str | None) -> tuple[Location | None, str | None]:
    """The visitor's location from the process's one GeoIP reader; a note if none is open."""
    if not ip:
        return None, None
    try:
        return shared_locator().resolve(ip), None
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        return None, f"IP location unavailable ({exc.__class__.__name__}: {exc})"


async def _last_service(
    db: AsyncSession, order: OrderRequest, customer_id: int | None
) -> CommunicationRecord | None:
    """The customer's latest communication record; the customer is found by phone or email."""
    c = order.customer
    found: list[ColumnElement[bool]] = []
    if customer_id is not None:
        found.append(col(Customer.id) == customer_id)
    if c.phone:
        found.append(col(Customer.phone) == c.phone)
    if c.email:
        found.append(func.lower(Customer.email) == c.email.strip().lower())
    if not found:
        return None
    ids = select(Customer.id).where(or_(*found))
    query = (
        select(CommunicationRecord)
        .where(col(CommunicationRecord.customer_id).in_(ids))
        .order_by(col(CommunicationRecord.occurred_at).desc(), col(CommunicationRecord.id).desc())
        .limit(1)
    )
    return (await db.exec(query)).first()


async def _choose_store(
    db: AsyncSession, order: OrderRequest, customer_id: int | None
) -> tuple[Store | None, dict[str, Any]]:
    """Tie the order to one store (`dispatch.routing.choose_store` on the rows of the day).

    Returns the store and the routed event's detail: the reason, the whole trail, where the
    order came from (sub-site by host or IP, the visitor's location), the customer's wish
    and the consultant the first round should go to (`preferred_staff_id`).

    A store whose staff has no active consultant can never take an order: it is passed
    over like an inactive one (outcome "no active consultant"), unless no store on the way
    has one, when the order is tied to the first active store all the same and waits there.
    """
    subsites = list((await db.exec(select(SubSite))).all())
    stores = list((await db.exec(select(Store))).all())
    staffed = set(
        (
            await db.exec(
                select(Staff.store_id)
                .where(Staff.active, Staff.role == StaffRole.CONSULTANT)
                .distinct()
            )
        ).all()
    )
    notes: list[str] = []
    location, unlocated = _located(order.client_ip)
    if unlocated:
        notes.append(unlocated)
    sites = site_infos(subsites)
    head_offices = {s.id for s in subsites if s.is_head_office}
    head_office_store = next(
        (
            s.id
            for s in sorted(stores, key=lambda s: s.id or 0)
            if s.is_default and s.subsite_id in head_offices
        ),
        None,
    )

    last = await _last_service(db, order, customer_id)
    wish_id, wish_source = order.preferred_staff_id, "named"
    if wish_id is None and order.prefer_last_consultant:
        wish_source = "last"
        if last is not None:
            wish_id = last.staff_id
        else:
            notes.append("customer asked for their last consultant, but nobody has served them")
    consultant = await db.get(Staff, wish_id) if wish_id is not None else None
    consultant_note = None
    if wish_id is not None and consultant is None:
        consultant_note = f"preferred consultant #{wish_id} does not exist"
    elif consultant is not None and not consultant.active:
        consultant_note = f"preferred consultant #{wish_id} is inactive"
    consultant_store = consultant.store_id if consultant is not None and consultant.active else None

    match = subsite_for_order(order.host, settings.ROOT_DOMAIN, location, sites)
    usable = location if location is not None and location.kind == "ok" else None
    inputs: dict[str, Any] = {
        "named_store_id": order.store_id,
        "wished_store_id": order.wished_store_id,
        "consultant_id": wish_id,
        "consultant_store_id": consultant_store,
        "last_store_id": last.store_id if last is not None else None,
        "subsite": match.site if match else None,
        "subsite_origin": match.origin if match else None,
        "region_code": usable.region_code if usable else None,
        "city": usable.city if usable else None,
        "head_office_store_id": head_office_store,
    }

    def infos(need_staff: bool) -> list[StoreInfo]:
        return [
            StoreInfo(
                id=s.id,
                subsite_id=s.subsite_id,
                region_code=s.region_code,
                city=s.city,
                is_default=s.is_default,
                active=s.active and (s.id in staffed or not need_staff),
            )
            for s in stores
            if s.id is not None
        ]

    unstaffed = {s.id for s in stores if s.active and s.id not in staffed}
    choice = choose_store(stores=infos(True), **inputs)
    if choice.store_id is None:
        anyway = choose_store(stores=infos(False), **inputs)
        if anyway.store_id is not None:
            notes.append(
                "no store on the way has an active consultant: tied to the first active one"
            )
            choice, unstaffed = anyway, set()

    trail = []
    for t in choice.trail:
        outcome = t.outcome
        if t.store_id in unstaffed and outcome == "store inactive":
            outcome = "no active consultant"
        elif t.step == "consultant" and t.store_id is None and consultant_note:
            outcome = consultant_note
        trail.append({"step": t.step, "store_id": t.store_id, "outcome": outcome})

    preferred = None
    if consultant is not None and consultant.active:
        if consultant.role != StaffRole.CONSULTANT:
            notes.append(f"preferred staff #{consultant.id} is not a consultant: not assigned")
        elif consultant.store_id != choice.store_id:
            notes.append(
                f"preferred consultant #{consultant.id} works at store {consultant.store_id}, "
                f"the order is tied to store {choice.store_id}: not assigned"
            )
        else:
            preferred = consultant.id
    store = next((s for s in stores if s.id == choice.store_id), None)
    detail: dict[str, Any] = {
        "store_id": choice.store_id,
        "step": choice.step,
        "reason": choice.reason,
        "trail": trail,
        "subsite": (
            {"id": match.site.id, "code": match.site.code, "via": match.origin} if match else None
        ),
        "location": asdict(location) if location else None,
        "wished_store_id": order.wished_store_id,
        "wish": ({"staff_id": wish_id, "source": wish_source} if wish_id is not None else None),
        "last_served": (
            {
                "record_id": last.id,
                "staff_id": last.staff_id,
                "store_id": last.store_id,
                "at": last.occurred_at.isoformat(),
            }
            if last is not None
            else None
        ),
        "preferred_staff_id": preferred,
        "notes": notes,
    }
    return store, detail


async def _exists(db: AsyncSession, model: type[Store] | type[Staff], row_id: int | None) -> bool:
    return row_id is not None and await db.get(model, row_id) is not None


@activity.defn
async def route_order(order: OrderRequest) -> RoutedOrder:
    """Record the order and tie it to exactly one store (the first decision of every flow).

    Runs again after a crash or a retry without deciding anew: once the order row has a
    store, the recorded decision is what it returns.
    """
    async with session() as db:
        existing = await db.get(Order, order.order_id)
        customer_id = await _customer_for(db, order, existing.customer_id if existing else None)
        if existing is None or existing.store_id is None:
            store, detail = await _choose_store(db, order, customer_id)
            place = detail["location"] or {}
            wish = detail["wish"] or {}
            values: dict[str, Any] = {
                "id": order.order_id,
                "type": order.type,
                "category": order.category,
                "priority": order.priority,
                "customer_id": customer_id,
                "customer_name": order.customer.name,
                "client_ip": (order.client_ip or None) and order.client_ip[:45],
                "host": (order.host or None) and order.host[:253],
                "region_code": place.get("region_code"),
                "city": (place.get("city") or None) and place["city"][:100],
                "requested_store_id": (
                    order.store_id if await _exists(db, Store, order.store_id) else None
                ),
                "preferred_staff_id": (
                    wish.get("staff_id") if await _exists(db, Staff, wish.get("staff_id")) else None
                ),
                "store_id": store.id if store else None,
                "subsite_id": store.subsite_id if store else None,
                "store_reason": (detail["reason"] if store else "no active store could take it")[
                    :300
                ],
                "workflow_id": f"order-{order.order_id}",
            }
            routing = {k: v for k, v in values.items() if k not in ("id", "workflow_id")}
            await db.exec(
                insert(Order)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["id"], set_=routing, where=col(Order.store_id).is_(None)
                )
            )
            await _event(db, order.order_id, "routed", "routed", detail)
            await db.commit()
        row = await db.get(Order, order.order_id, populate_existing=True)
        assert row is not None
        event = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == order.order_id, OrderEvent.key == "routed"
                )
            )
        ).first()
        store = await db.get(Store, row.store_id) if row.store_id is not None else None
        subsite = await db.get(SubSite, store.subsite_id) if store else None
    recorded = event.detail if event is not None else {}
    return RoutedOrder(
        store_id=store.id if store else None,
        reason=row.store_reason,
        subsite_id=subsite.id if subsite else None,
        subsite_code=subsite.code if subsite else "",
        store_name=store.name if store else "",
        customer_name=order.customer.name,
        category=order.category,
        preferred_staff_id=recorded.get("preferred_staff_id"),
    )


# ---------------------------------------------------------------- rules


def rule_snapshot(rule: AllocationRule | SubSiteRule) -> Rule:
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
        wish_fallback=rule.wish_fallback,
        wish_wait_seconds=rule.wish_wait_seconds,
        weight_cap=rule.weight_cap,
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


async def rule_in_force(
    db: AsyncSession, order_type: str, subsite_id: int | None
) -> AllocationRule | SubSiteRule:
    """The sub-site's own rule for the order type if its admin set one, else head office's."""
    if subsite_id is not None:
        own = await db.get(SubSiteRule, (subsite_id, order_type))
        if own is not None:
            return own
    return await get_or_create_rule(db, order_type)


@activity.defn
async def load_rule(order_type: str, subsite_id: int | None = None) -> Rule:
    """The rule in force now for the order's sub-site: running orders read it every round.
    (Orders started before the "serve-requests" patch pass no sub-site: head office's.)"""
    async with session() as db:
        return rule_snapshot(await rule_in_force(db, order_type, subsite_id))


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
    rows = await (await db.connection()).execute(_CANDIDATES, params)
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
            lock = text("SELECT pg_advisory_xact_lock(1, :s)")
            await (await db.connection()).execute(lock, {"s": request.store_id})
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
                weight_cap=rule.weight_cap,
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
            # The note the consultant wrote on completing is what the next one reads.
            summary=f"Handled order {order.id} ({order.category or order.type})"
            + (f": {note}" if note else ""),
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
        if t.kind == "accepted":
            order.status, order.accepted_at = OrderStatus.ACCEPTED, t.at
        elif t.kind == "completed":
            order.status, order.completed_at = OrderStatus.COMPLETED, t.at
            if t.staff_id is not None:
                await _remember_service(db, order, t.staff_id, t.at, t.note)
        elif t.kind == "escalated":
            order.escalated, order.status = True, OrderStatus.ESCALATED
        elif t.kind == "waiting":
            order.status, order.assignee_id = OrderStatus.WAITING, None
        elif t.kind in _CLOSING and order.status != OrderStatus.COMPLETED:
            order.assignee_id = None
            order.status = OrderStatus.ESCALATED if order.escalated else OrderStatus.RECEIVED
        await _book_points(db, t, order)
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
async def consultant_available(staff_id: int, at: datetime) -> ConsultantStatus:
    """Can the customer's preferred consultant take an order at `at`, and if not, why.

    Available means: exists, active, a consultant, rotation not paused, on duty at `at`
    and not on leave. Capacity is not counted: the customer asked for this person. When
    only the roster stands in the way, `next_duty_start` says when they are next on duty
    (for the rule's `wait_for_shift`); a paused rotation has no known end, so None.
    """
    async with session() as db:
        staff = await db.get(Staff, staff_id)
        if staff is None:
            return ConsultantStatus(staff_id, False, f"staff {staff_id} does not exist")
        slots = (
            await db.exec(
                select(DutySlot).where(DutySlot.staff_id == staff_id, DutySlot.ends_at > at)
            )
        ).all()
        leaves = (
            await db.exec(select(Leave).where(Leave.staff_id == staff_id, Leave.ends_at > at))
        ).all()

    def status(available: bool, reason: str = "", nxt: datetime | None = None) -> ConsultantStatus:
        return ConsultantStatus(staff_id, available, reason, staff.store_id, nxt)

    if not staff.active:
        return status(False, f"staff {staff_id} is inactive")
    if staff.role != StaffRole.CONSULTANT:
        return status(False, f"staff {staff_id} is not a consultant")
    if staff.rotation_paused:
        return status(False, f"staff {staff_id} has paused their rotation (out of office)")
    duty = [Window(s.starts_at, s.ends_at) for s in slots]
    away = [Window(lv.starts_at, lv.ends_at) for lv in leaves]
    if on_duty(at, duty, away):
        return status(True)
    on_leave = any(w.covers(at) for w in duty) and any(w.covers(at) for w in away)
    why = f"staff {staff_id} is " + ("on leave" if on_leave else "not on duty")
    return status(False, why, next_free_start(at, duty, away))


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
    consultant_available,
    load_rule,
    assign_order,
    record_transition,
    next_duty_start,
    store_contacts,
    check_staff_in_store,
]
