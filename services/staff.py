"""Staff: who of a store could take an order now (the draw's candidates), and changing a
staff member with everything a move or a deactivation implies."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, delete, func
from sqlalchemy import select as sql_select
from sqlalchemy import update as sql_update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from dispatch.selection import Candidate
from models import (
    OPEN_OUTCOMES,
    ApiToken,
    Assignment,
    DutySlot,
    Role,
    Staff,
    StaffRole,
    Store,
    SubSiteAdmin,
)
from models.base import utcnow
from services import audit
from services.errors import Invalid
from services.points import balance_of
from services.roster import on_duty
from services.roster_changes import Released, release_open_orders, reroll_staff


def open_orders_of(staff_id: Any) -> ScalarSelect[Any]:
    """How many orders `staff_id` holds (offered or accepted), as a SQL scalar."""
    return (
        select(func.count())
        .select_from(Assignment)
        .where(col(Assignment.staff_id) == staff_id, col(Assignment.outcome).in_(OPEN_OUTCOMES))
        .scalar_subquery()
    )


async def candidates(
    db: AsyncSession, *, store_id: int, at: datetime, channels: Iterable[str] | None = None
) -> list[Candidate]:
    """Every consultant of the store with what the draw weighs: points, open orders, duty;
    `channels`: those of the rule's `assigned` notice (someone none of them reaches is not
    reachable)."""
    wanted = set(channels) if channels is not None else {"sms", "email"}
    query = (
        sql_select(
            col(Staff.id),
            col(Staff.active),
            col(Staff.rotation_paused),
            col(Staff.capacity),
            col(Staff.phone),
            col(Staff.email),
            balance_of(Staff.id).label("points"),
            open_orders_of(Staff.id).label("open_orders"),
            on_duty(Staff.id, at).label("on_duty"),
        )
        .where(col(Staff.store_id) == store_id, col(Staff.role) == StaffRole.CONSULTANT)
        .order_by(col(Staff.id))
    )
    rows = await (await db.connection()).execute(query)
    return [
        Candidate(
            staff_id=r.id,
            points=int(r.points),
            open_orders=int(r.open_orders),
            capacity=r.capacity,
            on_duty=bool(r.on_duty),
            active=r.active,
            paused=r.rotation_paused,
            reachable=bool(("sms" in wanted and r.phone) or ("email" in wanted and r.email)),
        )
        for r in rows
    ]


NO_CONTACT = "a staff member needs a phone or an e-mail: notices must reach them"


@dataclass(frozen=True)
class StaffChanged:
    staff: Staff
    old_store_id: int
    released: list[Released] = field(default_factory=list)


async def update(
    *,
    db: AsyncSession,
    staff: Staff,
    changes: dict[str, Any],
    new_store: Store | None,
    client: Client | None,
    actor: str,
    reason: str = "",
) -> StaffChanged:
    """Apply `changes` to `staff`, with what a move or a deactivation implies.

    A move (`new_store`) ends the person's future slots in the old store, re-scopes their
    staff and manager tokens, drops their admin rows of other sub-sites and rolls their
    pattern in the new store; a deactivation revokes their tokens. Either re-dispatches
    their open orders (through `client`, which the caller obtains first, so nothing changes
    when Temporal does not answer). A person keeps at least one reachable contact.
    """
    phone = changes.get("phone", staff.phone)
    email = changes.get("email", staff.email)
    if not (phone or email):
        raise Invalid.field("body", "phone" if "phone" in changes else "email", msg=NO_CONTACT)
    staff_id = staff.id
    assert staff_id is not None
    old_store = staff.store_id
    deactivating = changes.get("active") is False and staff.active
    old = audit.snapshot(staff)
    for name, value in changes.items():
        setattr(staff, name, value)
    await audit.record(
        db,
        actor=actor,
        kind="staff",
        object_id=staff_id,
        old=old,
        new=staff,
        store_id=staff.store_id,
    )
    now = utcnow()
    if new_store is not None:
        await db.exec(
            delete(DutySlot).where(
                col(DutySlot.staff_id) == staff_id,
                col(DutySlot.store_id) == old_store,
                col(DutySlot.ends_at) > now,
            )
        )
        await db.exec(
            sql_update(ApiToken)
            .where(
                col(ApiToken.staff_id) == staff_id,
                col(ApiToken.role).in_([Role.STAFF.value, Role.STORE_MANAGER.value]),
            )
            .values(store_id=new_store.id, subsite_id=new_store.subsite_id)
        )
        # An admin of the old sub-site is none once working elsewhere (their admin tokens lapse).
        await db.exec(
            delete(SubSiteAdmin).where(
                col(SubSiteAdmin.staff_id) == staff_id,
                col(SubSiteAdmin.subsite_id) != new_store.subsite_id,
            )
        )
    if deactivating:  # a person who left keeps no access
        await db.exec(
            sql_update(ApiToken)
            .where(col(ApiToken.staff_id) == staff_id, col(ApiToken.revoked_at).is_(None))
            .values(revoked_at=now)
        )
    db.add(staff)
    await db.flush()
    if new_store is not None and staff.active:
        await reroll_staff(db, staff_id, at=now)
    await db.commit()
    await db.refresh(staff)
    released: list[Released] = []
    if client is not None:
        trigger = "deactivated" if deactivating else f"moved to store {staff.store_id}"
        released = await release_open_orders(
            client,
            staff_id,
            trigger=trigger,
            reason=reason or f"staff {staff_id} {trigger} by {actor}",
            by=actor,
        )
    return StaffChanged(staff=staff, old_store_id=old_store, released=released)
