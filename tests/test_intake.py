"""Intake refuses what the pipeline cannot serve, and answers for what it took.

Each bad order is sent over HTTP and must come back 4xx naming its field; the good ones
must be readable at their `status_url` at once. The routing fallback of a named store
with nobody in it is checked on the real `route_order` activity.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import col, update

from activities.routing import route_order
from models import Staff, Store
from models.db import session
from settings import settings
from tests.api_helpers import admin
from tests.conftest import Dispatch, eventually
from tests.factories import StoreWorld, make_store_world
from tests.routing_factories import make_country
from workflows.contracts import CustomerIn, OrderRequest

ORDERS = "/api/v1/orders"


def body_for(world: StoreWorld, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"I{uuid.uuid4().hex[:10]}",
        "customer": {"name": "Li Lei", "phone": "+8613800000001"},
        "category": "tour",
        "store_id": world.store.id,
    }
    return body | overrides


def named_fields(response: httpx.Response) -> dict[str, str]:
    return {".".join(map(str, e["loc"])): e["msg"] for e in response.json()["detail"]}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"store_id": 2_000_000}, "body.store_id", "no store 2000000"),
        ({"wished_store_id": 2_000_000}, "body.wished_store_id", "no store 2000000"),
        ({"preferred_staff_id": 2_000_000}, "body.preferred_staff_id", "no staff member"),
        (
            {"type": "assigned_unprocessed", "assignee_id": 2_000_000},
            "body.assignee_id",
            "no staff member",
        ),
        ({"customer": {"name": "Nobody"}}, "body.customer", "a phone or an e-mail"),
        ({"customer": None}, "body.customer", ""),
    ],
    ids=["store", "wished-store", "preferred-staff", "assignee", "no-contact", "no-customer"],
)
async def test_an_order_naming_what_cannot_serve_it_is_422(
    offline_api: httpx.AsyncClient, change: dict[str, Any], field: str, says: str
) -> None:
    world = await make_store_world(consultants=1)
    body = body_for(world, **change)
    if change.get("customer", {}) is None:
        del body["customer"]  # no customer at all
    response = await offline_api.post(ORDERS, json=body, headers=admin())
    assert response.status_code == 422, response.text
    named = named_fields(response)
    assert field in named, named
    assert says in named[field]


async def test_an_assignee_who_is_not_a_consultant_of_the_store_is_422(
    offline_api: httpx.AsyncClient,
) -> None:
    world, other = await make_store_world(), await make_store_world()
    cases = {
        other.consultants[0].id: f"not a consultant of store {world.store.id}",
        world.manager.id: "is not a consultant",
    }
    for staff_id, says in cases.items():
        body = body_for(world, type="assigned_unprocessed", assignee_id=staff_id)
        response = await offline_api.post(ORDERS, json=body, headers=admin())
        assert response.status_code == 422, response.text
        assert says in named_fields(response)["body.assignee_id"]


async def test_the_same_id_with_another_payload_is_409_naming_the_fields(
    api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    body = body_for(world)
    first = await api.post(ORDERS, json=body, headers=admin())
    assert first.status_code == 202, first.text

    again = await api.post(ORDERS, json=body, headers=admin())
    assert again.status_code == 202, again.text  # the same payload: the same order
    assert again.json()["workflow_id"] == first.json()["workflow_id"]

    changed = await api.post(
        ORDERS, json=body | {"category": "visa", "priority": 5}, headers=admin()
    )
    assert changed.status_code == 409, changed.text
    detail = changed.json()["detail"]
    assert "category" in detail and "priority" in detail and "store_id" not in detail


async def test_status_url_answers_received_right_after_the_202(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_store_world(consultants=1)
    # A queue no worker polls: the workflow exists, nothing has routed or recorded it yet.
    monkeypatch.setattr(settings, "TEMPORAL_TASK_QUEUE", f"idle-{uuid.uuid4().hex[:6]}")
    body = body_for(world)
    accepted = await api.post(ORDERS, json=body, headers=admin())
    assert accepted.status_code == 202, accepted.text

    status = await api.get(accepted.json()["status_url"], headers=admin())

    assert status.status_code == 200, status.text
    view = status.json()
    assert (view["id"], view["status"], view["store_id"]) == (body["order_id"], "received", None)
    assert view["requested_store_id"] == world.store.id


async def test_an_imported_order_without_a_store_goes_to_its_holders_store(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    await make_store_world()  # another store, where routing would otherwise look too
    world = await make_store_world(consultants=2)
    holder = world.consultants[1]
    body = body_for(world, type="assigned_unprocessed", assignee_id=holder.id)
    del body["store_id"]
    accepted = await api.post(ORDERS, json=body, headers=admin())
    assert accepted.status_code == 202, accepted.text

    async def assigned() -> dict[str, Any]:
        response = await api.get(f"{ORDERS}/{body['order_id']}", headers=admin())
        view: dict[str, Any] = response.json()
        assert view["assignments"], view["status"]
        return view

    view = await eventually(assigned)
    assert view["store_id"] == world.store.id
    assert view["assignments"][0]["staff_id"] == holder.id


async def test_a_named_store_with_nobody_falls_back_to_its_own_subsites_default(
    clean_db: str,
) -> None:
    country = await make_country()
    empty = country.stores["cd-wuhou"]
    async with session() as db:
        await db.exec(update(Staff).where(col(Staff.store_id) == empty.id).values(active=False))
        await db.commit()
    request = OrderRequest(
        order_id=f"R{uuid.uuid4().hex[:10]}",
        type="new",
        customer=CustomerIn(name="Han", phone="+8613911119999"),
        store_id=empty.id,
    )

    routed = await route_order(request)

    async with session() as db:
        store = await db.get(Store, routed.store_id)
    assert store is not None and store.id == country.stores["cd-main"].id  # not head office's
    assert "the store named on the order" in routed.reason
