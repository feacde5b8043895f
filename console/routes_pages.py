"""The signed-in pages both roles share, and a consultant's own: my orders, one order with
its actions, the customer, availability, points and shifts, the live feed, the language.

Every action calls the JSON API's own function with the person's principal, so the same
permission checks and rules apply as for a bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlmodel import col, select

from api import customers as api_customers
from api import orders as api_orders
from api import staff as api_staff
from api.access import MANAGERS, load_order
from api.deps import DB, Temporal
from api.schemas import CancelIn, ReassignIn, RedispatchIn, StaffActionIn
from console import session
from console.auth import Form, SignedIn
from console.i18n import LANGUAGES
from console.live import feed
from console.queries import customer_and_records, my_orders, open_round, store_staff
from console.session import Person
from console.story import WIDTH as STORY_WIDTH
from console.story import draw_of, temporal_link
from console.web import attempt, attempt_then, redirect, refused, render
from models import Staff, Store
from models.db import session as db_session
from workflows.contracts import CANCEL_REASONS

router = APIRouter(prefix="/console", include_in_schema=False)
KEEPALIVE_SECONDS = 15.0


@router.get("")
async def home(request: Request, db: DB) -> Response:
    who = await session.person(db, request)
    if not isinstance(who, Person):
        return redirect(request, "/console/sign-in")
    return redirect(request, "/console/board" if who.is_manager else "/console/me")


@router.get("/me")
async def my_page(request: Request, db: DB, person: SignedIn) -> Response:
    return render(
        request, "me.html", person=person, orders=await my_orders(db, person.staff.id or 0)
    )


@router.get("/me/orders")
async def my_orders_fragment(request: Request, db: DB, person: SignedIn) -> Response:
    """The list alone, fetched again by the page when the live feed says it changed."""
    return render(
        request, "_my_orders.html", person=person, orders=await my_orders(db, person.staff.id or 0)
    )


@router.get("/me/account")
async def my_account(request: Request, db: DB, person: SignedIn) -> Response:
    """Availability, points with the ledger, and the next shifts."""
    staff_id = person.staff.id or 0
    caller = person.principal
    points = await api_staff.get_points(staff_id=staff_id, db=db, caller=caller, limit=30, offset=0)
    slots = await api_staff.staff_slots(
        staff_id=staff_id, db=db, caller=caller, start=None, end=None
    )
    return render(request, "account.html", person=person, points=points, slots=slots.items[:10])


@router.post("/me/pause")
async def pause(request: Request, db: DB, person: SignedIn, form: Form) -> Response:
    reason = form.get("reason", "").strip()
    return await attempt_then(
        request,
        person,
        "/console/me/account",
        lambda: api_staff.pause_rotation(
            staff_id=person.staff.id or 0,
            body=api_staff.PauseIn(reason=reason),
            request=request,
            db=db,
            caller=person.principal,
        ),
        "/console/me/account?done=paused",
    )


@router.post("/me/resume")
async def resume(request: Request, db: DB, person: SignedIn, form: Form) -> Response:
    return await attempt_then(
        request,
        person,
        "/console/me/account",
        lambda: api_staff.resume_rotation(
            staff_id=person.staff.id or 0, request=request, db=db, caller=person.principal
        ),
        "/console/me/account?done=resumed",
    )


@router.get("/orders/{order_id}")
async def order_page(order_id: str, request: Request, db: DB, person: SignedIn) -> Response:
    """The order with its actions: the holder's, and the manager's for anyone whose widest
    role (store manager, sub-site admin, head office) covers the order's store."""
    caller = person.widest
    try:
        order = await load_order(db, caller, order_id)  # the API's own scope check
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    current = await open_round(db, order_id)
    customer, records = await customer_and_records(db, order.customer_id)
    people: list[Staff] = []
    on_duty: set[int] = set()
    manages = caller.role in MANAGERS
    if manages and order.store_id is not None:  # the order's store's, not the person's
        people = [s for s in await store_staff(db, order.store_id) if s.role == "consultant"]
        duty = await api_staff.who_is_on_duty(
            store_id=order.store_id, db=db, caller=caller, at=None, include_paused=False
        )
        on_duty = {row.staff_id for row in duty.on_duty}
        people.sort(key=lambda s: (s.id not in on_duty, s.name))
    holder = await db.get(Staff, current.staff_id) if current else None
    return render(
        request,
        "order.html",
        person=person,
        order=order,
        current=current,
        holder=holder,
        customer=customer,
        records=records,
        manages=manages,
        people=people,
        on_duty=on_duty,
        cancel_reasons=CANCEL_REASONS,
        done=request.query_params.get("done", ""),
    )


@router.get("/orders/{order_id}/story")
async def story_page(order_id: str, request: Request, db: DB, person: SignedIn) -> Response:
    """The order's whole story: routing, every round with its draw, notices, events."""
    try:  # the API's own answer, with its scope check
        detail = await api_orders.get_order(order_id=order_id, db=db, caller=person.widest)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    rounds = [(a, draw_of(a.reason, a.staff_id)) for a in detail.assignments]
    ids = {a.staff_id for a in detail.assignments} | {
        s.staff_id for _, d in rounds for s in d.segments
    }
    ids |= {i for _, d in rounds for i in d.excluded}
    found = (await db.exec(select(Staff).where(col(Staff.id).in_(ids)))).all() if ids else []
    store = await db.get(Store, detail.store_id) if detail.store_id else None
    return render(
        request,
        "story.html",
        person=person,
        order=detail,
        rounds=rounds,
        names={s.id: s.name for s in found},
        temporal_url=temporal_link(order_id),
        width=STORY_WIDTH,
        store_name=store.name if store else "",
    )


@router.post("/orders/{order_id}/{action}")
async def order_action(
    order_id: str,
    action: str,
    request: Request,
    db: DB,
    client: Temporal,
    person: SignedIn,
    form: Form,
) -> Response:
    """accept, decline, complete (the assignee, or a manager on their behalf); reassign,
    redispatch, cancel (a manager, a sub-site admin or head office: whoever's widest role
    covers the order, as the API decides)."""
    reason = form.get("reason", "").strip()
    back = f"/console/orders/{order_id}"
    current = await open_round(db, order_id)
    mine = current is not None and current.staff_id == person.staff.id
    # The holder acts as themself; anyone else with their widest role, and when they act
    # for the consultant they name them: the order's current assignee.
    caller = person.principal if mine else person.widest
    on_behalf = current.staff_id if current and not mine and caller.role in MANAGERS else None

    async def act() -> Any:
        if action in ("accept", "decline", "complete"):
            update = getattr(api_orders, action)
            body = StaffActionIn(staff_id=on_behalf, reason=reason)
            return await update(db=db, client=client, caller=caller, order_id=order_id, body=body)
        if action == "reassign":
            target = int(form.get("staff_id") or 0)
            body_r = ReassignIn(staff_id=target, reason=reason)
            return await api_orders.reassign(
                order_id=order_id, body=body_r, db=db, client=client, caller=caller
            )
        if action == "redispatch":
            return await api_orders.redispatch(
                db=db,
                client=client,
                caller=caller,
                order_id=order_id,
                body=RedispatchIn(reason=reason),
            )
        if action == "cancel":  # the API's own cancel: the same reasons, checks and update
            body_c = CancelIn(reason=reason, note=form.get("note", "").strip())
            return await api_orders.cancel(
                order_id=order_id, body=body_c, db=db, client=client, caller=caller
            )
        raise HTTPException(404, f"no action {action!r}")

    try:
        failed = await attempt(request, person, back, act)
    except ValueError:
        failed = refused(request, 422, "choose a consultant", person=person, back=back)
    if failed is not None:
        return failed
    return redirect(request, f"{back}?done={action}")


@router.get("/customers/{customer_id}")
async def customer_page(customer_id: int, request: Request, db: DB, person: SignedIn) -> Response:
    try:
        await api_customers.get_customer(customer_id=customer_id, db=db, caller=person.widest)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    customer, records = await customer_and_records(db, customer_id)
    return render(request, "customer.html", person=person, customer=customer, records=records)


def _concerns(person: Person, event: dict[str, Any]) -> bool:
    if event.get("resync"):
        return True
    if person.is_manager:
        return bool(event.get("store_id") == person.store.id)
    mine = person.staff.id
    return mine in (event.get("assignee_id"), event.get("previous_assignee_id"))


async def _standing(request: Request) -> Person | None:
    """The person, checked with a database session of its own: a stream must not hold a
    pooled connection for as long as the page stays open."""
    async with db_session() as db:
        who = await session.person(db, request)
    return who if isinstance(who, Person) else None


@router.get("/events", response_class=EventSourceResponse)
async def events(request: Request) -> AsyncIterable[ServerSentEvent]:
    """`order` events for what the page shows (the store's board, or the person's orders);
    the page fetches fresh HTML on each. Every API process listens to PostgreSQL itself.
    The person's standing is checked again at every keep-alive: a lapsed session ends."""
    person = await _standing(request)
    if person is None:
        yield ServerSentEvent(event="signed_out", data="", retry=60_000)
        return
    async with feed.subscribe() as queue:
        yield ServerSentEvent(comment="listening", retry=2000)
        while True:
            event: dict[str, Any] | None = None
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(queue.get(), timeout=KEEPALIVE_SECONDS)
            if event is None:
                if await _standing(request) is None:
                    yield ServerSentEvent(event="signed_out", data="", retry=60_000)
                    return
                yield ServerSentEvent(comment="keep-alive")
            elif _concerns(person, event):
                yield ServerSentEvent(event="order", data=str(event.get("order_id", "")))


@router.post("/lang")
async def choose_language(request: Request, form: Form) -> Response:
    lang = form.get("lang", "")
    if lang in LANGUAGES:
        session.update(request, lang=lang)
    back = form.get("next", "/console")
    return redirect(
        request, back if back.startswith("/") and not back.startswith("//") else "/console"
    )


@router.post("/sign-out")
async def sign_out(request: Request, form: Form) -> Response:
    session.sign_out(request)
    return redirect(request, "/console/sign-in")
