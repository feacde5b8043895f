"""What `make run` prints about the console: where it is and whom to sign in as."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import col, select

from models import Staff, StaffRole, Store
from models.db import session

DEMO_STORE = "bj-chaoyang"


@dataclass(frozen=True)
class DemoPerson:
    role: str  # "consultant" | "manager"
    name: str
    phone: str


async def demo_people() -> list[DemoPerson]:
    """The demo store's manager and first consultant (the demo tokens' people)."""
    people = []
    async with session() as db:
        for role in (StaffRole.CONSULTANT, StaffRole.MANAGER):
            staff = (
                await db.exec(
                    select(Staff)
                    .join(Store, col(Store.id) == Staff.store_id)
                    .where(Store.code == DEMO_STORE, Staff.role == role, col(Staff.active))
                    .order_by(col(Staff.id))
                )
            ).first()
            if staff is not None and staff.phone:
                people.append(DemoPerson(role.value, staff.name, staff.phone))
    return people
