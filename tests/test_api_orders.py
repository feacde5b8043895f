"""The orders API over HTTP: intake, lists, one order's story and the staff/manager actions.

The app runs in-process (httpx's ASGI transport) against the time-skipping Temporal test
server, a worker on its own task queue, the real PostgreSQL and the real SMTP/SMS sinks.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlmodel import func, select

from api.deps import hash_token
from models import ApiToken, Order, OrderEvent, Role
from models.base import utcnow
from models.db import session
from settings import settings
from tests.api_helpers import admin, bearer
from tests.conftest import Dispatch, eventually
from tests.factories import StoreWorld, make_store_world

ORDERS = "/api/v1/orders"


def order_body(world: StoreWorld, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_id": f"A{uuid.uuid4().hex[:10]}",
        "type": "new",
        "customer": {"name": "Li Lei", "phone": "+8613800000001", "email": "li@o2o.test"},
        "category": "tour",
        "store_id": world.store.id,
    }
    return body | overrides


async def submit(api: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await api.post(ORDERS, json=body, headers=admin())
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


async def get_order(api: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    response = await api.get(f"{ORDERS}/{order_id}", headers=admin())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def wait_for_round(api: httpx.AsyncClient, order_id: str, round_: int) -> dict[str, Any]:
    """The order's `round_`-th assignment, once GET /orders/{id} shows it."""

    async def check() -> dict[str, Any]:
        response = await api.get(f"{ORDERS}/{order_id}", headers=admin())
        assert response.status_code == 200, response.text
        rounds = response.json()["assignments"]
        assert len(rounds) >= round_, f"{len(rounds)} rounds so far"
        assignment: dict[str, Any] = rounds[round_ - 1]
        return assignment

    return await eventually(check)


async def offered(
    api: httpx.AsyncClient, world: StoreWorld, **overrides: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """An order for `world`'s store, submitted; its body, and its first round once offered."""
    body = order_body(world, **overrides)
    await submit(api, body)
    return body, await wait_for_round(api, body["order_id"], 1)


async def act(
    api: httpx.AsyncClient,
    order_id: str,
    action: str,
    body: dict[str, Any] | None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """POST a staff or manager action; `body=None` sends no body at all."""
    return await api.post(f"{ORDERS}/{order_id}/{action}", json=body, headers=headers or admin())


async def order_rows(order_id: str) -> int:
    async with session() as db:
        count: int = (
            await db.exec(select(func.count()).select_from(Order).where(Order.id == order_id))
        ).one()
        return count


async def staff_token(staff_id: int, store_id: int, role: Role = Role.STAFF) -> str:
    token = f"tok-{uuid.uuid4().hex}"
    async with session() as db:
        db.add(
            ApiToken(
                name=f"staff {staff_id}",
                token_hash=hash_token(token),
                role=role,
                staff_id=staff_id,
                store_id=store_id,
            )
        )
        await db.commit()
    return token


def error_locations(response: httpx.Response) -> list[str]:
    """The fields a 422 names: `body.customer.phone` for a validation error, else the text."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return [detail]
    return [".".join(str(part) for part in error["loc"]) for error in detail]


# ------------------------------------------------------------------ intake


async def test_post_order_starts_its_workflow(api: httpx.AsyncClient, dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=2)
    body = order_body(world)

    response = await api.post(ORDERS, json=body, headers=admin())

    assert response.status_code == 202, response.text
    accepted = response.json()
    order_id = body["order_id"]
    assert accepted["order_id"] == order_id
    assert accepted["workflow_id"] == f"order-{order_id}"
    assert accepted["run_id"]
    assert accepted["status_url"] == f"/api/v1/orders/{order_id}"
    assert response.headers["location"] == f"/api/v1/orders/{order_id}"
    description = await dispatch.client.get_workflow_handle(f"order-{order_id}").describe()
    assert description.workflow_type == "NewOrderWorkflow"
    assert description.run_id == accepted["run_id"]
    # The test worker (on the monkeypatched task queue) picks it up and assigns it.
    first = await wait_for_round(api, order_id, 1)
    assert first["staff_id"] in {c.id for c in world.consultants}


async def test_same_order_posted_again_returns_the_same_workflow(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body = order_body(world)

    first = await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    again = await submit(api, body)

    assert (again["workflow_id"], again["run_id"]) == (first["workflow_id"], first["run_id"])
    assert await order_rows(body["order_id"]) == 1
    assert len((await get_order(api, body["order_id"]))["assignments"]) == 1


async def test_same_order_posted_concurrently_makes_one_workflow(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body = order_body(world)

    responses = await asyncio.gather(
        *(api.post(ORDERS, json=body, headers=admin()) for _ in range(5))
    )

    assert [r.status_code for r in responses] == [202] * 5, [r.text for r in responses]
    assert {(r.json()["workflow_id"], r.json()["run_id"]) for r in responses} == {
        (f"order-{body['order_id']}", responses[0].json()["run_id"])
    }
    await wait_for_round(api, body["order_id"], 1)
    assert await order_rows(body["order_id"]) == 1
    async with session() as db:
        routed = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == body["order_id"], OrderEvent.kind == "routed"
                )
            )
        ).all()
    assert len(routed) == 1


VALID = {"order_id": "A1", "type": "new", "customer": {"name": "Li", "phone": "+8613800000001"}}


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"order_id": "bad id!"}, "body.order_id", "pattern"),
        ({"order_id": ""}, "body.order_id", "at least 1"),
        ({"order_id": "A" * 65}, "body.order_id", "at most 64"),
        ({"type": "urgent"}, "body.type", "new"),
        ({"customer": {"name": "Li", "phone": "12345"}}, "body.customer.phone", "'12345'"),
        ({"customer": {"name": "Li", "email": "not-an-email"}}, "body.customer.email", "e-mail"),
        ({"customer": {"name": "Li", "vip": True}}, "body.customer.vip", "not permitted"),
        ({"client_ip": "999.1.1.1"}, "body.client_ip", "not an IPv4 or IPv6"),
        ({"colour": "red"}, "body.colour", "not permitted"),
        ({"priority": 1000}, "body.priority", "less than or equal to 100"),
        ({"store_id": 0}, "body.store_id", "greater than or equal to 1"),
        ({"type": "assigned_unprocessed"}, "body.assignee_id", "assigned_unprocessed"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_bad_order_is_422_naming_the_field(
    offline_api: httpx.AsyncClient, change: dict[str, Any], field: str, says: str
) -> None:
    response = await offline_api.post(ORDERS, json=VALID | change, headers=admin())

    assert response.status_code == 422, response.text
    named = error_locations(response)
    assert any(location.startswith(field) for location in named), named
    assert says in response.text


async def test_missing_body_is_422(offline_api: httpx.AsyncClient) -> None:
    response = await offline_api.post(ORDERS, content=b"{not json", headers=admin())
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": f"Bearer {settings.ADMIN_TOKEN}x"},
    ],
    ids=["missing", "unknown", "basic-scheme", "admin-token-plus-one"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", ORDERS), ("GET", ORDERS), ("GET", f"{ORDERS}/A1"), ("POST", f"{ORDERS}/A1/accept")],
)
async def test_requests_without_a_valid_token_are_401(
    offline_api: httpx.AsyncClient, headers: dict[str, str], method: str, path: str
) -> None:
    body = VALID if method == "POST" and path == ORDERS else {"staff_id": 1}
    response = await offline_api.request(method, path, json=body, headers=headers)

    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"


async def test_stored_api_token_is_accepted_until_revoked(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    token = await staff_token(world.consultants[0].id, world.store.id)

    assert (await offline_api.get(ORDERS, headers=bearer(token))).status_code == 200
    async with session() as db:
        row = (
            await db.exec(select(ApiToken).where(ApiToken.token_hash == hash_token(token)))
        ).one()
        row.revoked_at = utcnow()
        db.add(row)
        await db.commit()
    refused = await offline_api.get(ORDERS, headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]


# ------------------------------------------------------------------ query


async def test_order_story_shows_store_assignee_rounds_and_notices(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=3)
    body = order_body(world, priority=5)
    await submit(api, body)
    order_id = body["order_id"]

    first = await wait_for_round(api, order_id, 1)

    story = await get_order(api, order_id)
    consultants = {c.id for c in world.consultants}
    assert story["id"] == order_id
    assert (story["type"], story["category"], story["priority"]) == ("new", "tour", 5)
    assert (story["store_id"], story["subsite_id"]) == (world.store.id, world.subsite.id)
    assert story["store_reason"] == "store named on the order"
    assert story["status"] == "assigned"
    assert story["assignee_id"] == first["staff_id"] and first["staff_id"] in consultants
    assert (story["round"], story["workflow_id"]) == (1, f"order-{order_id}")
    assert story["customer_name"] == "Li Lei"
    [assignment] = story["assignments"]
    assert (assignment["round"], assignment["outcome"]) == (1, "offered")
    assert assignment["reason"]["method"] == "weighted_random"
    assert assignment["reason"]["round"] == 1
    assert set(assignment["reason"]["values"]) == {str(c) for c in consultants}
    assert datetime.fromisoformat(assignment["accept_deadline"]) > datetime.fromisoformat(
        assignment["assigned_at"]
    )
    kinds = [e["kind"] for e in story["events"]]
    assert kinds[:2] == ["routed", "assigned"], kinds

    async def notices_sent() -> None:
        notices = (await get_order(api, order_id))["notices"]
        assert sorted((n["kind"], n["channel"], n["staff_id"], n["status"]) for n in notices) == [
            ("assigned", "email", first["staff_id"], "sent"),
            ("assigned", "sms", first["staff_id"], "sent"),
        ]

    await eventually(notices_sent)


async def test_unknown_order_is_404(offline_api: httpx.AsyncClient) -> None:
    response = await offline_api.get(f"{ORDERS}/NOPE-1", headers=admin())

    assert response.status_code == 404
    assert "NOPE-1" in response.json()["detail"]


async def test_list_filters_and_pagination(api: httpx.AsyncClient) -> None:
    a, b = await make_store_world(consultants=2), await make_store_world(consultants=2)
    bodies = {
        "a1": order_body(a),
        "a2": order_body(a),
        "b1": order_body(b),
        "u1": order_body(a, type="unassigned"),
    }
    for body in bodies.values():
        await submit(api, body)
    ids = {name: body["order_id"] for name, body in bodies.items()}
    firsts = {name: await wait_for_round(api, order_id, 1) for name, order_id in ids.items()}
    accepted = await act(api, ids["a1"], "accept", {"staff_id": firsts["a1"]["staff_id"]})
    assert accepted.status_code == 200, accepted.text

    async def listed(**params: Any) -> set[str]:
        response = await api.get(ORDERS, params=params, headers=admin())
        assert response.status_code == 200, response.text
        page = response.json()
        assert page["total"] == len(page["items"])
        return {item["id"] for item in page["items"]}

    async def a1_shows_accepted() -> None:
        assert await listed(status="accepted") == {ids["a1"]}

    await eventually(a1_shows_accepted)
    assert await listed() == set(ids.values())
    assert await listed(status="assigned") == {ids["a2"], ids["b1"], ids["u1"]}
    assert await listed(status="completed") == set()
    assert await listed(store_id=b.store.id) == {ids["b1"]}
    assert await listed(store_id=a.store.id) == {ids["a1"], ids["a2"], ids["u1"]}
    assert await listed(subsite_id=b.subsite.id) == {ids["b1"]}
    assert await listed(type="unassigned") == {ids["u1"]}
    assert await listed(type="new", store_id=a.store.id) == {ids["a1"], ids["a2"]}
    a2_assignee = firsts["a2"]["staff_id"]
    assert await listed(assignee_id=a2_assignee) == {
        ids[name] for name in ("a1", "a2", "u1") if firsts[name]["staff_id"] == a2_assignee
    }
    assert await listed(assignee_id=b.consultants[0].id) <= {ids["b1"]}
    assert await listed(escalated=True) == set()

    pages = []
    for offset in (0, 3, 6):
        response = await api.get(ORDERS, params={"limit": 3, "offset": offset}, headers=admin())
        assert response.status_code == 200, response.text
        pages.append(response.json())
    assert [(p["total"], p["limit"], p["offset"]) for p in pages] == [
        (4, 3, 0),
        (4, 3, 3),
        (4, 3, 6),
    ]
    assert [len(p["items"]) for p in pages] == [3, 1, 0]
    items = pages[0]["items"] + pages[1]["items"]
    assert {i["id"] for i in items} == set(ids.values())
    created = [datetime.fromisoformat(i["created_at"]) for i in items]
    assert created == sorted(created, reverse=True), "newest first"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "query.limit"),
        ({"limit": 501}, "query.limit"),
        ({"offset": -1}, "query.offset"),
        ({"status": "lost"}, "query.status"),
        ({"type": "urgent"}, "query.type"),
        ({"store_id": "x"}, "query.store_id"),
    ],
)
async def test_bad_list_query_is_422(
    offline_api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await offline_api.get(ORDERS, params=params, headers=admin())

    assert response.status_code == 422, response.text
    assert field in error_locations(response)


# ------------------------------------------------------------------ staff actions


async def test_accept_by_another_staff_member_is_403(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    other = next(c.id for c in world.consultants if c.id != first["staff_id"])

    response = await act(api, body["order_id"], "accept", {"staff_id": other})

    assert response.status_code == 403, response.text
    assert response.json()["detail"] == (
        f"only the current assignee (staff {first['staff_id']}) may do this"
    )
    story = await get_order(api, body["order_id"])
    assert (story["status"], story["assignee_id"]) == ("assigned", first["staff_id"])
    assert [a["outcome"] for a in story["assignments"]] == ["offered"]


async def test_complete_before_accept_is_409(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)

    response = await act(api, body["order_id"], "complete", {"staff_id": first["staff_id"]})

    assert response.status_code == 409, response.text
    assert response.json()["detail"] == "accept the order before marking it processed"
    story = await get_order(api, body["order_id"])
    assert story["status"] == "assigned"
    assert [a["outcome"] for a in story["assignments"]] == ["offered"]


async def test_action_without_a_staff_member_is_422(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)

    # The admin token names no staff member, so the body must.
    response = await act(api, body["order_id"], "accept", {})

    assert response.status_code == 422, response.text
    assert "staff_id" in response.json()["detail"]


async def test_accept_then_complete_by_the_assignee(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body = order_body(world)
    await submit(api, body)
    order_id = body["order_id"]
    first = await wait_for_round(api, order_id, 1)
    staff = {"staff_id": first["staff_id"], "reason": "called the customer"}

    accepted = await act(api, order_id, "accept", staff)
    assert accepted.status_code == 200, accepted.text
    live = accepted.json()
    assert (live["status"], live["assignee_id"], live["round"]) == (
        "accepted",
        first["staff_id"],
        1,
    )
    assert live["process_deadline"] is not None
    twice = await act(api, order_id, "accept", staff)
    assert twice.status_code == 409, twice.text
    assert twice.json()["detail"] == "the order is already accepted"

    completed = await act(api, order_id, "complete", staff)
    assert completed.status_code == 200, completed.text
    assert (completed.json()["status"], completed.json()["assignee_id"]) == (
        "completed",
        first["staff_id"],
    )

    async def recorded() -> None:
        story = await get_order(api, order_id)
        assert story["status"] == "completed" and story["completed_at"] is not None
        assert [a["outcome"] for a in story["assignments"]] == ["completed"]
        assert [e["kind"] for e in story["events"]][-2:] == ["accepted", "completed"]

    await eventually(recorded)
    listed = await api.get(ORDERS, params={"status": "completed"}, headers=admin())
    assert [item["id"] for item in listed.json()["items"]] == [order_id]


async def test_a_processed_order_cannot_be_processed_again(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    body = order_body(world)
    await submit(api, body)
    order_id = body["order_id"]
    staff = {"staff_id": (await wait_for_round(api, order_id, 1))["staff_id"]}
    for action in ("accept", "complete"):
        response = await act(api, order_id, action, staff)
        assert response.status_code == 200, response.text

    again = await act(api, order_id, "complete", staff)

    assert again.status_code == 409, again.text
    assert "processed already" in again.json()["detail"]


async def test_posting_a_processed_order_again_starts_nothing(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=1)
    body = order_body(world)
    first = await submit(api, body)
    order_id = body["order_id"]
    staff = {"staff_id": (await wait_for_round(api, order_id, 1))["staff_id"]}
    for action in ("accept", "complete"):
        response = await act(api, order_id, action, staff)
        assert response.status_code == 200, response.text
    await dispatch.client.get_workflow_handle(first["workflow_id"]).result()

    again = await api.post(ORDERS, json=body, headers=admin())

    assert again.status_code == 409, again.text  # a finished order stays finished
    assert "was completed at" in again.json()["detail"]
    description = await dispatch.client.get_workflow_handle(first["workflow_id"]).describe()
    assert description.run_id == first["run_id"]
    story = await get_order(api, order_id)
    assert story["status"] == "completed"
    assert len(story["assignments"]) == 1
    assert await order_rows(order_id) == 1


async def test_decline_hands_the_order_to_someone_else(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)

    response = await act(
        api, body["order_id"], "decline", {"staff_id": first["staff_id"], "reason": "busy"}
    )

    assert response.status_code == 200, response.text
    assert response.json()["assignee_id"] != first["staff_id"]
    second = await wait_for_round(api, body["order_id"], 2)
    assert second["staff_id"] != first["staff_id"]
    story = await get_order(api, body["order_id"])
    assert [a["outcome"] for a in story["assignments"]] == ["declined", "offered"]


async def test_actions_on_an_unknown_order_are_404(api: httpx.AsyncClient) -> None:
    bodies = {
        "accept": {"staff_id": 1},
        "complete": {"staff_id": 1},
        "decline": {"staff_id": 1},
        "reassign": {"staff_id": 1},
        "redispatch": {"reason": "why not"},
    }
    answers = {}
    for action, body in bodies.items():
        response = await act(api, "NO-SUCH-ORDER", action, body)
        answers[action] = (response.status_code, "NO-SUCH-ORDER" in response.text)

    assert answers == {action: (404, True) for action in bodies}


# ------------------------------------------------------------------ manager actions


async def test_reassign_outside_the_store_is_refused(api: httpx.AsyncClient) -> None:
    world, elsewhere = await make_store_world(consultants=2), await make_store_world(consultants=1)
    body = order_body(world)
    await submit(api, body)
    order_id = body["order_id"]
    first = await wait_for_round(api, order_id, 1)

    outsider = await act(api, order_id, "reassign", {"staff_id": elsewhere.consultants[0].id})
    manager = await act(api, order_id, "reassign", {"staff_id": world.manager.id})
    nobody = await act(api, order_id, "reassign", {"staff_id": 999999})
    same = await act(api, order_id, "reassign", {"staff_id": first["staff_id"]})

    assert outsider.status_code == 403, outsider.text
    assert outsider.json()["detail"] == (
        f"staff {elsewhere.consultants[0].id} is not a consultant of store {world.store.id}"
    )
    assert manager.status_code == 403, manager.text
    assert nobody.status_code == 404, nobody.text
    assert nobody.json()["detail"] == "staff 999999 does not exist"
    assert same.status_code == 409, same.text
    story = await get_order(api, order_id)
    assert (story["assignee_id"], story["round"]) == (first["staff_id"], 1)
    assert [a["outcome"] for a in story["assignments"]] == ["offered"]


async def test_reassign_to_a_named_consultant(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=3)
    body = order_body(world)
    await submit(api, body)
    order_id = body["order_id"]
    first = await wait_for_round(api, order_id, 1)
    target = next(c.id for c in world.consultants if c.id != first["staff_id"])

    response = await act(api, order_id, "reassign", {"staff_id": target, "reason": "VIP"})

    assert response.status_code == 200, response.text
    assert (response.json()["assignee_id"], response.json()["round"]) == (target, 2)
    story = await get_order(api, order_id)
    assert [(a["staff_id"], a["outcome"]) for a in story["assignments"]] == [
        (first["staff_id"], "reassigned"),
        (target, "offered"),
    ]
    assert story["assignments"][1]["reason"]["method"] == "named"
    assert story["assignments"][1]["reason"]["note"] == "by admin: VIP"


async def test_redispatch_starts_a_new_round_with_someone_else(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    body = order_body(world)
    await submit(api, body)
    order_id = body["order_id"]
    first = await wait_for_round(api, order_id, 1)

    response = await act(api, order_id, "redispatch", {"reason": "customer waiting"})

    assert response.status_code == 200, response.text
    live = response.json()
    other = next(c.id for c in world.consultants if c.id != first["staff_id"])
    assert (live["status"], live["assignee_id"], live["round"]) == ("assigned", other, 2)
    second = await wait_for_round(api, order_id, 2)
    assert second["staff_id"] == other
    story = await get_order(api, order_id)
    assert [(a["round"], a["outcome"]) for a in story["assignments"]] == [
        (1, "reassigned"),
        (2, "offered"),
    ]
    assert story["assignee_id"] == other


async def test_assigned_unprocessed_order_stays_with_its_assignee(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=3)
    holder = world.consultants[1].id
    body = order_body(world, type="assigned_unprocessed", assignee_id=holder)

    accepted = await submit(api, body)

    assert accepted["workflow_id"] == f"order-{body['order_id']}"
    first = await wait_for_round(api, body["order_id"], 1)
    assert first["staff_id"] == holder
    assert first["reason"]["method"] == "named"
    story = await get_order(api, body["order_id"])
    assert (story["type"], story["assignee_id"]) == ("assigned_unprocessed", holder)


# ------------------------------------------------------------------ scoped tokens


async def test_staff_token_acts_as_its_own_staff_member(api: httpx.AsyncClient) -> None:
    """With a staff token the body is optional: accept and complete act as the token's owner."""
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    token = await staff_token(first["staff_id"], world.store.id)

    accepted = await act(api, body["order_id"], "accept", {}, headers=bearer(token))
    completed = await act(api, body["order_id"], "complete", None, headers=bearer(token))

    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"


async def test_staff_token_cannot_act_as_another_staff_member(api: httpx.AsyncClient) -> None:
    """A consultant's token must not accept (or process) an order in a colleague's name."""
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    colleague = next(c.id for c in world.consultants if c.id != first["staff_id"])
    token = await staff_token(colleague, world.store.id)

    response = await act(
        api, body["order_id"], "accept", {"staff_id": first["staff_id"]}, headers=bearer(token)
    )

    assert response.status_code == 403, response.text
    assert (await get_order(api, body["order_id"]))["status"] == "assigned"


async def test_staff_token_cannot_redispatch(api: httpx.AsyncClient) -> None:
    """Re-dispatch is a manager's action (SPEC: managers re-dispatch their store's orders)."""
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    token = await staff_token(first["staff_id"], world.store.id)

    response = await act(api, body["order_id"], "redispatch", {}, headers=bearer(token))

    assert response.status_code == 403, response.text
    assert (await get_order(api, body["order_id"]))["round"] == 1
