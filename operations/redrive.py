"""Re-drive an order, whatever state its workflow is in, and say what was done.

- running: the `redispatch` update (the assignee is skipped, a new selection now);
- running with a workflow task that keeps failing: reset to the last good workflow task, so
  the (fixed) code runs it again at once instead of after the retry backoff;
- failed, terminated or timed out: reset to the last good workflow task (a new run);
- completed: nothing to do, the order was handled;
- missing in Temporal but open in the database: started again from its database row (its
  recorded store is kept: `route_order` returns the recorded decision).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError

from models import Customer, Order
from models.db import session
from operations.errors import OperationError
from operations.workflows import OrderWorkflow, describe
from starter import start_order
from workflows.contracts import CustomerIn, ManagerAction, OrderRequest, OrderView

ACTOR = "engineer (o2o redrive)"
# A running order answers a re-dispatch within a round; longer means it is stuck elsewhere.
ANSWER_WITHIN = timedelta(seconds=30)


@dataclass(frozen=True)
class Redriven:
    order_id: str
    action: str  # reselected | reset | restarted | none
    message: str


async def redrive(client: Client, order_id: str, *, reason: str = "re-driven") -> Redriven:
    wf = await describe(client, order_id)
    if wf is None:
        return await _restart(client, order_id)
    if wf.status is WorkflowExecutionStatus.COMPLETED:
        return Redriven(order_id, "none", f"order {order_id} is handled (workflow completed)")
    if not wf.running or wf.workflow_task is not None:
        return await _reset(client, order_id, wf, reason)
    return await _reselect(client, order_id, wf, reason)


async def _reselect(client: Client, order_id: str, wf: OrderWorkflow, reason: str) -> Redriven:
    handle = client.get_workflow_handle(wf.workflow_id)
    try:
        update = await handle.start_update(
            "redispatch",
            ManagerAction(actor=ACTOR, reason=reason),
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
            result_type=OrderView,
        )
        view = await asyncio.wait_for(update.result(), ANSWER_WITHIN.total_seconds())
    except WorkflowUpdateFailedError as exc:
        raise OperationError(f"order {order_id}: {_refusal(exc)}") from None
    except TimeoutError:
        stuck = "; ".join(f"{a.what} attempt {a.attempt}: {a.failure}" for a in wf.activities)
        raise OperationError(
            f"order {order_id} took the re-dispatch but has not served it within "
            f"{ANSWER_WITHIN.seconds} s" + (f" ({stuck})" if stuck else "") + "; see `o2o stuck`"
        ) from None
    who = f"staff {view.assignee_id}" if view.assignee_id else "nobody yet"
    return Redriven(
        order_id,
        "reselected",
        f"order {order_id} re-dispatched: {view.status}, round {view.round}, with {who}",
    )


def _refusal(exc: WorkflowUpdateFailedError) -> str:
    cause: BaseException | None = exc.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause
    return str(cause or exc).splitlines()[0]


async def _reset(client: Client, order_id: str, wf: OrderWorkflow, reason: str) -> Redriven:
    event_id = await _last_good_workflow_task(client, wf)
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=wf.workflow_id, run_id=wf.run_id),
            reason=f"{ACTOR}: {reason}",
            workflow_task_finish_event_id=event_id,
            request_id=str(uuid.uuid4()),
        )
    )
    was = wf.status.name.lower() if wf.status else "unknown"
    why = "its workflow task kept failing" if wf.running else f"its workflow had {was}"
    return Redriven(
        order_id,
        "reset",
        f"order {order_id} reset to event {event_id} ({why}); new run {response.run_id}",
    )


async def _last_good_workflow_task(client: Client, wf: OrderWorkflow) -> int:
    """The last completed workflow task's event id (the first one started if none completed)."""
    handle = client.get_workflow_handle(wf.workflow_id, run_id=wf.run_id)
    completed = first_started = 0
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            completed = event.event_id
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED and not first_started:
            first_started = event.event_id
    if not (completed or first_started):
        raise OperationError(f"order {order_id_of(wf)}: no workflow task has run yet to reset to")
    return completed or first_started


def order_id_of(wf: OrderWorkflow) -> str:
    return wf.workflow_id.removeprefix("order-")


async def _restart(client: Client, order_id: str) -> Redriven:
    async with session() as db:
        row = await db.get(Order, order_id)
        customer = await db.get(Customer, row.customer_id) if row and row.customer_id else None
    if row is None:
        raise OperationError(f"no order {order_id!r}: neither a workflow nor a database row")
    if row.status == "completed":
        return Redriven(
            order_id, "none", f"order {order_id} is handled (completed in the database)"
        )
    request = OrderRequest(
        order_id=row.id,
        type="unassigned",  # it was taken in once: start from a fresh selection
        customer=CustomerIn(
            name=row.customer_name,
            phone=customer.phone if customer else None,
            email=customer.email if customer else None,
        ),
        category=row.category,
        priority=row.priority,
        store_id=row.store_id,
        client_ip=row.client_ip,
        host=row.host,
    )
    try:
        handle = await start_order(request, client=client)
    except RPCError as exc:
        raise OperationError(f"order {order_id}: Temporal refused the start: {exc}") from None
    return Redriven(
        order_id,
        "restarted",
        f"order {order_id} had no workflow: started {handle.id} again from its database row",
    )
