"""The loop's commands on the dev server, run as a user runs them: `o2o upgrade-check` (open
orders replayed on the current code, and on a code with an unguarded change, which it must
list) and `o2o order cancel`."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.testing import WorkflowEnvironment

from cli.upgrade import upgrade_check
from models import Order
from models.db import session
from starter import start_order
from tests.conftest import Sinks
from tests.factories import make_store_world
from tests.test_cli import o2o
from tests.test_devserver import dev_server
from tests.test_order_workflow import new_order, set_rule, wait_for_round
from tests.test_replay import NewOrderWorkflowWithAnUnguardedChange
from worker import build_worker

pytestmark = pytest.mark.devserver
__all__ = ["dev_server"]


async def test_upgrade_check_lists_the_open_orders_that_would_not_replay(
    dev_server: WorkflowEnvironment, clean_db: str, sinks: Sinks
) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0)
    world = await make_store_world(consultants=2)
    queue = f"dev-{uuid.uuid4().hex[:8]}"
    orders = [new_order(world), new_order(world)]
    async with build_worker(dev_server.client, task_queue=queue):
        for order in orders:
            await start_order(order, client=dev_server.client, task_queue=queue)
        for order in orders:
            await wait_for_round(order.order_id, 1)

    checked, blocked = await upgrade_check(dev_server.client)
    assert (checked, blocked) == (2, [])

    checked, blocked = await upgrade_check(
        dev_server.client, workflows=[NewOrderWorkflowWithAnUnguardedChange]
    )
    assert checked == 2
    assert sorted(b.workflow_id for b in blocked) == sorted(f"order-{o.order_id}" for o in orders)
    assert all("Nondeterminism" in b.failure or "nondetermin" in b.failure for b in blocked)


async def test_upgrade_check_and_order_cancel_from_the_command_line(
    dev_server: WorkflowEnvironment, clean_db: str, sinks: Sinks
) -> None:
    await set_rule(accept_timeout_seconds=600, reminder_before_seconds=0)
    world = await make_store_world(consultants=2)
    queue = f"dev-{uuid.uuid4().hex[:8]}"
    order = new_order(world)
    env = {"TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host}
    async with build_worker(dev_server.client, task_queue=queue):
        await start_order(order, client=dev_server.client, task_queue=queue)
        await wait_for_round(order.order_id, 1)
        checked = await asyncio.to_thread(o2o, "upgrade-check", env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "1 open orders checked, 0 would not replay" in checked.stdout

        vague = await asyncio.to_thread(
            o2o, "order", "cancel", order.order_id, "--reason", "other", env=env
        )
        assert vague.returncode != 0 and "note" in vague.stdout + vague.stderr
        done = await asyncio.to_thread(
            o2o, "order", "cancel", order.order_id, "--reason", "duplicate", env=env
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert '"status": "cancelled"' in done.stdout
    async with session() as db:
        row = await db.get(Order, order.order_id)
    assert row is not None and (row.status, row.cancel_reason) == ("cancelled", "duplicate")
