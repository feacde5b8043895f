"""Head office's pages: the tokens for the web backend (issue, list, revoke) all orders
(filtered by status, store and sub-site, each linking to its story), and the stuck orders
with their suggested actions (redrive here, through `operations.redrive`; reassign and
cancel on the order's page).

A person listed as an admin of the head-office sub-site (`SubSite.is_head_office`) is head
office here, as an admin token of that sub-site stands for the whole company in the demo
data. Tokens are issued and revoked by the API's own functions (`/api/v1/tokens`), so their
checks and their audit entries are the API's; the secret is shown once, on the answer page.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from sqlmodel import col, select

from api import orders as api_orders
from api import stuck as api_stuck
from api import tokens as api_tokens
from api.deps import DB, temporal_client
from api.public import IssuedToken
from console.auth import Form, PageRefused, SignedIn
from console.session import Person
from console.web import attempt_then, refused, render
from models import OrderStatus, Role, Store, SubSite
from operations.errors import OperationError
from operations.reconcile import Reconciled
from operations.reconcile import reconcile as reconcile_order
from operations.redrive import Redriven
from operations.redrive import redrive as redrive_order
from services.scope import Principal

router = APIRouter(prefix="/console/hq", include_in_schema=False)


async def head_office(person: SignedIn) -> Person:
    if not person.is_head_office:
        raise PageRefused(403, "this page is for head office")
    return person


def as_head_office(person: Person) -> Principal:
    """The principal the person acts with here: head office."""
    return person.acting_as(Role.HEAD_OFFICE)


HeadOffice = Annotated[Person, Depends(head_office)]


async def _tokens_page(
    request: Request, db: DB, person: Person, issued: IssuedToken | None = None
) -> Response:
    tokens = await api_tokens.list_tokens(
        db=db,
        caller=as_head_office(person),
        staff_id=None,
        role=Role.SERVICE,
        include_revoked=request.query_params.get("revoked") == "1",
        limit=500,
        offset=0,
    )
    return render(
        request,
        "hq_tokens.html",
        person=person,
        tokens=tokens.items,
        issued=issued,
        done=request.query_params.get("done", ""),
    )


@router.get("/tokens")
async def tokens_page(request: Request, db: DB, person: HeadOffice) -> Response:
    """The web backend's tokens (role `service`), without their secrets."""
    return await _tokens_page(request, db, person)


@router.post("/tokens")
async def issue(request: Request, db: DB, person: HeadOffice, form: Form) -> Response:
    """A new token for the web backend; its secret is on this answer only (stored hashed)."""
    name = form.get("name", "").strip()
    if not name:
        return refused(request, 422, "name: required", person=person, back="/console/hq/tokens")
    try:
        body = api_tokens.TokenIn(role=Role.SERVICE, name=name)
        issued = await api_tokens.create_token(body=body, db=db, caller=as_head_office(person))
    except HTTPException as exc:
        return refused(
            request, exc.status_code, str(exc.detail), person=person, back="/console/hq/tokens"
        )
    return await _tokens_page(request, db, person, issued=issued)


@router.post("/tokens/{token_id}/revoke")
async def revoke(
    token_id: int, request: Request, db: DB, person: HeadOffice, form: Form
) -> Response:
    return await attempt_then(
        request,
        person,
        "/console/hq/tokens",
        lambda: api_tokens.revoke_token(token_id=token_id, db=db, caller=as_head_office(person)),
        "/console/hq/tokens?done=revoked",
    )


def _number(text: str, name: str) -> int | None:
    """A filter's id ("" for none); anything else is refused, naming the filter."""
    if not text:
        return None
    if not text.isdigit():
        raise PageRefused(422, f"{name}: a number, not {text[:40]!r}")
    return int(text)


@router.get("/orders")
async def orders_page(request: Request, db: DB, person: HeadOffice) -> Response:
    """Every order, newest first, filtered as the API's `GET /orders` filters them."""
    query = request.query_params
    status = query.get("status", "")
    if status and status not in {s.value for s in OrderStatus}:
        statuses = ", ".join(s.value for s in OrderStatus)
        raise PageRefused(422, f"status: one of {statuses}")
    store_id = _number(query.get("store_id", ""), "store_id")
    subsite_id = _number(query.get("subsite_id", ""), "subsite_id")
    orders = await api_orders.list_orders(
        db=db,
        caller=as_head_office(person),
        store_id=store_id,
        subsite_id=subsite_id,
        status=OrderStatus(status) if status else None,
        type=None,
        assignee_id=None,
        escalated=None,
        limit=200,
        offset=0,
    )
    stores = (await db.exec(select(Store).order_by(col(Store.name)))).all()
    sites = (await db.exec(select(SubSite).order_by(col(SubSite.name)))).all()
    return render(
        request,
        "hq_orders.html",
        person=person,
        orders=orders.items,
        total=orders.total,
        statuses=[s.value for s in OrderStatus],
        stores=stores,
        sites=sites,
        store_names={s.id: s.name for s in stores},
        chosen={"status": status, "store_id": store_id, "subsite_id": subsite_id},
    )


@router.get("/stuck")
async def stuck_page(request: Request, db: DB, person: HeadOffice) -> Response:
    """The orders that will not move on by themselves (the API's `GET /orders/stuck`)."""
    try:
        client = await temporal_client(request)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person)
    found = await api_stuck.list_stuck(
        client=client,
        caller=as_head_office(person),
        kind=None,
        store_id=None,
        waiting_minutes=None,
        escalated_minutes=None,
        limit=500,
        offset=0,
    )
    return render(
        request,
        "hq_stuck.html",
        person=person,
        stuck=found.items,
        unchecked=found.unchecked,
        done=request.query_params.get("done", ""),
    )


@router.post("/stuck/{order_id}/{action}")
async def move_on(
    order_id: str, action: str, request: Request, person: HeadOffice, form: Form
) -> Response:
    """The stuck finder's own actions, as `o2o redrive` and `o2o reconcile` run them: a new
    selection or a reset of a failed run; the database row set from the workflow's state.
    (Reassign and cancel are the order page's, which acts with head office's scope.) The
    answer is shown on the stuck page."""
    if action not in ("redrive", "reconcile"):
        return refused(
            request, 404, f"no action {action!r}", person=person, back="/console/hq/stuck"
        )
    try:
        client = await temporal_client(request)
        if action == "redrive":
            reason = f"re-driven by {person.staff.name}"
            done: Redriven | Reconciled = await redrive_order(client, order_id, reason=reason)
        else:
            done = await reconcile_order(client, order_id)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person)
    except OperationError as exc:
        return refused(request, 409, str(exc), person=person, back="/console/hq/stuck")
    redriven, reconciled = (done, None) if action == "redrive" else (None, done)
    return render(
        request,
        "hq_stuck.html",
        person=person,
        stuck=[],
        unchecked="",
        redriven=redriven,
        reconciled=reconciled,
    )
