"""On the Temporal dev server (real clock, real visibility): what operators and engineers see."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionDescription
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cli.replay import replay
from devstack.binaries import wheel_binary
from models import Order
from models.db import session
from settings import settings
from starter import start_order
from tests.api_helpers import admin, api_client
from tests.conftest import Sinks, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, set_rule, wait_for_round
from worker import build_worker
from workflows import search_attributes as sa

pytestmark = pytest.mark.devserver


@pytest.fixture
async def dev_server(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=wheel_binary("temporal"), search_attributes=sa.ALL
    )
    monkeypatch.setattr(settings, "TEMPORAL_ADDRESS", env.client.service_client.config.target_host)
    yield env
    await env.shutdown()


async def test_operator_finds_escalated_orders_of_a_store(
    dev_server: WorkflowEnvironment, clean_db: str, sinks: Sinks
) -> None:
    await set_rule(accept_timeout_seconds=1, reminder_before_seconds=0, max_rounds=1)
    world = await make_store_world(consultants=2)
    other = await make_store_world(consultants=1)
    queue = f"dev-{uuid.uuid4().hex[:8]}"
    async with build_worker(dev_server.client, task_queue=queue):
        order = new_order(world)
        calm = new_order(other)
        await start_order(order, client=dev_server.client, task_queue=queue)
        await start_order(calm, client=dev_server.client, task_queue=queue)
        await wait_for_round(order.order_id, 2)  # one real-clock timeout later

        query = f'OrderStatus="escalated" AND StoreId="{world.store.id}"'

        async def listed() -> list[str]:
            found = [w.id async for w in dev_server.client.list_workflows(query)]
            assert found == [f"order-{order.order_id}"]
            return found

        await eventually(listed, within=20)
        handle = dev_server.client.get_workflow_handle(f"order-{order.order_id}")

        async def reassigned() -> WorkflowExecutionDescription:
            # Escalation is published before round 2's assignment is: the count follows.
            description = await handle.describe()
            assert (description.typed_search_attributes.get(sa.REASSIGN_COUNT) or 0) >= 1
            return description

        description = await eventually(reassigned, within=20)
        attributes = description.typed_search_attributes
        assert attributes.get(sa.ORDER_ID) == order.order_id
        assert attributes.get(sa.SUB_SITE) == world.subsite.code
        # The static summary holds only what never changes; the store is in the details.
        assert await description.static_summary() == f"Order {order.order_id} · new"
        metadata = await handle.query("__temporal_workflow_metadata")
        assert f"store {world.store.id}" in metadata.current_details
        async with session() as db:
            row = await db.get(Order, order.order_id)
            assert row is not None and row.escalated

        # Engineers replay what a visibility query finds against the current code.
        assert await replay(None, f'OrderType="new" AND StoreId="{world.store.id}"', 10) == 0


@workflow.defn(name="NewOrderWorkflow", sandboxed=False)
class CrashingOrderWorkflow:
    """Stands for an order whose workflow task keeps failing (a bug, a worker dying in it)."""

    @workflow.run
    async def run(self, _: object) -> None:
        raise RuntimeError("workflow task keeps failing")


async def test_action_on_an_order_whose_workflow_task_is_failing_is_a_503(
    dev_server: WorkflowEnvironment, clean_db: str
) -> None:
    """The server refuses the update (WorkflowNotReady); the API says "try again", not 500."""
    queue = f"dev-{uuid.uuid4().hex[:8]}"
    order_id = f"F{uuid.uuid4().hex[:8]}"
    client = dev_server.client
    async with Worker(client, task_queue=queue, workflows=[CrashingOrderWorkflow]):
        handle = await client.start_workflow(
            "NewOrderWorkflow", None, id=f"order-{order_id}", task_queue=queue
        )

        async def retried() -> None:  # the first failure makes every later attempt transient
            description = await handle.describe()
            assert description.raw_description.pending_workflow_task.attempt >= 2

        await eventually(retried, within=30)
        async with api_client(client) as api:
            response = await api.post(
                f"/api/v1/orders/{order_id}/accept", json={"staff_id": 1}, headers=admin()
            )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "2"
    detail = response.json()["detail"]
    assert detail.startswith("Temporal could not take the request now"), detail
    assert "failed state" in detail.lower() or "not ready" in detail.lower(), detail
    await handle.terminate("test over")
