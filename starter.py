"""Start an order's workflow: the Python API the web backend calls, and a command-line wrapper.

    await start_order(OrderRequest(order_id="A1001", type="new", ...))

The workflow id is `order-<order_id>`: submitting the same order twice, even at once, gives
back the one workflow that exists (a processed order is never started again).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError

from models import Order, OrderStatus
from models.db import session
from settings import settings
from workflows import search_attributes as sa
from workflows.contracts import OrderInput, OrderRequest, OrderView
from workflows.dispatch import WORKFLOW_FOR_TYPE


def workflow_id(order_id: str) -> str:
    return f"order-{order_id}"


class OrderEnded(Exception):
    """The order id belongs to an order already completed or cancelled (the API's 409)."""


async def ended_order(order_id: str) -> str | None:
    """Why `order_id` may not start again, from the projection (it outlives Temporal's
    retention of the history, which the workflow id reuse policy alone relies on)."""
    async with session() as db:
        row = await db.get(Order, order_id)
    if row is None or row.status not in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        return None
    if row.status == OrderStatus.CANCELLED:
        at = row.cancelled_at.isoformat() if row.cancelled_at else "an unknown time"
        return f"order {order_id!r} was cancelled at {at} ({row.cancel_reason or 'no reason'})"
    at = row.completed_at.isoformat() if row.completed_at else "an unknown time"
    return f"order {order_id!r} was completed at {at}"


async def connect() -> Client:
    return await Client.connect(settings.TEMPORAL_ADDRESS, namespace=settings.TEMPORAL_NAMESPACE)


async def start_order(
    order: OrderRequest, *, client: Client | None = None, task_queue: str | None = None
) -> WorkflowHandle[Any, OrderView]:
    """Start (or find) the workflow of `order`; returns its handle."""
    if order.type not in WORKFLOW_FOR_TYPE:
        raise ValueError(
            f"unknown order type {order.type!r}; use one of {sorted(WORKFLOW_FOR_TYPE)}"
        )
    ended = await ended_order(order.order_id)
    if ended is not None:
        raise OrderEnded(ended)
    client = client or await connect()
    workflow_class = WORKFLOW_FOR_TYPE[order.type]
    try:
        return await client.start_workflow(
            workflow_class.__name__,  # the workflow type's name
            OrderInput(order=order, webhooks=bool(settings.WEBHOOK_URL)),
            result_type=OrderView,
            id=workflow_id(order.order_id),
            task_queue=task_queue or settings.TEMPORAL_TASK_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(sa.ORDER_ID, order.order_id),
                    SearchAttributePair(sa.ORDER_TYPE, order.type),
                    SearchAttributePair(sa.ORDER_STATUS, "received"),
                ]
            ),
            # Only what never changes: the store and holder are in the current details.
            static_summary=f"Order {order.order_id} · {order.type}",
            static_details=(
                f"**Customer** {order.customer.name or '—'} · **category** {order.category or '—'}"
                f" · **IP** {order.client_ip or '—'} · **host** {order.host or '—'}"
                f" · **preferred staff** {order.preferred_staff_id or '—'}"
            ),
        )
    except WorkflowAlreadyStartedError:  # closed already: the order was handled
        return client.get_workflow_handle(workflow_id(order.order_id), result_type=OrderView)


def order_from_json(document: str) -> OrderRequest:
    """An order given as the JSON of `POST /api/v1/orders`, validated the same way."""
    from api.schemas import OrderIn

    return OrderIn.model_validate_json(document).to_request()


async def main(client: Client | None = None, argv: list[str] | None = None) -> None:
    """`python starter.py '{"order_id": "A1", "type": "new", "customer": {"name": "Li"}}'`"""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: starter.py '<order JSON>'  (see POST /api/v1/orders for fields)")
    from pydantic import ValidationError

    try:
        order = order_from_json(args[0])
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'order'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"invalid order: {problems}") from None
    handle = await start_order(order, client=client)
    print(f"started {handle.id}")


if __name__ == "__main__":
    asyncio.run(main())
