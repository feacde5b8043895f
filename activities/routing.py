"""Routing: record an incoming order and tie it to exactly one store (`route_order`).

Idempotent: once the order row has a store, the recorded decision is what a retry returns.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from maxminddb import InvalidDatabaseError
from sqlalchemy import ColumnElement, func, or_
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from activities.lookups import person_of
from activities.projection import _ENDED, _event
from dispatch.preferred import preferred_for_store, relabel_trail, wish_note
from dispatch.routing import StoreInfo, choose_store, subsite_for_order
from geo.locate import Location, shared_locator
from models import (
    CommunicationRecord,
    Customer,
    Order,
    OrderEvent,
    Staff,
    StaffRole,
    Store,
    SubSite,
)
from models.db import session
from observability import domain as domain_metrics
from services.orders import workflow_id
from services.subsites import site_infos
from settings import settings
from workflows.contracts import (
    OrderRequest,
    RoutedOrder,
)

# ---------------------------------------------------------------- routing


async def _customer_for(db: AsyncSession, order: OrderRequest, known: int | None) -> int | None:
    """The customer record for this order: found by phone, then email, else created once."""
    if known is not None:  # a retry after the order row was written
        return known
    c = order.customer
    if c.phone:  # phone is unique: concurrent orders of one customer meet on it
        await db.exec(
            insert(Customer)
            .values(name=c.name, phone=c.phone, email=c.email)
            .on_conflict_do_nothing(index_elements=["phone"])
        )
        return (await db.exec(select(Customer.id).where(Customer.phone == c.phone))).one()
    if c.email:
        found = (await db.exec(select(Customer.id).where(Customer.email == c.email))).first()
        if found is not None:
            return found
    if not (c.name or c.email):
        return None
    customer = Customer(name=c.name, email=c.email)
    db.add(customer)
    await db.flush()
    return customer.id


def _located(ip: str | None) -> tuple[Location | None, str | None]:
    """The visitor's location from the process's one GeoIP reader; a note if none is open."""
    if not ip:
        return None, None
    try:
        return shared_locator().resolve(ip), None
    except (OSError, ValueError, InvalidDatabaseError) as exc:
        return None, f"IP location unavailable ({exc.__class__.__name__}: {exc})"


async def _last_service(
    db: AsyncSession, order: OrderRequest, customer_id: int | None
) -> CommunicationRecord | None:
    """The customer's latest communication record; the customer is found by phone or email."""
    c = order.customer
    found: list[ColumnElement[bool]] = []
    if customer_id is not None:
        found.append(col(Customer.id) == customer_id)
    if c.phone:
        found.append(col(Customer.phone) == c.phone)
    if c.email:
        found.append(func.lower(Customer.email) == c.email.strip().lower())
    if not found:
        return None
    ids = select(Customer.id).where(or_(*found))
    query = (
        select(CommunicationRecord)
        .where(col(CommunicationRecord.customer_id).in_(ids))
        .order_by(col(CommunicationRecord.occurred_at).desc(), col(CommunicationRecord.id).desc())
        .limit(1)
    )
    return (await db.exec(query)).first()


async def _choose_store(
    db: AsyncSession, order: OrderRequest, customer_id: int | None
) -> tuple[Store | None, dict[str, Any]]:
    """Tie the order to one store (`dispatch.routing.choose_store` on the rows of the day).

    Returns the store and the routed event's detail: the reason, the whole trail, where the
    order came from (sub-site by host or IP, the visitor's location), the customer's wish
    and the consultant the first round should go to (`preferred_staff_id`).

    A store whose staff has no active consultant can never take an order: it is passed
    over like an inactive one (outcome "no active consultant"), unless no store on the way
    has one, when the order is tied to the first active store all the same and waits there.
    """
    subsites = list((await db.exec(select(SubSite))).all())
    stores = list((await db.exec(select(Store))).all())
    staffed = set(
        (
            await db.exec(
                select(Staff.store_id)
                .where(Staff.active, Staff.role == StaffRole.CONSULTANT)
                .distinct()
            )
        ).all()
    )
    notes: list[str] = []
    location, unlocated = _located(order.client_ip)
    if unlocated:
        notes.append(unlocated)
    sites = site_infos(subsites)
    head_offices = {s.id for s in subsites if s.is_head_office}
    head_office_store = next(
        (
            s.id
            for s in sorted(stores, key=lambda s: s.id or 0)
            if s.is_default and s.subsite_id in head_offices
        ),
        None,
    )

    last = await _last_service(db, order, customer_id)
    wish_id, wish_source = order.preferred_staff_id, "named"
    if wish_id is None and order.prefer_last_consultant:
        wish_source = "last"
        if last is not None:
            wish_id = last.staff_id
        else:
            notes.append("customer asked for their last consultant, but nobody has served them")
    consultant = await db.get(Staff, wish_id) if wish_id is not None else None
    person = person_of(consultant) if consultant is not None else None
    consultant_note = wish_note(wish_id, person)
    consultant_store = person.store_id if person is not None and person.active else None

    named = next((s for s in stores if s.id == order.store_id), None)
    match = subsite_for_order(
        order.host,
        settings.ROOT_DOMAIN,
        location,
        sites,
        named_store_subsite_id=named.subsite_id if named else None,
    )
    usable = location if location is not None and location.kind == "ok" else None
    inputs: dict[str, Any] = {
        "named_store_id": order.store_id,
        "wished_store_id": order.wished_store_id,
        "consultant_id": wish_id,
        "consultant_store_id": consultant_store,
        "last_store_id": last.store_id if last is not None else None,
        "subsite": match.site if match else None,
        "subsite_origin": match.origin if match else None,
        "region_code": usable.region_code if usable else None,
        "city": usable.city if usable else None,
        "head_office_store_id": head_office_store,
    }

    def infos(need_staff: bool) -> list[StoreInfo]:
        return [
            StoreInfo(
                id=s.id,
                subsite_id=s.subsite_id,
                region_code=s.region_code,
                city=s.city,
                is_default=s.is_default,
                active=s.active and (s.id in staffed or not need_staff),
            )
            for s in stores
            if s.id is not None
        ]

    unstaffed = {s.id for s in stores if s.active and s.id not in staffed}
    choice = choose_store(stores=infos(True), **inputs)
    if choice.store_id is None:
        anyway = choose_store(stores=infos(False), **inputs)
        if anyway.store_id is not None:
            notes.append(
                "no store on the way has an active consultant: tied to the first active one"
            )
            choice, unstaffed = anyway, set()

    trail = relabel_trail(choice.trail, unstaffed=unstaffed, consultant_note=consultant_note)
    preferred, not_preferred = preferred_for_store(person, choice.store_id)
    if not_preferred:
        notes.append(not_preferred)
    store = next((s for s in stores if s.id == choice.store_id), None)
    detail: dict[str, Any] = {
        "store_id": choice.store_id,
        "step": choice.step,
        "reason": choice.reason,
        "trail": trail,
        "subsite": (
            {"id": match.site.id, "code": match.site.code, "via": match.origin} if match else None
        ),
        "location": asdict(location) if location else None,
        "wished_store_id": order.wished_store_id,
        "wish": ({"staff_id": wish_id, "source": wish_source} if wish_id is not None else None),
        "last_served": (
            {
                "record_id": last.id,
                "staff_id": last.staff_id,
                "store_id": last.store_id,
                "at": last.occurred_at.isoformat(),
            }
            if last is not None
            else None
        ),
        "preferred_staff_id": preferred,
        "notes": notes,
    }
    return store, detail


async def _exists(db: AsyncSession, model: type[Store] | type[Staff], row_id: int | None) -> bool:
    return row_id is not None and await db.get(model, row_id) is not None


@activity.defn
async def route_order(order: OrderRequest) -> RoutedOrder:
    """Record the order and tie it to exactly one store (the first decision of every flow).

    Runs again after a crash or a retry without deciding anew: once the order row has a
    store, the recorded decision is what it returns.
    """
    async with session() as db:
        existing = await db.get(Order, order.order_id)
        if existing is not None and existing.status in _ENDED:
            return RoutedOrder(
                store_id=existing.store_id, reason=existing.store_reason, ended=existing.status
            )
        customer_id = await _customer_for(db, order, existing.customer_id if existing else None)
        if existing is None or existing.store_id is None:
            store, detail = await _choose_store(db, order, customer_id)
            place = detail["location"] or {}
            wish = detail["wish"] or {}
            values: dict[str, Any] = {
                "id": order.order_id,
                "type": order.type,
                "category": order.category,
                "priority": order.priority,
                "customer_id": customer_id,
                "customer_name": order.customer.name,
                "client_ip": (order.client_ip or None) and order.client_ip[:45],
                "host": (order.host or None) and order.host[:253],
                "region_code": place.get("region_code"),
                "city": (place.get("city") or None) and place["city"][:100],
                "requested_store_id": (
                    order.store_id if await _exists(db, Store, order.store_id) else None
                ),
                "preferred_staff_id": (
                    wish.get("staff_id") if await _exists(db, Staff, wish.get("staff_id")) else None
                ),
                "store_id": store.id if store else None,
                "subsite_id": store.subsite_id if store else None,
                "store_reason": (detail["reason"] if store else "no active store could take it")[
                    :300
                ],
                "workflow_id": workflow_id(order.order_id),
                "phase": "selecting",
            }
            routing = {k: v for k, v in values.items() if k not in ("id", "workflow_id")}
            await db.exec(
                insert(Order)
                .values(**values)
                .on_conflict_do_update(
                    index_elements=["id"], set_=routing, where=col(Order.store_id).is_(None)
                )
            )
            await _event(db, order.order_id, "routed", "routed", detail)
            await db.commit()
            if existing is None:  # routed again after "no store": received once
                domain_metrics.count_order_event("received", store_id=values["store_id"])
        row = await db.get(Order, order.order_id, populate_existing=True)
        assert row is not None
        event = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == order.order_id, OrderEvent.key == "routed"
                )
            )
        ).first()
        store = await db.get(Store, row.store_id) if row.store_id is not None else None
        subsite = await db.get(SubSite, store.subsite_id) if store else None
    recorded = event.detail if event is not None else {}
    return RoutedOrder(
        store_id=store.id if store else None,
        reason=row.store_reason,
        subsite_id=subsite.id if subsite else None,
        subsite_code=subsite.code if subsite else "",
        store_name=store.name if store else "",
        customer_name=order.customer.name,
        category=order.category,
        preferred_staff_id=recorded.get("preferred_staff_id"),
    )
