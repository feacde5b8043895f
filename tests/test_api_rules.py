"""The allocation rules API: one rule per order type, read and replaced whole over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from api.deps import hash_token
from models import DEFAULT_CHANNELS, ApiToken, Role
from models.db import session
from tests.api_helpers import admin, api_client, bearer, make_token, manager_of
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world

RULES = "/api/v1/rules"
TYPES = ["new", "unassigned", "assigned_unprocessed"]

DEFAULT_RULE = {
    "selection_method": "weighted_random",
    "accept_timeout_seconds": 900,
    "process_timeout_seconds": 86400,
    "reassign_period_seconds": 0,
    "reminder_before_seconds": 300,
    "max_rounds": 3,
    "skip_previous_assignees": True,
    "capacity_per_staff": None,
    "after_escalation": "keep_reassigning",
    "wish_fallback": "store",
    "wish_wait_seconds": 3600,
    "points_processed_in_time": 2,
    "points_timed_out": -1,
    "channels": DEFAULT_CHANNELS,
}

FULL_RULE: dict[str, Any] = {
    "selection_method": "weighted_random",
    "accept_timeout_seconds": 600,
    "process_timeout_seconds": 7200,
    "reassign_period_seconds": 60,
    "reminder_before_seconds": 120,
    "max_rounds": 5,
    "skip_previous_assignees": False,
    "capacity_per_staff": 4,
    "after_escalation": "wait_for_manager",
    "wish_fallback": "wait_for_shift",
    "wish_wait_seconds": 1800,
    "points_processed_in_time": 3,
    "points_timed_out": -2,
    "channels": {
        "assigned": ["email"],
        "reminder": [],
        "timed_out": ["sms", "email"],
        "escalated": ["email"],
        "waiting": ["sms"],
    },
}


CUSTOMER = {"name": "Li Lei", "phone": "+8613800000001"}  # intake needs a contact


@pytest.fixture
async def rules_api(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the real database; the rules endpoints never need Temporal."""
    async with api_client() as client:
        yield client


def rule_fields(rule: dict[str, Any]) -> dict[str, Any]:
    return {name: rule[name] for name in DEFAULT_RULE}


@pytest.mark.parametrize("order_type", TYPES)
async def test_default_rule_for_each_type(rules_api: httpx.AsyncClient, order_type: str) -> None:
    response = await rules_api.get(f"{RULES}/{order_type}", headers=admin())

    assert response.status_code == 200, response.text
    rule = response.json()
    assert rule["order_type"] == order_type
    assert rule_fields(rule) == DEFAULT_RULE
    assert rule["updated_at"]


async def test_put_a_full_rule_then_get_shows_it(rules_api: httpx.AsyncClient) -> None:
    before = (await rules_api.get(f"{RULES}/unassigned", headers=admin())).json()

    response = await rules_api.put(f"{RULES}/unassigned", json=FULL_RULE, headers=admin())

    assert response.status_code == 200, response.text
    assert rule_fields(response.json()) == FULL_RULE
    shown = (await rules_api.get(f"{RULES}/unassigned", headers=admin())).json()
    assert rule_fields(shown) == FULL_RULE
    assert shown["order_type"] == "unassigned"
    assert datetime.fromisoformat(shown["updated_at"]) > datetime.fromisoformat(
        before["updated_at"]
    )
    # Rules are per type: the others keep their defaults.
    other = (await rules_api.get(f"{RULES}/new", headers=admin())).json()
    assert rule_fields(other) == DEFAULT_RULE


async def test_put_replaces_a_changed_rule_again(rules_api: httpx.AsyncClient) -> None:
    await rules_api.put(f"{RULES}/new", json=FULL_RULE, headers=admin())
    second = FULL_RULE | {
        "accept_timeout_seconds": 30,
        "reminder_before_seconds": 10,
        "capacity_per_staff": None,
        "max_rounds": 1,
    }

    response = await rules_api.put(f"{RULES}/new", json=second, headers=admin())

    assert response.status_code == 200, response.text
    shown = (await rules_api.get(f"{RULES}/new", headers=admin())).json()
    assert rule_fields(shown) == second


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accept_timeout_seconds": 0}, "body.accept_timeout_seconds"),
        ({"accept_timeout_seconds": 7 * 86400 + 1}, "body.accept_timeout_seconds"),
        ({"max_rounds": 0}, "body.max_rounds"),
        ({"reassign_period_seconds": -1}, "body.reassign_period_seconds"),
        ({"capacity_per_staff": 0}, "body.capacity_per_staff"),
        ({"channels": {"assigned": ["fax"]}}, "body.channels.assigned.0"),
        ({"channels": {"shouted": ["sms"]}}, "body.channels.shouted.[key]"),
        ({"channels": {"assigned": ["sms", "sms"]}}, "body.channels"),
        ({"channels": {"assigned": []}}, "body.channels"),
        ({"channels": {"escalated": [], "waiting": []}}, "body.channels"),
        ({"colour": "red"}, "body.colour"),
        ({"selection_method": "round_robin"}, "body.selection_method"),
        ({"after_escalation": "give_up"}, "body.after_escalation"),
        ({"wish_fallback": "anyone"}, "body.wish_fallback"),
    ],
    ids=lambda v: "-".join(map(str, v)) if isinstance(v, dict) else None,
)
async def test_bad_rule_is_422_and_changes_nothing(
    rules_api: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await rules_api.put(f"{RULES}/new", json=FULL_RULE | change, headers=admin())

    assert response.status_code == 422, response.text
    locations = [".".join(map(str, e["loc"])) for e in response.json()["detail"]]
    assert field in locations, locations
    shown = (await rules_api.get(f"{RULES}/new", headers=admin())).json()
    assert rule_fields(shown) == DEFAULT_RULE


@pytest.mark.parametrize("method", ["GET", "PUT"])
async def test_unknown_order_type_is_422(rules_api: httpx.AsyncClient, method: str) -> None:
    body = FULL_RULE if method == "PUT" else None
    response = await rules_api.request(method, f"{RULES}/urgent", json=body, headers=admin())

    assert response.status_code == 422, response.text
    assert ["path", "order_type"] in [e["loc"] for e in response.json()["detail"]]


@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}], ids=["none", "bad"])
async def test_rules_need_a_valid_token(
    rules_api: httpx.AsyncClient, method: str, headers: dict[str, str]
) -> None:
    body = FULL_RULE if method == "PUT" else None
    response = await rules_api.request(method, f"{RULES}/new", json=body, headers=headers)

    assert response.status_code == 401, response.text
    shown = (await rules_api.get(f"{RULES}/new", headers=admin())).json()
    assert rule_fields(shown) == DEFAULT_RULE


async def test_staff_token_cannot_change_rules(rules_api: httpx.AsyncClient) -> None:
    """Rules are a sub-site admin's / head office's setting (SPEC 9, 10), not a consultant's."""
    world = await make_store_world(consultants=1)
    token = f"tok-{uuid.uuid4().hex}"
    async with session() as db:
        db.add(
            ApiToken(
                name="consultant",
                token_hash=hash_token(token),
                role=Role.STAFF,
                staff_id=world.consultants[0].id,
                store_id=world.store.id,
            )
        )
        await db.commit()
    staff = {"Authorization": f"Bearer {token}"}

    assert (await rules_api.get(f"{RULES}/new", headers=staff)).status_code == 200
    response = await rules_api.put(f"{RULES}/new", json=FULL_RULE, headers=staff)

    assert response.status_code == 403, response.text
    shown = (await rules_api.get(f"{RULES}/new", headers=admin())).json()
    assert rule_fields(shown) == DEFAULT_RULE


# ------------------------------------------------------------------ a running order


async def test_rule_change_takes_effect_at_the_next_round(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    quick = DEFAULT_RULE | {
        "accept_timeout_seconds": 600,
        "reminder_before_seconds": 0,
        "max_rounds": 10,
    }
    assert (await api.put(f"{RULES}/new", json=quick, headers=admin())).status_code == 200
    world = await make_store_world(consultants=2)
    order_id = f"R{uuid.uuid4().hex[:10]}"
    posted = await api.post(
        "/api/v1/orders",
        json={"order_id": order_id, "store_id": world.store.id, "customer": CUSTOMER},
        headers=admin(),
    )
    assert posted.status_code == 202, posted.text

    async def rounds(count: int) -> list[dict[str, Any]]:
        response = await api.get(f"/api/v1/orders/{order_id}", headers=admin())
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["assignments"]
        assert len(found) >= count, f"{len(found)} rounds so far"
        return found

    def window(assignment: dict[str, Any]) -> timedelta:
        return datetime.fromisoformat(assignment["accept_deadline"]) - datetime.fromisoformat(
            assignment["assigned_at"]
        )

    first = (await eventually(lambda: rounds(1)))[0]
    assert window(first) == timedelta(seconds=600)

    changed = await api.put(
        f"{RULES}/new", json=quick | {"accept_timeout_seconds": 120}, headers=admin()
    )
    assert changed.status_code == 200, changed.text
    # The running round keeps the deadline it was given.
    assert window((await rounds(1))[0]) == timedelta(seconds=600)
    await dispatch.env.sleep(601)
    both = await eventually(lambda: rounds(2))

    assert both[0]["outcome"] == "timed_out"
    assert both[1]["staff_id"] != first["staff_id"]
    assert window(both[1]) == timedelta(seconds=120)


# ------------------------------------------------------------------ a sub-site's own rule


async def test_a_sub_site_admin_sets_their_sub_sites_own_rule(
    rules_api: httpx.AsyncClient,
) -> None:
    mine, other = await make_store_world(consultants=0), await make_store_world(consultants=0)
    token = bearer(
        await make_token(Role.SUBSITE_ADMIN, staff_id=mine.manager.id, subsite_id=mine.subsite.id)
    )
    manager = await manager_of(mine)
    path = f"/api/v1/subsites/{mine.subsite.id}/rules/new"

    before = await rules_api.get(path, headers=token)
    own = await rules_api.put(path, json=FULL_RULE, headers=token)
    after = await rules_api.get(path, headers=token)
    head_office = await rules_api.get(f"{RULES}/new", headers=admin())
    elsewhere = await rules_api.put(
        f"/api/v1/subsites/{other.subsite.id}/rules/new", json=FULL_RULE, headers=token
    )
    by_manager = await rules_api.put(path, json=FULL_RULE, headers=manager)
    global_by_admin = await rules_api.put(f"{RULES}/new", json=FULL_RULE, headers=token)

    assert (before.status_code, before.json()["source"]) == (200, "head office")
    assert own.status_code == 200, own.text
    assert after.json()["source"] == "sub-site"
    assert rule_fields(after.json()) == rule_fields(DEFAULT_RULE | FULL_RULE)
    assert rule_fields(head_office.json()) == DEFAULT_RULE  # head office's rule is untouched
    assert [elsewhere.status_code, by_manager.status_code, global_by_admin.status_code] == [
        403,
        403,
        403,
    ]


async def test_removing_a_sub_sites_rule_brings_back_head_offices(
    rules_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=0)
    path = f"/api/v1/subsites/{world.subsite.id}/rules/unassigned"
    assert (await rules_api.put(path, json=FULL_RULE, headers=admin())).status_code == 200

    removed = await rules_api.delete(path, headers=admin())
    again = await rules_api.delete(path, headers=admin())
    now = await rules_api.get(path, headers=admin())
    no_site = await rules_api.get("/api/v1/subsites/999999/rules/new", headers=admin())

    assert removed.status_code == 204
    assert again.status_code == 404
    assert (now.json()["source"], rule_fields(now.json())) == ("head office", DEFAULT_RULE)
    assert no_site.status_code == 404


async def test_an_order_runs_on_its_sub_sites_own_rule(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=2)
    own = DEFAULT_RULE | {"accept_timeout_seconds": 240, "reminder_before_seconds": 0}
    path = f"/api/v1/subsites/{world.subsite.id}/rules/new"
    assert (await api.put(path, json=own, headers=admin())).status_code == 200
    order_id = f"S{uuid.uuid4().hex[:10]}"
    posted = await api.post(
        "/api/v1/orders",
        json={"order_id": order_id, "store_id": world.store.id, "customer": CUSTOMER},
        headers=admin(),
    )
    assert posted.status_code == 202, posted.text

    async def first_round() -> dict[str, Any]:
        response = await api.get(f"/api/v1/orders/{order_id}", headers=admin())
        assert response.status_code == 200, response.text
        rounds: list[dict[str, Any]] = response.json()["assignments"]
        assert rounds, "not assigned yet"
        return rounds[0]

    first = await eventually(first_round)
    window = datetime.fromisoformat(first["accept_deadline"]) - datetime.fromisoformat(
        first["assigned_at"]
    )
    assert window == timedelta(seconds=240)  # the sub-site's, not head office's 900


async def test_an_empty_channel_list_names_the_kind(rules_api: httpx.AsyncClient) -> None:
    change: dict[str, Any] = {"channels": {"timed_out": [], "waiting": []}}
    response = await rules_api.put(f"{RULES}/new", json=FULL_RULE | change, headers=admin())
    assert response.status_code == 422, response.text
    assert "'timed_out' may not be empty" in response.text
    quiet: dict[str, Any] = {
        "channels": {"waiting": [], "reminder": []}
    }  # nobody has to act on these
    assert (await rules_api.put(f"{RULES}/new", json=FULL_RULE | quiet, headers=admin())).is_success
