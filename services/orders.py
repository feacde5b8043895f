"""Orders: intake checks, the workflow id, the submitted payload, and reading orders.

Intake refuses what the pipeline cannot serve before a workflow starts: a store, staff
member or wished store that does not exist, an imported order's holder who is not a
consultant of its store. The same order id sent again with the same payload is the same
order (idempotent); with a different payload it is refused, naming the fields that differ.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from models import Order, OrderStatus, OrderType, Staff, StaffRole, Store
from models.base import utcnow
from models.db import session
from services.errors import Conflict, Invalid, Problem
from workflows.contracts import OrderInput, OrderRequest, OrderView

WORKFLOW_PREFIX = "order-"


def workflow_id(order_id: str) -> str:
    """The one workflow of an order: submitting it twice finds the same workflow."""
    return f"{WORKFLOW_PREFIX}{order_id}"


async def checked_for_intake(*, db: AsyncSession, order: OrderRequest) -> OrderRequest:
    """`order` if every id it names can be served, else `Invalid` naming each bad field.

    An imported (assigned-unprocessed) order without a store belongs to its holder's
    store: that store is filled in, so routing cannot tie it to one where the holder is
    not, which used to tell the manager "nobody on duty" about an order someone holds.
    """
    problems: list[Problem] = []
    store = await db.get(Store, order.store_id) if order.store_id is not None else None
    if order.store_id is not None and store is None:
        problems.append(Problem(("body", "store_id"), f"no store {order.store_id}"))
    if order.wished_store_id is not None and await db.get(Store, order.wished_store_id) is None:
        problems.append(Problem(("body", "wished_store_id"), f"no store {order.wished_store_id}"))
    if (
        order.preferred_staff_id is not None
        and await db.get(Staff, order.preferred_staff_id) is None
    ):
        problems.append(
            Problem(("body", "preferred_staff_id"), f"no staff member {order.preferred_staff_id}")
        )
    if order.type == OrderType.ASSIGNED_UNPROCESSED and order.assignee_id is None:
        problems.append(
            Problem(("body", "assignee_id"), "required for an assigned_unprocessed order")
        )
    if order.assignee_id is not None:
        holder = await db.get(Staff, order.assignee_id)
        why = _not_a_holder(holder, order.assignee_id, order.store_id)
        if why:
            problems.append(Problem(("body", "assignee_id"), why))
        elif holder is not None and order.store_id is None:
            order = replace(order, store_id=holder.store_id)
    if problems:
        raise Invalid(problems)
    return order


def _not_a_holder(holder: Staff | None, staff_id: int, store_id: int | None) -> str | None:
    """Why `holder` cannot hold an order of `store_id` (None: they can)."""
    if holder is None:
        return f"no staff member {staff_id}"
    if holder.role != StaffRole.CONSULTANT:
        return f"staff {staff_id} is not a consultant"
    if store_id is not None and holder.store_id != store_id:
        return f"staff {staff_id} is not a consultant of store {store_id}"
    if not holder.active:
        return f"staff {staff_id} is inactive"
    return None


async def submitted(*, client: Client, order_id: str) -> tuple[OrderRequest, datetime] | None:
    """The payload the order's workflow was started with, and when; None if never started."""
    handle = client.get_workflow_handle(workflow_id(order_id))
    try:
        async for event in handle.fetch_history_events(page_size=1):
            started = event.workflow_execution_started_event_attributes
            [first] = await client.data_converter.decode(started.input.payloads, [OrderInput])
            assert isinstance(first, OrderInput)
            return first.order, event.event_time.ToDatetime().astimezone()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    return None


def differing_fields(
    sent: OrderRequest, earlier: OrderRequest, *, ignore: frozenset[str] = frozenset()
) -> list[str]:
    """The fields of `sent` that differ from the payload the order was started with."""
    return [
        f.name
        for f in fields(OrderRequest)
        if f.name not in ignore and getattr(sent, f.name) != getattr(earlier, f.name)
    ]


class OrderEnded(Conflict):
    """The order id belongs to an order already completed or cancelled (the API's 409)."""


async def ended_order(order_id: str, *, db: AsyncSession | None = None) -> str | None:
    """Why `order_id` may not start again, from the projection (it outlives Temporal's
    retention of the history, which the workflow id reuse policy alone relies on).

    `db`: the caller's session, if it holds one (an API request does): a second connection
    per request starved the pool under a burst of submissions."""
    if db is None:
        async with session() as own:
            row = await own.get(Order, order_id)
    else:
        row = await db.get(Order, order_id)
    if row is None or row.status not in (OrderStatus.COMPLETED, OrderStatus.CANCELLED):
        return None
    if row.status == OrderStatus.CANCELLED:
        at = row.cancelled_at.isoformat() if row.cancelled_at else "an unknown time"
        return f"order {order_id!r} was cancelled at {at} ({row.cancel_reason or 'no reason'})"
    at = row.completed_at.isoformat() if row.completed_at else "an unknown time"
    return f"order {order_id!r} was completed at {at}"


async def submit_order(
    *, db: AsyncSession, client: Client, order: OrderRequest, ignore: frozenset[str] = frozenset()
) -> WorkflowHandle[Any, OrderView]:
    """Check `order`, then start (or find) its workflow; returns the workflow handle.

    `ignore`: fields the caller did not choose (e.g. a host taken from the request), left
    out of the same-payload comparison. Starting first and comparing after closes the race
    of two different payloads for one id: whichever started, the other is refused.
    """
    from starter import start_order  # starter imports this module for `workflow_id`

    order = await checked_for_intake(db=db, order=order)
    handle = await start_order(order, client=client, db=db)
    found = await submitted(client=client, order_id=order.order_id)
    if found is not None:
        differ = differing_fields(order, found[0], ignore=ignore)
        if differ:
            raise Conflict(
                f"order {order.order_id!r} was submitted before with other values of "
                f"{', '.join(differ)}; the same id must carry the same order"
            )
    await record_received(db=db, order=order)
    return handle


async def record_received(*, db: AsyncSession, order: OrderRequest) -> None:
    """The order's row as `received`, so its status_url answers at once after the 202.

    Written after the workflow started (never a row without a workflow); routing fills the
    same row in (`route_order` upserts over a row that has no store yet). A row already
    there, routed or not, is left alone.
    """
    row = received_order(order, at=utcnow()).model_dump(exclude_unset=False)
    await db.exec(insert(Order).values(**row).on_conflict_do_nothing(index_elements=["id"]))
    await db.commit()


def received_order(order: OrderRequest, *, at: datetime) -> Order:
    """The order as it stands between its 202 and its routing: received, no store yet.
    (Not stored: the first activity writes the row; this is what a reader sees meanwhile.)"""
    return Order(
        id=order.order_id,
        type=order.type,
        category=order.category,
        priority=order.priority,
        customer_name=order.customer.name,
        client_ip=order.client_ip,
        host=order.host,
        requested_store_id=order.store_id,
        preferred_staff_id=order.preferred_staff_id,
        status=OrderStatus.RECEIVED,
        workflow_id=workflow_id(order.order_id),
        created_at=at,
        updated_at=at,
    )
