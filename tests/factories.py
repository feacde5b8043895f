"""Factories for test rows: a sub-site with a store and staff on duty, in one call."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models import DutySlot, PointsEntry, Staff, StaffRole, Store, SubSite
from models.db import session

_seq = itertools.count(1)


@dataclass
class StoreWorld:
    subsite: SubSite
    store: Store
    manager: Staff
    consultants: list[Staff] = field(default_factory=list)


async def make_store_world(
    *,
    consultants: int = 3,
    points: list[int] | None = None,
    on_duty: bool = True,
    subsite_code: str | None = None,
    language: str = "zh",
    duty_from: datetime | None = None,
    duty_hours: int = 24 * 30,
) -> StoreWorld:
    """A sub-site, its default store, a manager and `consultants` on duty (by default now)."""
    n = next(_seq)
    code = subsite_code or f"s{n}"
    start = duty_from or datetime(2000, 1, 1, tzinfo=UTC)
    end = (datetime.now(UTC) if duty_from is None else start) + timedelta(hours=duty_hours)
    async with session() as db:
        subsite = SubSite(
            code=code,
            name=f"Sub-site {code}",
            domain=f"{code}.o2o.test",
            regions=[{"code": "CN-BJ", "cities": ["Beijing"]}],
        )
        db.add(subsite)
        await db.flush()
        store = Store(
            subsite_id=subsite.id,
            code=f"{code}-store-{n}",
            name=f"Store {n}",
            region_code="CN-BJ",
            city="Beijing",
            is_default=True,
        )
        db.add(store)
        await db.flush()
        manager = Staff(
            store_id=store.id,
            role=StaffRole.MANAGER,
            name=f"Manager {n}",
            phone=f"+86138{n:08d}",
            email=f"manager{n}@o2o.test",
            language=language,
        )
        db.add(manager)
        people = []
        for i in range(consultants):
            person = Staff(
                store_id=store.id,
                name=f"Consultant {n}-{i}",
                phone=f"+86139{n:04d}{i:04d}",
                email=f"c{n}-{i}@o2o.test",
                language=language,
            )
            db.add(person)
            people.append(person)
        await db.flush()
        for i, person in enumerate(people):
            balance = (points or [])[i] if points and i < len(points) else 10
            db.add(PointsEntry(staff_id=person.id, delta=balance, reason="opening balance"))
            if on_duty:
                db.add(
                    DutySlot(staff_id=person.id, store_id=store.id, starts_at=start, ends_at=end)
                )
        await db.commit()
        return StoreWorld(subsite=subsite, store=store, manager=manager, consultants=people)


async def sibling_store(world: StoreWorld, *, name: str = "Sibling") -> Store:
    """Another store of the world's sub-site (no staff, not the default)."""
    async with session() as db:
        store = Store(
            subsite_id=world.subsite.id,
            code=f"{world.subsite.code}-{name.lower()}",
            name=name,
            region_code="CN-BJ",
            city="Beijing",
        )
        db.add(store)
        await db.commit()
        await db.refresh(store)
        return store
