"""Bring an order's database row in step with its workflow: the workflow's state wins.

The workflow is the source of truth (its history is durable, the row is a projection written
by activities). A row left behind — a projection write lost to an operator's manual edit, a
restore of the database from an older backup — is set from the workflow's own view: the
final result of a completed run, or the `state` query of a running one. A workflow that is
missing or failed has no state to copy: that order needs `o2o redrive`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from temporalio.client import Client, WorkflowExecutionStatus

from models import Order, OrderEvent, OrderStatus
from models.db import session
from operations.errors import OperationError
from operations.workflows import describe
from starter import workflow_id
from workflows.contracts import OrderView


@dataclass(frozen=True)
class Reconciled:
    order_id: str
    changed: dict[str, tuple[object, object]]  # column: (database had, workflow says)
    message: str


async def reconcile(client: Client, order_id: str) -> Reconciled:
    wf = await describe(client, order_id)
    if wf is None:
        raise OperationError(f"order {order_id}: no workflow to reconcile from; use o2o redrive")
    handle = client.get_workflow_handle(workflow_id(order_id), result_type=OrderView)
    if wf.status is WorkflowExecutionStatus.COMPLETED:
        view: OrderView = await handle.result()
    elif wf.running:
        view = await handle.query("state", result_type=OrderView)
    else:
        status = wf.status.name.lower() if wf.status else "closed"
        raise OperationError(
            f"order {order_id}: its workflow {status} and holds no state to copy; "
            "use o2o redrive (it resets the run)"
        )
    return await _apply(order_id, view)


async def _apply(order_id: str, view: OrderView) -> Reconciled:
    try:
        status = OrderStatus(view.status)
    except ValueError:
        raise OperationError(
            f"order {order_id}: the workflow says {view.status!r}, which the database has no "
            "status for"
        ) from None
    now = datetime.now(UTC)
    async with session() as db:
        row = await db.get(Order, order_id, with_for_update=True)
        if row is None:
            raise OperationError(f"order {order_id}: no database row (route_order never ran)")
        wanted: dict[str, object] = {
            "status": status.value,
            "assignee_id": view.assignee_id,
            "round": view.round,
            "escalated": view.escalated,
        }
        if view.store_id is not None:
            wanted["store_id"] = view.store_id
        if status is OrderStatus.COMPLETED and row.completed_at is None:
            wanted["completed_at"] = now
        changed = {k: (getattr(row, k), v) for k, v in wanted.items() if getattr(row, k) != v}
        if not changed:
            await db.commit()
            return Reconciled(order_id, {}, f"order {order_id}: database and workflow agree")
        for name, (_, value) in changed.items():
            setattr(row, name, value)
        row.updated_at = now
        db.add(row)
        detail = {k: [str(old), str(new)] for k, (old, new) in changed.items()}
        db.add(
            OrderEvent(
                order_id=order_id,
                key=f"reconciled:{now.isoformat()}",
                kind="reconciled",
                actor="engineer (o2o reconcile)",
                detail=detail,
                at=now,
            )
        )
        await db.commit()
    summary = ", ".join(f"{k} {old} → {new}" for k, (old, new) in changed.items())
    return Reconciled(
        order_id, changed, f"order {order_id} reconciled from its workflow: {summary}"
    )
