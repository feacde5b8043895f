"""Reads the order workflow asks for: the next duty window, a preferred consultant's
availability, the store's contacts, whether a manager's pick is in the store."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dispatch.preferred import Person, availability
from dispatch.roster import Window, next_free_start
from models import (
    DutySlot,
    Leave,
    Staff,
    StaffRole,
    Store,
    SubSite,
    SubSiteAdmin,
)
from models.db import session
from workflows.contracts import (
    ConsultantStatus,
    StaffCheck,
    StoreContacts,
)

# ---------------------------------------------------------------- roster and contacts


def person_of(staff: Staff) -> Person:
    """What the pure decisions of `dispatch.preferred` read of a staff row."""
    assert staff.id is not None, "a loaded row"
    return Person(
        id=staff.id,
        store_id=staff.store_id,
        active=staff.active,
        is_consultant=staff.role == StaffRole.CONSULTANT,
        rotation_paused=staff.rotation_paused,
    )


@activity.defn
async def next_duty_start(store_id: int, after: datetime) -> datetime | None:
    """When someone of the store is next on duty and free (None: nobody in the roster ahead)."""
    async with session() as db:
        people = select(Staff.id).where(
            Staff.store_id == store_id,
            Staff.active,
            Staff.role == StaffRole.CONSULTANT,
            col(Staff.rotation_paused).is_(False),
        )
        slots = (
            await db.exec(
                select(DutySlot).where(col(DutySlot.staff_id).in_(people), DutySlot.ends_at > after)
            )
        ).all()
        leaves = (
            await db.exec(
                select(Leave).where(col(Leave.staff_id).in_(people), Leave.ends_at > after)
            )
        ).all()
    by_staff: dict[int, list[Window]] = {}
    for lv in leaves:
        by_staff.setdefault(lv.staff_id, []).append(Window(lv.starts_at, lv.ends_at))
    starts = [
        start
        for slot in slots
        if (
            start := next_free_start(
                after, [Window(slot.starts_at, slot.ends_at)], by_staff.get(slot.staff_id, [])
            )
        )
        is not None
    ]
    return min(starts, default=None)


@activity.defn
async def consultant_available(staff_id: int, at: datetime) -> ConsultantStatus:
    """Can the customer's preferred consultant take an order at `at`, and if not, why.

    Available means: exists, and `dispatch.preferred.availability` of their rows.
    """
    async with session() as db:
        staff = await db.get(Staff, staff_id)
        if staff is None:
            return ConsultantStatus(staff_id, False, f"staff {staff_id} does not exist")
        slots = (
            await db.exec(
                select(DutySlot).where(DutySlot.staff_id == staff_id, DutySlot.ends_at > at)
            )
        ).all()
        leaves = (
            await db.exec(select(Leave).where(Leave.staff_id == staff_id, Leave.ends_at > at))
        ).all()

    duty = [Window(s.starts_at, s.ends_at) for s in slots]
    away = [Window(lv.starts_at, lv.ends_at) for lv in leaves]
    found = availability(person_of(staff), at, duty, away)
    return ConsultantStatus(
        staff_id, found.available, found.reason, staff.store_id, found.next_duty_start
    )


@activity.defn
async def store_contacts(store_id: int) -> StoreContacts:
    """The store's managers and its sub-site's admins: who hears of timeouts and escalations."""
    async with session() as db:
        managers = (
            await db.exec(
                select(Staff.id).where(
                    Staff.store_id == store_id, Staff.role == StaffRole.MANAGER, Staff.active
                )
            )
        ).all()
        admins = (
            await db.exec(
                select(SubSiteAdmin.staff_id)
                .join(Store, col(Store.subsite_id) == SubSiteAdmin.subsite_id)
                .where(Store.id == store_id)
            )
        ).all()
        head_office = (
            await db.exec(
                select(SubSiteAdmin.staff_id)
                .join(SubSite, col(SubSite.id) == SubSiteAdmin.subsite_id)
                .where(SubSite.is_head_office)
            )
        ).all()
    return StoreContacts(
        manager_ids=sorted(m for m in managers if m is not None),
        admin_ids=sorted(set(admins) - set(managers)),
        head_office_ids=sorted(set(head_office) - set(managers) - set(admins)),
    )


@activity.defn
async def check_staff_in_store(check: StaffCheck) -> str:
    """A manager may reassign only to an active consultant of the order's store."""
    async with session() as db:
        staff = await db.get(Staff, check.staff_id)
    if staff is None:
        raise ApplicationError(
            f"staff {check.staff_id} does not exist", type="NotFound", non_retryable=True
        )
    if staff.store_id != check.store_id or staff.role != StaffRole.CONSULTANT:
        raise ApplicationError(
            f"staff {check.staff_id} is not a consultant of store {check.store_id}",
            type="Forbidden",
            non_retryable=True,
        )
    if not staff.active:
        raise ApplicationError(
            f"staff {check.staff_id} is inactive", type="Conflict", non_retryable=True
        )
    return staff.name
