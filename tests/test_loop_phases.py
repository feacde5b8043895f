"""The 1.0 loop's phases end to end, and the orders that used to wait silently or bounce back
(time-skipping Temporal, real PostgreSQL, real SMTP and SMS sinks)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlmodel import select
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError

from models import DEFAULT_CHANNELS, AllocationRule, Order, Staff
from models.db import session
from services.rules import rule_snapshot
from starter import workflow_id
from tests.api_helpers import add_slot, assignments_of, events_of
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, notices, set_rule, start, wait_for_round
from workflows.contracts import CancelRequest, ManagerAction, OrderView, StaffAction
from workflows.dispatch import NewOrderWorkflow


async def order_row(order_id: str) -> Order:
    async with session() as db:
        row = await db.get(Order, order_id, populate_existing=True)
    assert row is not None
    return row


async def test_a_waiting_order_stays_waiting_across_continue_as_new(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    shift = datetime.now(UTC) + timedelta(hours=3)
    assert world.consultants[0].id is not None and world.store.id is not None
    await add_slot(world.consultants[0].id, world.store.id, shift, shift + timedelta(hours=8))
    order = new_order(world)
    first_run = (await start(dispatch, order, history_limit=40)).result_run_id
    latest = dispatch.client.get_workflow_handle_for(
        NewOrderWorkflow.run, workflow_id(order.order_id)
    )

    async def continued() -> None:
        # Each roster change is one more turn of the loop: select (nobody), wait again.
        await latest.signal(NewOrderWorkflow.roster_changed)
        assert (await latest.describe()).run_id != first_run

    await eventually(continued, within=30)

    async def still_waiting() -> OrderView:
        view = await latest.query(NewOrderWorkflow.live_state)
        assert (view.phase, view.status, view.wait_reason) == (
            "waiting_for_shift",
            "waiting",
            "next shift",
        )
        return view

    await eventually(still_waiting)
    row = await order_row(order.order_id)
    assert (row.status, row.phase, row.wait_reason) == (
        "waiting",
        "waiting_for_shift",
        "next shift",
    )


async def test_a_store_with_no_roster_escalates_at_once(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2, on_duty=False)  # no duty slot at all
    order = new_order(world)
    handle = await start(dispatch, order)

    async def escalated_and_told() -> None:
        view = await handle.query(NewOrderWorkflow.live_state)
        assert (view.phase, view.wait_reason, view.escalated) == (
            "waiting_for_shift",
            "no roster",
            True,
        )
        told = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
        assert ("escalated", world.manager.id) in told

    await eventually(escalated_and_told)
    escalations = [e for e in await events_of(order.order_id) if e.kind == "escalated"]
    assert len(escalations) == 1 and "no roster" in escalations[0].detail["note"]
    row = await order_row(order.order_id)
    assert (row.status, row.wait_reason, row.escalated) == ("waiting", "no roster", True)


async def test_declines_in_a_two_person_store_alternate(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0, max_rounds=50)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    holders = [(await wait_for_round(order.order_id, 1)).staff_id]
    for round_ in range(2, 10):
        await handle.execute_update(
            NewOrderWorkflow.decline, StaffAction(staff_id=holders[-1], reason="busy")
        )
        holders.append((await wait_for_round(order.order_id, round_)).staff_id)
    # Never straight back to the one who just declined, with someone else on duty.
    assert all(a != b for a, b in itertools.pairwise(holders)), holders


async def test_staff_no_channel_reaches_are_not_selected(dispatch: Dispatch) -> None:
    await set_rule(channels={"assigned": ["sms"]})
    world = await make_store_world(consultants=2)
    unreachable = world.consultants[0]
    async with session() as db:
        staff = await db.get(Staff, unreachable.id)
        assert staff is not None
        staff.phone = None  # e-mail only, and the rule's `assigned` goes by SMS alone
        db.add(staff)
        await db.commit()
    for _ in range(4):
        order = new_order(world)
        await start(dispatch, order)
        first = await wait_for_round(order.order_id, 1)
        assert first.staff_id == world.consultants[1].id
        assert "no channel" in first.reason["excluded"][str(unreachable.id)]


def test_a_partial_channels_map_keeps_the_other_kinds_defaults() -> None:
    rule = rule_snapshot(AllocationRule(order_type="new", channels={"assigned": ["sms"]}))
    assert rule.channels["assigned"] == ["sms"]
    assert rule.channels["escalated"] == DEFAULT_CHANNELS["escalated"]
    assert rule.channels["timed_out"] == DEFAULT_CHANNELS["timed_out"]


async def test_decline_clears_accepted_at_and_completion_note_is_remembered(
    dispatch: Dispatch,
) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0)
    order = new_order(await make_store_world(consultants=2))
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    await handle.execute_update(
        NewOrderWorkflow.accept, StaffAction(staff_id=first.staff_id, reason="calling them now")
    )
    assert (await order_row(order.order_id)).accepted_at is not None
    accepted = [e for e in await events_of(order.order_id) if e.kind == "accepted"]
    assert accepted[0].detail["note"] == "calling them now"
    await handle.execute_update(NewOrderWorkflow.decline, StaffAction(staff_id=first.staff_id))
    second = await wait_for_round(order.order_id, 2)
    assert (await order_row(order.order_id)).accepted_at is None
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=second.staff_id))
    await handle.execute_update(
        NewOrderWorkflow.complete,
        StaffAction(staff_id=second.staff_id, reason="booked the Great Wall tour"),
    )
    from models import CommunicationRecord

    async with session() as db:
        record = (
            await db.exec(
                select(CommunicationRecord).where(CommunicationRecord.order_id == order.order_id)
            )
        ).one()
    assert "booked the Great Wall tour" in record.summary


# ------------------------------------------------------------------ cancel


async def test_cancel_ends_the_order_and_tells_the_holder(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    with pytest.raises(WorkflowUpdateFailedError):
        await handle.execute_update(NewOrderWorkflow.cancel, CancelRequest("manager", "other"))
    view = await handle.execute_update(
        NewOrderWorkflow.cancel, CancelRequest("manager", "duplicate", "entered twice")
    )
    assert (view.status, view.phase, view.assignee_id) == ("cancelled", "cancelled", None)
    assert (await handle.result()).status == "cancelled"

    row = await order_row(order.order_id)
    assert (row.status, row.phase, row.assignee_id) == ("cancelled", "cancelled", None)
    assert row.cancelled_at is not None and row.cancel_reason == "duplicate: entered twice"
    assert [(a.staff_id, a.outcome) for a in await assignments_of(order.order_id)] == [
        (first.staff_id, "cancelled")
    ]
    told = {(n.kind, n.staff_id, n.status) for n in await notices(order.order_id)}
    assert ("cancelled", first.staff_id, "sent") in told
    description = await handle.describe()
    assert description.typed_search_attributes is not None


async def test_cancel_from_temporal_ends_the_order_as_cancelled(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    await handle.cancel()

    async def cancelled() -> None:
        assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
        row = await order_row(order.order_id)
        assert (row.status, row.phase) == ("cancelled", "cancelled")
        told = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
        assert ("cancelled", first.staff_id) in told

    await eventually(cancelled)


async def test_a_step_the_database_refuses_escalates_the_order_as_stuck(
    dispatch: Dispatch, clean_db: str
) -> None:
    """The database refuses round 2's row (a constraint, standing for any refusal of the
    data): no retry can fix it, so the order is escalated with the reason, not retried in
    silence; once fixed, a manager's re-dispatch goes on."""
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE assignment ADD CONSTRAINT refuse_round_2 CHECK (round < 2)")
    try:
        await handle.execute_update(NewOrderWorkflow.decline, StaffAction(staff_id=first.staff_id))

        async def stuck() -> None:
            view = await handle.query(NewOrderWorkflow.live_state)
            assert (view.phase, view.status) == ("waiting_for_manager", "escalated")
            assert view.wait_reason.startswith("stuck: IntegrityError")
            told = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
            assert ("escalated", world.manager.id) in told

        await eventually(stuck)
        row = await order_row(order.order_id)
        assert (row.status, row.phase) == ("escalated", "waiting_for_manager")
        [event] = [e for e in await events_of(order.order_id) if e.kind == "stuck"]
        assert "refuse_round_2" in event.detail["note"]
    finally:
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("ALTER TABLE assignment DROP CONSTRAINT IF EXISTS refuse_round_2")

    view = await handle.execute_update(
        NewOrderWorkflow.redispatch, ManagerAction(actor="manager", reason="fixed")
    )
    assert (view.phase, view.round) == ("offered", 2)
