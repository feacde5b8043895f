"""A store's details in the console: its sub-site's admin and head office change name,
address, contacts, open/closed and the default, through the API's `update_store` (its
checks at the field, its audit entry with old and new values); an admin of another
sub-site and a plain manager are refused."""

from __future__ import annotations

import re

import httpx
from sqlmodel import col, select

from models import AuditEntry, Staff, Store
from models.db import session
from tests.conftest import Sinks
from tests.factories import make_store_world, sibling_store
from tests.test_console_hq import listed_as_admin
from tests.test_console_pages import csrf_of, pages, sign_in

__all__ = ["pages"]  # the fixture, shared with the console's other page tests


def form_of(page: httpx.Response) -> dict[str, str]:
    """The store form as it stands: its text fields and its ticked boxes."""
    values = dict(
        re.findall(r'<input id="f-\w+" name="(\w+)" type="\w+" value="([^"]*)"', page.text)
    )
    ticked = re.findall(r'<input type="checkbox" id="f-\w+" name="(\w+)" checked', page.text)
    return {"csrf": csrf_of(page)} | values | dict.fromkeys(ticked, "on")


async def test_an_admin_changes_a_stores_details_with_messages_at_the_fields(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    await listed_as_admin(world, head_office=False)
    second = await sibling_store(world, name="Second")
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    site = await pages.get("/console/site")
    assert f'href="/console/stores/{second.id}"' in site.text
    page = await pages.get(f"/console/stores/{second.id}")
    assert page.status_code == 200, page.text
    form = form_of(page)
    assert form["name"] == "Second" and "active" in form and "is_default" not in form

    bad = await pages.post(
        f"/console/stores/{second.id}", data=form | {"phone": "call me", "name": " "}
    )
    assert bad.status_code == 422, bad.text
    errors = dict(re.findall(r'data-error="(\w+)">([^<]+)<', bad.text))
    assert set(errors) == {"phone", "name"}, errors
    assert 'value="call me"' in bad.text  # what was typed stays, to be corrected

    changed = form | {
        "name": "Second Avenue",
        "address": "1 Second Avenue",
        "phone": "+86 10 6500 0000",
        "email": "Desk@Second.test",
        "is_default": "on",
    }
    saved = await pages.post(f"/console/stores/{second.id}", data=changed)
    assert saved.status_code == 303, saved.text
    async with session() as db:
        row = await db.get(Store, second.id)
        first = await db.get(Store, world.store.id)
        assert row is not None and first is not None
        assert (row.name, row.address, row.phone, row.email, row.is_default) == (
            "Second Avenue",
            "1 Second Avenue",
            "+861065000000",
            "Desk@second.test",  # the domain lower-cased, as for staff
            True,
        )
        assert not first.is_default  # one default per sub-site
        [entry] = (
            await db.exec(select(AuditEntry).where(AuditEntry.object_id == str(second.id)))
        ).all()
    assert entry.kind == "store" and entry.actor.startswith(world.manager.name)
    assert entry.old["name"] == "Second" and entry.new["name"] == "Second Avenue"
    assert entry.old["phone"] is None and entry.new["phone"] == "+861065000000"
    assert entry.old["is_default"] is False and entry.new["is_default"] is True

    # Unticking the default and closing a store people work in: the API's 409s, at the field.
    page = await pages.get(f"/console/stores/{second.id}")
    undefault = {k: v for k, v in form_of(page).items() if k != "is_default"}
    kept = await pages.post(f"/console/stores/{second.id}", data=undefault)
    assert kept.status_code == 422 and 'data-error="is_default"' in kept.text
    page = await pages.get(f"/console/stores/{world.store.id}")
    closing = {k: v for k, v in form_of(page).items() if k != "active"}
    staffed = await pages.post(f"/console/stores/{world.store.id}", data=closing)
    assert staffed.status_code == 422 and 'data-error="active"' not in staffed.text
    assert "active staff" in staffed.text  # about the store as a whole: above the form
    async with session() as db:
        entries = (await db.exec(select(AuditEntry).where(col(AuditEntry.kind) == "store"))).all()
    # The change above, and the default taken from the first store, each with its entry.
    assert sorted((e.object_id, e.new["is_default"]) for e in entries) == sorted(
        [(str(second.id), True), (str(world.store.id), False)]
    )


async def test_head_office_changes_any_store_and_others_are_refused(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=0)
    other = await make_store_world(consultants=0)
    hq = await make_store_world(consultants=0)
    await listed_as_admin(other, head_office=False)
    await listed_as_admin(hq, head_office=True)

    # A plain manager: not a page of theirs, not even for their own store.
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    own = await pages.get(f"/console/stores/{world.store.id}")
    assert own.status_code == 403 and "head office" in own.text
    # An admin of another sub-site: refused the page and the change.
    assert (await sign_in(pages, sinks, other.manager)).status_code == 303
    theirs = await pages.get(f"/console/stores/{other.store.id}")
    assert theirs.status_code == 200
    page = await pages.get(f"/console/stores/{world.store.id}")
    assert page.status_code == 403 and "outside your scope" in page.text
    posted = await pages.post(
        f"/console/stores/{world.store.id}", data=form_of(theirs) | {"name": "Taken over"}
    )
    assert posted.status_code == 403
    # Head office: any store; closing an empty one.
    async with session() as db:
        manager = await db.get(Staff, world.manager.id)
        assert manager is not None
        manager.active = False
        db.add(manager)
        await db.commit()
    assert (await sign_in(pages, sinks, hq.manager)).status_code == 303
    page = await pages.get(f"/console/stores/{world.store.id}")
    assert page.status_code == 200, page.text
    closed = {k: v for k, v in form_of(page).items() if k != "active"}
    assert (await pages.post(f"/console/stores/{world.store.id}", data=closed)).status_code == 303
    async with session() as db:
        row = await db.get(Store, world.store.id)
        assert row is not None and (row.name, row.active) == (world.store.name, False)
        [entry] = (
            await db.exec(select(AuditEntry).where(AuditEntry.object_id == str(world.store.id)))
        ).all()
    assert (entry.old, entry.new) == ({"active": True}, {"active": False})
    missing = await pages.get("/console/stores/999999")
    assert missing.status_code == 404
