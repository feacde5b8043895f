"""The dispatch loop end to end: time-skipping Temporal, real PostgreSQL, real SMTP and SMS sink."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from models import AllocationRule, Assignment, DutySlot, Notification, Order, OrderEvent
from models.db import session
from starter import start_order, workflow_id
from tests.api_helpers import assignments_of
from tests.conftest import Dispatch, eventually
from tests.factories import StoreWorld, make_store_world
from workflows.contracts import (
    CustomerIn,
    ManagerAction,
    OrderInput,
    OrderRequest,
    OrderView,
    StaffAction,
)
from workflows.dispatch import NewOrderWorkflow


def new_order(world: StoreWorld, **overrides: object) -> OrderRequest:
    fields: dict[str, object] = {
        "order_id": f"T{uuid.uuid4().hex[:10]}",
        "type": "new",
        "customer": CustomerIn(name="Li Lei", phone="+8613800000001"),
        "category": "tour",
        "store_id": world.store.id,
    }
    return OrderRequest(**(fields | overrides))


async def set_rule(order_type: str = "new", **fields: object) -> None:
    async with session() as db:
        rule = await db.get(AllocationRule, order_type) or AllocationRule(order_type=order_type)
        for name, value in fields.items():
            setattr(rule, name, value)
        db.add(rule)
        await db.commit()


async def notices(order_id: str) -> list[Notification]:
    async with session() as db:
        rows = await db.exec(select(Notification).where(Notification.order_id == order_id))
        return list(rows.all())


async def wait_for_round(order_id: str, round_: int) -> Assignment:
    async def check() -> Assignment:
        rows = await assignments_of(order_id)
        assert len(rows) >= round_, f"{len(rows)} rounds so far"
        return rows[round_ - 1]

    return await eventually(check)


async def wait_until_waiting(order_id: str) -> None:
    """Until the order's projection says it waits for a shift (nobody could take it)."""

    async def waiting() -> None:
        async with session() as db:
            row = await db.get(Order, order_id)
            assert row is not None and row.status == "waiting", row

    await eventually(waiting)


async def start(
    d: Dispatch, order: OrderRequest, *, history_limit: int | None = None
) -> WorkflowHandle[Any, OrderView]:
    """Start as the web backend does; with `history_limit`, directly (a quick continue-as-new)."""
    if history_limit is None:
        return await start_order(order, client=d.client, task_queue=d.task_queue)
    return await d.client.start_workflow(
        NewOrderWorkflow.run,
        OrderInput(order=order, history_limit=history_limit),
        id=workflow_id(order.order_id),
        task_queue=d.task_queue,
    )


async def test_new_order_is_assigned_and_the_assignee_told(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle = await start(dispatch, order)

    first = await wait_for_round(order.order_id, 1)

    assert first.staff_id in {c.id for c in world.consultants}
    assert first.outcome == "offered"
    assert set(first.reason["values"]) == {str(c.id) for c in world.consultants}
    view = await handle.query(NewOrderWorkflow.live_state)
    assert (view.status, view.assignee_id, view.store_id) == (
        "assigned",
        first.staff_id,
        world.store.id,
    )

    async def told() -> list[Notification]:
        rows = [n for n in await notices(order.order_id) if n.status == "sent"]
        assert sorted((n.kind, n.channel, n.staff_id) for n in rows) == [
            ("assigned", "email", first.staff_id),
            ("assigned", "sms", first.staff_id),
        ]
        return rows

    await eventually(told)
    assignee = next(c for c in world.consultants if c.id == first.staff_id)
    assert [m["to"] for m in dispatch.sinks.sms()] == [assignee.phone]
    assert [m["to"] for m in dispatch.sinks.mail()] == [[assignee.email]]


async def test_unaccepted_order_is_reassigned_until_accepted(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0, max_rounds=10)
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    await dispatch.env.sleep(601)
    second = await wait_for_round(order.order_id, 2)
    await dispatch.env.sleep(601)
    third = await wait_for_round(order.order_id, 3)

    # Nobody who let it time out is offered it again while someone else is on duty.
    assert len({first.staff_id, second.staff_id, third.staff_id}) == 3
    rows = await assignments_of(order.order_id)
    assert [a.outcome for a in rows[:2]] == ["timed_out", "timed_out"]

    async def manager_told() -> None:
        kinds = [
            (n.kind, n.staff_id, n.round)
            for n in await notices(order.order_id)
            if n.kind == "timed_out" and n.channel == "sms"
        ]
        assert sorted(kinds) == [
            ("timed_out", world.manager.id, 1),
            ("timed_out", world.manager.id, 2),
        ]

    await eventually(manager_told)
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=third.staff_id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=third.staff_id))
    result = await handle.result()
    assert (result.status, result.assignee_id, result.round) == ("completed", third.staff_id, 3)


async def test_accept_and_complete_end_the_workflow(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    accepted = await handle.execute_update(
        NewOrderWorkflow.accept, StaffAction(staff_id=first.staff_id)
    )
    assert accepted.status == "accepted"
    done = await handle.execute_update(
        NewOrderWorkflow.complete, StaffAction(staff_id=first.staff_id)
    )
    assert done.status == "completed"
    assert (await handle.result()).status == "completed"

    async with session() as db:
        row = await db.get(Order, order.order_id)
        assert row is not None and row.status == "completed" and row.completed_at is not None
    assert [a.outcome for a in await assignments_of(order.order_id)] == ["completed"]


async def test_rejected_updates_change_nothing(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    other = next(c.id for c in world.consultants if c.id != first.staff_id)
    before = await handle.query(NewOrderWorkflow.live_state)

    with pytest.raises(WorkflowUpdateFailedError) as not_yours:
        await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=other))
    assert "only the current assignee" in str(not_yours.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as too_early:
        await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=first.staff_id))
    assert "accept the order before" in str(too_early.value.cause)

    assert await handle.query(NewOrderWorkflow.live_state) == before
    assert [a.outcome for a in await assignments_of(order.order_id)] == ["offered"]

    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=first.staff_id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=first.staff_id))
    # Processed once: the workflow has ended, so a second "complete" finds nothing to update.
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=first.staff_id))


async def test_decline_reassigns_at_once_to_someone_else(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    await handle.execute_update(
        NewOrderWorkflow.decline, StaffAction(staff_id=first.staff_id, reason="busy")
    )
    second = await wait_for_round(order.order_id, 2)

    assert second.staff_id != first.staff_id
    assert (await assignments_of(order.order_id))[0].outcome == "declined"


async def test_manager_reassigns_to_a_named_consultant(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    target = next(c.id for c in world.consultants if c.id != first.staff_id)

    view = await handle.execute_update(
        NewOrderWorkflow.reassign, ManagerAction(actor="manager", staff_id=target, reason="VIP")
    )

    assert (view.assignee_id, view.round) == (target, 2)
    rows = await assignments_of(order.order_id)
    assert [(a.staff_id, a.outcome) for a in rows] == [
        (first.staff_id, "reassigned"),
        (target, "offered"),
    ]
    assert rows[1].reason["method"] == "named"
    with pytest.raises(WorkflowUpdateFailedError) as outsider:
        await handle.execute_update(
            NewOrderWorkflow.reassign, ManagerAction(actor="manager", staff_id=world.manager.id)
        )
    refused = outsider.value.cause
    assert "not a consultant of store" in str(getattr(refused, "cause", None) or refused)


async def test_nobody_on_duty_waits_for_the_next_shift(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    shift = datetime.now(UTC) + timedelta(hours=3)
    async with session() as db:
        db.add(
            DutySlot(
                staff_id=world.consultants[0].id,
                store_id=world.store.id,
                starts_at=shift,
                ends_at=shift + timedelta(hours=8),
            )
        )
        await db.commit()
    order = new_order(world)
    handle = await start(dispatch, order)

    async def waiting() -> None:
        view = await handle.query(NewOrderWorkflow.live_state)
        assert view.status == "waiting"

    await eventually(waiting)
    assert await assignments_of(order.order_id) == []

    async def manager_told() -> None:
        kinds = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
        assert ("waiting", world.manager.id) in kinds

    await eventually(manager_told)
    await dispatch.env.sleep(timedelta(hours=3, minutes=1))
    first = await wait_for_round(order.order_id, 1)
    assert first.staff_id == world.consultants[0].id
    assert first.assigned_at >= shift


async def test_duplicate_starts_make_one_workflow(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handles = await asyncio.gather(*(start(dispatch, order) for _ in range(10)))

    assert len({h.result_run_id or h.run_id for h in handles}) == 1
    await wait_for_round(order.order_id, 1)
    async with session() as db:
        orders = (await db.exec(select(Order).where(Order.id == order.order_id))).all()
        routed = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == order.order_id, OrderEvent.kind == "routed"
                )
            )
        ).all()
    assert len(orders) == 1 and len(routed) == 1


async def test_rule_change_takes_effect_at_the_next_round(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0, max_rounds=10)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    assert first.accept_deadline - first.assigned_at == timedelta(seconds=600)

    await set_rule(accept_timeout_seconds=120)
    await dispatch.env.sleep(601)
    second = await wait_for_round(order.order_id, 2)

    assert second.accept_deadline - second.assigned_at == timedelta(seconds=120)


async def test_escalation_after_max_rounds_tells_manager(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=60, reminder_before_seconds=0, max_rounds=2)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    await wait_for_round(order.order_id, 1)
    await dispatch.env.sleep(61)
    await wait_for_round(order.order_id, 2)
    await dispatch.env.sleep(61)
    third = await wait_for_round(order.order_id, 3)

    view = await handle.query(NewOrderWorkflow.live_state)
    assert (view.status, view.escalated) == ("escalated", True)
    # Only two consultants: the third round goes back to one who had it before.
    assert third.reason["reused_previous"] is True

    async def escalation_sent() -> None:
        kinds = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
        assert ("escalated", world.manager.id) in kinds

    await eventually(escalation_sent)
    async with session() as db:
        row = await db.get(Order, order.order_id)
        assert row is not None and row.escalated and row.status == "escalated"


async def test_escalated_order_waits_for_the_manager_when_the_rule_says_so(
    dispatch: Dispatch,
) -> None:
    await set_rule(
        accept_timeout_seconds=60,
        reminder_before_seconds=0,
        max_rounds=1,
        after_escalation="wait_for_manager",
    )
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    await wait_for_round(order.order_id, 1)
    await dispatch.env.sleep(61)

    async def escalated_and_idle() -> None:
        view = await handle.query(NewOrderWorkflow.live_state)
        assert (view.status, view.assignee_id) == ("escalated", None)

    await eventually(escalated_and_idle)
    await dispatch.env.sleep(3600)  # nobody re-dispatches: no new round, however long
    assert len(await assignments_of(order.order_id)) == 1

    view = await handle.execute_update(
        NewOrderWorkflow.redispatch, ManagerAction(actor="manager", reason="call them")
    )
    assert (view.round, view.status) == (2, "escalated")
    assert view.assignee_id is not None


async def test_capacity_cap_spreads_orders_and_makes_the_next_one_wait(
    dispatch: Dispatch,
) -> None:
    await set_rule(capacity_per_staff=1, reminder_before_seconds=0)
    world = await make_store_world(consultants=2)
    orders = [new_order(world) for _ in range(3)]
    for order in orders[:2]:
        await start(dispatch, order)
        await wait_for_round(order.order_id, 1)
    third = await start(dispatch, orders[2])

    holders = {(await assignments_of(o.order_id))[0].staff_id for o in orders[:2]}
    assert holders == {c.id for c in world.consultants}

    async def waiting() -> None:
        assert (await third.query(NewOrderWorkflow.live_state)).status == "waiting"

    await eventually(waiting)
    async with session() as db:
        events = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == orders[2].order_id, OrderEvent.kind == "nobody_available"
                )
            )
        ).all()
    assert events and all("at capacity" in why for why in events[0].detail["excluded"].values())
