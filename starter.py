"""Start an order's workflow: the Python API the web backend calls, and a command-line wrapper.

    await start_order(OrderRequest(order_id="A1001", type="new", ...))

The workflow id is `order-<order_id>`: submitting the same order twice, even at once, gives
back the one workflow that exists (a processed order is never started again).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, NoReturn

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.runtime import Runtime

from services.orders import OrderEnded, ended_order, workflow_id
from settings import settings
from workflows import search_attributes as sa
from workflows.contracts import OrderInput, OrderRequest, OrderView
from workflows.dispatch import WORKFLOW_FOR_TYPE


async def connect(*, runtime: Runtime | None = None) -> Client:
    """A client of TEMPORAL_ADDRESS; `runtime` carries the worker's metrics endpoint."""
    from observability.tracing import client_interceptors

    return await Client.connect(
        settings.TEMPORAL_ADDRESS,
        namespace=settings.TEMPORAL_NAMESPACE,
        runtime=runtime or Runtime.default(),
        interceptors=client_interceptors(),
    )


async def start_order(
    order: OrderRequest,
    *,
    client: Client | None = None,
    task_queue: str | None = None,
    db: AsyncSession | None = None,
) -> WorkflowHandle[Any, OrderView]:
    """Start (or find) the workflow of `order`; returns its handle. `db`: the caller's
    database session, if it has one, for the finished-order check."""
    if order.type not in WORKFLOW_FOR_TYPE:
        raise ValueError(
            f"unknown order type {order.type!r}; use one of {sorted(WORKFLOW_FOR_TYPE)}"
        )
    ended = await ended_order(order.order_id, db=db)
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


def run_and_exit(argv: list[str] | None = None) -> NoReturn:
    """Run `main` and leave the process with its exit code, skipping interpreter teardown.

    The client's core runtime (Rust, with its own threads) has no close in the SDK; at
    interpreter finalisation one of those threads may still call back into Python and abort
    the process ("Fatal Python error: PyGILState_Release", rc 134) after the order was
    started (temporalio/sdk-python#300). Nothing is left to tear down once `main` returned,
    so the output is flushed and the process ends with `os._exit`.
    """
    try:
        asyncio.run(main(argv=argv))
        code = 0
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except Exception as exc:  # an unreachable Temporal, say: one line, not a traceback
        print(
            f"starter: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
            file=sys.stderr,
        )
        code = 1
    from observability.tracing import flush

    flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)  # SystemExit("message") prints it and exits 1
    return 1


if __name__ == "__main__":
    run_and_exit()
