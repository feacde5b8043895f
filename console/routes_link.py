"""`/o/<token>`: the link in an offer's SMS and e-mail.

GET only shows the offer (a mail scanner that fetches every link changes nothing); the
POST from that page accepts or declines, once. A link that cannot act gets a page saying
why — tampered, reused, expired, superseded, or someone else's — and what to do instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlalchemy import func
from sqlmodel import select

from api import orders as api_orders
from api.deps import DB, Principal, Temporal
from api.schemas import StaffActionIn
from console import session
from console.links import OrderLink, TamperedLink, read_token, token_digest
from console.queries import customer_and_records, round_of
from console.web import redirect, render
from models import AssignmentOutcome, ConsoleLinkUse, Order, Role, Staff, Store
from models.base import utcnow

router = APIRouter(include_in_schema=False)
# The link's page must not leak its token to another site, nor stay in a cache.
LINK_HEADERS = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}

Verdict = Literal["ok", "tampered", "reused", "expired", "superseded", "not_yours"]
STATUS: dict[str, int] = {
    "ok": 200,
    "tampered": 400,
    "not_yours": 403,
    "reused": 410,
    "expired": 410,
    "superseded": 410,
}


@dataclass(frozen=True)
class Judged:
    verdict: Verdict
    link: OrderLink | None = None
    order: Order | None = None
    staff: Staff | None = None
    store: Store | None = None
    outcome: str = ""


async def judge(db: DB, request: Request, token: str) -> Judged:
    """What this link may do now; never raises for a bad link."""
    try:
        link = read_token(token)
    except TamperedLink:
        return Judged("tampered")
    order = await db.get(Order, link.order_id)
    staff = await db.get(Staff, link.staff_id)
    if order is None or staff is None:
        return Judged("tampered", link)
    store = await db.get(Store, staff.store_id)
    if await db.get(ConsoleLinkUse, token_digest(token)) is not None:
        return Judged("reused", link, order, staff, store)
    mine = session.current(request).staff_id
    if mine is not None and mine != link.staff_id:
        return Judged("not_yours", link, order, staff, store)
    offer = await round_of(db, link.order_id, link.round)
    if offer is None or offer.staff_id != link.staff_id:
        return Judged("superseded", link, order, staff, store)
    if offer.outcome == AssignmentOutcome.TIMED_OUT:
        return Judged("expired", link, order, staff, store, offer.outcome)
    if offer.outcome != AssignmentOutcome.OFFERED or not staff.active:
        return Judged("superseded", link, order, staff, store, offer.outcome)
    if offer.accept_deadline <= utcnow():
        return Judged("expired", link, order, staff, store, offer.outcome)
    return Judged("ok", link, order, staff, store, offer.outcome)


async def _offer_page(
    db: DB, request: Request, token: str, judged: Judged, error: str = ""
) -> Response:
    assert judged.order is not None and judged.link is not None and judged.staff is not None
    offer = await round_of(db, judged.order.id, judged.link.round)
    customer, records = await customer_and_records(db, judged.order.customer_id)
    return render(
        request,
        "link_offer.html",
        staff_language=judged.staff.language,
        headers=LINK_HEADERS,
        token=token,
        order=judged.order,
        offer=offer,
        store=judged.store,
        customer=customer,
        records=records,
        error=error,
        zone=judged.store.timezone if judged.store else "Asia/Shanghai",
        status=422 if error else 200,
    )


def _verdict_page(request: Request, judged: Judged) -> Response:
    return render(
        request,
        "link_refused.html",
        status=STATUS[judged.verdict],
        staff_language=judged.staff.language if judged.staff else None,
        headers=LINK_HEADERS,
        verdict=judged.verdict,
        order=judged.order if judged.verdict != "not_yours" else None,
        outcome=judged.outcome,
    )


@router.get("/o/{token}")
async def show_offer(token: str, request: Request, db: DB) -> Response:
    judged = await judge(db, request, token)
    if judged.verdict != "ok":
        return _verdict_page(request, judged)
    return await _offer_page(db, request, token, judged)


@router.post("/o/{token}")
async def act_on_offer(token: str, request: Request, db: DB, client: Temporal) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not session.csrf_ok(request, values.get(session.CSRF_FIELD)):
        return render(
            request,
            "refused.html",
            status=403,
            headers=LINK_HEADERS,
            detail="csrf",
            back=f"/o/{token}",
        )
    judged = await judge(db, request, token)
    if judged.verdict != "ok":
        return _verdict_page(request, judged)
    assert judged.link is not None and judged.staff is not None and judged.order is not None
    action = values.get("action", "")
    reason = values.get("reason", "").strip()
    if action not in ("accept", "decline"):
        return await _offer_page(db, request, token, judged, error="choose accept or decline")
    if len(reason) > 500:
        return await _offer_page(db, request, token, judged, error="the reason is too long")
    link, staff = judged.link, judged.staff
    # One use at a time per link: a second POST (a double tap, another tab) waits here, then
    # finds the use recorded. An advisory lock, not a row: a row referencing the order would
    # hold a key-share lock on it that the order's own projection write waits for.
    digest = token_digest(token)
    await db.exec(select(func.pg_advisory_xact_lock(func.hashtext(digest))))
    if await db.get(ConsoleLinkUse, digest) is not None:
        await db.rollback()
        return _verdict_page(request, Judged("reused", link, judged.order, staff, judged.store))
    caller = Principal(
        name=f"{staff.name} (staff {staff.id}, link)"[:100],
        role=Role.STAFF,
        staff_id=staff.id,
        store_id=staff.store_id,
    )
    update = api_orders.accept if action == "accept" else api_orders.decline
    try:
        await update(
            db=db,
            client=client,
            caller=caller,
            order_id=link.order_id,
            body=StaffActionIn(reason=reason),
        )
    except HTTPException as exc:
        await db.rollback()
        # The order moved on between the page and the tap (a timeout, a manager's reassign).
        again = await judge(db, request, token)
        if again.verdict != "ok":
            return _verdict_page(request, again)
        return await _offer_page(db, request, token, judged, error=str(exc.detail))
    db.add(
        ConsoleLinkUse(
            token_digest=digest,
            order_id=link.order_id,
            round=link.round,
            staff_id=link.staff_id,
            purpose=link.purpose,
            action=action,
        )
    )
    await db.commit()
    session.sign_in(request, staff, limited_to_self=True)
    done = "accepted" if action == "accept" else "declined"
    return redirect(request, f"/console/orders/{link.order_id}?done={done}")
