"""Staff management over HTTP: create, read, update, move, deactivate, pause and resume; the
open orders of someone who can no longer handle them are re-dispatched at once, with the
reason in each order's story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import select

from models import ApiToken, Order, Role, Staff, SubSiteAdmin
from models.db import session
from tests.api_helpers import (
    V1,
    add_patterns,
    admin,
    assignments_of,
    bearer,
    events_of,
    make_token,
    manager_of,
    slots_of,
)
from tests.conftest import Dispatch, eventually
from tests.factories import StoreWorld, make_store_world
from tests.test_order_workflow import new_order, set_rule, start, wait_for_round, wait_until_waiting
from workflows.contracts import OrderRequest
from workflows.roster import LeaveStartWorkflow, leave_workflow_id

STAFF = f"{V1}/staff"


@pytest.fixture
async def api(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """conftest's `api`, with orders that stay open a week and send no notices."""
    await set_rule("new", channels={}, accept_timeout_seconds=7 * 86400)
    return api


async def patch(api: httpx.AsyncClient, staff_id: int, **fields: Any) -> dict[str, Any]:
    response = await api.patch(f"{STAFF}/{staff_id}", json=fields, headers=admin())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def staff_row(staff_id: int) -> Staff:
    async with session() as db:
        row = await db.get(Staff, staff_id)
        assert row is not None
        return row


# ------------------------------------------------------------------ create, read, update


async def test_create_normalises_contacts_and_reads_back(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=0)
    body = {
        "store_id": world.store.id,
        "name": "Zhou Min",
        "phone": "139 1234 5678",
        "email": "  Zhou.Min@O2O.test ",
        "language": "en",
        "capacity": 4,
    }

    created = await offline_api.post(STAFF, json=body, headers=admin())

    assert created.status_code == 201, created.text
    person = created.json()
    assert person["phone"] == "+8613912345678"
    assert person["email"] == "Zhou.Min@o2o.test"
    assert (person["role"], person["language"], person["capacity"]) == ("consultant", "en", 4)
    assert (person["active"], person["rotation_paused"], person["points"]) == (True, False, 0)
    shown = await offline_api.get(f"{STAFF}/{person['id']}", headers=admin())
    assert shown.status_code == 200
    assert shown.json()["name"] == "Zhou Min"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"role": "boss"}, "role"),
        ({"language": "fr"}, "language"),
        ({"capacity": 0}, "capacity"),
        ({"store_id": 999999}, "no store"),
        ({"salary": 1}, "salary"),
    ],
)
async def test_bad_staff_is_refused(
    offline_api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    world = await make_store_world(consultants=0)
    body = {"store_id": world.store.id, "name": "Zhou Min", "phone": "+8613912340000"} | change

    response = await offline_api.post(STAFF, json=body, headers=admin())

    assert response.status_code in (404, 422), response.text
    assert field in response.text


async def test_update_changes_only_the_fields_sent(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    person = world.consultants[0]

    changed = await offline_api.patch(
        f"{STAFF}/{person.id}",
        json={"phone": "+86 139 0000 1111", "language": "en", "capacity": 2, "email": None},
        headers=admin(),
    )

    assert changed.status_code == 200, changed.text
    row = await staff_row(person.id)
    assert (row.phone, row.language, row.capacity, row.email) == ("+8613900001111", "en", 2, None)
    assert (row.name, row.store_id, row.active) == (person.name, world.store.id, True)
    refused = await offline_api.patch(f"{STAFF}/{person.id}", json={"name": None}, headers=admin())
    assert refused.status_code == 422, refused.text


async def test_staff_list_is_scoped_to_the_caller(offline_api: httpx.AsyncClient) -> None:
    a, b = await make_store_world(consultants=2), await make_store_world(consultants=1)
    me = a.consultants[0]
    staff_token = await make_token(Role.STAFF, staff_id=me.id, store_id=a.store.id)
    manager_token = await make_token(Role.STORE_MANAGER, staff_id=a.manager.id, store_id=a.store.id)
    admin_token = await make_token(
        Role.SUBSITE_ADMIN, staff_id=b.manager.id, subsite_id=b.subsite.id
    )
    service_token = await make_token(Role.SERVICE)

    async def ids(token: str, **params: Any) -> list[int] | int:
        response = await offline_api.get(STAFF, params=params, headers=bearer(token))
        if response.status_code != 200:
            return response.status_code
        return [s["id"] for s in response.json()["items"]]

    assert await ids(staff_token) == [me.id]
    assert await ids(manager_token) == [a.manager.id, *(c.id for c in a.consultants)]
    assert await ids(manager_token, store_id=b.store.id) == 403  # outside: refused, not empty
    assert await ids(admin_token) == [b.manager.id, b.consultants[0].id]
    assert await ids(service_token) == 403


async def test_a_demoted_manager_loses_manager_powers_at_once(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    manager = await manager_of(world)
    person = world.consultants[0]
    before = await offline_api.patch(f"{STAFF}/{person.id}", json={"capacity": 3}, headers=manager)

    await patch(offline_api, world.manager.id, role="consultant")
    after = await offline_api.patch(f"{STAFF}/{person.id}", json={"capacity": 4}, headers=manager)

    assert before.status_code == 200, before.text
    assert after.status_code == 403
    assert "is no longer a manager" in after.json()["detail"]
    assert (await staff_row(person.id)).capacity == 3


async def test_a_store_manager_manages_consultants_not_managers(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    manager = await manager_of(world)
    person = world.consultants[0]
    new_manager = {
        "store_id": world.store.id,
        "name": "Qian Li",
        "role": "manager",
        "phone": "+8613912340001",
    }

    promote = await offline_api.patch(
        f"{STAFF}/{person.id}", json={"role": "manager"}, headers=manager
    )
    deactivate_self = await offline_api.patch(
        f"{STAFF}/{world.manager.id}", json={"active": False}, headers=manager
    )
    hire_manager = await offline_api.post(STAFF, json=new_manager, headers=manager)

    assert [promote.status_code, deactivate_self.status_code, hire_manager.status_code] == [
        403,
        403,
        403,
    ]
    assert "managers are an admin's to manage" in promote.json()["detail"]
    assert (await staff_row(person.id)).role == "consultant"
    assert (await staff_row(world.manager.id)).active


async def test_an_admin_moved_to_another_sub_site_is_its_admin_no_longer(
    api: httpx.AsyncClient,
) -> None:
    here, there = await make_store_world(consultants=0), await make_store_world(consultants=0)
    person = here.manager
    token = bearer(
        await make_token(Role.SUBSITE_ADMIN, staff_id=person.id, subsite_id=here.subsite.id)
    )
    before = await api.get(f"{STAFF}/{person.id}", headers=token)

    await patch(api, person.id, store_id=there.store.id)
    after = await api.get(f"{STAFF}/{person.id}", headers=token)

    assert before.status_code == 200, before.text
    assert after.status_code == 403
    assert f"no longer an admin of sub-site {here.subsite.id}" in after.json()["detail"]
    async with session() as db:
        assert await db.get(SubSiteAdmin, (here.subsite.id, person.id)) is None


# ------------------------------------------------------------------ releasing open orders


async def test_deactivation_reassigns_the_open_order_with_the_reason(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2)
    leaving, staying = (p.id for p in world.consultants)
    order = await order_held_by(api, dispatch, world, leaving, colleague=staying)
    token = await make_token(Role.STAFF, staff_id=leaving, store_id=world.store.id)

    result = await patch(api, leaving, active=False, reason="left the company")

    assert result["active"] is False
    assert result["released"] == [
        {
            "order_id": order.order_id,
            "result": "redispatched",
            "assignee_id": staying,
            "status": "assigned",
        }
    ]
    rounds = await assignments_of(order.order_id)
    assert [(a.staff_id, a.outcome) for a in rounds] == [
        (leaving, "reassigned"),
        (staying, "offered"),
    ]
    assert rounds[1].reason["excluded"][str(leaving)] == "inactive"
    events = {e.kind: e for e in await events_of(order.order_id)}
    released, taken = events["assignee_released"], events["reassigned"]
    assert released.actor == "admin"
    assert released.detail == {
        "staff_id": leaving,
        "trigger": "deactivated",
        "reason": "left the company",
    }
    assert taken.actor == f"system: staff {leaving} deactivated"
    assert taken.detail["note"] == "left the company"
    # A person who left keeps no access.
    refused = await api.get(f"{V1}/orders", headers=bearer(token))
    assert refused.status_code == 401
    async with session() as db:
        tokens = (await db.exec(select(ApiToken).where(ApiToken.staff_id == leaving))).all()
    assert [t.revoked_at is not None for t in tokens] == [True]


async def test_deactivating_the_only_consultant_makes_the_order_wait(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=1)
    person = world.consultants[0].id
    order = new_order(world)
    await start(dispatch, order)
    await wait_for_round(order.order_id, 1)

    result = await patch(api, person, active=False)

    assert [(r["result"], r["assignee_id"]) for r in result["released"]] == [("redispatched", None)]

    async def waiting() -> None:
        async with session() as db:
            row = await db.get(Order, order.order_id)
        assert row is not None and (row.status, row.assignee_id) == ("waiting", None)

    await eventually(waiting)
    taken = [e for e in await events_of(order.order_id) if e.kind == "reassigned"]
    assert taken[0].detail["note"] == f"staff {person} deactivated by admin"


async def test_moving_someone_reassigns_their_order_and_rerolls_in_the_new_store(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    here, there = await make_store_world(consultants=2), await make_store_world(consultants=1)
    mover, colleague = (p.id for p in here.consultants)
    order = await order_held_by(api, dispatch, here, mover, colleague=colleague)
    await add_patterns(mover, [(d, "08:00", "20:00") for d in range(7)])

    result = await patch(api, mover, store_id=there.store.id, reason="transferred")

    assert result["store_id"] == there.store.id
    assert [(r["order_id"], r["assignee_id"]) for r in result["released"]] == [
        (order.order_id, colleague)
    ]
    taken = [e for e in await events_of(order.order_id) if e.kind == "reassigned"]
    assert taken[0].actor == f"system: staff {mover} moved to store {there.store.id}"
    now = datetime.now(UTC)
    future = [s for s in await slots_of(mover) if s.ends_at > now]
    assert future and {s.store_id for s in future} == {there.store.id}


async def test_a_leave_starting_now_reassigns_at_once(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2)
    away, other = (p.id for p in world.consultants)
    order = await order_held_by(api, dispatch, world, away, colleague=other)
    now = datetime.now(UTC)

    response = await api.post(
        f"{STAFF}/{away}/leave",
        json={
            "starts_at": now.isoformat(),
            "ends_at": (now + timedelta(days=1)).isoformat(),
            "reason": "sick",
        },
        headers=admin(),
    )

    assert response.status_code == 201, response.text
    assert [(r["order_id"], r["assignee_id"]) for r in response.json()["released"]] == [
        (order.order_id, other)
    ]
    taken = [e for e in await events_of(order.order_id) if e.kind == "reassigned"]
    assert (taken[0].actor, taken[0].detail["note"]) == (f"system: staff {away} on leave", "sick")


async def test_a_planned_leave_reassigns_when_it_begins(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2)
    away, other = (p.id for p in world.consultants)
    order = await order_held_by(api, dispatch, world, away, colleague=other)
    begins = datetime.now(UTC) + timedelta(hours=2)

    response = await api.post(
        f"{STAFF}/{away}/leave",
        json={
            "starts_at": begins.isoformat(),
            "ends_at": (begins + timedelta(days=3)).isoformat(),
            "reason": "holiday",
        },
        headers=admin(),
    )

    assert response.status_code == 201, response.text
    leave = response.json()
    assert leave["released"] == []
    assert leave["workflow_id"] == leave_workflow_id(leave["id"])
    assert [a.outcome for a in await assignments_of(order.order_id)] == ["offered"]
    await dispatch.env.sleep(timedelta(hours=2, minutes=1))  # time skips past the start

    async def reassigned() -> None:
        rounds = await assignments_of(order.order_id)
        assert [(a.staff_id, a.outcome) for a in rounds] == [
            (away, "reassigned"),
            (other, "offered"),
        ]

    await eventually(reassigned)
    handle = dispatch.client.get_workflow_handle_for(LeaveStartWorkflow.run, leave["workflow_id"])
    released = await handle.result()
    assert [(r.order_id, r.result, r.assignee_id) for r in released] == [
        (order.order_id, "redispatched", other)
    ]


async def test_a_cancelled_planned_leave_releases_nothing(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=1)
    person = world.consultants[0].id
    order = new_order(world)
    await start(dispatch, order)
    await wait_for_round(order.order_id, 1)
    begins = datetime.now(UTC) + timedelta(hours=2)
    leave = (
        await api.post(
            f"{STAFF}/{person}/leave",
            json={
                "starts_at": begins.isoformat(),
                "ends_at": (begins + timedelta(days=1)).isoformat(),
            },
            headers=admin(),
        )
    ).json()

    deleted = await api.delete(f"{STAFF}/{person}/leave/{leave['id']}", headers=admin())

    assert deleted.status_code == 200, deleted.text

    async def cancelled() -> None:
        d = await dispatch.client.get_workflow_handle(leave["workflow_id"]).describe()
        assert d.status is not None and d.status.name == "CANCELED", d.status

    await eventually(cancelled)
    assert [a.outcome for a in await assignments_of(order.order_id)] == ["offered"]


# ------------------------------------------------------------------ pause and resume


async def order_held_by(
    api: httpx.AsyncClient, dispatch: Dispatch, world: StoreWorld, holder: int, *, colleague: int
) -> OrderRequest:
    """An order assigned to `holder`: their colleague is paused for round 1, then resumed."""
    await pause(api, colleague)
    order = new_order(world)
    await start(dispatch, order)
    assert (await wait_for_round(order.order_id, 1)).staff_id == holder
    await resume(api, colleague)
    return order


async def pause(api: httpx.AsyncClient, staff_id: int, **body: Any) -> dict[str, Any]:
    response = await api.post(f"{STAFF}/{staff_id}/pause", json=body, headers=admin())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def resume(api: httpx.AsyncClient, staff_id: int) -> dict[str, Any]:
    response = await api.post(f"{STAFF}/{staff_id}/resume", headers=admin())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_a_paused_person_gets_nothing_and_resuming_wakes_the_waiting_order(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=1)
    person = world.consultants[0].id

    assert (await pause(api, person))["rotation_paused"] is True
    order = new_order(world)
    await start(dispatch, order)

    await wait_until_waiting(order.order_id)
    assert await assignments_of(order.order_id) == []

    resumed = await resume(api, person)

    assert (resumed["rotation_paused"], resumed["woken"]) == (False, 1)
    first = await wait_for_round(order.order_id, 1)
    assert first.staff_id == person


async def test_pause_keeps_open_orders_unless_asked(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2)
    first_person, second_person = (p.id for p in world.consultants)
    order = await order_held_by(api, dispatch, world, first_person, colleague=second_person)

    kept = await pause(api, first_person)
    assert kept["released"] == []
    assert [a.outcome for a in await assignments_of(order.order_id)] == ["offered"]
    released = await pause(api, first_person, reassign_open=True, reason="out sick")
    assert [(r["order_id"], r["assignee_id"]) for r in released["released"]] == [
        (order.order_id, second_person)
    ]
