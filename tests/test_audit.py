"""Who changed what: each kind of change to setup data leaves one entry with the actor, the
time and the changed fields' old and new values, readable through `GET /api/v1/audit` in
the caller's scope only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from models import Role
from tests.api_helpers import V1, add_slot, admin, bearer, make_token, manager_of
from tests.conftest import Dispatch
from tests.factories import StoreWorld, make_store_world
from tests.test_api_rules import FULL_RULE

AUDIT = f"{V1}/audit"


async def entries(api: httpx.AsyncClient, headers: dict[str, str], **query: Any) -> list[Any]:
    answer = await api.get(AUDIT, params=query, headers=headers)
    assert answer.status_code == 200, answer.text
    items: list[Any] = answer.json()["items"]
    assert answer.json()["total"] == len(items)
    return items


async def admin_of(world: StoreWorld) -> dict[str, str]:
    token = await make_token(
        Role.SUBSITE_ADMIN, staff_id=world.manager.id, subsite_id=world.subsite.id, name="ada"
    )
    return bearer(token)


async def test_rules_head_office_and_sub_site_changed_and_dropped(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=0)
    site_admin = await admin_of(world)
    first = await offline_api.put(f"{V1}/rules/new", json=FULL_RULE, headers=admin())
    assert first.status_code == 200, first.text
    changed = FULL_RULE | {"accept_timeout_seconds": 300}
    assert (await offline_api.put(f"{V1}/rules/new", json=changed, headers=admin())).is_success
    [latest, *_] = await entries(offline_api, admin(), kind="rule", object_id="head_office/new")
    assert (latest["actor"], latest["action"]) == ("admin", "changed")
    assert (latest["old"], latest["new"]) == (
        {"accept_timeout_seconds": 600},
        {"accept_timeout_seconds": 300},
    )

    own = f"{V1}/subsites/{world.subsite.id}/rules/new"
    assert (await offline_api.put(own, json=FULL_RULE, headers=site_admin)).is_success
    assert (await offline_api.delete(own, headers=site_admin)).status_code == 204
    dropped, made = await entries(offline_api, site_admin, kind="rule")
    assert (made["action"], made["actor"], made["subsite_id"]) == (
        "created",
        "ada",
        world.subsite.id,
    )
    assert made["new"]["max_rounds"] == FULL_RULE["max_rounds"] and made["old"] == {}
    assert dropped["action"] == "deleted" and dropped["new"] == {}
    assert dropped["old"]["accept_timeout_seconds"] == 600


async def test_staff_added_and_changed_and_roster_replaced(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=0)
    manager = await manager_of(world)
    body = {"store_id": world.store.id, "name": "Li", "phone": "+8613800000001"}
    made = await offline_api.post(f"{V1}/staff", json=body, headers=manager)
    assert made.status_code == 201, made.text
    staff_id = made.json()["id"]
    patched = await offline_api.patch(
        f"{V1}/staff/{staff_id}", json={"language": "en", "name": "Li Na"}, headers=manager
    )
    assert patched.status_code == 200, patched.text
    shifts = {"shifts": [{"weekday": 0, "start": "09:00", "end": "17:00"}]}
    put = await offline_api.put(f"{V1}/staff/{staff_id}/patterns", json=shifts, headers=manager)
    assert put.status_code == 200, put.text

    roster, changed, created = await entries(offline_api, manager, object_id=str(staff_id))
    assert (created["kind"], created["action"], created["new"]["name"]) == (
        "staff",
        "created",
        "Li",
    )
    assert (changed["old"], changed["new"]) == (
        {"language": "zh", "name": "Li"},
        {"language": "en", "name": "Li Na"},
    )
    assert roster["kind"] == "roster" and roster["old"] == {"shifts": []}
    assert roster["new"]["shifts"] == [{"weekday": 0, "start": "09:00:00", "end": "17:00:00"}]
    assert {e["store_id"] for e in (roster, changed, created)} == {world.store.id}


async def test_stores_sub_sites_and_admins(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    body = {
        "subsite_id": world.subsite.id,
        "code": f"{world.subsite.code}-west",
        "name": "West",
        "region_code": "cn-bj",
        "city": "Beijing",
    }
    opened = await offline_api.post(f"{V1}/stores", json=body, headers=admin())
    assert opened.status_code == 201, opened.text
    store_id = opened.json()["id"]
    moved = await offline_api.patch(
        f"{V1}/stores/{store_id}", json={"is_default": True}, headers=admin()
    )
    assert moved.status_code == 200, moved.text
    renamed = await offline_api.patch(
        f"{V1}/subsites/{world.subsite.id}", json={"name": "North"}, headers=admin()
    )
    assert renamed.status_code == 200, renamed.text
    person = world.consultants[0].id
    added = await offline_api.put(
        f"{V1}/subsites/{world.subsite.id}/admins/{person}", headers=admin()
    )
    assert added.status_code == 200, added.text
    removed = await offline_api.delete(
        f"{V1}/subsites/{world.subsite.id}/admins/{person}", headers=admin()
    )
    assert removed.status_code == 204

    stores = await entries(offline_api, admin(), kind="store", object_id=str(store_id))
    assert [(e["action"], e["new"].get("is_default")) for e in stores] == [
        ("changed", True),
        ("created", False),
    ]
    [site] = await entries(offline_api, admin(), kind="subsite", object_id=str(world.subsite.id))
    assert (site["old"]["name"], site["new"]["name"]) == (world.subsite.name, "North")
    gone, made = await entries(offline_api, admin(), kind="admin")
    assert made["object_id"] == gone["object_id"] == f"{world.subsite.id}/{person}"
    assert (made["action"], gone["action"]) == ("created", "deleted")


async def test_tokens_issued_and_revoked_without_their_secret(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=0)
    issued = await offline_api.post(
        f"{V1}/tokens", json={"role": "service", "name": "web backend"}, headers=admin()
    )
    assert issued.status_code == 201, issued.text
    token_id = issued.json()["id"]
    assert (await offline_api.delete(f"{V1}/tokens/{token_id}", headers=admin())).is_success
    revoked, made = await entries(offline_api, admin(), kind="token", object_id=str(token_id))
    assert made["action"] == "created" and made["new"]["name"] == "web backend"
    assert revoked["action"] == "revoked" and revoked["old"] == {"revoked_at": None}
    assert revoked["new"]["revoked_at"] is not None
    assert "token_hash" not in made["new"] and issued.json()["token"] not in str(made)
    # A store manager reads their store's entries only, and may not ask for others'.
    manager = await manager_of(world)
    assert await entries(offline_api, manager, kind="token") == []
    other = await make_store_world(consultants=0)
    outside = await offline_api.get(AUDIT, params={"store_id": other.store.id}, headers=manager)
    assert outside.status_code == 403
    staff_token = bearer(await make_token(Role.STAFF, staff_id=world.manager.id))
    assert (await offline_api.get(AUDIT, headers=staff_token)).status_code == 403


async def test_leave_added_and_deleted(api: httpx.AsyncClient, dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    manager = await manager_of(world)
    x = world.consultants[0].id
    soon = datetime.now(UTC) + timedelta(days=2)
    span = {"starts_at": soon.isoformat(), "ends_at": (soon + timedelta(days=1)).isoformat()}
    leave = await api.post(f"{V1}/staff/{x}/leave", json=span | {"reason": "sick"}, headers=manager)
    assert leave.status_code == 201, leave.text
    leave_id = leave.json()["id"]
    gone = await api.delete(f"{V1}/staff/{x}/leave/{leave_id}", headers=manager)
    assert gone.status_code == 200, gone.text
    deleted, added = await entries(api, manager, kind="leave")
    assert (added["action"], added["object_id"], added["new"]["reason"]) == (
        "created",
        str(leave_id),
        "sick",
    )
    assert (deleted["action"], deleted["old"]["staff_id"], deleted["new"]) == ("deleted", x, {})
    assert {e["store_id"] for e in (added, deleted)} == {world.store.id}
    # Another store's manager sees none of it.
    other = await manager_of(await make_store_world(consultants=0))
    assert await entries(api, other, kind="leave") == []


async def test_swaps_and_points_adjustments(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    manager = await manager_of(world)
    x, y = (p.id for p in world.consultants)
    soon = datetime.now(UTC) + timedelta(days=2)
    mine = await add_slot(x, world.store.id, soon, soon + timedelta(hours=8))
    later = soon + timedelta(days=1)
    theirs = await add_slot(y, world.store.id, later, later + timedelta(hours=8))
    body = {"slot_id": mine, "other_slot_id": theirs, "reason": "dentist"}
    swapped = await offline_api.post(f"{V1}/roster/swaps", json=body, headers=manager)
    assert swapped.status_code == 201, swapped.text
    [swap] = await entries(offline_api, manager, kind="swap")
    assert (swap["action"], swap["object_id"]) == ("swapped", f"{mine}-{theirs}")
    assert [(s["id"], s["staff_id"]) for s in swap["old"]["slots"]] == [(mine, x), (theirs, y)]
    assert [s["staff_id"] for s in swap["new"]["slots"]] == [y, x]
    assert swap["new"]["reason"] == "dentist"

    granted = await offline_api.post(
        f"{V1}/staff/{y}/points", json={"delta": 5, "reason": "covered"}, headers=manager
    )
    assert granted.status_code == 201, granted.text
    [points] = await entries(offline_api, manager, kind="points", object_id=str(y))
    assert (points["action"], points["new"]) == (
        "adjusted",
        {"delta": 5, "reason": "covered"},  # no order: nothing to keep
    )
    other = await manager_of(await make_store_world(consultants=0))
    assert await entries(offline_api, other, kind="points") == []


async def test_a_refused_change_leaves_no_entry(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=0)
    bad = {"store_id": world.store.id, "name": "Nobody"}  # no contact: refused
    assert (await offline_api.post(f"{V1}/staff", json=bad, headers=admin())).status_code == 422
    unchanged = await offline_api.patch(
        f"{V1}/subsites/{world.subsite.id}", json={"name": world.subsite.name}, headers=admin()
    )
    assert unchanged.status_code == 200
    assert await entries(offline_api, admin()) == []
