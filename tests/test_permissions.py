"""Who may do what: every role × every action × their own and another scope.

One world for the whole module (two sub-sites, one store each, a time-skipping Temporal
server and a worker): "own" is store A of sub-site SA — the staff token's person works there,
the manager manages it, the admin administers SA; "other" is store C of sub-site SC.
Expected outcomes: `ok` (2xx), `hidden` (a list answers 200 without the other scope's
rows), `403`, and `401` for a missing or revoked token, whatever the action.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlmodel import SQLModel, select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from api.deps import hash_token
from devstack.binaries import wheel_binary
from models import ApiToken, OrderType, Role, Staff, Store, SubSiteAdmin
from models.base import utcnow
from models.db import database_url, session
from settings import settings
from tests.api_helpers import V1, add_slot, api_client, make_token
from tests.conftest import eventually
from tests.factories import StoreWorld, make_store_world
from tests.test_order_workflow import set_rule, wait_for_round
from worker import build_worker
from workflows import search_attributes

ROLES = ["staff", "store_manager", "subsite_admin", "head_office", "service"]
NOBODY = ["anonymous", "revoked"]
SCOPES = ["own", "other"]

# action -> role -> (outcome in the own scope, outcome in the other scope)
MANAGERS_ONLY = {
    "staff": ("403", "403"),
    "store_manager": ("ok", "403"),
    "subsite_admin": ("ok", "403"),
    "head_office": ("ok", "ok"),
    "service": ("403", "403"),
}
READERS = MANAGERS_ONLY | {"staff": ("ok", "403")}
ADMINS_ONLY = MANAGERS_ONLY | {"store_manager": ("403", "403")}
HEAD_OFFICE_ONLY = {role: ("403", "403") for role in ROLES} | {"head_office": ("ok", "ok")}
MATRIX: dict[str, dict[str, tuple[str, str]]] = {
    "orders.list": {
        "staff": ("ok", "hidden"),
        "store_manager": ("ok", "hidden"),
        "subsite_admin": ("ok", "hidden"),
        "head_office": ("ok", "ok"),
        "service": ("ok", "ok"),
    },
    "orders.read": READERS | {"service": ("ok", "ok")},
    "orders.submit": HEAD_OFFICE_ONLY | {"service": ("ok", "ok")},
    # The assignee, or a manager or admin of the order's scope on the assignee's behalf.
    "orders.accept": READERS,
    "orders.reassign": MANAGERS_ONLY,
    "orders.redispatch": MANAGERS_ONLY,
    "rules.put": HEAD_OFFICE_ONLY,
    "staff.list": {
        "staff": ("ok", "hidden"),
        "store_manager": ("ok", "hidden"),
        "subsite_admin": ("ok", "hidden"),
        "head_office": ("ok", "ok"),
        "service": ("403", "403"),
    },
    "staff.read": READERS,
    "staff.create": MANAGERS_ONLY,
    "staff.update": MANAGERS_ONLY,
    "staff.pause": MANAGERS_ONLY,
    "points.read": READERS,
    "points.adjust": MANAGERS_ONLY,
    "roster.patterns": MANAGERS_ONLY,
    "roster.leave": MANAGERS_ONLY,
    "roster.swap": MANAGERS_ONLY,
    "roster.on_duty": READERS,
    "roster.roll": HEAD_OFFICE_ONLY,
    "tokens.issue": ADMINS_ONLY,
    "tokens.list": ADMINS_ONLY | {"subsite_admin": ("ok", "hidden")},
    "tokens.revoke": ADMINS_ONLY,
}


@dataclass
class World:
    client: Client
    api: httpx.AsyncClient
    stores: dict[str, StoreWorld]  # "own" (A) and "other" (C)
    headers: dict[str, dict[str, str]]  # role -> Authorization header
    orders: dict[str, str]  # scope -> an order assigned to the store's first consultant
    far: itertools.count[int]  # distinct far-future days for slots and leave

    def store(self, scope: str) -> StoreWorld:
        return self.stores[scope]

    def reader_target(self, scope: str) -> int:
        """The first consultant: for a staff token, "own" is themselves."""
        person = self.store(scope).consultants[0].id
        assert person is not None
        return person

    def writer_target(self, scope: str) -> int:
        person = self.store(scope).consultants[1].id
        assert person is not None
        return person

    def future_day(self) -> datetime:
        return datetime(2031, 1, 1, tzinfo=UTC) + timedelta(days=next(self.far))


async def _truncate() -> None:
    names = ", ".join(t.name for t in SQLModel.metadata.sorted_tables)
    async with await psycopg.AsyncConnection.connect(database_url(), autocommit=True) as conn:
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


async def _build_world(client: Client, api: httpx.AsyncClient) -> World:
    for order_type in OrderType:
        await set_rule(order_type.value, channels={}, accept_timeout_seconds=7 * 86400)
    stores = {
        "own": await make_store_world(consultants=2),
        "other": await make_store_world(consultants=2),
    }
    async with session() as db:
        for w in stores.values():
            second = await db.get(Staff, w.consultants[1].id)
            assert second is not None
            second.rotation_paused = True  # every order goes to the first consultant
            db.add(second)
        own = stores["own"]
        db.add(SubSiteAdmin(subsite_id=own.subsite.id, staff_id=own.manager.id))
        await db.commit()
    own = stores["own"]
    me = own.consultants[0].id
    tokens = {
        "staff": await make_token(Role.STAFF, staff_id=me, store_id=own.store.id),
        "store_manager": await make_token(
            Role.STORE_MANAGER, staff_id=own.manager.id, store_id=own.store.id
        ),
        "subsite_admin": await make_token(
            Role.SUBSITE_ADMIN, staff_id=own.manager.id, subsite_id=own.subsite.id
        ),
        "head_office": await make_token(Role.HEAD_OFFICE, name="HQ operator"),
        "service": await make_token(Role.SERVICE, name="web backend"),
        "revoked": await make_token(Role.STAFF, staff_id=me, store_id=own.store.id),
    }
    async with session() as db:
        row = (
            await db.exec(
                select(ApiToken).where(ApiToken.token_hash == hash_token(tokens["revoked"]))
            )
        ).one()
        row.revoked_at = utcnow()
        db.add(row)
        await db.commit()
    headers = {role: {"Authorization": f"Bearer {t}"} for role, t in tokens.items()}
    headers["anonymous"] = {}
    world = World(client, api, stores, headers, {}, itertools.count())
    for scope in SCOPES:
        world.orders[scope] = await fresh_order(world, scope)
    return world


@pytest.fixture(scope="module")
async def world(db_url: str) -> AsyncIterator[World]:
    await _truncate()
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=wheel_binary("temporal-test-server")
    )
    await search_attributes.register(env.client)
    queue = f"perm-{uuid.uuid4().hex[:8]}"
    patch = pytest.MonkeyPatch()
    patch.setattr(settings, "TEMPORAL_TASK_QUEUE", queue)
    try:
        async with build_worker(env.client, task_queue=queue), api_client(env.client) as api:
            yield await _build_world(env.client, api)
    finally:
        patch.undo()
        await env.shutdown()


# ------------------------------------------------------------------ the actions

Act = Callable[[World, str, dict[str, str]], Awaitable[str]]


def outcome(response: httpx.Response, *, visible: bool | None = None) -> str:
    if response.is_success:
        if visible is None:
            return "ok"
        return "ok" if visible else "hidden"
    if response.status_code in (401, 403):
        return str(response.status_code)
    return f"{response.status_code}: {response.text}"  # unexpected: shows in the failure


async def fresh_order(w: World, scope: str) -> str:
    body = {
        "order_id": f"P{uuid.uuid4().hex[:10]}",
        "customer": {"name": "Han Meimei", "phone": "+8613911112222"},
        "store_id": w.store(scope).store.id,
    }
    response = await w.api.post(f"{V1}/orders", json=body, headers=w.headers["head_office"])
    assert response.status_code == 202, response.text
    first = await wait_for_round(body["order_id"], 1)
    assert first.staff_id == w.reader_target(scope)
    return str(body["order_id"])


async def orders_list(w: World, scope: str, h: dict[str, str]) -> str:
    r = await w.api.get(f"{V1}/orders", params={"limit": 500}, headers=h)
    ids = {o["id"] for o in r.json()["items"]} if r.is_success else set()
    return outcome(r, visible=w.orders[scope] in ids)


async def orders_read(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(await w.api.get(f"{V1}/orders/{w.orders[scope]}", headers=h))


async def orders_submit(w: World, scope: str, h: dict[str, str]) -> str:
    body = {
        "order_id": f"S{uuid.uuid4().hex[:10]}",
        "store_id": w.store(scope).store.id,
        "customer": {"phone": "+8613911112222"},
    }
    return outcome(await w.api.post(f"{V1}/orders", json=body, headers=h))


async def orders_accept(w: World, scope: str, h: dict[str, str]) -> str:
    order_id = await fresh_order(w, scope)
    body = {} if h == w.headers["staff"] else {"staff_id": w.reader_target(scope)}
    return outcome(await w.api.post(f"{V1}/orders/{order_id}/accept", json=body, headers=h))


async def orders_reassign(w: World, scope: str, h: dict[str, str]) -> str:
    order_id = await fresh_order(w, scope)
    body = {"staff_id": w.writer_target(scope), "reason": "matrix"}
    return outcome(await w.api.post(f"{V1}/orders/{order_id}/reassign", json=body, headers=h))


async def orders_redispatch(w: World, scope: str, h: dict[str, str]) -> str:
    order_id = await fresh_order(w, scope)
    return outcome(
        await w.api.post(f"{V1}/orders/{order_id}/redispatch", json={"reason": "m"}, headers=h)
    )


async def rules_put(w: World, scope: str, h: dict[str, str]) -> str:
    current = (await w.api.get(f"{V1}/rules/new", headers=w.headers["head_office"])).json()
    body = {k: v for k, v in current.items() if k not in ("order_type", "updated_at")}
    return outcome(await w.api.put(f"{V1}/rules/new", json=body, headers=h))


async def staff_list(w: World, scope: str, h: dict[str, str]) -> str:
    r = await w.api.get(f"{V1}/staff", headers=h)
    ids = {s["id"] for s in r.json()["items"]} if r.is_success else set()
    return outcome(r, visible=w.reader_target(scope) in ids)


async def staff_read(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(await w.api.get(f"{V1}/staff/{w.reader_target(scope)}", headers=h))


async def staff_create(w: World, scope: str, h: dict[str, str]) -> str:
    body = {"store_id": w.store(scope).store.id, "name": "New Hire", "phone": "+8613912340002"}
    return outcome(await w.api.post(f"{V1}/staff", json=body, headers=h))


async def staff_update(w: World, scope: str, h: dict[str, str]) -> str:
    body = {"name": f"Renamed {uuid.uuid4().hex[:4]}"}
    return outcome(await w.api.patch(f"{V1}/staff/{w.writer_target(scope)}", json=body, headers=h))


async def staff_pause(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(
        await w.api.post(f"{V1}/staff/{w.writer_target(scope)}/pause", json={}, headers=h)
    )


async def points_read(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(await w.api.get(f"{V1}/staff/{w.reader_target(scope)}/points", headers=h))


async def points_adjust(w: World, scope: str, h: dict[str, str]) -> str:
    body = {"delta": 1, "reason": "matrix"}
    return outcome(
        await w.api.post(f"{V1}/staff/{w.writer_target(scope)}/points", json=body, headers=h)
    )


async def roster_patterns(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(
        await w.api.put(
            f"{V1}/staff/{w.writer_target(scope)}/patterns", json={"shifts": []}, headers=h
        )
    )


async def roster_leave(w: World, scope: str, h: dict[str, str]) -> str:
    day = w.future_day()
    body = {"starts_at": day.isoformat(), "ends_at": (day + timedelta(hours=8)).isoformat()}
    return outcome(
        await w.api.post(f"{V1}/staff/{w.writer_target(scope)}/leave", json=body, headers=h)
    )


async def roster_swap(w: World, scope: str, h: dict[str, str]) -> str:
    store = w.store(scope)
    day = w.future_day()
    a = await add_slot(w.writer_target(scope), store.store.id, day, day + timedelta(hours=8))
    b = await add_slot(
        store.manager.id, store.store.id, day + timedelta(hours=9), day + timedelta(hours=17)
    )
    body = {"slot_id": a, "other_slot_id": b}
    return outcome(await w.api.post(f"{V1}/roster/swaps", json=body, headers=h))


async def roster_on_duty(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(await w.api.get(f"{V1}/stores/{w.store(scope).store.id}/on-duty", headers=h))


async def roster_roll(w: World, scope: str, h: dict[str, str]) -> str:
    return outcome(await w.api.post(f"{V1}/roster/roll", json={"days": 1}, headers=h))


async def tokens_issue(w: World, scope: str, h: dict[str, str]) -> str:
    body = {"role": "staff", "staff_id": w.writer_target(scope)}
    return outcome(await w.api.post(f"{V1}/tokens", json=body, headers=h))


async def _token_of_target(w: World, scope: str) -> int:
    store = w.store(scope)
    token = await make_token(
        Role.STAFF,
        staff_id=w.writer_target(scope),
        store_id=store.store.id,
        subsite_id=store.subsite.id,
    )
    async with session() as db:
        row = (
            await db.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        ).one()
        assert row.id is not None
        return row.id


async def tokens_list(w: World, scope: str, h: dict[str, str]) -> str:
    token_id = await _token_of_target(w, scope)
    r = await w.api.get(f"{V1}/tokens", headers=h)
    ids = {t["id"] for t in r.json()["items"]} if r.is_success else set()
    return outcome(r, visible=token_id in ids)


async def tokens_revoke(w: World, scope: str, h: dict[str, str]) -> str:
    token_id = await _token_of_target(w, scope)
    return outcome(await w.api.delete(f"{V1}/tokens/{token_id}", headers=h))


ACTIONS: dict[str, Act] = {
    "orders.list": orders_list,
    "orders.read": orders_read,
    "orders.submit": orders_submit,
    "orders.accept": orders_accept,
    "orders.reassign": orders_reassign,
    "orders.redispatch": orders_redispatch,
    "rules.put": rules_put,
    "staff.list": staff_list,
    "staff.read": staff_read,
    "staff.create": staff_create,
    "staff.update": staff_update,
    "staff.pause": staff_pause,
    "points.read": points_read,
    "points.adjust": points_adjust,
    "roster.patterns": roster_patterns,
    "roster.leave": roster_leave,
    "roster.swap": roster_swap,
    "roster.on_duty": roster_on_duty,
    "roster.roll": roster_roll,
    "tokens.issue": tokens_issue,
    "tokens.list": tokens_list,
    "tokens.revoke": tokens_revoke,
}
assert set(ACTIONS) == set(MATRIX)

CASES = [
    pytest.param(action, role, scope, id=f"{action}-{role}-{scope}")
    for action in MATRIX
    for role in [*ROLES, *NOBODY]
    for scope in SCOPES
]


@pytest.mark.parametrize(("action", "role", "scope"), CASES)
async def test_permission_matrix(world: World, action: str, role: str, scope: str) -> None:
    if role in NOBODY:
        expected = "401"
    else:
        own, other = MATRIX[action][role]
        expected = own if scope == "own" else other

    got = await ACTIONS[action](world, scope, world.headers[role])

    assert got == expected, f"{role} {action} in the {scope} scope"


# ------------------------------------------------------------------ finer points


async def test_a_manager_cannot_act_in_a_sibling_store_of_their_sub_site(world: World) -> None:
    """Same sub-site, other store: still outside a store manager's scope (the admin's is in)."""
    own = world.store("own")
    async with session() as db:
        sibling = Store(
            subsite_id=own.subsite.id,
            code=f"sib-{uuid.uuid4().hex[:6]}",
            name="Sibling",
            region_code="CN-BJ",
            city="Beijing",
        )
        db.add(sibling)
        await db.commit()
        await db.refresh(sibling)
    body = {"store_id": sibling.id, "name": "Sibling Hire", "phone": "+8613912340003"}

    manager = await world.api.post(f"{V1}/staff", json=body, headers=world.headers["store_manager"])
    admin = await world.api.post(f"{V1}/staff", json=body, headers=world.headers["subsite_admin"])

    assert manager.status_code == 403, manager.text
    assert admin.status_code == 201, admin.text


async def test_a_staff_token_cannot_accept_a_colleagues_order(world: World) -> None:
    order_id = await fresh_order(world, "own")  # with the first consultant
    colleague = world.writer_target("own")
    token = await make_token(Role.STAFF, staff_id=colleague, store_id=world.store("own").store.id)
    h = {"Authorization": f"Bearer {token}"}

    as_self = await world.api.post(f"{V1}/orders/{order_id}/accept", json={}, headers=h)
    as_other = await world.api.post(
        f"{V1}/orders/{order_id}/accept", json={"staff_id": world.reader_target("own")}, headers=h
    )
    read = await world.api.get(f"{V1}/orders/{order_id}", headers=h)

    assert (as_self.status_code, as_other.status_code, read.status_code) == (403, 403, 403)


async def test_a_sub_site_admin_issues_only_staff_manager_and_admin_tokens(world: World) -> None:
    h = world.headers["subsite_admin"]
    own = world.store("own")

    async def issue(role: str, staff_id: int | None) -> int:
        body: dict[str, Any] = {"role": role, "staff_id": staff_id}
        return (await world.api.post(f"{V1}/tokens", json=body, headers=h)).status_code

    assert await issue("staff", world.writer_target("own")) == 201
    assert await issue("store_manager", own.manager.id) == 201
    assert await issue("subsite_admin", own.manager.id) == 201
    assert await issue("head_office", None) == 403
    assert await issue("service", None) == 403
    assert await issue("store_manager", world.writer_target("own")) == 422  # not a manager
    assert await issue("subsite_admin", world.writer_target("own")) == 409  # not an admin
    assert await issue("staff", None) == 422


async def test_an_issued_token_works_once_shown_and_stops_when_revoked(world: World) -> None:
    hq = world.headers["head_office"]
    person = world.reader_target("own")
    issued = await world.api.post(
        f"{V1}/tokens", json={"role": "staff", "staff_id": person}, headers=hq
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["token"].startswith("o2o_") and "token_hash" not in token
    assert (token["store_id"], token["subsite_id"]) == (
        world.store("own").store.id,
        world.store("own").subsite.id,
    )
    h = {"Authorization": f"Bearer {token['token']}"}
    assert (await world.api.get(f"{V1}/staff/{person}", headers=h)).status_code == 200
    listed = (await world.api.get(f"{V1}/tokens", headers=hq)).json()["items"]
    assert all("token" not in t and "token_hash" not in t for t in listed)

    revoked = await world.api.delete(f"{V1}/tokens/{token['id']}", headers=hq)

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert (await world.api.get(f"{V1}/staff/{person}", headers=h)).status_code == 401

    async def gone_from_list() -> None:
        response = await world.api.get(f"{V1}/tokens", headers=hq)
        ids = {t["id"] for t in response.json()["items"]}
        assert token["id"] not in ids

    await eventually(gone_from_list)
