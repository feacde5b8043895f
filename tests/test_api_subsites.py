"""The sub-sites API: create, read, change, and their admins; who may do which."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from models import Role, Staff, SubSiteAdmin
from models.db import session
from settings import settings
from tests.api_helpers import admin, api_client, bearer, make_token
from tests.routing_factories import Country, domain, make_country

SUBSITES = "/api/v1/subsites"
ROOT = settings.ROOT_DOMAIN


async def token(role: Role, **scope: int | None) -> dict[str, str]:
    return bearer(await make_token(role, **scope))


@pytest.fixture
async def api(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client() as client:
        yield client


@pytest.fixture
async def country(clean_db: str) -> Country:
    return await make_country(consultants=1)


async def create(api: httpx.AsyncClient, **body: Any) -> httpx.Response:
    return await api.post(SUBSITES, json={"code": "hz", "name": "杭州分站"} | body, headers=admin())


# ------------------------------------------------------------------ create and read


async def test_a_sub_site_is_created_on_its_own_domain(api: httpx.AsyncClient) -> None:
    response = await create(
        api,
        code="HZ",
        regions=[{"code": "cn-zj", "cities": [" Hangzhou ", "hangzhou", "Ningbo"]}],
    )

    assert response.status_code == 201, response.text
    site = response.json()
    assert (site["code"], site["domain"], site["active"], site["is_head_office"]) == (
        "hz",
        f"hz.{ROOT}",
        True,
        False,
    )
    assert site["regions"] == [{"code": "CN-ZJ", "cities": ["Hangzhou", "Ningbo"]}]
    assert response.headers["location"] == f"{SUBSITES}/{site['id']}"
    got = await api.get(f"{SUBSITES}/{site['id']}", headers=admin())
    assert got.json() == site | {"stores": [], "admins": []}
    listed = await api.get(SUBSITES, headers=admin())
    assert [s["code"] for s in listed.json()["items"]] == ["hz"]


async def test_a_domain_is_one_label_under_the_root_domain(api: httpx.AsyncClient) -> None:
    ok = await create(api, domain=f"HangZhou.{ROOT}.")

    refused = [
        await create(api, code=f"x{i}", domain=bad)
        for i, bad in enumerate(
            [
                "hz.example.com",
                f"a.b.{ROOT}",
                ROOT,
                f"www.{ROOT}",
                f"-hz.{ROOT}",
                f"hz.{ROOT}:8000",
                f"h_z.{ROOT}",
            ]
        )
    ]

    assert (ok.status_code, ok.json()["domain"]) == (201, f"hangzhou.{ROOT}")
    assert [r.status_code for r in refused] == [422] * 7
    assert "one label under the root domain" in refused[0].text


@pytest.mark.parametrize(
    "regions",
    [
        [{"code": "Beijing"}],
        [{"code": "CN"}],
        [{"code": "CN-BJXX"}],
        [{"code": "CN-BJ"}, {"code": "cn-bj", "cities": ["Beijing"]}],
        [{"code": "CN-BJ", "cities": [""]}],
        [{"code": "CN-BJ", "extra": 1}],
    ],
)
async def test_regions_are_iso_3166_2_codes(
    api: httpx.AsyncClient, regions: list[dict[str, Any]]
) -> None:
    response = await create(api, regions=regions)

    assert response.status_code == 422, response.text


@pytest.mark.parametrize("code", ["main", "www", "a b", "-x", "x" * 33, ""])
async def test_bad_codes_are_refused(api: httpx.AsyncClient, code: str) -> None:
    response = await create(api, code=code, domain=f"ok.{ROOT}")

    assert response.status_code == 422, response.text


async def test_duplicates_are_conflicts(api: httpx.AsyncClient) -> None:
    first = await create(api, is_head_office=True)

    same_code = await create(api, domain=f"other.{ROOT}")
    same_domain = await create(api, code="other", domain=f"hz.{ROOT}")
    second_head_office = await create(api, code="sz", is_head_office=True)

    assert first.status_code == 201
    assert same_code.status_code == 409
    assert "already has code hz" in same_code.json()["detail"]
    assert same_domain.status_code == 409
    assert f"already has domain hz.{ROOT}" in same_domain.json()["detail"]
    assert second_head_office.status_code == 409
    assert "is the head office already" in second_head_office.json()["detail"]


async def test_only_head_office_creates(api: httpx.AsyncClient, country: Country) -> None:
    site_admin = await token(Role.SUBSITE_ADMIN, subsite_id=country.sites["bj"].id)
    service = await token(Role.SERVICE)

    as_admin = await api.post(SUBSITES, json={"code": "hz", "name": "x"}, headers=site_admin)
    as_service = await api.post(SUBSITES, json={"code": "hz", "name": "x"}, headers=service)
    anonymous = await api.post(SUBSITES, json={"code": "hz", "name": "x"})

    assert [as_admin.status_code, as_service.status_code, anonymous.status_code] == [
        403,
        403,
        401,
    ]


async def test_a_sub_site_shows_its_stores_and_admins(
    api: httpx.AsyncClient, country: Country
) -> None:
    manager = country.managers["sh-main"]
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=country.sites["sh"].id, staff_id=manager.id))
        await db.commit()

    response = await api.get(f"{SUBSITES}/{country.sites['sh'].id}", headers=admin())
    missing = await api.get(f"{SUBSITES}/999999", headers=admin())

    assert response.status_code == 200
    site = response.json()
    assert [s["code"] for s in site["stores"]] == ["sh-main", "sh-east"]
    assert site["admins"] == [
        {"id": manager.id, "name": manager.name, "store_id": manager.store_id, "role": "manager"}
    ]
    assert missing.status_code == 404


# ------------------------------------------------------------------ change


async def test_head_office_changes_anything(api: httpx.AsyncClient, country: Country) -> None:
    sh = country.sites["sh"].id

    response = await api.patch(
        f"{SUBSITES}/{sh}",
        json={
            "name": "华东分站",
            "domain": f"east.{ROOT}",
            "regions": [{"code": "CN-SH"}, {"code": "CN-JS", "cities": ["Suzhou"]}],
        },
        headers=admin(),
    )

    assert response.status_code == 200, response.text
    site = response.json()
    assert (site["code"], site["name"], site["domain"]) == ("sh", "华东分站", f"east.{ROOT}")
    assert site["regions"] == [
        {"code": "CN-SH", "cities": []},
        {"code": "CN-JS", "cities": ["Suzhou"]},
    ]


async def test_a_change_onto_another_sites_domain_conflicts(
    api: httpx.AsyncClient, country: Country
) -> None:
    response = await api.patch(
        f"{SUBSITES}/{country.sites['sh'].id}",
        json={"domain": domain("bj"), "code": "cd"},
        headers=admin(),
    )
    unchanged = await api.patch(
        f"{SUBSITES}/{country.sites['sh'].id}", json={"domain": domain("sh")}, headers=admin()
    )

    assert response.status_code == 409
    assert unchanged.status_code == 200  # its own domain is no conflict


SHANGHAI_CITY = [{"code": "CN-SH", "cities": ["Shanghai"]}]  # its store stays inside


async def test_a_sub_site_admin_changes_name_and_regions_of_their_own_only(
    api: httpx.AsyncClient, country: Country
) -> None:
    sh, bj = country.sites["sh"].id, country.sites["bj"].id
    sh_admin = await token(Role.SUBSITE_ADMIN, subsite_id=sh)

    renamed = await api.patch(
        f"{SUBSITES}/{sh}", json={"name": "Shanghai", "regions": SHANGHAI_CITY}, headers=sh_admin
    )
    domain_change = await api.patch(
        f"{SUBSITES}/{sh}", json={"domain": f"east.{ROOT}"}, headers=sh_admin
    )
    deactivate = await api.patch(f"{SUBSITES}/{sh}", json={"active": False}, headers=sh_admin)
    other_site = await api.patch(f"{SUBSITES}/{bj}", json={"name": "mine"}, headers=sh_admin)
    null_name = await api.patch(f"{SUBSITES}/{sh}", json={"name": None}, headers=sh_admin)

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["regions"]) == ("Shanghai", SHANGHAI_CITY)
    assert domain_change.status_code == 403
    assert "only head office may change domain" in domain_change.json()["detail"]
    assert deactivate.status_code == 403
    assert other_site.status_code == 403
    assert null_name.status_code == 422


# ------------------------------------------------------------------ admins


async def test_a_staff_member_of_the_sub_site_is_made_its_admin_and_removed(
    api: httpx.AsyncClient, country: Country
) -> None:
    cd = country.sites["cd"].id
    person = country.consultants["cd-wuhou"][0]
    path = f"{SUBSITES}/{cd}/admins/{person.id}"

    made = await api.put(path, headers=admin())
    again = await api.put(path, headers=admin())
    removed = await api.delete(path, headers=admin())
    gone = await api.delete(path, headers=admin())

    assert made.status_code == 200, made.text
    assert [a["id"] for a in made.json()["admins"]] == [person.id]
    assert [a["id"] for a in again.json()["admins"]] == [person.id]
    assert removed.status_code == 204
    assert gone.status_code == 404
    after = await api.get(f"{SUBSITES}/{cd}", headers=admin())
    assert after.json()["admins"] == []


async def test_only_staff_of_the_sub_sites_stores_can_be_its_admin(
    api: httpx.AsyncClient, country: Country
) -> None:
    cd = country.sites["cd"].id
    outsider = country.consultants["bj-main"][0]
    leaver = country.consultants["cd-main"][0]
    async with session() as db:
        row = await db.get(Staff, leaver.id)
        assert row is not None
        row.active = False
        db.add(row)
        await db.commit()

    other_site = await api.put(f"{SUBSITES}/{cd}/admins/{outsider.id}", headers=admin())
    inactive = await api.put(f"{SUBSITES}/{cd}/admins/{leaver.id}", headers=admin())
    nobody = await api.put(f"{SUBSITES}/{cd}/admins/999999", headers=admin())
    no_site = await api.put(f"{SUBSITES}/999999/admins/{outsider.id}", headers=admin())

    assert other_site.status_code == 422
    assert "works in no store of sub-site cd" in other_site.json()["detail"]
    assert inactive.status_code == 422
    assert nobody.status_code == 404
    assert no_site.status_code == 404


async def test_admins_are_managed_by_head_office_or_the_sub_sites_admins(
    api: httpx.AsyncClient, country: Country
) -> None:
    cd, bj = country.sites["cd"].id, country.sites["bj"].id
    first, second = country.managers["cd-main"], country.managers["cd-wuhou"]
    third = country.consultants["cd-main"][0]
    cd_admin = await token(Role.SUBSITE_ADMIN, subsite_id=cd)
    bj_admin = await token(Role.SUBSITE_ADMIN, subsite_id=bj)
    plain = await token(Role.STAFF, staff_id=third.id, store_id=third.store_id)

    by_site_admin = await api.put(f"{SUBSITES}/{cd}/admins/{first.id}", headers=cd_admin)
    by_other_admin = await api.put(f"{SUBSITES}/{cd}/admins/{second.id}", headers=bj_admin)
    by_plain_staff = await api.put(f"{SUBSITES}/{cd}/admins/{third.id}", headers=plain)
    removed_by_plain = await api.delete(f"{SUBSITES}/{cd}/admins/{first.id}", headers=plain)

    assert by_site_admin.status_code == 200, by_site_admin.text
    assert [a["id"] for a in by_site_admin.json()["admins"]] == [first.id]
    assert by_other_admin.status_code == 403
    assert by_plain_staff.status_code == 403
    assert removed_by_plain.status_code == 403


async def test_admin_powers_come_with_an_admin_token_and_end_with_the_listing(
    api: httpx.AsyncClient, country: Country
) -> None:
    """Being listed as an admin is what a subsite_admin token needs, not a power of every
    token the person holds; removing the listing ends the admin token at once."""
    cd = country.sites["cd"].id
    first, second = country.managers["cd-main"], country.managers["cd-wuhou"]
    assert (await api.put(f"{SUBSITES}/{cd}/admins/{first.id}", headers=admin())).is_success
    manager_token = await token(Role.STORE_MANAGER, staff_id=first.id, store_id=first.store_id)
    issued = await api.post(
        "/api/v1/tokens",
        json={"role": "subsite_admin", "staff_id": first.id, "name": "cd admin"},
        headers=admin(),
    )
    assert issued.status_code == 201, issued.text
    admin_token = bearer(issued.json()["token"])

    as_manager = await api.patch(f"{SUBSITES}/{cd}", json={"name": "成都"}, headers=manager_token)
    as_admin = await api.put(f"{SUBSITES}/{cd}/admins/{second.id}", headers=admin_token)
    removed = await api.delete(f"{SUBSITES}/{cd}/admins/{first.id}", headers=admin())
    after_removal = await api.patch(f"{SUBSITES}/{cd}", json={"name": "成都"}, headers=admin_token)

    assert as_manager.status_code == 403
    assert as_admin.status_code == 200, as_admin.text
    assert removed.status_code == 204
    assert after_removal.status_code == 403
    assert "no longer an admin of sub-site" in after_removal.json()["detail"]
