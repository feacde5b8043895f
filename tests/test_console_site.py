"""A sub-site admin's rule page: validation at the field, a preview of each consultant's
weight and share under a new cap, the save through the API (with its audit entry); a
manager who is not the sub-site's admin is refused."""

from __future__ import annotations

import re

import httpx
from sqlmodel import col, select

from models import AuditEntry, Staff, Store, SubSiteAdmin, SubSiteRule
from models.db import session
from tests.conftest import Sinks
from tests.factories import make_store_world
from tests.test_console_pages import csrf_of, pages, sign_in

__all__ = ["pages"]  # the fixture, shared with the console's other page tests


async def test_an_admin_previews_a_new_cap_then_saves_it(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=3, points=[50, 200, 400])
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=world.subsite.id, staff_id=world.manager.id))
        await db.commit()
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    page = await pages.get("/console/site/rules/new")
    assert page.status_code == 200, page.text
    fields = dict(
        re.findall(r'<input id="f-(\w+)" name="\w+" inputmode="numeric" value="([^"]*)"', page.text)
    )
    assert fields["accept_timeout_seconds"] == "900" and fields["weight_cap"] == ""
    form = {"csrf": csrf_of(page), "skip_previous_assignees": "on"} | fields
    form |= {"selection_method": "weighted_random", "after_escalation": "keep_reassigning"}
    form |= {"wish_fallback": "store"}

    bad = await pages.post(
        "/console/site/rules/new", data=form | {"max_rounds": "0", "weight_cap": "lots"}
    )
    assert bad.status_code == 422
    errors = dict(re.findall(r'data-error="(\w+)">([^<]+)<', bad.text))
    assert set(errors) == {"max_rounds", "weight_cap"}, errors
    assert "greater than or equal to 1" in errors["max_rounds"]
    whole = await pages.post(
        "/console/site/rules/new", data=form | {"reminder_before_seconds": "900"}
    )
    assert whole.status_code == 422 and "must be below" in whole.text

    preview = await pages.post("/console/site/rules/new", data=form | {"weight_cap": "100"})
    assert preview.status_code == 200 and "data-preview" in preview.text
    # Points 50/200/400: weights 50, 200, 400 (8, 31, 62 %) become 50, 100, 100 (20, 40, 40 %).
    rows = re.findall(
        r"<td>(\d+) → <strong>(\d+)</strong></td>\s*<td>(\d+)% → <strong>(\d+)%", preview.text
    )
    assert sorted(rows) == sorted(
        [("50", "50", "8", "20"), ("200", "100", "31", "40"), ("400", "100", "62", "40")]
    )
    async with session() as db:
        assert await db.get(SubSiteRule, (world.subsite.id, "new")) is None  # not saved yet

    saved = await pages.post(
        "/console/site/rules/new", data=form | {"weight_cap": "100", "step": "save"}
    )
    assert saved.status_code == 303, saved.text
    async with session() as db:
        rule = await db.get(SubSiteRule, (world.subsite.id, "new"))
        assert rule is not None and rule.weight_cap == 100
    async with session() as db:  # who changed what: the API's audit entry, as the admin
        [entry] = (await db.exec(select(AuditEntry).where(AuditEntry.kind == "rule"))).all()
    assert entry.object_id == f"{world.subsite.id}/new" and entry.subsite_id == world.subsite.id
    assert entry.actor.startswith(world.manager.name) and entry.new["weight_cap"] == 100
    done = await pages.get("/console/site/rules/new?done=saved")
    assert "已保存" in done.text and "当前生效：分站的规则" in done.text  # the person reads Chinese


async def test_a_manager_who_is_not_the_admin_is_refused(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    page = await pages.get("/console/site/rules/new")
    assert page.status_code == 403 and "sub-site&#39;s admins" in page.text
    consultant = world.consultants[0]
    assert (await sign_in(pages, sinks, consultant)).status_code == 303
    assert (await pages.get("/console/site/rules/new")).status_code == 403


async def test_an_admin_runs_the_sub_sites_stores_and_admins(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    other = await make_store_world(consultants=0)
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=world.subsite.id, staff_id=world.manager.id))
        await db.commit()
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    page = await pages.get("/console/site")
    assert page.status_code == 200 and f'data-store="{world.store.code}"' in page.text
    csrf = csrf_of(page)
    code = f"{world.subsite.code}-west"
    store = {"csrf": csrf, "code": code, "name": "West", "region_code": "cn-bj", "city": "Beijing"}
    assert (await pages.post("/console/site/stores", data=store)).status_code == 303
    again = await pages.post("/console/site/stores", data=store)
    assert again.status_code == 409 and "has code" in again.text  # the API's refusal, a page
    async with session() as db:
        west = (await db.exec(select(Store).where(Store.code == code))).one()
    made = await pages.post(f"/console/site/stores/{west.id}/default", data={"csrf": csrf})
    assert made.status_code == 303
    elsewhere = await pages.post(
        f"/console/site/stores/{other.store.id}/default", data={"csrf": csrf}
    )
    assert elsewhere.status_code == 403
    person = world.consultants[0].id
    assert (
        await pages.post("/console/site/admins", data={"csrf": csrf, "staff_id": str(person)})
    ).status_code == 303
    shown = await pages.get("/console/site")
    assert f'data-admin="{person}"' in shown.text
    assert (
        await pages.post(f"/console/site/admins/{person}/remove", data={"csrf": csrf})
    ).status_code == 303
    nobody = await pages.post("/console/site/admins", data={"csrf": csrf, "staff_id": ""})
    assert nobody.status_code == 404
    async with session() as db:
        now_default = await db.get(Store, west.id)
        assert now_default is not None and now_default.is_default
        kinds = [
            (e.kind, e.action)
            for e in (await db.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
        ]
    assert kinds == [
        ("store", "created"),
        ("store", "changed"),  # the store that gave up the default
        ("store", "changed"),  # the new default
        ("admin", "created"),
        ("admin", "deleted"),
    ]


async def test_an_admin_adds_and_changes_staff(pages: httpx.AsyncClient, sinks: Sinks) -> None:
    world = await make_store_world(consultants=1)
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=world.subsite.id, staff_id=world.manager.id))
        await db.commit()
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    page = await pages.get("/console/site")
    csrf = csrf_of(page)
    new = {"csrf": csrf, "name": "Wu", "language": "en", "role": "consultant"}
    new |= {"store_id": str(world.store.id)}
    unreachable = await pages.post("/console/site/staff", data=new)
    assert unreachable.status_code == 422 and 'data-refused="refused"' in unreachable.text
    added = await pages.post("/console/site/staff", data=new | {"phone": "+8613900000009"})
    assert added.status_code == 303, added.text
    async with session() as db:
        wu = (await db.exec(select(Staff).where(Staff.name == "Wu"))).one()
    assert (wu.language, wu.phone, wu.store_id) == ("en", "+8613900000009", world.store.id)
    person = world.consultants[0]
    form = {
        "csrf": csrf,
        "name": person.name,
        "phone": person.phone or "",
        "email": "li@o2o.test",
        "language": "en",
        "role": "manager",
        "store_id": str(world.store.id),
    }
    changed = await pages.post(f"/console/site/staff/{person.id}", data=form)
    assert changed.status_code == 303, changed.text
    async with session() as db:
        row = await db.get(Staff, person.id)
        assert row is not None and (row.email, row.language, row.role) == (
            "li@o2o.test",
            "en",
            "manager",
        )
        entry = (
            await db.exec(select(AuditEntry).where(AuditEntry.object_id == str(person.id)))
        ).one()
    assert set(entry.new) == {"email", "language", "role"}  # only what the form changed
