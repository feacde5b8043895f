"""Selection: the rule in force (`load_rule`) and one staff member per round (`assign_order`).

Idempotent: one assignment per order and round; a retry after the commit returns the same
decision instead of drawing again.
"""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.projection import _event
from dispatch.selection import Candidate, Decision
from dispatch.selection import select as select_staff
from models import (
    Assignment,
    Order,
    OrderStatus,
    Staff,
)
from models.db import session
from observability import domain as domain_metrics
from services.rules import rule_in_force, rule_snapshot
from services.staff import candidates
from workflows.contracts import (
    AssignRequest,
    AssignResult,
    Rule,
)

# ---------------------------------------------------------------- rules


@activity.defn
async def load_rule(order_type: str, subsite_id: int | None = None) -> Rule:
    """The rule in force now for the order's sub-site: running orders read it every round.
    (An order with no sub-site reads head office's.)"""
    async with session() as db:
        return rule_snapshot(await rule_in_force(db, order_type, subsite_id))


# ---------------------------------------------------------------- selection


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
        reach = rule.channels.get("assigned", [])
        pool = await candidates(db, store_id=request.store_id, at=request.at, channels=reach)
        if rule.capacity_per_staff is not None or any(c.capacity for c in pool):
            # Capacity is a count over all orders of the store: decide one order at a time.
            lock = text("SELECT pg_advisory_xact_lock(1, :s)")
            await (await db.connection()).execute(lock, {"s": request.store_id})
            pool = await candidates(db, store_id=request.store_id, at=request.at, channels=reach)
        if request.forced_staff_id is not None:
            decision = _forced_decision(request, pool)
        else:
            decision = select_staff(
                pool,
                draw=random.random(),
                previous=frozenset(request.previous),
                latest=request.previous[-1] if request.previous else None,
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
        order.phase, order.wait_reason = "offered", ""
        order.assigned_at = request.at
        order.updated_at = request.at
        await _event(db, request.order_id, f"assigned:{request.round}", "assigned", reason)
        await db.commit()
        domain_metrics.count_order_event("assigned", store_id=request.store_id)
        return await _result(db, assignment)


def _reachability(staff: Staff | None) -> list[str]:
    if staff is None or staff.phone or staff.email:
        return []
    return [f"staff {staff.id} has neither phone nor email: notices cannot reach them"]
