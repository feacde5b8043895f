"""Customer information retrieval: find by phone, email or name; the profile and its records."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from models import Customer, Role
from models.db import session
from tests.api_helpers import admin, api_client, bearer, make_token
from tests.routing_factories import Country, add_record, make_country, make_customer

CUSTOMERS = "/api/v1/customers"


async def token(role: Role, **scope: int | None) -> dict[str, str]:
    return bearer(await make_token(role, **scope))


@pytest.fixture
async def api(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


@pytest.fixture
async def country(clean_db: str) -> Country:
    return await make_country(consultants=2)


async def find(
    api: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: str
) -> list[str]:
    response = await api.get(CUSTOMERS, params=params, headers=headers or admin())
    assert response.status_code == 200, response.text
    return [c["name"] for c in response.json()["items"]]


async def test_found_by_phone_in_any_format(api: httpx.AsyncClient, country: Country) -> None:
    await make_customer("韩梅梅", phone="+8613911110001")
    await make_customer("李雷", phone="+8613911110002")

    for written in ("+8613911110001", "139 1111 0001", "+86 139-1111-0001", "13911110001"):
        assert await find(api, phone=written) == ["韩梅梅"], written
    assert await find(api, phone="13911119999") == []


async def test_found_by_email_whatever_the_domains_case(
    api: httpx.AsyncClient, country: Country
) -> None:
    await make_customer("Jim Green", email="jim.green@o2o.test")
    await make_customer("Jim Brown", email="jim.brown@o2o.test")

    assert await find(api, email="jim.green@O2O.TEST") == ["Jim Green"]
    assert await find(api, email=" Jim.Green@o2o.test ") == ["Jim Green"]


async def test_names_match_in_part_ranked_exact_prefix_contains(
    api: httpx.AsyncClient, country: Country
) -> None:
    for name in ("Ann Li", "Lily Wang", "li", "Julie", "Li Lei", "Bob", "50% Li_x"):
        await make_customer(name)

    assert await find(api, name="LI") == [
        "li",
        "Li Lei",
        "Lily Wang",
        "50% Li_x",
        "Ann Li",
        "Julie",
    ]
    assert await find(api, name="%") == ["50% Li_x"]  # wildcards match only themselves
    assert await find(api, name="i_") == ["50% Li_x"]


async def test_chinese_names_match_in_part(api: httpx.AsyncClient, country: Country) -> None:
    for name in ("李雷", "李", "小李", "韩梅梅"):
        await make_customer(name)

    assert await find(api, name="李") == ["李", "李雷", "小李"]


async def test_criteria_combine(api: httpx.AsyncClient, country: Country) -> None:
    await make_customer("Li Lei", phone="+8613911110002")
    await make_customer("Li Na", phone="+8613911110003")

    assert await find(api, name="li", phone="13911110003") == ["Li Na"]
    assert await find(api, name="lei", phone="13911110003") == []


async def test_a_search_needs_a_valid_criterion(api: httpx.AsyncClient, country: Country) -> None:
    none = await api.get(CUSTOMERS, headers=admin())
    blank = await api.get(CUSTOMERS, params={"name": "  "}, headers=admin())
    bad_phone = await api.get(CUSTOMERS, params={"phone": "12"}, headers=admin())
    bad_email = await api.get(CUSTOMERS, params={"email": "not-an-email"}, headers=admin())
    anonymous = await api.get(CUSTOMERS, params={"name": "li"})

    assert none.status_code == 422
    assert none.json()["detail"] == "give at least one of phone, email or name"
    assert blank.status_code == 422
    assert bad_phone.status_code == 422
    assert "not a valid phone number" in bad_phone.json()["detail"]
    assert bad_email.status_code == 422
    assert anonymous.status_code == 401


async def test_results_are_paged(api: httpx.AsyncClient, country: Country) -> None:
    for i in range(5):
        await make_customer(f"Zhang {i}")

    response = await api.get(
        CUSTOMERS, params={"name": "zhang", "limit": 2, "offset": 2}, headers=admin()
    )

    body = response.json()
    assert (body["total"], body["limit"], body["offset"]) == (5, 2, 2)
    assert [c["name"] for c in body["items"]] == ["Zhang 2", "Zhang 3"]


async def test_the_profile_lists_every_record_newest_first(
    api: httpx.AsyncClient, country: Country
) -> None:
    customer = await make_customer("Lucy King", phone="+8613911110005", email="lucy@o2o.test")
    old_staff = country.consultants["sh-main"][0]
    new_staff = country.consultants["cd-wuhou"][1]
    old = await add_record(customer, old_staff, days_ago=40, summary="asked about Tibet")
    new = await add_record(
        customer, new_staff, days_ago=1, channel="wechat", summary="booked Yunnan"
    )

    response = await api.get(f"{CUSTOMERS}/{customer.id}", headers=admin())

    assert response.status_code == 200, response.text
    profile: dict[str, Any] = response.json()
    assert (profile["name"], profile["phone"], profile["email"]) == (
        "Lucy King",
        "+8613911110005",
        "lucy@o2o.test",
    )
    assert [
        (r["id"], r["channel"], r["summary"], r["staff"]["id"], r["store"]["code"], r["order_id"])
        for r in profile["records"]
    ] == [
        (new.id, "wechat", "booked Yunnan", new_staff.id, "cd-wuhou", None),
        (old.id, "phone", "asked about Tibet", old_staff.id, "sh-main", None),
    ]
    assert profile["records"][0]["staff"]["name"] == new_staff.name
    assert profile["records"][0]["occurred_at"].startswith(new.occurred_at.date().isoformat())
    assert profile["last_served"]["id"] == new.id
    assert profile["orders"] == []


async def test_an_unknown_customer_is_404(api: httpx.AsyncClient, country: Country) -> None:
    response = await api.get(f"{CUSTOMERS}/999999", headers=admin())

    assert response.status_code == 404


async def test_sub_site_admins_managers_and_staff_see_their_customers_only(
    api: httpx.AsyncClient, country: Country
) -> None:
    beijing = await make_customer("Wang Bei", phone="+8613911110011")
    shanghai = await make_customer("Wang Hu", phone="+8613911110012")
    bj_person = country.consultants["bj-west"][0]
    await add_record(beijing, bj_person, days_ago=2)
    await add_record(shanghai, country.consultants["sh-main"][0], days_ago=2)
    bj_admin = await token(Role.SUBSITE_ADMIN, subsite_id=country.sites["bj"].id)
    bj_main_manager = await token(Role.STORE_MANAGER, store_id=country.stores["bj-main"].id)
    bj_west_manager = await token(Role.STORE_MANAGER, store_id=country.stores["bj-west"].id)
    served = await token(Role.STAFF, staff_id=bj_person.id, store_id=bj_person.store_id)
    colleague_id = country.consultants["bj-west"][1].id
    colleague = await token(Role.STAFF, staff_id=colleague_id, store_id=bj_person.store_id)
    service = await token(Role.SERVICE)

    assert await find(api, bj_admin, name="wang") == ["Wang Bei"]
    assert await find(api, bj_main_manager, name="wang") == []
    assert await find(api, bj_west_manager, name="wang") == ["Wang Bei"]
    assert await find(api, served, name="wang") == ["Wang Bei"]
    assert await find(api, colleague, name="wang") == []
    assert await find(api, service, phone="139 1111 0012") == ["Wang Hu"]
    browse = await api.get(CUSTOMERS, params={"name": "wang"}, headers=service)
    assert browse.status_code == 403
    assert "by phone or email, not by name" in browse.json()["detail"]
    assert await find(api, admin(), name="wang") == ["Wang Bei", "Wang Hu"]
    seen = await api.get(f"{CUSTOMERS}/{beijing.id}", headers=bj_admin)
    hidden = await api.get(f"{CUSTOMERS}/{shanghai.id}", headers=bj_admin)
    assert seen.status_code == 200
    assert hidden.status_code == 403


async def test_an_order_in_scope_brings_its_customer_into_scope(
    api: httpx.AsyncClient, country: Country
) -> None:
    from activities.routing import route_order
    from workflows.contracts import CustomerIn, OrderRequest

    request = OrderRequest(
        order_id=f"C{uuid.uuid4().hex[:10]}",
        type="new",
        customer=CustomerIn(name="Zhou Gz", phone="+8613911110021"),
        store_id=country.stores["gz-tianhe"].id,
    )
    await route_order(request)
    gz_admin = await token(Role.SUBSITE_ADMIN, subsite_id=country.sites["gz"].id)
    cd_admin = await token(Role.SUBSITE_ADMIN, subsite_id=country.sites["cd"].id)

    assert await find(api, gz_admin, phone="13911110021") == ["Zhou Gz"]
    assert await find(api, cd_admin, phone="13911110021") == []
    async with session() as db:
        customer = (
            await db.exec(select(Customer).where(Customer.phone == "+8613911110021"))
        ).first()
    assert customer is not None
    profile = (await api.get(f"{CUSTOMERS}/{customer.id}", headers=gz_admin)).json()
    assert [(o["id"], o["store_id"]) for o in profile["orders"]] == [
        (request.order_id, country.stores["gz-tianhe"].id)
    ]
