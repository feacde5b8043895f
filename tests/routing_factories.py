"""A small country for routing tests: four sub-sites on the root domain, stores in their cities.

| sub-site | regions                    | stores (the default first)                    |
|----------|----------------------------|-----------------------------------------------|
| bj (HQ)  | CN-BJ: Beijing             | bj-main Beijing, bj-west Beijing              |
| sh       | CN-SH (whole region)       | sh-main Shanghai, sh-east Shanghai            |
| gz       | CN-GD: Guangzhou, Shenzhen | gz-sz Shenzhen, gz-tianhe Guangzhou           |
| cd       | CN-SC: Chengdu             | cd-main Chengdu, cd-wuhou Chengdu             |

Guangdong's default store is in Shenzhen, so an order located in Guangzhou reaching the
Guangzhou store proves the city step, not the default. Every store has a manager and
`consultants` consultants on duty now (unless told otherwise).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from models import (
    CommunicationRecord,
    Customer,
    DutySlot,
    PointsEntry,
    Staff,
    StaffRole,
    Store,
    SubSite,
)
from models.db import session
from settings import settings

_seq = itertools.count(1)

SITES: dict[str, tuple[str, list[str], bool]] = {
    # code: (region, cities, head office)
    "bj": ("CN-BJ", ["Beijing"], True),
    "sh": ("CN-SH", [], False),
    "gz": ("CN-GD", ["Guangzhou", "Shenzhen"], False),
    "cd": ("CN-SC", ["Chengdu"], False),
}
STORES: dict[str, tuple[str, str, bool]] = {
    # store code: (sub-site, city, default)
    "bj-main": ("bj", "Beijing", True),
    "bj-west": ("bj", "Beijing", False),
    "sh-main": ("sh", "Shanghai", True),
    "sh-east": ("sh", "Shanghai", False),
    "gz-sz": ("gz", "Shenzhen", True),
    "gz-tianhe": ("gz", "Guangzhou", False),
    "cd-main": ("cd", "Chengdu", True),
    "cd-wuhou": ("cd", "Chengdu", False),
}
# Real GeoLite2 (2018) answers for these addresses.
IPS = {
    "bj": "123.125.114.144",
    "sh": "202.96.209.133",
    "gz": "113.108.81.189",
    "cd": "61.139.2.69",
    "foreign": "8.8.8.8",
}
ALWAYS = (datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=30))


def domain(code: str) -> str:
    return f"{code}.{settings.ROOT_DOMAIN}"


@dataclass
class Country:
    sites: dict[str, SubSite] = field(default_factory=dict)
    stores: dict[str, Store] = field(default_factory=dict)
    managers: dict[str, Staff] = field(default_factory=dict)
    consultants: dict[str, list[Staff]] = field(default_factory=dict)

    def site_of(self, store_id: int | None) -> str:
        """The code of the sub-site owning a store."""
        store = next(s for s in self.stores.values() if s.id == store_id)
        return next(code for code, site in self.sites.items() if site.id == store.subsite_id)

    def store_code(self, store_id: int | None) -> str:
        return next(code for code, s in self.stores.items() if s.id == store_id)


async def make_country(*, consultants: int = 2) -> Country:
    """The sub-sites, stores and staff above; every consultant on duty from 2000 to +30 days."""
    n = next(_seq)
    country = Country()
    async with session() as db:
        for code, (region, cities, head_office) in SITES.items():
            site = SubSite(
                code=code,
                name=f"Sub-site {code}",
                domain=domain(code),
                regions=[{"code": region, "cities": cities}],
                is_head_office=head_office,
            )
            db.add(site)
            await db.flush()
            country.sites[code] = site
        for code, (site_code, city, default) in STORES.items():
            site = country.sites[site_code]
            store = Store(
                subsite_id=site.id,
                code=code,
                name=f"Store {code}",
                region_code=SITES[site_code][0],
                city=city,
                is_default=default,
            )
            db.add(store)
            await db.flush()
            country.stores[code] = store
            manager = Staff(
                store_id=store.id,
                role=StaffRole.MANAGER,
                name=f"Manager {code}",
                phone=f"+86137{n:04d}{len(country.managers):04d}",
                email=f"m-{code}-{n}@o2o.test",
            )
            db.add(manager)
            country.managers[code] = manager
            people = []
            for i in range(consultants):
                person = Staff(
                    store_id=store.id,
                    name=f"Consultant {code}-{i}",
                    phone=f"+86136{n:04d}{len(country.managers):02d}{i:02d}",
                    email=f"c-{code}-{i}-{n}@o2o.test",
                )
                db.add(person)
                people.append(person)
            await db.flush()
            for person in people:
                db.add(PointsEntry(staff_id=person.id, delta=10, reason="opening balance"))
                db.add(
                    DutySlot(
                        staff_id=person.id,
                        store_id=store.id,
                        starts_at=ALWAYS[0],
                        ends_at=ALWAYS[1],
                    )
                )
            country.consultants[code] = people
        await db.commit()
    return country


async def make_customer(name: str, phone: str | None = None, email: str | None = None) -> Customer:
    async with session() as db:
        customer = Customer(name=name, phone=phone, email=email)
        db.add(customer)
        await db.commit()
        return customer


async def add_record(
    customer: Customer,
    staff: Staff,
    *,
    days_ago: float,
    channel: str = "phone",
    summary: str = "asked about a tour",
    order_id: str | None = None,
) -> CommunicationRecord:
    async with session() as db:
        record = CommunicationRecord(
            customer_id=customer.id,
            staff_id=staff.id,
            store_id=staff.store_id,
            channel=channel,
            summary=summary,
            order_id=order_id,
            occurred_at=datetime.now(UTC) - timedelta(days=days_ago),
        )
        db.add(record)
        await db.commit()
        return record
