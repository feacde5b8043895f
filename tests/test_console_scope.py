"""The order page acts with the widest role the signed-in person holds: a store manager on
their store's orders, a sub-site admin on their sub-site's, head office on every order (the
stuck list's "reassign or cancel" lands there). Whether the order lies inside is the API's
one scope rule; outside it, the page and its actions are refused and the order goes on."""

from __future__ import annotations

import re

import httpx

from models import Order, OrderStatus, Staff, StaffRole, SubSiteAdmin
from models.db import session
from tests.api_helpers import admin
from tests.conftest import Dispatch
from tests.factories import make_store_world, sibling_store
from tests.test_api_orders import order_body, submit, wait_for_round
from tests.test_console_hq import listed_as_admin
from tests.test_console_pages import csrf_of, sign_in

PHONE = "+8613700000123"


async def status_of(api: httpx.AsyncClient, order_id: str) -> str:
    answer = await api.get(f"/api/v1/orders/{order_id}", headers=admin())
    return str(answer.json()["status"])


async def test_head_office_reassigns_and_cancels_another_stores_order(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    store = await make_store_world(consultants=2)
    hq = await make_store_world(consultants=0)
    elsewhere = await make_store_world(consultants=0)
    await listed_as_admin(hq, head_office=True)
    await listed_as_admin(elsewhere, head_office=False)
    body = order_body(store)
    order_id = body["order_id"]
    await submit(api, body)
    first = await wait_for_round(api, order_id, 1)

    # An admin of another sub-site: neither the page nor an action, and the order goes on.
    assert (await sign_in(api, dispatch.sinks, elsewhere.manager)).status_code == 303
    page = await api.get(f"/console/orders/{order_id}")
    assert page.status_code == 403 and "outside your scope" in page.text
    home = await api.get("/console/me/account")
    tried = await api.post(
        f"/console/orders/{order_id}/cancel",
        data={"csrf": csrf_of(home), "reason": "duplicate"},
    )
    assert tried.status_code == 403 and "outside your scope" in tried.text
    assert await status_of(api, order_id) == "assigned"

    # Head office: the manager's card with the order's own store's consultants.
    assert (await sign_in(api, dispatch.sinks, hq.manager)).status_code == 303
    page = await api.get(f"/console/orders/{order_id}")
    assert page.status_code == 200, page.text
    offered = set(re.findall(r'<option value="(\d+)">', page.text))
    assert offered == {str(c.id) for c in store.consultants}
    other = next(c for c in store.consultants if c.id != first["staff_id"])
    moved = await api.post(
        f"/console/orders/{order_id}/reassign",
        data={"csrf": csrf_of(page), "staff_id": str(other.id), "reason": "head office"},
    )
    assert moved.status_code == 303, moved.text
    second = await wait_for_round(api, order_id, 2)
    assert second["staff_id"] == other.id
    cancelled = await api.post(
        f"/console/orders/{order_id}/cancel",
        data={"csrf": csrf_of(page), "reason": "duplicate"},
    )
    assert cancelled.status_code == 303, cancelled.text
    assert await status_of(api, order_id) == "cancelled"
    story = await api.get(f"/console/orders/{order_id}/story")  # the stuck list links it
    assert story.status_code == 200 and 'data-round="2"' in story.text


async def test_a_sub_site_admin_acts_on_their_sub_sites_orders(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """The manager of another store of the same sub-site: refused as a manager, then, once
    listed as the sub-site's admin, the order's manager actions are theirs."""
    world = await make_store_world(consultants=1)
    sibling = await sibling_store(world)
    async with session() as db:
        admin_person = Staff(
            store_id=sibling.id, role=StaffRole.MANAGER, name="Sibling manager", phone=PHONE
        )
        db.add(admin_person)
        await db.commit()
        await db.refresh(admin_person)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    assert (await sign_in(api, dispatch.sinks, admin_person)).status_code == 303
    as_manager = await api.get(f"/console/orders/{body['order_id']}")
    assert as_manager.status_code == 403 and "outside your scope" in as_manager.text

    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=world.subsite.id, staff_id=admin_person.id))
        await db.commit()
    page = await api.get(f"/console/orders/{body['order_id']}")
    assert page.status_code == 200 and 'action="/console/orders/' in page.text
    assert f'<option value="{world.consultants[0].id}">' in page.text
    cancelled = await api.post(
        f"/console/orders/{body['order_id']}/cancel",
        data={"csrf": csrf_of(page), "reason": "duplicate"},
    )
    assert cancelled.status_code == 303, cancelled.text
    assert await status_of(api, body["order_id"]) == "cancelled"


async def test_head_office_reconciles_an_order_from_the_stuck_list(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """`o2o reconcile` in the browser: the row set back from the workflow's state; an order
    without a workflow is a refusal naming what to do instead; an unknown action a 404."""
    world = await make_store_world(consultants=1)
    hq = await make_store_world(consultants=0)
    await listed_as_admin(hq, head_office=True)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    async with session() as db:  # the row falls behind its workflow
        row = await db.get(Order, body["order_id"])
        assert row is not None
        row.status = OrderStatus.WAITING
        db.add(row)
        await db.commit()
    assert (await sign_in(api, dispatch.sinks, hq.manager)).status_code == 303
    page = await api.get("/console/hq/orders")
    done = await api.post(
        f"/console/hq/stuck/{body['order_id']}/reconcile", data={"csrf": csrf_of(page)}
    )
    assert done.status_code == 200, done.text
    assert f'data-reconciled="{body["order_id"]}"' in done.text
    async with session() as db:
        again = await db.get(Order, body["order_id"])
        assert again is not None and again.status == OrderStatus.ASSIGNED
    nobody = await api.post("/console/hq/stuck/no-such/reconcile", data={"csrf": csrf_of(page)})
    assert nobody.status_code == 409 and "o2o redrive" in nobody.text
    unknown = await api.post("/console/hq/stuck/x/explode", data={"csrf": csrf_of(page)})
    assert unknown.status_code == 404 and "explode" in unknown.text


async def test_a_link_session_never_holds_its_persons_wider_roles(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """A consultant who is also an admin of head office's sub-site accepts from the link in
    their SMS (which can be forwarded): that session acts only as them — not head office
    on another store's order, not on head office's pages — until they sign in by code."""
    from datetime import datetime

    from console.links import make_token

    hq = await make_store_world(consultants=1)
    await listed_as_admin(hq, head_office=True)
    consultant = hq.consultants[0]
    async with session() as db:
        db.add(SubSiteAdmin(subsite_id=hq.subsite.id, staff_id=consultant.id))
        await db.commit()
    elsewhere = await make_store_world(consultants=1)
    theirs, other = order_body(hq), order_body(elsewhere)
    await submit(api, theirs)
    await submit(api, other)
    offer = await wait_for_round(api, theirs["order_id"], 1)
    await wait_for_round(api, other["order_id"], 1)
    assert offer["staff_id"] == consultant.id

    token = make_token(
        order_id=theirs["order_id"],
        round=1,
        staff_id=consultant.id,
        purpose="assigned",
        deadline=datetime.fromisoformat(offer["accept_deadline"]),
    )
    shown = await api.get(f"/o/{token}")
    assert shown.status_code == 200, shown.text
    accepted = await api.post(f"/o/{token}", data={"csrf": csrf_of(shown), "action": "accept"})
    assert accepted.status_code == 303, accepted.text

    mine = await api.get(f"/console/orders/{theirs['order_id']}")
    assert mine.status_code == 200  # their own order, as themself
    page = await api.get(f"/console/orders/{other['order_id']}")
    assert page.status_code == 403 and "never been yours" in page.text
    tried = await api.post(
        f"/console/orders/{other['order_id']}/cancel",
        data={"csrf": csrf_of(mine), "reason": "duplicate"},
    )
    assert tried.status_code == 403
    assert await status_of(api, other["order_id"]) == "assigned"
    assert (await api.get("/console/hq/stuck")).status_code == 403

    # Signed in by code, the same person is head office again.
    assert (await sign_in(api, dispatch.sinks, consultant)).status_code == 303
    assert (await api.get(f"/console/orders/{other['order_id']}")).status_code == 200
