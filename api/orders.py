"""Orders: intake, lists and one order's full story, and the actions staff and managers take."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy import func
from sqlmodel import col, select
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.access import MANAGERS, acting_staff, load_order, require
from api.deps import DB, Caller, Principal, Temporal
from api.public import (
    AssignmentPublic,
    NoticePublic,
    OrderDetail,
    OrderEventPublic,
    OrderPublic,
    Page,
)
from api.schemas import (
    CancelIn,
    OrderAccepted,
    OrderIn,
    ReassignIn,
    RedispatchIn,
    StaffActionIn,
)
from models import (
    Assignment,
    Notification,
    Order,
    OrderEvent,
    OrderStatus,
    OrderType,
    Role,
)
from services import orders, scope
from services.orders import workflow_id
from workflows.contracts import CancelRequest, ManagerAction, OrderView, StaffAction
from workflows.dispatch import OrderDispatch

router = APIRouter(prefix="/orders", tags=["orders"])

_STATUS_FOR_KIND = {"Forbidden": 403, "Conflict": 409, "NotFound": 404, "Invalid": 422}


@router.post("", status_code=202, response_model=OrderAccepted)
async def submit_order(
    body: OrderIn, request: Request, db: DB, client: Temporal, caller: Caller, response: Response
) -> OrderAccepted:
    """Start the order's workflow; the same order submitted again returns the same workflow.
    Refused (422) when it names what cannot be served, and (409) when the same id was sent
    before with other values."""
    require(caller, Role.SERVICE, Role.HEAD_OFFICE)
    order = body.to_request(host=request.headers.get("host"))
    chosen_by_request = frozenset({"host"} if body.host is None else ())
    handle = await orders.submit_order(db=db, client=client, order=order, ignore=chosen_by_request)
    response.headers["Location"] = f"/api/v1/orders/{body.order_id}"
    return OrderAccepted(
        order_id=body.order_id,
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        status_url=f"/api/v1/orders/{body.order_id}",
    )


@router.get("", response_model=Page[OrderPublic])
async def list_orders(
    db: DB,
    caller: Caller,
    store_id: int | None = None,
    subsite_id: int | None = None,
    status: OrderStatus | None = None,
    type: OrderType | None = None,
    assignee_id: int | None = None,
    escalated: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[OrderPublic]:
    """Orders in the caller's scope, newest first; waiting orders of equal age by priority."""
    await scope.check_filters(
        db=db,
        caller=caller,
        store_id=store_id,
        subsite_id=subsite_id,
        staff_id=assignee_id,
        staff_param="assignee_id",
    )
    filters = {
        "store_id": store_id,
        "subsite_id": subsite_id,
        "status": status,
        "type": type,
        "assignee_id": assignee_id,
        "escalated": escalated,
    }
    query = scope.narrowed(
        select(Order),
        caller,
        Order,
        filters,
        store=Order.store_id,
        subsite=Order.subsite_id,
        staff=Order.assignee_id,
    )
    total = (await db.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (
        await db.exec(
            query.order_by(col(Order.created_at).desc(), col(Order.priority).desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return Page(items=[OrderPublic.of(r) for r in rows], total=total, limit=limit, offset=offset)


@router.get("/{order_id}", response_model=OrderDetail)
async def get_order(order_id: str, db: DB, caller: Caller) -> OrderDetail:
    """One order's full story: store and why, every round with its reason and outcome, notices.
    Right after its 202 (before routing) an order reads as `received`, with no store yet."""
    order = await load_order(db, caller, order_id)  # 404, or 403 outside the caller's scope
    rounds = (
        await db.exec(
            select(Assignment)
            .where(Assignment.order_id == order_id)
            .order_by(col(Assignment.round))
        )
    ).all()
    events = (
        await db.exec(
            select(OrderEvent)
            .where(OrderEvent.order_id == order_id)
            .order_by(col(OrderEvent.at), col(OrderEvent.id))
        )
    ).all()
    sent = (
        await db.exec(
            select(Notification)
            .where(Notification.order_id == order_id)
            .order_by(col(Notification.id))
        )
    ).all()
    detail: OrderDetail = OrderDetail.of(
        order,
        assignments=[AssignmentPublic.of(a) for a in rounds],
        events=[OrderEventPublic.of(e) for e in events],
        notices=[NoticePublic.of(n) for n in sent],
    )
    return detail


async def _update(client: Temporal, order_id: str, update: Any, arg: Any) -> OrderView:
    handle: WorkflowHandle[Any, Any] = client.get_workflow_handle(workflow_id(order_id))
    try:
        view: OrderView = await handle.execute_update(update, arg, result_type=OrderView)
    except WorkflowUpdateFailedError as exc:
        raise _http_error(exc) from exc
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        try:  # "not found" also answers an update to an order whose workflow has ended
            await handle.describe()
        except RPCError:
            raise HTTPException(404, f"no workflow for order {order_id!r}") from exc
        raise HTTPException(409, f"order {order_id!r} has been processed already") from exc
    return view


def _http_error(exc: WorkflowUpdateFailedError) -> HTTPException:
    cause: BaseException | None = exc.cause
    while isinstance(cause, FailureError) and not isinstance(cause, ApplicationError):
        cause = cause.cause  # an activity's failure wraps the check that refused
    if isinstance(cause, ApplicationError):
        return HTTPException(_STATUS_FOR_KIND.get(cause.type or "", 409), cause.message)
    return HTTPException(409, str(cause or exc))


async def _staff_action(
    db: DB,
    client: Temporal,
    caller: Principal,
    order_id: str,
    update: Any,
    body: StaffActionIn | None,
) -> OrderView:
    body = body or StaffActionIn()  # the body is optional: the caller acts as themself
    staff_id = acting_staff(caller, body.staff_id)
    actor = ""  # the assignee acting themself: the workflow records `staff:<id>`
    if caller.role is not Role.STAFF:
        if caller.role is not Role.HEAD_OFFICE:  # head office's scope is every order
            await load_order(db, caller, order_id)  # a manager acts only inside their scope
        actor = caller.name  # recorded as the manager's action, on the staff member's behalf
    action = StaffAction(staff_id=staff_id, reason=body.reason, actor=actor)
    return await _update(client, order_id, update, action)


async def _manager_action(
    db: DB, client: Temporal, caller: Principal, order_id: str, update: Any, action: ManagerAction
) -> OrderView:
    require(caller, *MANAGERS)
    await load_order(db, caller, order_id)
    return await _update(client, order_id, update, action)


@router.post("/{order_id}/accept", response_model=OrderView)
async def accept(
    db: DB, client: Temporal, caller: Caller, order_id: str, body: StaffActionIn | None = None
) -> OrderView:
    """The assignee takes the order (only the current assignee, only while offered); a
    manager may accept on the assignee's behalf (`staff_id`), recorded as theirs."""
    return await _staff_action(db, client, caller, order_id, OrderDispatch.accept, body)


@router.post("/{order_id}/complete", response_model=OrderView)
async def complete(
    db: DB, client: Temporal, caller: Caller, order_id: str, body: StaffActionIn | None = None
) -> OrderView:
    """The assignee who accepted marks the order processed (once), or a manager on their
    behalf; `reason` is the note that goes onto the customer's communication record."""
    return await _staff_action(db, client, caller, order_id, OrderDispatch.complete, body)


@router.post("/{order_id}/decline", response_model=OrderView)
async def decline(
    db: DB, client: Temporal, caller: Caller, order_id: str, body: StaffActionIn | None = None
) -> OrderView:
    """The assignee gives the order back: it is reassigned at once, to someone else."""
    return await _staff_action(db, client, caller, order_id, OrderDispatch.decline, body)


@router.post("/{order_id}/reassign", response_model=OrderView)
async def reassign(
    order_id: str, body: ReassignIn, db: DB, client: Temporal, caller: Caller
) -> OrderView:
    """A manager gives the order to a named consultant of its store."""
    action = ManagerAction(actor=caller.name, staff_id=body.staff_id, reason=body.reason)
    return await _manager_action(db, client, caller, order_id, OrderDispatch.reassign, action)


@router.post("/{order_id}/redispatch", response_model=OrderView)
async def redispatch(
    db: DB, client: Temporal, caller: Caller, order_id: str, body: RedispatchIn | None = None
) -> OrderView:
    """A manager asks for a new selection now; the current assignee is skipped."""
    action = ManagerAction(actor=caller.name, reason=body.reason if body else "")
    return await _manager_action(db, client, caller, order_id, OrderDispatch.redispatch, action)


@router.post("/{order_id}/cancel", response_model=OrderView)
async def cancel(
    order_id: str, body: CancelIn, db: DB, client: Temporal, caller: Caller
) -> OrderView:
    """End the order unhandled (the store's manager, the sub-site admin, head office, the web
    backend); whoever holds it is told."""
    require(caller, *MANAGERS, Role.SERVICE)
    await load_order(db, caller, order_id)
    request = CancelRequest(actor=caller.name, reason=body.reason, note=body.note)
    return await _update(client, order_id, OrderDispatch.cancel, request)
