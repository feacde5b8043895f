"""Manager requests and long-lived orders at awkward moments (the "serve-requests" patch):
a re-dispatch that lands while a round is being chosen, one that lands when the history is
due for continue-as-new, two at once, and a store whose people are all at their cap."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlmodel import col, select
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from activities import selection as acts
from models import Assignment, OrderEvent
from models.db import session
from starter import start_order, workflow_id
from tests.api_helpers import assignments_of
from tests.conftest import Dispatch, dispatch_with, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, notices, set_rule, start, wait_for_round
from workflows.contracts import (
    AssignRequest,
    AssignResult,
    CancelRequest,
    ManagerAction,
    OrderInput,
    OrderRequest,
    StaffAction,
)
from workflows.contracts import OrderView as View
from workflows.dispatch import NewOrderWorkflow

REDISPATCH = ManagerAction(actor="manager", reason="customer called the store")


async def events_of_kind(order_id: str, kind: str) -> list[OrderEvent]:
    async with session() as db:
        rows = await db.exec(
            select(OrderEvent)
            .where(OrderEvent.order_id == order_id, OrderEvent.kind == kind)
            .order_by(col(OrderEvent.id))
        )
        return list(rows.all())


async def finish(handle: WorkflowHandle[Any, View], staff_id: int) -> View:
    """Accept and complete as `staff_id`; the workflow must then close (no handler left)."""
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=staff_id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=staff_id))
    return await asyncio.wait_for(handle.result(), 30)


class SlowSelection:
    """`assign_order` that, while `hold` is clear, blocks until it is set: a selection that
    is under way for as long as the test needs."""

    def __init__(self) -> None:
        self.hold = asyncio.Event()
        self.hold.set()
        self.started = asyncio.Event()

    @activity.defn(name="assign_order")
    async def assign_order(self, request: AssignRequest) -> AssignResult:
        self.started.set()
        await self.hold.wait()
        return await acts.assign_order(request)


@pytest.fixture
async def slow(dispatch: Dispatch) -> AsyncIterator[tuple[Dispatch, SlowSelection]]:
    selection = SlowSelection()
    async with dispatch_with(dispatch, {acts.assign_order: selection.assign_order}) as slowed:
        yield slowed, selection


async def round_2_held_after_a_decline(
    dispatch: Dispatch, selection: SlowSelection
) -> tuple[WorkflowHandle[Any, View], OrderRequest, Assignment]:
    """An order whose first assignee declined, with round 2's selection held under way."""
    await set_rule(reminder_before_seconds=0, accept_timeout_seconds=600, max_rounds=10)
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle = await start_order(order, client=dispatch.client, task_queue=dispatch.task_queue)
    first = await wait_for_round(order.order_id, 1)
    selection.hold.clear()
    selection.started.clear()
    await handle.execute_update(NewOrderWorkflow.decline, StaffAction(staff_id=first.staff_id))
    await asyncio.wait_for(selection.started.wait(), 10)  # round 2 is being chosen now
    return handle, order, first


async def test_a_redispatch_landing_mid_selection_is_served_by_the_next_round(
    slow: tuple[Dispatch, SlowSelection],
) -> None:
    selection = slow[1]
    handle, order, first = await round_2_held_after_a_decline(*slow)
    served = asyncio.create_task(handle.execute_update(NewOrderWorkflow.redispatch, REDISPATCH))
    await asyncio.sleep(0.5)  # the update is admitted while the selection is held
    selection.hold.set()

    view = await asyncio.wait_for(served, 30)

    rounds = await assignments_of(order.order_id)
    assert [(a.round, a.outcome) for a in rounds] == [
        (1, "declined"),
        (2, "reassigned"),
        (3, "offered"),
    ]
    assert (view.round, view.assignee_id) == (3, rounds[2].staff_id)
    assert rounds[2].staff_id not in (first.staff_id, rounds[1].staff_id)
    assert (await finish(handle, rounds[2].staff_id)).status == "completed"


async def test_a_redispatch_when_the_history_is_due_for_continue_as_new_is_served_first(
    dispatch: Dispatch,
) -> None:
    await set_rule(reminder_before_seconds=0, accept_timeout_seconds=600)
    world = await make_store_world(consultants=3)
    order = new_order(world)
    handle: WorkflowHandle[Any, View] = await dispatch.client.start_workflow(
        NewOrderWorkflow.run,
        OrderInput(order=order, history_limit=15),  # already past it after round 1
        id=workflow_id(order.order_id),
        task_queue=dispatch.task_queue,
    )
    first_run = handle.result_run_id
    first = await wait_for_round(order.order_id, 1)

    view = await asyncio.wait_for(
        handle.execute_update(NewOrderWorkflow.redispatch, REDISPATCH), 30
    )

    assert view.round == 2 and view.assignee_id not in (None, first.staff_id)
    await dispatch.env.sleep(601)  # round 2 times out; the next round starts on a fresh run
    third = await wait_for_round(order.order_id, 3)
    latest: WorkflowHandle[Any, View] = dispatch.client.get_workflow_handle(
        workflow_id(order.order_id), result_type=View
    )
    assert (await latest.describe()).run_id != first_run
    assert (await finish(latest, third.staff_id)).status == "completed"


async def test_two_manager_actions_at_once_never_leave_an_update_hanging(
    dispatch: Dispatch,
) -> None:
    await set_rule(reminder_before_seconds=0, accept_timeout_seconds=600, max_rounds=10)
    world = await make_store_world(consultants=4)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    target = next(c.id for c in world.consultants if c.id != first.staff_id)
    assert target is not None

    outcomes = await asyncio.wait_for(
        asyncio.gather(
            handle.execute_update(
                NewOrderWorkflow.reassign,
                ManagerAction(actor="manager", staff_id=target, reason="knows the customer"),
            ),
            handle.execute_update(NewOrderWorkflow.redispatch, REDISPATCH),
            return_exceptions=True,
        ),
        30,
    )

    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    served = [o for o in outcomes if isinstance(o, View)]
    assert len(served) + len(refused) == 2, outcomes
    assert served, "at least one of the two is served"
    live = await handle.query(NewOrderWorkflow.live_state)
    for failure in refused:
        # Refused while the other was under way; or, the selection being a local activity
        # (its workflow task held open meanwhile), taken in only after the other was served
        # — which here gave the order to the very person the reassign named.
        why = str(failure.cause)
        assert "already under way" in why or (
            f"already with staff {target}" in why and live.assignee_id == target
        ), why
    assert live.round == 1 + len(served)
    assert live.assignee_id is not None
    assert (await finish(handle, live.assignee_id)).status == "completed"


async def test_a_store_whose_people_are_all_at_their_cap_backs_off_instead_of_spinning(
    dispatch: Dispatch,
) -> None:
    await set_rule(capacity_per_staff=1, reminder_before_seconds=0, accept_timeout_seconds=86400)
    world = await make_store_world(consultants=1)
    held = new_order(world)
    await start(dispatch, held)
    await wait_for_round(held.order_id, 1)
    waiting = new_order(world, order_id=f"W{uuid.uuid4().hex[:10]}")
    handle = await start(dispatch, waiting)

    async def tried_once() -> None:
        assert len(await events_of_kind(waiting.order_id, "nobody_available")) >= 1

    await eventually(tried_once)
    await asyncio.sleep(2)  # a spinning loop records many attempts in this time
    tries_early = len(await events_of_kind(waiting.order_id, "nobody_available"))
    await dispatch.env.sleep(31)  # the first back-off
    await eventually(lambda: _at_least(waiting.order_id, tries_early + 1))
    tries_later = len(await events_of_kind(waiting.order_id, "nobody_available"))

    assert tries_early == 1
    assert tries_later == 2
    live = await handle.query(NewOrderWorkflow.live_state)
    assert live.status == "waiting"


async def _at_least(order_id: str, count: int) -> None:
    assert len(await events_of_kind(order_id, "nobody_available")) >= count


async def test_a_cancel_sent_mid_selection_ends_the_order_with_no_open_round(
    slow: tuple[Dispatch, SlowSelection],
) -> None:
    """The selection is a local activity: the workflow task stays open while it runs, so a
    cancel sent meanwhile is taken in once the round is recorded. That round is closed as
    cancelled and its holder told; nothing is left open."""
    selection = slow[1]
    handle, order, _ = await round_2_held_after_a_decline(*slow)
    cancelled = asyncio.create_task(
        handle.execute_update(NewOrderWorkflow.cancel, CancelRequest("manager", "spam"))
    )
    await asyncio.sleep(0.5)  # the update is sent while the selection is held
    selection.hold.set()

    view = await asyncio.wait_for(cancelled, 30)
    assert (view.status, view.assignee_id) == ("cancelled", None)
    assert (await asyncio.wait_for(handle.result(), 30)).status == "cancelled"
    rounds = await assignments_of(order.order_id)
    assert [(a.round, a.outcome) for a in rounds] == [(1, "declined"), (2, "cancelled")]
    told = {(n.kind, n.staff_id) for n in await notices(order.order_id)}
    assert ("cancelled", rounds[1].staff_id) in told
