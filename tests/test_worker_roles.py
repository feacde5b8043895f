"""Two worker processes on one task queue (`o2o worker --role workflows|activities`): the
workflows half runs the loop and its database steps and never takes an activity task; the
activities half sends the notices. Split, an order is assigned by the one and its assignee
told by the other; with the activities half away, the notices wait for it, never lost."""

from __future__ import annotations

import asyncio
import uuid

from temporalio.testing import WorkflowEnvironment

from models import Notification
from settings import WorkerRole
from starter import start_order
from tests.conftest import Sinks, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, notices, wait_for_round
from worker import build_worker


async def test_the_workflows_half_assigns_and_the_activities_half_tells(
    time_skipping_env: WorkflowEnvironment, clean_db: str, sinks: Sinks
) -> None:
    client = time_skipping_env.client
    queue = f"roles-{uuid.uuid4().hex[:8]}"
    world = await make_store_world(consultants=2)
    order = new_order(world)

    async with build_worker(client, task_queue=queue, role=WorkerRole.WORKFLOWS):
        await start_order(order, client=client, task_queue=queue)
        first = await wait_for_round(order.order_id, 1)  # routed, selected, recorded
        await asyncio.sleep(1.0)  # room for a notice to be (wrongly) taken here
        # The workflows half polls no activity task: no notice activity ran (its first step
        # writes the notice's row), nothing reached a sink.
        assert await notices(order.order_id) == []
        assert sinks.sms() == [] and sinks.mail() == []

        async with build_worker(client, task_queue=queue, role=WorkerRole.ACTIVITIES):

            async def told() -> list[Notification]:
                rows = [n for n in await notices(order.order_id) if n.status == "sent"]
                assert sorted((n.channel, n.staff_id) for n in rows) == [
                    ("email", first.staff_id),
                    ("sms", first.staff_id),
                ]
                return rows

            await eventually(told)
    assignee = next(c for c in world.consultants if c.id == first.staff_id)
    assert [m["to"] for m in sinks.sms()] == [assignee.phone]
    assert [m["to"] for m in sinks.mail()] == [[assignee.email]]
