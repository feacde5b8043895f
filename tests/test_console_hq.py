"""Head office in the console: an admin of the head-office sub-site issues a token for the
web backend (its secret shown once), lists and revokes it through the API's own functions,
reads every order filtered by status, store and sub-site, and the stuck orders (redrive
through `operations.redrive`); an admin of another sub-site
is refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import httpx
from sqlmodel import select

from api.deps import hash_token
from models import ApiToken, AuditEntry, Order, OrderStatus, OrderType, Role, SubSite, SubSiteAdmin
from models.db import session
from tests.conftest import Dispatch, Sinks
from tests.factories import StoreWorld, make_store_world
from tests.test_console_pages import csrf_of, pages, sign_in

__all__ = ["pages"]  # the fixture, shared with the console's other page tests


async def admin_signed_in(pages: httpx.AsyncClient, sinks: Sinks, *, head_office: bool) -> None:
    """A store manager, listed as an admin of their sub-site (head office's or not), signed in."""
    world = await make_store_world(consultants=0)
    await listed_as_admin(world, head_office=head_office)
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303


async def listed_as_admin(world: StoreWorld, *, head_office: bool) -> None:
    """The world's manager, listed as an admin of its sub-site (head office's or not)."""
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=world.subsite.id, staff_id=world.manager.id))
        site = await db.get(SubSite, world.subsite.id)
        assert site is not None
        site.is_head_office = head_office
        db.add(site)
        await db.commit()


async def test_head_office_issues_lists_and_revokes_a_token(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=True)
    page = await pages.get("/console/hq/tokens")
    assert page.status_code == 200, page.text
    assert 'href="/console/hq/tokens"' in page.text  # the navigation offers it
    blank = await pages.post("/console/hq/tokens", data={"csrf": csrf_of(page), "name": " "})
    assert blank.status_code == 422 and "name" in blank.text

    issued = await pages.post("/console/hq/tokens", data={"csrf": csrf_of(page), "name": "web"})
    assert issued.status_code == 200, issued.text
    [secret] = re.findall(r"<code data-secret>([^<]+)</code>", issued.text)
    async with session() as db:
        row = (
            await db.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
        ).one()
    assert (row.role, row.name, row.revoked_at) == (Role.SERVICE, "web", None)
    listed = await pages.get("/console/hq/tokens")
    assert f'data-token="{row.id}"' in listed.text and secret not in listed.text  # shown once

    revoked = await pages.post(
        f"/console/hq/tokens/{row.id}/revoke", data={"csrf": csrf_of(listed)}
    )
    assert revoked.status_code == 303, revoked.text
    async with session() as db:
        again = await db.get(ApiToken, row.id)
        assert again is not None and again.revoked_at is not None
        kinds = (await db.exec(select(AuditEntry.action).where(AuditEntry.kind == "token"))).all()
    assert sorted(kinds) == ["created", "revoked"]
    assert f'data-token="{row.id}"' not in (await pages.get("/console/hq/tokens")).text
    missing = await pages.post("/console/hq/tokens/999999/revoke", data={"csrf": csrf_of(listed)})
    assert missing.status_code == 404 and "no token 999999" in missing.text


async def test_an_admin_of_another_sub_site_is_refused(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=False)
    page = await pages.get("/console/hq/tokens")
    assert page.status_code == 403 and "head office" in page.text
    assert (await pages.get("/console/hq/orders")).status_code == 403
    assert (await pages.get("/console/hq/stuck")).status_code == 403
    assert (await pages.get("/console/reports?scope=all")).status_code == 403
    assert 'href="/console/hq/tokens"' not in (await pages.get("/console/site")).text
    site = await pages.get("/console/site")
    posted = await pages.post("/console/hq/tokens", data={"csrf": csrf_of(site), "name": "x"})
    assert posted.status_code == 403
    async with session() as db:
        assert (await db.exec(select(ApiToken).where(ApiToken.name == "x"))).all() == []


async def order_in(world: StoreWorld, order_id: str, status: OrderStatus) -> None:
    async with session() as db:
        db.add(
            Order(
                id=order_id,
                type=OrderType.NEW,
                store_id=world.store.id,
                subsite_id=world.subsite.id,
                status=status,
                workflow_id=f"order-{order_id}",
            )
        )
        await db.commit()


async def test_head_office_reads_every_order_filtered(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=True)
    here, there = await make_store_world(consultants=0), await make_store_world(consultants=0)
    await order_in(here, "hq-1", OrderStatus.WAITING)
    await order_in(there, "hq-2", OrderStatus.ACCEPTED)
    await order_in(there, "hq-3", OrderStatus.WAITING)

    def shown(page: httpx.Response) -> set[str]:
        assert page.status_code == 200, page.text
        return set(re.findall(r'data-order="(hq-\d)"', page.text))

    everything = await pages.get("/console/hq/orders")
    assert shown(everything) == {"hq-1", "hq-2", "hq-3"}
    assert 'href="/console/orders/hq-2/story"' in everything.text
    assert shown(await pages.get("/console/hq/orders?status=waiting")) == {"hq-1", "hq-3"}
    by_store = await pages.get(f"/console/hq/orders?store_id={there.store.id}&status=waiting")
    assert shown(by_store) == {"hq-3"}
    by_site = await pages.get(f"/console/hq/orders?subsite_id={here.subsite.id}")
    assert shown(by_site) == {"hq-1"}
    bad = await pages.get("/console/hq/orders?status=lost")
    assert bad.status_code == 422 and "status: one of" in bad.text
    worse = await pages.get("/console/hq/orders?store_id=abc")
    assert worse.status_code == 422 and "store_id" in worse.text


async def test_head_office_sees_the_stuck_orders_and_redrives_one(
    pages: httpx.AsyncClient, sinks: Sinks, dispatch: Dispatch
) -> None:
    """On the time-skipping server the finder lists what the database shows (and names the
    kinds it could not look for)."""
    pages_app = cast(httpx.ASGITransport, pages._transport).app
    cast(Any, pages_app).state.temporal = dispatch.client
    await admin_signed_in(pages, sinks, head_office=True)
    world = await make_store_world(consultants=0)
    await order_in(world, "hq-old", OrderStatus.WAITING)
    await order_in(world, "hq-done", OrderStatus.COMPLETED)
    async with session() as db:
        old = await db.get(Order, "hq-old")
        assert old is not None
        old.updated_at = datetime.now(UTC) - timedelta(days=2)
        db.add(old)
        await db.commit()

    page = await pages.get("/console/hq/stuck")
    assert page.status_code == 200, page.text
    assert re.findall(r'data-stuck="([^"]+)" data-action="(\w+)"', page.text) == [
        ("hq-old", "cancel")
    ]
    assert 'href="/console/orders/hq-old"' in page.text and "data-unchecked" in page.text
    # A redrive answers what it did; one of an order nobody knows is a refusal page.
    done = await pages.post("/console/hq/stuck/hq-done/redrive", data={"csrf": csrf_of(page)})
    assert done.status_code == 200, done.text
    assert 'data-redriven="none"' in done.text and "is handled" in done.text
    nobody = await pages.post("/console/hq/stuck/hq-nobody/redrive", data={"csrf": csrf_of(page)})
    assert nobody.status_code == 409 and "no order" in nobody.text


async def test_head_office_reads_the_report_of_a_sub_site_or_every_store(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=True)
    there = await make_store_world(consultants=0)
    await order_in(there, "hq-r1", OrderStatus.WAITING)
    await order_in(there, "hq-r2", OrderStatus.ACCEPTED)

    def bars(page: httpx.Response) -> int:
        assert page.status_code == 200, page.text
        return page.text.count('<rect x="80"')  # a bar per status with orders

    own = await pages.get("/console/reports?days=7")
    assert bars(own) == 0 and f'value="subsite-{there.subsite.id}"' in own.text
    assert bars(await pages.get("/console/reports?days=7&scope=all")) == 2
    site = await pages.get(f"/console/reports?days=7&scope=subsite-{there.subsite.id}")
    assert bars(site) == 2  # and its CSVs are the sub-site's too
    assert f'scope=subsite-{there.subsite.id}" data-csv="notices"' in site.text
    exported = await pages.get("/console/reports/status.csv?days=7&scope=all")
    assert exported.status_code == 200, exported.text
    assert len(exported.text.strip().splitlines()) == 3  # the header and two statuses
    bad = await pages.get("/console/reports?scope=everything")
    assert bad.status_code == 422 and "scope" in bad.text
