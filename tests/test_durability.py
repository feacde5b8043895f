"""Durability: worker restarts, continue-as-new, the other order types, recorded histories."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.worker import Replayer

from models import DutySlot
from models.db import session
from starter import workflow_id
from tests.api_helpers import assignments_of
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, notices, set_rule, wait_for_round
from worker import build_worker
from workflows.contracts import ManagerAction, OrderInput, OrderView, StaffAction
from workflows.dispatch import (
    ORDER_WORKFLOWS,
    AssignedUnprocessedOrderWorkflow,
    NewOrderWorkflow,
    UnassignedOrderWorkflow,
)

HISTORIES = Path(__file__).parent / "histories"


async def test_worker_restarted_mid_order_continues_from_history(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=300, reminder_before_seconds=0, max_rounds=10)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    queue = f"{dispatch.task_queue}-restart"
    # No workflow cache, hence no sticky queue: the next worker gets the order's next task
    # at once, and every task of this one is itself a replay from history.
    async with build_worker(dispatch.client, task_queue=queue, max_cached_workflows=0):
        handle = await dispatch.client.start_workflow(
            NewOrderWorkflow.run,
            OrderInput(order=order),
            id=workflow_id(order.order_id),
            task_queue=queue,
        )
        first = await wait_for_round(order.order_id, 1)

        async def only_the_timer_pending() -> None:
            assert [n.status for n in await notices(order.order_id)] == ["sent", "sent"]
            last = (await handle.fetch_history()).events[-1]
            # A completed workflow task (or the timer it started) closes the history: no
            # task is left for a worker, so time can be skipped while none is running.
            assert last.event_type in (
                EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
                EventType.EVENT_TYPE_TIMER_STARTED,
            ), last.event_type

        await eventually(only_the_timer_pending)
    # The worker is gone; the order's timer keeps running on the server.
    await dispatch.env.sleep(301)
    async with build_worker(dispatch.client, task_queue=queue):
        second = await wait_for_round(order.order_id, 2)
        assert second.staff_id != first.staff_id
        await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=second.staff_id))
        await handle.execute_update(
            NewOrderWorkflow.complete, StaffAction(staff_id=second.staff_id)
        )
        result = await handle.result()
    assert (result.status, result.round) == ("completed", 2)
    # One assignment per round and one notice per event, however often the worker restarted.
    keys = [n.idempotency_key for n in await notices(order.order_id)]
    assert len(keys) == len(set(keys))


async def test_long_unhandled_order_continues_as_new_with_its_state(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=60, reminder_before_seconds=0, max_rounds=100)
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle = await dispatch.client.start_workflow(
        NewOrderWorkflow.run,
        OrderInput(order=order, history_limit=120),
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )
    first_run = handle.result_run_id
    for round_ in range(1, 9):
        await wait_for_round(order.order_id, round_)
        await dispatch.env.sleep(61)
    latest: WorkflowHandle[NewOrderWorkflow, OrderView] = dispatch.client.get_workflow_handle(
        workflow_id(order.order_id), result_type=OrderView
    )
    description = await latest.describe()
    assert description.run_id != first_run, "the order should have continued as new"
    view = await latest.query(NewOrderWorkflow.live_state)
    assert view.round >= 9 and view.assignee_id is not None
    rounds = await assignments_of(order.order_id)
    assert [a.round for a in rounds] == list(range(1, len(rounds) + 1))
    await latest.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=view.assignee_id))
    await latest.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=view.assignee_id))
    assert (await latest.result()).status == "completed"


async def record_history(handle: WorkflowHandle[object, OrderView], name: str) -> None:
    """Keep this run's history beside the tests when RECORD_HISTORIES=1 (see test_replay)."""
    if os.environ.get("RECORD_HISTORIES") != "1":
        return
    history = await handle.fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    (HISTORIES / f"{name}.json").write_text(
        json.dumps(json.loads(history.to_json()), indent=1) + "\n"
    )


async def _replay(handle: WorkflowHandle[object, OrderView]) -> None:
    history = await handle.fetch_history()
    await Replayer(workflows=ORDER_WORKFLOWS).replay_workflow(history)


async def test_new_order_history_replays(dispatch: Dispatch) -> None:
    await set_rule(accept_timeout_seconds=120, reminder_before_seconds=60, max_rounds=5)
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await dispatch.client.start_workflow(
        NewOrderWorkflow.run,
        OrderInput(order=order),
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )
    await wait_for_round(order.order_id, 1)
    await dispatch.env.sleep(121)
    second = await wait_for_round(order.order_id, 2)
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=second.staff_id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=second.staff_id))
    await handle.result()
    await _replay(handle)
    await record_history(handle, "new_order")


async def test_unassigned_order_waits_then_is_declined_and_reassigned(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    shift = datetime.now(UTC) + timedelta(hours=1)
    async with session() as db:
        for person in world.consultants:
            db.add(
                DutySlot(
                    staff_id=person.id,
                    store_id=world.store.id,
                    starts_at=shift,
                    ends_at=shift + timedelta(hours=8),
                )
            )
        await db.commit()
    order = new_order(world, type="unassigned")
    handle = await dispatch.client.start_workflow(
        UnassignedOrderWorkflow.run,
        OrderInput(order=order),
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )

    async def waiting() -> None:
        assert (await handle.query(UnassignedOrderWorkflow.live_state)).status == "waiting"

    await eventually(waiting)
    await dispatch.env.sleep(timedelta(hours=1, minutes=1))
    first = await wait_for_round(order.order_id, 1)
    await handle.execute_update(
        UnassignedOrderWorkflow.decline, StaffAction(staff_id=first.staff_id, reason="off sick")
    )
    second = await wait_for_round(order.order_id, 2)
    assert second.staff_id != first.staff_id
    await handle.execute_update(
        UnassignedOrderWorkflow.accept, StaffAction(staff_id=second.staff_id)
    )
    await handle.execute_update(
        UnassignedOrderWorkflow.complete, StaffAction(staff_id=second.staff_id)
    )
    await handle.result()
    await _replay(handle)
    await record_history(handle, "unassigned_order")


async def test_roster_change_wakes_a_waiting_order(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    order = new_order(world, type="unassigned")
    handle = await dispatch.client.start_workflow(
        UnassignedOrderWorkflow.run,
        OrderInput(order=order),
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )

    async def waiting() -> None:
        assert (await handle.query(UnassignedOrderWorkflow.live_state)).status == "waiting"

    await eventually(waiting)
    async with session() as db:  # someone is put on duty now, outside any pattern
        db.add(
            DutySlot(
                staff_id=world.consultants[0].id,
                store_id=world.store.id,
                starts_at=datetime(2000, 1, 1, tzinfo=UTC),
                ends_at=datetime.now(UTC) + timedelta(days=3),
                source="manual",
            )
        )
        await db.commit()
    await handle.signal(UnassignedOrderWorkflow.roster_changed)
    first = await wait_for_round(order.order_id, 1)
    assert first.staff_id == world.consultants[0].id


async def test_assigned_unprocessed_order_reminds_then_reassigns(dispatch: Dispatch) -> None:
    await set_rule("assigned_unprocessed", accept_timeout_seconds=600, max_rounds=5)
    world = await make_store_world(consultants=3)
    holder = world.consultants[0]
    order = new_order(world, type="assigned_unprocessed", assignee_id=holder.id)
    handle = await dispatch.client.start_workflow(
        AssignedUnprocessedOrderWorkflow.run,
        OrderInput(order=order),
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )

    first = await wait_for_round(order.order_id, 1)
    assert (first.staff_id, first.reason["method"]) == (holder.id, "named")

    async def reminded() -> None:  # the holder is reminded, not told of a "new" order
        sent = {(n.kind, n.channel) for n in await notices(order.order_id) if n.round == 1}
        assert sent == {("reminder", "sms")}, sent

    await eventually(reminded)
    await dispatch.env.sleep(601)
    second = await wait_for_round(order.order_id, 2)
    assert second.staff_id != holder.id
    target = next(c.id for c in world.consultants if c.id not in (holder.id, second.staff_id))
    view = await handle.execute_update(
        AssignedUnprocessedOrderWorkflow.reassign,
        ManagerAction(actor="manager", staff_id=target, reason="knows the customer"),
    )
    assert view.assignee_id == target
    await handle.execute_update(
        AssignedUnprocessedOrderWorkflow.accept, StaffAction(staff_id=target)
    )
    await handle.execute_update(
        AssignedUnprocessedOrderWorkflow.complete, StaffAction(staff_id=target)
    )
    await handle.result()
    await _replay(handle)
    await record_history(handle, "assigned_unprocessed_order")
