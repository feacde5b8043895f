"""The directory API (sub-sites, stores, staff, the notice log) and the health check."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from models import Staff
from models.db import session
from tests.api_helpers import admin, api_client
from tests.conftest import eventually, free_port
from tests.factories import make_store_world

V1 = "/api/v1"


CUSTOMER = {"name": "Li Lei", "phone": "+8613800000001"}  # intake needs a contact


@pytest.fixture
async def directory_api(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the real database; the directory lists never need Temporal."""
    async with api_client() as client:
        yield client


async def get_list(api: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.get(f"{V1}{path}", params=params, headers=admin())
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["items"]
    return rows


async def test_subsites_are_listed_by_code(directory_api: httpx.AsyncClient) -> None:
    await make_store_world(subsite_code="sh")
    await make_store_world(subsite_code="bj")

    subsites = await get_list(directory_api, "/subsites")

    assert [(s["code"], s["domain"]) for s in subsites] == [
        ("bj", "bj.o2o.test"),
        ("sh", "sh.o2o.test"),
    ]
    assert subsites[0]["regions"] == [{"code": "CN-BJ", "cities": ["Beijing"]}]
    assert all(s["active"] and s["id"] for s in subsites)


async def test_stores_are_filtered_by_subsite(directory_api: httpx.AsyncClient) -> None:
    a, b = await make_store_world(), await make_store_world()

    only_b = await get_list(directory_api, "/stores", subsite_id=b.subsite.id)
    every = await get_list(directory_api, "/stores")
    none = await get_list(directory_api, "/stores", subsite_id=999999)

    assert [(s["id"], s["subsite_id"], s["code"]) for s in only_b] == [
        (b.store.id, b.subsite.id, b.store.code)
    ]
    assert only_b[0]["is_default"] is True
    assert [s["id"] for s in every] == [a.store.id, b.store.id]
    assert none == []


async def test_staff_are_filtered_by_store_subsite_and_active(
    directory_api: httpx.AsyncClient,
) -> None:
    a, b = await make_store_world(consultants=3), await make_store_world(consultants=1)
    async with session() as db:
        gone = await db.get(Staff, a.consultants[2].id)
        assert gone is not None
        gone.active = False
        db.add(gone)
        await db.commit()
    a_ids = [a.manager.id] + [c.id for c in a.consultants]

    in_a = await get_list(directory_api, "/staff", store_id=a.store.id)
    in_b_subsite = await get_list(directory_api, "/staff", subsite_id=b.subsite.id)
    active_a = await get_list(directory_api, "/staff", store_id=a.store.id, active=True)
    first_two = await get_list(directory_api, "/staff", store_id=a.store.id, limit=2)
    next_two = await get_list(directory_api, "/staff", store_id=a.store.id, limit=2, offset=2)

    assert [s["id"] for s in in_a] == a_ids
    assert {s["store_id"] for s in in_a} == {a.store.id}
    roles = {s["id"]: s["role"] for s in in_a}
    assert roles[a.manager.id] == "manager"
    assert {roles[c.id] for c in a.consultants} == {"consultant"}
    assert [s["id"] for s in in_b_subsite] == [b.manager.id, b.consultants[0].id]
    assert [s["id"] for s in active_a] == a_ids[:3]
    assert [s["id"] for s in first_two + next_two] == a_ids
    assert in_a[1]["phone"] == a.consultants[0].phone


@pytest.mark.parametrize(
    ("path", "params"),
    [("/staff", {"limit": 0}), ("/staff", {"offset": -1}), ("/notifications", {"limit": 501})],
)
async def test_bad_paging_is_422(
    directory_api: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    response = await directory_api.get(f"{V1}{path}", params=params, headers=admin())

    assert response.status_code == 422, response.text
    [name] = params
    assert ["query", name] in [e["loc"] for e in response.json()["detail"]]


@pytest.mark.parametrize("path", ["/subsites", "/stores", "/staff", "/notifications"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}], ids=["none", "bad"])
async def test_directory_needs_a_valid_token(
    directory_api: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await directory_api.get(f"{V1}{path}", headers=headers)

    assert response.status_code == 401, response.text


async def test_notifications_of_the_assignee_after_an_assignment(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    order_id = f"N{uuid.uuid4().hex[:10]}"
    posted = await api.post(
        f"{V1}/orders",
        json={"order_id": order_id, "store_id": world.store.id, "customer": CUSTOMER},
        headers=admin(),
    )
    assert posted.status_code == 202, posted.text

    async def assignee() -> int:
        story = await api.get(f"{V1}/orders/{order_id}", headers=admin())
        assert story.status_code == 200, story.text
        staff_id = story.json()["assignee_id"]
        assert staff_id is not None
        return int(staff_id)

    staff_id = await eventually(assignee)
    person = next(c for c in world.consultants if c.id == staff_id)
    other = next(c for c in world.consultants if c.id != staff_id)

    async def both_sent() -> list[dict[str, Any]]:
        rows = await get_list(api, "/notifications", staff_id=staff_id)
        assert sorted((n["kind"], n["channel"], n["status"]) for n in rows) == [
            ("assigned", "email", "sent"),
            ("assigned", "sms", "sent"),
        ]
        return rows

    rows = await eventually(both_sent)
    assert {(n["order_id"], n["staff_id"], n["round"]) for n in rows} == {(order_id, staff_id, 1)}
    recipients = {n["channel"]: n["recipient"] for n in rows}
    assert recipients == {"sms": person.phone, "email": person.email}
    assert [n["id"] for n in rows] == sorted((n["id"] for n in rows), reverse=True), "newest first"
    assert await get_list(api, "/notifications", staff_id=other.id) == []
    by_order = await get_list(api, "/notifications", order_id=order_id)
    assert {n["id"] for n in by_order} == {n["id"] for n in rows}
    assert len(await get_list(api, "/notifications", order_id=order_id, limit=1)) == 1


async def test_health_is_ok_when_database_and_temporal_answer(api: httpx.AsyncClient) -> None:
    response = await api.get(f"{V1}/health")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "database": "ok", "temporal": "ok"}


async def test_health_is_503_naming_temporal_when_it_is_down(clean_db: str) -> None:
    # A client that connects on first use, to a port nothing listens on.
    unreachable = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    async with api_client(unreachable) as client:
        response = await client.get(f"{V1}/health")

    assert response.status_code == 503, response.text
    body = response.json()
    assert (body["status"], body["database"]) == ("degraded", "ok")
    assert body["temporal"].startswith("unreachable: ")
