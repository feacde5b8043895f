"""Head office's sub-sites page: create a sub-site with its regions, change its name,
code, domain and regions and its default store, through the API's own functions (real
ISO 3166-2 codes, one sub-site per region, no store left outside, audited with old and new
values); refusals at the field. Anyone else is refused."""

from __future__ import annotations

import re

import httpx
from sqlmodel import col, select

from models import AuditEntry, Store, SubSite
from models.db import session
from settings import settings
from tests.conftest import Sinks
from tests.factories import make_store_world, sibling_store
from tests.test_console_hq import admin_signed_in
from tests.test_console_pages import csrf_of, pages, sign_in

__all__ = ["pages"]  # the fixture, shared with the console's other page tests


def errors_of(page: httpx.Response) -> dict[str, str]:
    return dict(re.findall(r'data-error="(\w+)">([^<]+)<', page.text))


async def test_head_office_creates_a_sub_site_with_its_regions(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=True)  # its sub-site covers CN-BJ
    page = await pages.get("/console/hq/sites")
    assert page.status_code == 200, page.text
    assert 'href="/console/hq/sites"' in page.text  # the navigation offers it
    form = {"csrf": csrf_of(page), "code": "sh", "name": "Shanghai", "domain": ""}

    fake = await pages.post("/console/hq/sites", data=form | {"regions": "CN-SH\nCN-XX"})
    assert fake.status_code == 422
    assert "CN-XX" in errors_of(fake)["regions"] and "ISO 3166-2" in errors_of(fake)["regions"]
    assert "CN-SH\nCN-XX</textarea>" in fake.text  # what was typed stays
    taken = await pages.post("/console/hq/sites", data=form | {"regions": "CN-SH\nCN-BJ"})
    assert taken.status_code == 422 and "covered by sub-site" in errors_of(taken)["regions"]
    bad_code = await pages.post("/console/hq/sites", data=form | {"code": "S H!", "regions": ""})
    assert bad_code.status_code == 422 and set(errors_of(bad_code)) == {"code"}

    made = await pages.post(
        "/console/hq/sites", data=form | {"regions": "cn-sh\nCN-ZJ： Hangzhou， Ningbo"}
    )
    assert made.status_code == 303, made.text
    async with session() as db:
        site = (await db.exec(select(SubSite).where(SubSite.code == "sh"))).one()
        [entry] = (await db.exec(select(AuditEntry).where(AuditEntry.kind == "subsite"))).all()
    assert site.domain == f"sh.{settings.ROOT_DOMAIN}"
    assert site.regions == [
        {"code": "CN-SH", "cities": []},
        {"code": "CN-ZJ", "cities": ["Hangzhou", "Ningbo"]},
    ]
    assert (entry.action, entry.new["code"], entry.old) == ("created", "sh", {})
    assert made.headers["location"] == f"/console/hq/sites/{site.id}?done=created"
    shown = await pages.get(made.headers["location"])
    assert "CN-SH\nCN-ZJ: Hangzhou, Ningbo</textarea>" in shown.text
    again = await pages.post("/console/hq/sites", data=form | {"regions": ""})
    assert again.status_code == 422 and "already has code sh" in errors_of(again)["code"]


async def test_head_office_changes_a_sub_site_and_its_default_store(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=True)
    world = await make_store_world(consultants=0)
    async with session() as db:
        site = await db.get(SubSite, world.subsite.id)
        assert site is not None
        site.regions = [{"code": "CN-SH", "cities": []}]
        store = await db.get(Store, world.store.id)
        assert store is not None
        store.region_code = "CN-SH"
        db.add_all([site, store])
        await db.commit()
    second = await sibling_store(world, name="Second")
    async with session() as db:
        moved = await db.get(Store, second.id)
        assert moved is not None
        moved.region_code = "CN-SH"
        db.add(moved)
        await db.commit()
    url = f"/console/hq/sites/{world.subsite.id}"
    page = await pages.get(url)
    assert page.status_code == 200, page.text
    assert f'href="/console/stores/{second.id}"' in page.text
    form = {
        "csrf": csrf_of(page),
        "code": world.subsite.code,
        "name": world.subsite.name,
        "domain": world.subsite.domain,
        "regions": "CN-SH",
        "default_store": str(world.store.id),
    }
    # Dropping the region its stores lie in: refused at the field, nothing saved.
    stranded = await pages.post(url, data=form | {"regions": "CN-JS", "name": "Renamed"})
    assert stranded.status_code == 422 and "lies in CN-SH" in errors_of(stranded)["regions"]
    bad_domain = await pages.post(url, data=form | {"domain": "elsewhere.example.org"})
    assert bad_domain.status_code == 422 and "root domain" in errors_of(bad_domain)["domain"]

    saved = await pages.post(
        url,
        data=form
        | {"name": "East", "regions": "CN-SH\nCN-JS: Suzhou", "default_store": str(second.id)},
    )
    assert saved.status_code == 303, saved.text
    async with session() as db:
        site = await db.get(SubSite, world.subsite.id)
        stores = {s.id: s.is_default for s in (await db.exec(select(Store))).all()}
        entries = (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    assert site is not None and site.name == "East"
    assert site.regions[1] == {"code": "CN-JS", "cities": ["Suzhou"]}
    assert stores[second.id] and not stores[world.store.id]
    changes = [(e.kind, e.object_id, e.old, e.new) for e in entries]
    assert changes[0] == (
        "subsite",
        str(world.subsite.id),
        {"name": world.subsite.name, "regions": [{"code": "CN-SH", "cities": []}]},
        {"name": "East", "regions": site.regions},
    )
    assert changes[1:] == [
        ("store", str(world.store.id), {"is_default": True}, {"is_default": False}),
        ("store", str(second.id), {"is_default": False}, {"is_default": True}),
    ]
    other = await make_store_world(consultants=0)
    foreign = await pages.post(url, data=form | {"default_store": str(other.store.id)})
    assert foreign.status_code == 422
    assert f"store {other.store.id} is not this sub-site" in errors_of(foreign)["default_store"]
    assert (await pages.get("/console/hq/sites/999999")).status_code == 404


async def test_a_sub_site_admin_and_a_manager_are_refused(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=False)
    page = await pages.get("/console/hq/sites")
    assert page.status_code == 403 and "head office" in page.text
    site = await pages.get("/console/site")
    posted = await pages.post(
        "/console/hq/sites", data={"csrf": csrf_of(site), "code": "x", "name": "X"}
    )
    assert posted.status_code == 403
    world = await make_store_world(consultants=0)
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    assert (await pages.get(f"/console/hq/sites/{world.subsite.id}")).status_code == 403
    async with session() as db:
        assert (await db.exec(select(SubSite).where(SubSite.code == "x"))).all() == []
