"""Setup data stays consistent: each refusal is a 4xx naming the field and the reason."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api_helpers import V1, admin
from tests.factories import make_store_world
from tests.routing_factories import Country, make_country


@pytest.fixture
async def country(clean_db: str) -> Country:
    return await make_country(consultants=1)


def located(response: httpx.Response) -> dict[str, str]:
    detail = response.json()["detail"]
    assert isinstance(detail, list), detail
    return {".".join(map(str, e["loc"])): e["msg"] for e in detail}


async def test_a_region_code_must_be_a_real_iso_3166_2_code(
    offline_api: httpx.AsyncClient,
) -> None:
    body = {"code": "zz", "name": "Nowhere", "regions": [{"code": "CN-ZZ"}]}
    response = await offline_api.post(f"{V1}/subsites", json=body, headers=admin())
    assert response.status_code == 422, response.text
    assert "not a real ISO 3166-2" in located(response)["body.regions.0.code"]


async def test_two_subsites_may_not_cover_one_region(
    offline_api: httpx.AsyncClient, country: Country
) -> None:
    body = {"code": "bj2", "name": "Beijing again", "regions": [{"code": "CN-BJ"}]}
    response = await offline_api.post(f"{V1}/subsites", json=body, headers=admin())
    assert response.status_code == 409, response.text
    assert "covered by sub-site bj" in response.json()["detail"]
    # Other cities of a region split by city are still free to cover.
    split = {"code": "sz", "name": "Zhuhai", "regions": [{"code": "CN-GD", "cities": ["Zhuhai"]}]}
    assert (await offline_api.post(f"{V1}/subsites", json=split, headers=admin())).is_success
    sh = country.sites["sh"].id
    grab = await offline_api.patch(
        f"{V1}/subsites/{sh}",
        json={"regions": [{"code": "CN-SH"}, {"code": "CN-SC"}]},
        headers=admin(),
    )
    assert grab.status_code == 409, grab.text
    assert "sub-site cd" in grab.json()["detail"]


async def test_a_store_lies_inside_its_subsites_coverage(
    offline_api: httpx.AsyncClient, country: Country
) -> None:
    body: dict[str, Any] = {
        "subsite_id": country.sites["bj"].id,
        "code": "bj-far",
        "name": "Far away",
        "region_code": "CN-SH",
        "city": "Shanghai",
    }
    response = await offline_api.post(f"{V1}/stores", json=body, headers=admin())
    assert response.status_code == 422, response.text
    assert "outside sub-site bj" in located(response)["body.region_code"]
    store = country.stores["bj-west"].id
    moved = await offline_api.patch(
        f"{V1}/stores/{store}", json={"region_code": "CN-GD"}, headers=admin()
    )
    assert moved.status_code == 422, moved.text
    shrink = await offline_api.patch(
        f"{V1}/subsites/{country.sites['sh'].id}", json={"regions": []}, headers=admin()
    )
    assert shrink.status_code == 409, shrink.text
    assert "sh-main" in shrink.json()["detail"]


async def test_a_subsite_with_stores_keeps_exactly_one_default(
    offline_api: httpx.AsyncClient, country: Country
) -> None:
    default = country.stores["cd-main"].id
    unset = await offline_api.patch(
        f"{V1}/stores/{default}", json={"is_default": False}, headers=admin()
    )
    assert unset.status_code == 409, unset.text
    assert "is_default" in unset.json()["detail"]
    away = await offline_api.patch(
        f"{V1}/stores/{default}",
        json={"subsite_id": country.sites["sh"].id, "region_code": "CN-SH"},
        headers=admin(),
    )
    assert away.status_code == 409, away.text
    # The first store of a new sub-site is its default without being told.
    site = await offline_api.post(
        f"{V1}/subsites",
        json={"code": "hz", "name": "Hangzhou", "regions": [{"code": "CN-ZJ"}]},
        headers=admin(),
    )
    assert site.status_code == 201, site.text
    first = await offline_api.post(
        f"{V1}/stores",
        json={
            "subsite_id": site.json()["id"],
            "code": "hz-1",
            "name": "West Lake",
            "region_code": "CN-ZJ",
            "city": "Hangzhou",
        },
        headers=admin(),
    )
    assert first.status_code == 201, first.text
    assert first.json()["is_default"] is True


async def test_a_reminder_must_come_before_the_accept_deadline(
    offline_api: httpx.AsyncClient,
) -> None:
    body = {"accept_timeout_seconds": 60, "reminder_before_seconds": 60}
    response = await offline_api.put(f"{V1}/rules/new", json=body, headers=admin())
    assert response.status_code == 422, response.text
    assert "must be below accept_timeout_seconds" in response.text


async def test_a_staff_member_needs_a_reachable_contact(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    mute = {"store_id": world.store.id, "name": "Nobody"}
    created = await offline_api.post(f"{V1}/staff", json=mute, headers=admin())
    assert created.status_code == 422, created.text
    assert "phone or an e-mail" in created.text
    person = world.consultants[0].id
    cleared = await offline_api.patch(
        f"{V1}/staff/{person}", json={"phone": None, "email": None}, headers=admin()
    )
    assert cleared.status_code == 422, cleared.text
    assert "phone or an e-mail" in cleared.text
    one_left = await offline_api.patch(
        f"{V1}/staff/{person}", json={"phone": None}, headers=admin()
    )
    assert one_left.status_code == 200, one_left.text
