"""The points ledger: the balance is the sum of its lines; automatic lines follow the rule;
manual adjustments need a reason; the weight the balance gives moves the selection as
docs/points-and-roster.md says: weight = min(cap, max(1, balance)), drawn on a roulette wheel.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from dispatch.selection import select as select_staff
from models import PointsEntry, Role
from models.db import session
from services.staff import candidates
from tests.api_helpers import V1, admin, bearer, make_token
from tests.conftest import Dispatch, eventually
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, set_rule, start, wait_for_round
from workflows.contracts import StaffAction
from workflows.dispatch import OrderDispatch


async def points(api: httpx.AsyncClient, staff_id: int, **params: Any) -> dict[str, Any]:
    response = await api.get(f"{V1}/staff/{staff_id}/points", params=params, headers=admin())
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def adjust(
    api: httpx.AsyncClient,
    staff_id: int,
    delta: int,
    reason: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await api.post(
        f"{V1}/staff/{staff_id}/points",
        json={"delta": delta, "reason": reason},
        headers=headers or admin(),
    )


# ------------------------------------------------------------------ the ledger


async def test_balance_is_the_sum_of_the_ledger_newest_first(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1, points=[10])
    person = world.consultants[0].id

    plus = await adjust(offline_api, person, 5, "praised by a customer")
    minus = await adjust(offline_api, person, -8, "missed a callback")

    assert plus.status_code == 201, plus.text
    assert (plus.json()["balance"], plus.json()["weight"]) == (15, 15)
    assert minus.status_code == 201, minus.text
    entry = minus.json()["entry"]
    assert (entry["delta"], entry["reason"], entry["actor"]) == (-8, "missed a callback", "admin")
    assert minus.json()["balance"] == 7
    shown = await points(offline_api, person)
    assert (shown["balance"], shown["weight"], shown["total"]) == (7, 7, 3)
    assert [(e["delta"], e["reason"]) for e in shown["entries"]] == [
        (-8, "missed a callback"),
        (5, "praised by a customer"),
        (10, "opening balance"),
    ]
    page = await points(offline_api, person, limit=2, offset=1)
    assert [e["delta"] for e in page["entries"]] == [5, 10]
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 1)


async def test_a_negative_balance_still_weighs_one_and_a_rule_cap_is_shown(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=2, points=[-20, 500])
    await set_rule("new", weight_cap=50)

    low = await points(offline_api, world.consultants[0].id)
    high = await points(offline_api, world.consultants[1].id)

    assert (low["balance"], low["weight"]) == (-20, 1)
    # The weight shown is the one the draw uses: under the rule in force (issue 12).
    assert (high["balance"], high["weight"]) == (500, 50)
    assert high["weight_by_order_type"]["new"] == 50


async def test_the_actor_of_a_manual_adjustment_is_the_caller(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    token = await make_token(
        Role.STORE_MANAGER,
        staff_id=world.manager.id,
        store_id=world.store.id,
        name="Manager Wang",
    )

    response = await adjust(
        offline_api, world.consultants[0].id, 3, "weekend cover", headers=bearer(token)
    )

    assert response.status_code == 201, response.text
    assert response.json()["entry"]["actor"] == "Manager Wang"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"delta": 0, "reason": "nothing"}, "changes nothing"),
        ({"delta": 3}, "reason"),
        ({"delta": 3, "reason": "   "}, "say why"),
        ({"delta": 3, "reason": "x" * 201}, "at most 200"),
        ({"delta": 3, "reason": "late", "order_id": "NO-SUCH"}, "NO-SUCH"),
        ({"delta": 3, "reason": "late", "actor": "someone else"}, "not permitted"),
    ],
)
async def test_bad_adjustments_are_422_and_book_nothing(
    offline_api: httpx.AsyncClient, body: dict[str, Any], says: str
) -> None:
    world = await make_store_world(consultants=1, points=[10])
    person = world.consultants[0].id

    response = await offline_api.post(f"{V1}/staff/{person}/points", json=body, headers=admin())

    assert response.status_code == 422, response.text
    assert says in response.text
    assert (await points(offline_api, person))["total"] == 1


async def test_points_of_an_unknown_person_are_404(offline_api: httpx.AsyncClient) -> None:
    response = await adjust(offline_api, 999999, 1, "why")
    assert response.status_code == 404, response.text


# ------------------------------------------------------------------ automatic entries


async def test_automatic_entries_follow_the_rule(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    """+N for an order processed in time and −M for a timeout, as the rule says; 0 books none."""
    await set_rule(
        "new",
        points_processed_in_time=5,
        points_timed_out=-3,
        accept_timeout_seconds=60,
        reminder_before_seconds=0,
        channels={},
    )
    world = await make_store_world(consultants=1, points=[10])
    person = world.consultants[0].id

    done = new_order(world)
    handle = await start(dispatch, done)
    await wait_for_round(done.order_id, 1)
    await handle.execute_update(OrderDispatch.accept, StaffAction(staff_id=person))
    await handle.execute_update(OrderDispatch.complete, StaffAction(staff_id=person))

    late = new_order(world)
    await start(dispatch, late)
    await wait_for_round(late.order_id, 1)
    await dispatch.env.sleep(61)  # time skipping: past the accept deadline
    await wait_for_round(late.order_id, 2)

    await set_rule("new", points_processed_in_time=0)
    unpaid = new_order(world)
    unpaid_handle = await start(dispatch, unpaid)
    await wait_for_round(unpaid.order_id, 1)
    await unpaid_handle.execute_update(OrderDispatch.accept, StaffAction(staff_id=person))
    await unpaid_handle.execute_update(OrderDispatch.complete, StaffAction(staff_id=person))

    async def booked() -> list[PointsEntry]:
        async with session() as db:
            rows = list(
                (
                    await db.exec(
                        select(PointsEntry)
                        .where(PointsEntry.staff_id == person)
                        .order_by(col(PointsEntry.id))
                    )
                ).all()
            )
        assert len(rows) == 3, [(r.delta, r.reason) for r in rows]
        return rows

    rows = await eventually(booked)
    assert [(r.delta, r.reason, r.order_id, r.actor) for r in rows] == [
        (10, "opening balance", None, "system"),
        (5, "order completed", done.order_id, "system"),
        (-3, "order timed out", late.order_id, "system"),
    ]
    assert rows[2].idempotency_key == f"{late.order_id}:1:timed_out"
    assert (await points(api, person))["balance"] == 12


# ------------------------------------------------------------------ weights move the selection


async def test_assignment_reason_values_follow_the_balances(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=3, points=[5, 20, -3])
    a, b, c = (p.id for p in world.consultants)

    first = new_order(world)
    await start(dispatch, first)
    values = (await wait_for_round(first.order_id, 1)).reason["values"]
    assert values == {str(a): 5, str(b): 20, str(c): 1}

    assert (await adjust(api, c, 11, "top reviews")).status_code == 201  # -3 + 11 = 8
    second = new_order(world)
    await start(dispatch, second)
    assert (await wait_for_round(second.order_id, 1)).reason["values"] == {
        str(a): 5,
        str(b): 20,
        str(c): 8,
    }

    await set_rule("new", weight_cap=6)
    third = new_order(world)
    await start(dispatch, third)
    reason = (await wait_for_round(third.order_id, 1)).reason
    assert reason["values"] == {str(a): 5, str(b): 6, str(c): 6}
    assert reason["total"] == 17


async def test_weights_move_the_selection_as_documented(clean_db: str) -> None:
    """Over an even grid of draws each person is chosen in proportion to their weight; a
    ledger line moves the proportions, and the cap bounds them."""
    world = await make_store_world(consultants=2, points=[10, 10])
    a, b = (p.id for p in world.consultants)
    assert a is not None and b is not None
    draws = [i / 100 for i in range(100)]

    async def shares(cap: int | None = None) -> Counter[int | None]:
        async with session() as db:
            pool = await candidates(db, store_id=world.store.id, at=datetime.now(UTC))
        return Counter(select_staff(pool, draw=d, weight_cap=cap).staff_id for d in draws)

    assert await shares() == Counter({a: 50, b: 50})
    async with session() as db:
        db.add(PointsEntry(staff_id=b, delta=30, reason="great month", actor="test"))
        await db.commit()
    assert await shares() == Counter({a: 20, b: 80})  # 10 : 40
    assert await shares(cap=10) == Counter({a: 50, b: 50})  # the cap evens them out
    async with session() as db:
        db.add(PointsEntry(staff_id=a, delta=-100, reason="complaints", actor="test"))
        await db.commit()
    assert await shares() == Counter({a: 3, b: 97})  # floor 1 : 40 — never no chance
