"""Customer information retrieval: find a customer by phone, email or name; their history.

Scope (kept simple; the access-control issue may narrow it):

| role          | customers they see                                                       |
|---------------|--------------------------------------------------------------------------|
| head_office   | every customer                                                           |
| service       | a customer by their own phone or e-mail (the web backend's forms), no    |
|               | name search: the site identifies a customer, it does not browse them     |
| subsite_admin | customers with a communication record or an order in their sub-site      |
| store_manager | customers with a communication record or an order in their store         |
| staff         | customers they served (a record of theirs) or whose order they hold/held |

A customer in scope is shown whole: every communication record, in any store, since the
point of the look-up is knowing who served them before.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from sqlalchemy import ColumnElement, case, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import forbidden
from api.deps import DB, Caller, Principal
from api.public import (
    CustomerDetail,
    CustomerOrder,
    CustomerPublic,
    Page,
    PersonRef,
    RecordPublic,
    StoreRef,
)
from models import Assignment, CommunicationRecord, Customer, Order, Role, Store
from notify.contacts import normalize_email, normalize_phone
from services import customers, scope

router = APIRouter(prefix="/customers", tags=["customers"])


def _scope(caller: Principal) -> ColumnElement[bool] | None:
    """A condition on `Customer` limiting it to the caller's scope; None: no limit."""
    if caller.role in (Role.HEAD_OFFICE, Role.SERVICE):
        return None
    served = scope.visible(
        caller,
        store=CommunicationRecord.store_id,
        subsite=Store.subsite_id,
        staff=CommunicationRecord.staff_id,
    )
    held = scope.visible(
        caller, store=Order.store_id, subsite=Order.subsite_id, staff=Assignment.staff_id
    )
    assert served is not None and held is not None  # limited roles only, from here on
    record = (
        select(CommunicationRecord.id)
        .join(Store, col(Store.id) == CommunicationRecord.store_id)
        .where(CommunicationRecord.customer_id == Customer.id, served)
    )
    order = (
        select(Order.id)
        .join(Assignment, col(Assignment.order_id) == Order.id, isouter=True)
        .where(Order.customer_id == Customer.id, held)
    )
    return or_(exists(record), exists(order))


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("", response_model=Page[CustomerPublic])
async def find_customers(
    db: DB,
    caller: Caller,
    phone: Annotated[str | None, Query(max_length=32, description="any format; normalised")] = None,
    email: Annotated[str | None, Query(max_length=254)] = None,
    name: Annotated[
        str | None, Query(min_length=1, max_length=100, description="partial match")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[CustomerPublic]:
    """Customers matching every criterion given; by name: exact, then prefix, then contains."""
    if not (phone or email or (name and name.strip())):
        raise HTTPException(422, "give at least one of phone, email or name")
    if caller.role is Role.SERVICE and not (phone or email):
        raise forbidden("the service token finds a customer by phone or email, not by name")
    query = select(Customer)
    if phone:
        try:
            query = query.where(Customer.phone == normalize_phone(phone))
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
    if email:
        try:
            wanted = normalize_email(email)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        query = query.where(func.lower(Customer.email) == wanted.lower())
    rank: ColumnElement[int] | None = None
    if name and name.strip():
        needle = name.strip().lower()
        pattern = _like_escaped(needle)
        lowered = func.lower(Customer.name)
        query = query.where(lowered.like(f"%{pattern}%", escape="\\"))
        rank = case(
            (lowered == needle, 0),
            (lowered.like(f"{pattern}%", escape="\\"), 1),
            else_=2,
        )
    scope = _scope(caller)
    if scope is not None:
        query = query.where(scope)
    total = (await db.exec(select(func.count()).select_from(query.subquery()))).one()
    order_by = [col(Customer.name), col(Customer.id)]
    if rank is not None:
        order_by.insert(0, rank)  # type: ignore[arg-type]
    rows = (await db.exec(query.order_by(*order_by).limit(limit).offset(offset))).all()
    return Page(items=[CustomerPublic.of(r) for r in rows], total=total, limit=limit, offset=offset)


async def _load(db: AsyncSession, caller: Principal, customer_id: int) -> Customer:
    customer = await db.get(Customer, customer_id)
    if customer is None:
        raise HTTPException(404, f"no customer {customer_id}")
    scope = _scope(caller)
    if scope is not None:
        seen = await db.exec(select(Customer.id).where(Customer.id == customer_id, scope))
        if seen.first() is None:
            raise forbidden(f"customer {customer_id} has no record or order in your scope")
    return customer


@router.get("/{customer_id}", response_model=CustomerDetail)
async def get_customer(customer_id: int, db: DB, caller: Caller) -> CustomerDetail:
    """The profile, every communication record (newest first) and the latest orders."""
    customer = await _load(db, caller, customer_id)
    found = await customers.records_of(db=db, customer_id=customer_id)
    orders = (
        await db.exec(
            select(Order)
            .where(Order.customer_id == customer_id)
            .order_by(col(Order.created_at).desc())
            .limit(50)
        )
    ).all()
    records = [
        RecordPublic(
            id=record.id,
            occurred_at=record.occurred_at,
            channel=record.channel,
            summary=record.summary,
            order_id=record.order_id,
            staff=PersonRef(id=staff.id, name=staff.name, active=staff.active),
            store=StoreRef(id=store.id, code=store.code, name=store.name),
        )
        for record, staff, store in ((f.record, f.staff, f.store) for f in found)
    ]
    detail: CustomerDetail = CustomerDetail.of(
        customer,
        records=records,
        last_served=records[0] if records else None,
        orders=[CustomerOrder.of(o) for o in orders],
    )
    return detail
