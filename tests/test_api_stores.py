"""Stores over HTTP: a sub-site admin runs their sub-site's stores, head office all of them;
one default per sub-site; a new time zone re-rolls the roster; no store left staffed-inactive."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from models import Role, Store
from models.db import session
from tests.api_helpers import V1, add_patterns, admin, bearer, make_token, manager_of, slots_of
from tests.factories import StoreWorld, make_store_world

STORES = f"{V1}/stores"


def new_store(world: StoreWorld, **fields: Any) -> dict[str, Any]:
    return {
        "subsite_id": world.subsite.id,
        "code": f"{world.subsite.code}-west",
        "name": "West",
        "region_code": "cn-bj",
        "city": "Beijing",
    } | fields


async def admin_of(world: StoreWorld) -> dict[str, str]:
    return bearer(
        await make_token(Role.SUBSITE_ADMIN, staff_id=world.manager.id, subsite_id=world.subsite.id)
    )


async def row(store_id: int) -> Store:
    async with session() as db:
        store = await db.get(Store, store_id)
        assert store is not None
        return store


async def test_a_sub_site_admin_opens_stores_in_their_own_sub_site_only(
    offline_api: httpx.AsyncClient,
) -> None:
    mine, other = await make_store_world(consultants=0), await make_store_world(consultants=0)
    token = await admin_of(mine)
    manager = await manager_of(mine)

    opened = await offline_api.post(STORES, json=new_store(mine), headers=token)
    elsewhere = await offline_api.post(STORES, json=new_store(other), headers=token)
    by_manager = await offline_api.post(
        STORES, json=new_store(mine, code="m-shop"), headers=manager
    )
    again = await offline_api.post(STORES, json=new_store(mine), headers=admin())

    assert opened.status_code == 201, opened.text
    assert opened.headers["location"] == f"{STORES}/{opened.json()['id']}"
    assert (opened.json()["region_code"], opened.json()["timezone"]) == ("CN-BJ", "Asia/Shanghai")
    assert elsewhere.status_code == 403
    assert by_manager.status_code == 403
    assert again.status_code == 409 and "has code" in again.json()["detail"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"region_code": "Beijing"}, "ISO 3166-2"),
        ({"code": "Not A Code!"}, "lowercase"),
        ({"subsite_id": 999999}, "no sub-site 999999"),
        ({"city": ""}, "at least 1 character"),
    ],
)
async def test_bad_stores_are_422_saying_why(
    offline_api: httpx.AsyncClient, fields: dict[str, Any], says: str
) -> None:
    world = await make_store_world(consultants=0)
    response = await offline_api.post(STORES, json=new_store(world, **fields), headers=admin())
    assert response.status_code == 422, response.text
    assert says in response.text


async def test_making_a_store_the_default_takes_the_flag_from_the_one_before(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=0)
    assert (await row(world.store.id)).is_default
    created = await offline_api.post(STORES, json=new_store(world), headers=admin())
    west = created.json()["id"]

    changed = await offline_api.patch(
        f"{STORES}/{west}", json={"is_default": True}, headers=await admin_of(world)
    )

    assert changed.status_code == 200, changed.text
    assert (await row(west)).is_default
    assert not (await row(world.store.id)).is_default


async def test_only_head_office_moves_a_store_to_another_sub_site(
    offline_api: httpx.AsyncClient,
) -> None:
    here, there = await make_store_world(consultants=0), await make_store_world(consultants=0)
    path = f"{STORES}/{here.store.id}"

    by_admin = await offline_api.patch(
        path, json={"subsite_id": there.subsite.id}, headers=await admin_of(here)
    )
    by_head_office = await offline_api.patch(
        path, json={"subsite_id": there.subsite.id}, headers=admin()
    )

    assert by_admin.status_code == 403
    assert by_head_office.status_code == 200, by_head_office.text
    moved = await row(here.store.id)
    assert (moved.subsite_id, moved.is_default) == (there.subsite.id, False)


async def test_a_store_with_active_staff_is_not_deactivated(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    empty = (await api.post(STORES, json=new_store(world), headers=admin())).json()["id"]

    staffed = await api.patch(f"{STORES}/{world.store.id}", json={"active": False}, headers=admin())
    closed = await api.patch(f"{STORES}/{empty}", json={"active": False}, headers=admin())

    assert staffed.status_code == 409
    assert "2 active staff" in staffed.json()["detail"]  # the manager and the consultant
    assert closed.status_code == 200, closed.text
    assert not (await row(empty)).active


async def test_a_new_time_zone_re_rolls_the_store_roster(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    assert person is not None
    await add_patterns(person, [(weekday, "09:00", "17:00") for weekday in range(7)])
    await api.post(f"{V1}/roster/roll", json={"days": 14}, headers=admin())
    before = {s.starts_at.astimezone(UTC).hour for s in await slots_of(person)}

    changed = await api.patch(
        f"{STORES}/{world.store.id}", json={"timezone": "Europe/Berlin"}, headers=admin()
    )

    assert changed.status_code == 200, changed.text
    future = [s for s in await slots_of(person) if s.starts_at > datetime.now(UTC)]
    assert before == {1}  # 09:00 in Shanghai
    assert future and {s.starts_at.astimezone(UTC).hour for s in future} <= {7, 8}  # in Berlin
