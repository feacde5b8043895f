"""The stuck-order finder, redrive and reconcile: each kind of stuck order is made for real
(on the Temporal dev server, with its visibility, the real database and sinks), found with
its suggested action, and — where an operation repairs it — moved on again."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import httpx
import psycopg
import pytest
from sqlmodel import select
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from models import Order, OrderEvent
from models.db import session
from operations.reconcile import reconcile
from operations.redrive import redrive
from operations.stuck import Action, StuckKind, StuckOrder, Thresholds, find_stuck
from settings import settings
from starter import start_order
from tests.api_helpers import admin, api_client
from tests.conftest import Dispatch, Sinks, eventually
from tests.factories import StoreWorld, make_store_world
from tests.test_devserver import dev_server  # noqa: F401 (fixture)
from tests.test_order_workflow import new_order, set_rule, wait_for_round, wait_until_waiting
from worker import build_worker
from workflows.contracts import OrderInput, OrderRequest

pytestmark = pytest.mark.devserver

NOW = Thresholds(
    waiting=timedelta(0),
    escalated=timedelta(0),
    activity_attempts=3,
    out_of_step=timedelta(0),
)


@dataclass
class Stage:
    """A dev server, the real database and sinks, and a task queue of this test's own (the
    one `redrive` starts orders on, too)."""

    env: WorkflowEnvironment
    queue: str

    @property
    def client(self) -> Client:
        return self.env.client

    async def start(self, world: StoreWorld) -> OrderRequest:
        order = new_order(world)
        await start_order(order, client=self.client, task_queue=self.queue)
        return order


@pytest.fixture
async def stage(
    dev_server: WorkflowEnvironment,  # noqa: F811
    clean_db: str,
    sinks: Sinks,
    monkeypatch: pytest.MonkeyPatch,
) -> Stage:
    queue = f"stuck-{uuid.uuid4().hex[:8]}"
    monkeypatch.setattr(settings, "TEMPORAL_TASK_QUEUE", queue)
    return Stage(dev_server, queue)


async def found(stage: Stage, order_id: str, kind: StuckKind, *, within: float = 30) -> StuckOrder:
    async def listed() -> StuckOrder:
        everything = await find_stuck(stage.client, thresholds=NOW)
        mine = [s for s in everything if s.order_id == order_id]
        assert [s.kind for s in mine] == [kind], mine
        return mine[0]

    return await eventually(listed, within=within)


async def status_in_db(order_id: str) -> str:
    async with session() as db:
        row = await db.get(Order, order_id, populate_existing=True)
        assert row is not None
        return row.status


async def test_waiting_for_a_shift_is_found_by_the_finder_and_the_api(stage: Stage) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    async with build_worker(stage.client, task_queue=stage.queue):
        order = await stage.start(world)
        await wait_until_waiting(order.order_id)
        stuck = await found(stage, order.order_id, StuckKind.WAITING_FOR_SHIFT)
        assert stuck.action is Action.REASSIGN and stuck.store_id == world.store.id
        # Under the default threshold (two hours) it is not stuck yet.
        assert not [s for s in await find_stuck(stage.client) if s.order_id == order.order_id]

        async with api_client(stage.client) as api:
            page = await api.get(
                "/api/v1/orders/stuck",
                params={"kind": "waiting_for_shift", "waiting_minutes": 0.0001},
                headers=admin(),
            )
            unknown_kind = await api.get(
                "/api/v1/orders/stuck", params={"kind": "lost"}, headers=admin()
            )
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["total"] == 1 and body["limit"] == 50 and body["offset"] == 0
    assert body["items"][0]["order_id"] == order.order_id
    assert body["items"][0]["action"] == "reassign"
    assert unknown_kind.status_code == 422 and "kind" in unknown_kind.text


async def test_escalated_and_untouched_is_found(stage: Stage) -> None:
    # One round of one second, then the order waits for a manager who never comes.
    one_round = {"accept_timeout_seconds": 1, "reminder_before_seconds": 0, "max_rounds": 1}
    await set_rule(**one_round, after_escalation="wait_for_manager")
    world = await make_store_world(consultants=1)
    async with build_worker(stage.client, task_queue=stage.queue):
        order = await stage.start(world)
        stuck = await found(stage, order.order_id, StuckKind.ESCALATED_UNTOUCHED)
    assert stuck.action is Action.REASSIGN
    assert "no manager has acted" in stuck.detail


async def test_notices_failed_for_good_are_found(
    stage: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider answers 404 for every message: a permanent failure, not retried.
    monkeypatch.setattr(settings, "SMS_URL", settings.SMS_URL.replace("/sms", "/no-such-api"))
    world = await make_store_world(consultants=1)
    async with build_worker(stage.client, task_queue=stage.queue):
        order = await stage.start(world)
        stuck = await found(stage, order.order_id, StuckKind.NOTICES_FAILED)
    assert stuck.action is Action.REASSIGN
    assert "failed for good" in stuck.detail and "404" in stuck.detail


@workflow.defn(name="NewOrderWorkflow", sandboxed=False)
class BuggyOrderWorkflow:
    """The order workflow with a bug that fails its every workflow task."""

    @workflow.run
    async def run(self, start: OrderInput) -> None:
        raise RuntimeError(f"bug: order {start.order.order_id} has no rule")


async def test_a_failing_workflow_task_is_found_and_redrive_resets_it_onto_fixed_code(
    stage: Stage,
) -> None:
    world = await make_store_world(consultants=1)
    client, q = stage.client, stage.queue
    async with Worker(client, task_queue=q, workflows=[BuggyOrderWorkflow]):
        order = await stage.start(world)
        stuck = await found(stage, order.order_id, StuckKind.WORKFLOW_TASK_FAILING)
    assert stuck.action is Action.REDRIVE
    assert f"bug: order {order.order_id} has no rule" in stuck.detail  # the failure's message

    async with build_worker(client, task_queue=q):  # the fix is deployed
        done = await redrive(client, order.order_id, reason="bug fixed")
        assert done.action == "reset", done
        await wait_for_round(order.order_id, 1)
    assert await status_in_db(order.order_id) == "assigned"


async def test_a_step_the_database_refuses_is_found(stage: Stage, clean_db: str) -> None:
    """The loop's database steps are local activities: a refusal of the data (here a
    constraint refusing every round's row) parks the order as stuck, and the finder lists it
    from the database, with the database's own words."""
    world = await make_store_world(consultants=1)
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("ALTER TABLE assignment ADD CONSTRAINT refuse_rounds CHECK (round < 1)")
    try:
        async with build_worker(stage.client, task_queue=stage.queue):
            order = await stage.start(world)
            stuck = await found(stage, order.order_id, StuckKind.ACTIVITY_FAILING)
            await stage.client.get_workflow_handle(f"order-{order.order_id}").terminate("over")
    finally:
        with psycopg.connect(clean_db, autocommit=True) as conn:
            conn.execute("ALTER TABLE assignment DROP CONSTRAINT IF EXISTS refuse_rounds")
    assert stuck.action is Action.REDRIVE
    assert "IntegrityError" in stuck.detail and "a data error" in stuck.detail


async def test_out_of_step_orders_are_found_and_repaired(stage: Stage) -> None:
    """Open in the database with the workflow terminated (redrive resets it), completed in the
    database while the workflow runs (reconcile copies the workflow's state), and open in the
    database with no workflow at all (redrive starts it again)."""
    world = await make_store_world(consultants=2)
    client = stage.client
    async with build_worker(client, task_queue=stage.queue):
        terminated, edited = await stage.start(world), await stage.start(world)
        for order in (terminated, edited):
            await wait_for_round(order.order_id, 1)
        await client.get_workflow_handle(f"order-{terminated.order_id}").terminate("by mistake")
        async with session() as db:  # a wrong manual edit of the projection
            row = await db.get(Order, edited.order_id)
            assert row is not None
            row.status = "completed"
            db.add(row)
            lost = Order(
                id=f"L{uuid.uuid4().hex[:8]}",
                type="new",
                customer_name="Han Mei",
                store_id=world.store.id,
                subsite_id=world.subsite.id,
                workflow_id="",
            )
            lost.workflow_id = f"order-{lost.id}"
            db.add(lost)
            await db.commit()

        stuck = await found(stage, terminated.order_id, StuckKind.OUT_OF_STEP)
        assert stuck.action is Action.REDRIVE and "terminated" in stuck.detail
        stuck = await found(stage, edited.order_id, StuckKind.OUT_OF_STEP)
        assert stuck.action is Action.RECONCILE
        stuck = await found(stage, lost.id, StuckKind.OUT_OF_STEP)
        assert stuck.action is Action.REDRIVE and "no workflow" in stuck.detail

        fixed = await reconcile(client, edited.order_id)
        assert fixed.changed["status"] == ("completed", "assigned"), fixed
        assert await status_in_db(edited.order_id) == "assigned"
        again = await reconcile(client, edited.order_id)
        assert again.changed == {} and "agree" in again.message

        reset = await redrive(client, terminated.order_id)
        assert reset.action == "reset"
        description = await client.get_workflow_handle(f"order-{terminated.order_id}").describe()
        assert description.status is WorkflowExecutionStatus.RUNNING

        restarted = await redrive(client, lost.id)
        assert restarted.action == "restarted"
        await wait_for_round(lost.id, 1)

        async def all_in_step() -> None:
            left = await find_stuck(
                client, thresholds=NOW, kinds=frozenset({StuckKind.OUT_OF_STEP})
            )
            assert not left, left

        await eventually(all_in_step, within=20)
    async with session() as db:
        kinds = (
            await db.exec(select(OrderEvent.kind).where(OrderEvent.order_id == edited.order_id))
        ).all()
    assert "reconciled" in kinds


async def test_without_visibility_the_database_kinds_are_listed_and_the_rest_named(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """The time-skipping test server cannot list workflows: the answer is still a 200 with
    what the database shows, and it says which kinds went unchecked."""
    world = await make_store_world(consultants=1, on_duty=False)
    order = new_order(world)
    await start_order(order, client=dispatch.client, task_queue=dispatch.task_queue)
    await wait_until_waiting(order.order_id)
    page = await api.get(
        "/api/v1/orders/stuck", params={"waiting_minutes": 0.0001}, headers=admin()
    )
    assert page.status_code == 200, page.text
    body = page.json()
    assert [i["order_id"] for i in body["items"]] == [order.order_id]
    assert "cannot list workflows" in body["unchecked"]
    assert "workflow_task_failing" in body["unchecked"]
    only_temporal = await api.get(
        "/api/v1/orders/stuck", params={"kind": "out_of_step"}, headers=admin()
    )
    assert only_temporal.status_code == 200, only_temporal.text
    assert only_temporal.json()["items"] == [] and only_temporal.json()["unchecked"]
