"""Demo data for the embedded stack: four sub-sites, two stores each, staff on a 24-hour roster.

Loaded once: a second start finds the `bj` sub-site and leaves everything as it is.

Demo tokens (development only, created once, printed by `make run`): one person of each role
with a fixed, documented token, so the access rules can be tried by hand:

| token                          | role          | who                                       |
|--------------------------------|---------------|-------------------------------------------|
| o2o-dev-staff-token            | staff         | the first consultant of bj-chaoyang       |
| o2o-dev-manager-token          | store_manager | the manager of bj-chaoyang                |
| o2o-dev-subsite-admin-token    | subsite_admin | the admin of the sh sub-site (sh-jingan)  |
| o2o-dev-head-office-token      | head_office   | head office                               |
| o2o-dev-service-token          | service       | the web backend's order intake            |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlmodel import col, select

from activities.roster import roll_roster
from models import (
    ApiToken,
    CommunicationRecord,
    Customer,
    DutyPattern,
    OrderType,
    PointsEntry,
    Role,
    Staff,
    StaffRole,
    Store,
    SubSite,
    SubSiteAdmin,
)
from models.db import session
from services.roster_changes import RollRequest
from services.rules import get_or_create_rule
from settings import Environment, settings


@dataclass(frozen=True)
class DemoStore:
    code: str
    name: str
    city: str
    address: str
    is_default: bool = False


@dataclass(frozen=True)
class DemoSite:
    code: str
    name: str
    region: str
    cities: tuple[str, ...]
    stores: tuple[DemoStore, ...]
    head_office: bool = False


SITES = (
    DemoSite(
        "bj",
        "北京分站 Beijing",
        "CN-BJ",
        ("Beijing",),
        (
            DemoStore("bj-chaoyang", "朝阳门店 Chaoyang", "Beijing", "朝阳区建国路 88 号", True),
            DemoStore("bj-haidian", "海淀门店 Haidian", "Beijing", "海淀区中关村大街 1 号"),
        ),
        head_office=True,
    ),
    DemoSite(
        "sh",
        "上海分站 Shanghai",
        "CN-SH",
        ("Shanghai",),
        (
            DemoStore("sh-jingan", "静安门店 Jing'an", "Shanghai", "静安区南京西路 1266 号", True),
            DemoStore("sh-pudong", "浦东门店 Pudong", "Shanghai", "浦东新区世纪大道 100 号"),
        ),
    ),
    DemoSite(
        "gz",
        "广东分站 Guangdong",
        "CN-GD",
        ("Guangzhou", "Shenzhen"),
        (
            DemoStore("gz-tianhe", "天河门店 Tianhe", "Guangzhou", "天河区天河路 208 号", True),
            DemoStore("sz-futian", "福田门店 Futian", "Shenzhen", "福田区深南大道 6008 号"),
        ),
    ),
    DemoSite(
        "cd",
        "四川分站 Sichuan",
        "CN-SC",
        ("Chengdu",),
        (
            DemoStore("cd-jinjiang", "锦江门店 Jinjiang", "Chengdu", "锦江区春熙路 9 号", True),
            DemoStore("cd-wuhou", "武侯门店 Wuhou", "Chengdu", "武侯区人民南路 4 段 1 号"),
        ),
    ),
)

SURNAMES = ("王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴")
GIVEN = ("伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋")
# Two consultants on 08:00–20:00 and two on 20:00–08:00, every day: every hour covered twice.
DAY, NIGHT = (time(8), time(20)), (time(20), time(8))
CONSULTANT_SHIFTS = (DAY, DAY, NIGHT, NIGHT)
CUSTOMERS = (
    ("韩梅梅", "+8613911110001", "meimei.han@o2o.test"),
    ("李雷", "+8613911110002", "lei.li@o2o.test"),
    ("Jim Green", "+8613911110003", "jim.green@o2o.test"),
    ("林涛", "+8613911110004", "tao.lin@o2o.test"),
    ("Lucy King", "+8613911110005", "lucy.king@o2o.test"),
    ("魏华", "+8613911110006", "hua.wei@o2o.test"),
)


async def load_demo_data() -> bool:
    """Load the demo data unless it is there already; True if it was loaded now."""
    async with session() as db:
        if (await db.exec(select(SubSite).where(SubSite.code == "bj"))).first() is not None:
            return False
        person = 0
        consultants: list[Staff] = []
        for site in SITES:
            subsite = SubSite(
                code=site.code,
                name=site.name,
                domain=f"{site.code}.{settings.ROOT_DOMAIN}",
                regions=[{"code": site.region, "cities": list(site.cities)}],
                is_head_office=site.head_office,
            )
            db.add(subsite)
            await db.flush()
            assert subsite.id is not None
            for store_seed in site.stores:
                store = Store(
                    subsite_id=subsite.id,
                    code=store_seed.code,
                    name=store_seed.name,
                    region_code=site.region,
                    city=store_seed.city,
                    address=store_seed.address,
                    is_default=store_seed.is_default,
                )
                db.add(store)
                await db.flush()
                assert store.id is not None
                for i, shift in enumerate((None, *CONSULTANT_SHIFTS)):
                    person += 1
                    name = SURNAMES[person % 10] + GIVEN[(person * 3) % 10]
                    staff = Staff(
                        store_id=store.id,
                        name=f"{name} ({store_seed.code}-{i})",
                        role=StaffRole.MANAGER if shift is None else StaffRole.CONSULTANT,
                        phone=f"+86138{person:08d}",
                        email=f"staff{person}@o2o.test",
                        language="en" if person % 4 == 0 else "zh",
                    )
                    db.add(staff)
                    await db.flush()
                    assert staff.id is not None
                    if shift is None:  # the manager of the default store administers the site
                        if store_seed.is_default:
                            db.add(SubSiteAdmin(subsite_id=subsite.id, staff_id=staff.id))
                        continue
                    consultants.append(staff)
                    db.add(
                        PointsEntry(
                            staff_id=staff.id,
                            delta=5 + (person * 7) % 20,
                            reason="opening balance",
                            actor="demo",
                        )
                    )
                    for weekday in range(7):
                        db.add(
                            DutyPattern(
                                staff_id=staff.id, weekday=weekday, start=shift[0], end=shift[1]
                            )
                        )
        for n, (name, phone, email) in enumerate(CUSTOMERS):
            customer = Customer(name=name, phone=phone, email=email)
            db.add(customer)
            await db.flush()
            assert customer.id is not None
            served_by = consultants[(n * 5) % len(consultants)]
            assert served_by.id is not None
            db.add(
                CommunicationRecord(
                    customer_id=customer.id,
                    staff_id=served_by.id,
                    store_id=served_by.store_id,
                    channel="phone",
                    summary="咨询了云南六日游 / asked about a 6-day Yunnan tour",
                    occurred_at=datetime.now(UTC) - timedelta(days=10 + n),
                )
            )
        for order_type in OrderType:
            await get_or_create_rule(db, order_type.value)
        await db.commit()
    await roll_roster(RollRequest(days=14))
    return True


@dataclass(frozen=True)
class DemoToken:
    role: Role
    token: str
    store_code: str | None = None  # the person: the first staff member of this store …
    staff_role: StaffRole | None = None  # … with this role
    what: str = ""


DEMO_TOKENS = (
    DemoToken(
        Role.STAFF,
        "o2o-dev-staff-token",
        "bj-chaoyang",
        StaffRole.CONSULTANT,
        "accepts only their own orders",
    ),
    DemoToken(
        Role.STORE_MANAGER,
        "o2o-dev-manager-token",
        "bj-chaoyang",
        StaffRole.MANAGER,
        "reassigns only in bj-chaoyang",
    ),
    DemoToken(
        Role.SUBSITE_ADMIN,
        "o2o-dev-subsite-admin-token",
        "sh-jingan",
        StaffRole.MANAGER,
        "the sh sub-site's stores, staff and tokens",
    ),
    DemoToken(Role.HEAD_OFFICE, "o2o-dev-head-office-token", what="everything"),
    DemoToken(Role.SERVICE, "o2o-dev-service-token", what="submits and reads orders"),
)


async def ensure_demo_tokens() -> list[tuple[DemoToken, ApiToken]]:
    """Create the fixed demo tokens once (development only); the rows, new or kept as they are
    (one an operator revoked stays revoked)."""
    from api.deps import hash_token
    from api.tokens import TokenError, issue_token

    if settings.ENVIRONMENT is not Environment.DEVELOPMENT:
        return []
    made: list[tuple[DemoToken, ApiToken]] = []
    async with session() as db:
        for demo in DEMO_TOKENS:
            row = (
                await db.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(demo.token)))
            ).first()
            if row is None:
                staff_id = None
                if demo.store_code is not None:
                    staff_id = (
                        await db.exec(
                            select(Staff.id)
                            .join(Store)
                            .where(Store.code == demo.store_code, Staff.role == demo.staff_role)
                            .order_by(col(Staff.id))
                        )
                    ).first()
                    if staff_id is None:  # the demo data is not there
                        continue
                try:
                    row, _ = await issue_token(
                        db,
                        role=demo.role,
                        staff_id=staff_id,
                        name="" if staff_id else f"{demo.role.value.replace('_', ' ')} (demo)",
                        token=demo.token,
                    )
                except TokenError:  # the demo person was changed by hand: no token for them
                    continue
            made.append((demo, row))
    return made
