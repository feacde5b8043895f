"""The duty roster end to end: patterns rolled into slots (Asia/Shanghai and a zone with
daylight saving), leave, swaps, "who is on duty" in one SQL query, and waiting orders woken
when the roster changes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import event

from activities.roster import roll_roster
from models import DutySlot
from models.db import engine, session
from services.roster_changes import RollRequest
from tests.api_helpers import (
    V1,
    add_patterns,
    add_slot,
    admin,
    assignments_of,
    set_timezone,
    slots_of,
)
from tests.conftest import Dispatch
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, set_rule, start, wait_for_round, wait_until_waiting

SHANGHAI = ZoneInfo("Asia/Shanghai")
BERLIN = ZoneInfo("Europe/Berlin")


def local(slot: DutySlot, zone: ZoneInfo) -> tuple[str, str]:
    return (
        slot.starts_at.astimezone(zone).strftime("%a %m-%d %H:%M"),
        slot.ends_at.astimezone(zone).strftime("%a %m-%d %H:%M"),
    )


# ------------------------------------------------------------------ roll_roster


async def test_roll_in_shanghai_turns_local_shifts_into_utc_slots(clean_db: str) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    # Monday 09:00–17:00 and an overnight Friday 22:00–06:00, Shanghai time (UTC+8).
    await add_patterns(person, [(0, "09:00", "17:00"), (4, "22:00", "06:00")])

    result = await roll_roster(RollRequest(days=14, first_day=date(2024, 6, 3)))

    slots = await slots_of(person)
    assert result.slots_added == len(slots) == 4  # two Mondays, two Fridays (and no extra)
    assert [(s.starts_at, s.ends_at) for s in slots] == [
        (datetime(2024, 6, 3, 1, tzinfo=UTC), datetime(2024, 6, 3, 9, tzinfo=UTC)),
        (datetime(2024, 6, 7, 14, tzinfo=UTC), datetime(2024, 6, 7, 22, tzinfo=UTC)),
        (datetime(2024, 6, 10, 1, tzinfo=UTC), datetime(2024, 6, 10, 9, tzinfo=UTC)),
        (datetime(2024, 6, 14, 14, tzinfo=UTC), datetime(2024, 6, 14, 22, tzinfo=UTC)),
    ]
    assert {s.store_id for s in slots} == {world.store.id}
    assert {s.source for s in slots} == {"pattern"}
    assert local(slots[1], SHANGHAI) == ("Fri 06-07 22:00", "Sat 06-08 06:00")

    again = await roll_roster(RollRequest(days=14, first_day=date(2024, 6, 3)))
    assert again.slots_added == 0
    assert len(await slots_of(person)) == 4


async def test_roll_across_a_daylight_saving_change_keeps_local_times(clean_db: str) -> None:
    """Berlin springs forward on Sunday 2024-03-31: the shift keeps 09:00 local, its UTC
    instant moves an hour; the overnight shift across the change is an hour shorter."""
    world = await make_store_world(consultants=1, on_duty=False)
    await set_timezone(world.store.id, "Europe/Berlin")
    person = world.consultants[0].id
    await add_patterns(person, [(d, "09:00", "17:00") for d in range(7)] + [(5, "22:00", "06:00")])

    await roll_roster(RollRequest(days=3, first_day=date(2024, 3, 30)))

    slots = {s.starts_at: s for s in await slots_of(person)}
    day = [s for s in slots.values() if s.starts_at.astimezone(BERLIN).hour == 9]
    assert [(s.starts_at, s.ends_at) for s in day] == [
        (datetime(2024, 3, 29, 8, tzinfo=UTC), datetime(2024, 3, 29, 16, tzinfo=UTC)),  # CET
        (datetime(2024, 3, 30, 8, tzinfo=UTC), datetime(2024, 3, 30, 16, tzinfo=UTC)),
        (datetime(2024, 3, 31, 7, tzinfo=UTC), datetime(2024, 3, 31, 15, tzinfo=UTC)),  # CEST
        (datetime(2024, 4, 1, 7, tzinfo=UTC), datetime(2024, 4, 1, 15, tzinfo=UTC)),
    ]
    assert {local(s, BERLIN)[0][-5:] for s in day} == {"09:00"}
    night = slots[datetime(2024, 3, 30, 21, tzinfo=UTC)]  # Sat 22:00 CET
    assert night.ends_at == datetime(2024, 3, 31, 4, tzinfo=UTC)  # Sun 06:00 CEST
    assert night.ends_at - night.starts_at == timedelta(hours=7)


async def test_roll_skips_inactive_people(clean_db: str) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    for person in world.consultants:
        await add_patterns(person.id, [(0, "09:00", "17:00")])
    async with session() as db:
        gone = await db.get(type(world.consultants[1]), world.consultants[1].id)
        assert gone is not None
        gone.active = False
        db.add(gone)
        await db.commit()

    result = await roll_roster(RollRequest(days=7, first_day=date(2024, 6, 3)))

    assert (result.staff, result.slots_added) == (1, 1)
    assert await slots_of(world.consultants[1].id) == []


# ------------------------------------------------------------------ patterns over HTTP


async def test_put_patterns_rolls_the_next_two_weeks_in_the_store_zone(
    api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    body = {"shifts": [{"weekday": d, "start": "09:00", "end": "18:00"} for d in range(5)]}

    response = await api.put(f"{V1}/staff/{person}/patterns", json=body, headers=admin())

    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["timezone"] == "Asia/Shanghai"
    assert shown["shifts"][0] == {"weekday": 0, "start": "09:00:00", "end": "18:00:00"}
    slots = await slots_of(person)
    assert shown["slots_added"] == len(slots)
    assert 10 <= len(slots) <= 12  # 14 (+1) days of weekdays
    assert {local(s, SHANGHAI)[0][-5:] for s in slots} == {"09:00"}
    assert all(s.starts_at.astimezone(SHANGHAI).weekday() < 5 for s in slots)

    # A new pattern replaces the slots not yet begun.
    weekend = {"shifts": [{"weekday": 6, "start": "10:00", "end": "14:00"}]}
    response = await api.put(f"{V1}/staff/{person}/patterns", json=weekend, headers=admin())
    assert response.status_code == 200, response.text
    future = [s for s in await slots_of(person) if s.starts_at > datetime.now(UTC)]
    assert future and all(s.starts_at.astimezone(SHANGHAI).weekday() == 6 for s in future)
    got = await api.get(f"{V1}/staff/{person}/patterns", headers=admin())
    assert got.json()["shifts"] == [{"weekday": 6, "start": "10:00:00", "end": "14:00:00"}]


@pytest.mark.parametrize(
    ("shifts", "says"),
    [
        ([{"weekday": 7, "start": "09:00", "end": "17:00"}], "less than or equal to 6"),
        ([{"weekday": 1, "start": "9h", "end": "17:00"}], "time"),
        (
            [
                {"weekday": 1, "start": "09:00", "end": "12:00"},
                {"weekday": 1, "start": "09:00", "end": "17:00"},
            ],
            "same time",
        ),
        (
            [
                {"weekday": 1, "start": "09:00", "end": "17:00"},
                {"weekday": 1, "start": "12:00", "end": "20:00"},
            ],
            "shifts overlap: Tue 09:00–17:00 and Tue 12:00–20:00",
        ),
        (  # Sunday's night shift runs into Monday morning's
            [
                {"weekday": 6, "start": "20:00", "end": "08:00"},
                {"weekday": 0, "start": "07:00", "end": "12:00"},
            ],
            "shifts overlap: Sun 20:00–08:00 and Mon 07:00–12:00",
        ),
    ],
)
async def test_bad_patterns_are_422(
    offline_api: httpx.AsyncClient, shifts: list[dict[str, Any]], says: str
) -> None:
    world = await make_store_world(consultants=1)
    response = await offline_api.put(
        f"{V1}/staff/{world.consultants[0].id}/patterns", json={"shifts": shifts}, headers=admin()
    )
    assert response.status_code == 422, response.text
    assert says in response.text


# ------------------------------------------------------------------ who is on duty


@contextmanager
def statements() -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sync = engine().sync_engine
    event.listen(sync, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", record)


async def test_who_is_on_duty_is_one_query(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=4, points=[3, 8, 0, 5], on_duty=False)
    other = await make_store_world(consultants=1)
    a, b, c, d = (p.id for p in world.consultants)
    at = datetime(2030, 1, 7, 3, tzinfo=UTC)
    store = world.store.id
    await add_slot(a, store, at - timedelta(hours=2), at + timedelta(hours=6))
    await add_slot(b, store, at - timedelta(hours=1), at + timedelta(hours=1))
    await add_slot(b, store, at - timedelta(minutes=5), at + timedelta(hours=9))  # overlapping
    await add_slot(c, store, at, at + timedelta(hours=8))  # starts right then: on duty
    await add_slot(d, store, at - timedelta(hours=8), at)  # ended right then: not on duty
    await add_slot(other.consultants[0].id, store, at - timedelta(hours=1), at + timedelta(hours=1))
    async with session() as db:
        from models import Leave

        db.add(
            Leave(staff_id=c, starts_at=at + timedelta(minutes=1), ends_at=at + timedelta(days=1))
        )
        await db.commit()

    with statements() as seen:
        response = await offline_api.get(
            f"{V1}/stores/{store}/on-duty", params={"at": at.isoformat()}, headers=admin()
        )

    assert response.status_code == 200, response.text
    rows = response.json()["on_duty"]
    assert [r["staff_id"] for r in rows] == [a, b, c]
    assert [(r["points"], r["weight"]) for r in rows] == [(3, 3), (8, 8), (0, 1)]
    assert datetime.fromisoformat(rows[1]["slot"]["starts_at"]) == at - timedelta(hours=1)
    roster = [s for s in seen if "duty_slot" in s]
    assert len(roster) == 1, seen
    assert "leave" in roster[0] and "points_entry" in roster[0]

    later = await offline_api.get(
        f"{V1}/stores/{store}/on-duty",
        params={"at": (at + timedelta(minutes=2)).isoformat()},
        headers=admin(),
    )
    assert [r["staff_id"] for r in later.json()["on_duty"]] == [a, b]  # c's leave began


async def test_on_duty_leaves_out_paused_and_inactive_people(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=3)
    a, b, c = (p.id for p in world.consultants)
    assert (await offline_api.post(f"{V1}/staff/{b}/pause", json={}, headers=admin())).is_success
    async with session() as db:
        gone = await db.get(type(world.consultants[2]), c)
        assert gone is not None
        gone.active = False
        db.add(gone)
        await db.commit()

    now = await offline_api.get(f"{V1}/stores/{world.store.id}/on-duty", headers=admin())
    flagged = await offline_api.get(
        f"{V1}/stores/{world.store.id}/on-duty", params={"include_paused": True}, headers=admin()
    )

    assert [r["staff_id"] for r in now.json()["on_duty"]] == [a]
    assert [(r["staff_id"], r["rotation_paused"]) for r in flagged.json()["on_duty"]] == [
        (a, False),
        (b, True),
    ]


async def test_on_duty_needs_an_aware_time(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    response = await offline_api.get(
        f"{V1}/stores/{world.store.id}/on-duty",
        params={"at": "2030-01-01T09:00:00"},
        headers=admin(),
    )
    assert response.status_code == 422, response.text


async def test_slots_far_in_the_future_are_a_clear_422(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    for path in (f"staff/{world.consultants[0].id}", f"stores/{world.store.id}"):
        response = await offline_api.get(
            f"{V1}/{path}/slots", params={"from": "9999-12-30T00:00:00Z"}, headers=admin()
        )
        assert response.status_code == 422, response.text
        assert "too far in the future" in response.json()["detail"]


# ------------------------------------------------------------------ swaps


async def test_a_swap_exchanges_two_slots_and_the_roll_keeps_it(api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2, on_duty=False)
    x, y = (p.id for p in world.consultants)
    await add_patterns(x, [(0, "09:00", "17:00")])  # Mondays
    await add_patterns(y, [(1, "09:00", "17:00")])  # Tuesdays
    rolled = await api.post(f"{V1}/roster/roll", json={"days": 14}, headers=admin())
    assert rolled.status_code == 200, rolled.text
    now = datetime.now(UTC)
    x_monday = next(s for s in await slots_of(x) if s.starts_at > now)
    y_tuesday = next(s for s in await slots_of(y) if s.starts_at > now)

    response = await api.post(
        f"{V1}/roster/swaps",
        json={"slot_id": x_monday.id, "other_slot_id": y_tuesday.id, "reason": "dentist"},
        headers=admin(),
    )

    assert response.status_code == 201, response.text
    made = response.json()["slots"]
    assert [
        (s["staff_id"], datetime.fromisoformat(s["starts_at"]), s["source"], s["replaces_staff_id"])
        for s in made
    ] == [(y, x_monday.starts_at, "swap", x), (x, y_tuesday.starts_at, "swap", y)]
    again = await api.post(f"{V1}/roster/roll", json={"days": 14}, headers=admin())
    assert again.status_code == 200, again.text
    x_starts = {s.starts_at for s in await slots_of(x)}
    assert x_monday.starts_at not in x_starts and y_tuesday.starts_at in x_starts
    monday = (x_monday.starts_at + timedelta(hours=1)).isoformat()
    on_duty = await api.get(
        f"{V1}/stores/{world.store.id}/on-duty", params={"at": monday}, headers=admin()
    )
    assert [r["staff_id"] for r in on_duty.json()["on_duty"]] == [y]

    # Swapping back restores both people's own pattern slots.
    back = await api.post(
        f"{V1}/roster/swaps",
        json={"slot_id": made[0]["id"], "other_slot_id": made[1]["id"]},
        headers=admin(),
    )
    assert back.status_code == 201, back.text
    assert [(s["staff_id"], s["source"]) for s in back.json()["slots"]] == [
        (x, "pattern"),
        (y, "pattern"),
    ]


async def test_swaps_that_make_no_sense_are_refused(offline_api: httpx.AsyncClient) -> None:
    world, elsewhere = (
        await make_store_world(consultants=2, on_duty=False),
        await make_store_world(consultants=1, on_duty=False),
    )
    x, y = (p.id for p in world.consultants)
    soon = datetime.now(UTC) + timedelta(days=2)
    mine = await add_slot(x, world.store.id, soon, soon + timedelta(hours=8))
    also_mine = await add_slot(
        x, world.store.id, soon + timedelta(days=1), soon + timedelta(days=1, hours=8)
    )
    theirs = await add_slot(
        y, world.store.id, soon + timedelta(days=2), soon + timedelta(days=2, hours=8)
    )
    past = await add_slot(y, world.store.id, soon - timedelta(days=9), soon - timedelta(days=8))
    foreign = await add_slot(
        elsewhere.consultants[0].id, elsewhere.store.id, soon, soon + timedelta(hours=8)
    )

    async def swap(a: int, b: int) -> httpx.Response:
        return await offline_api.post(
            f"{V1}/roster/swaps", json={"slot_id": a, "other_slot_id": b}, headers=admin()
        )

    assert (await swap(mine, 999999)).status_code == 404
    assert (await swap(mine, mine)).status_code == 422
    assert (await swap(mine, also_mine)).status_code == 422  # same person
    assert (await swap(mine, foreign)).status_code == 422  # another store
    assert (await swap(mine, past)).status_code == 409
    assert [s.id for s in await slots_of(x)] == [mine, also_mine]
    assert theirs in [s.id for s in await slots_of(y)]


# ------------------------------------------------------------------ leave and waking


async def test_a_person_on_leave_gets_nothing(api: httpx.AsyncClient, dispatch: Dispatch) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=2)
    away, there = (p.id for p in world.consultants)
    now = datetime.now(UTC)
    leave = await api.post(
        f"{V1}/staff/{away}/leave",
        json={
            "starts_at": (now - timedelta(hours=1)).isoformat(),
            "ends_at": (now + timedelta(days=2)).isoformat(),
            "reason": "annual leave",
        },
        headers=admin(),
    )
    assert leave.status_code == 201, leave.text

    orders = [new_order(world) for _ in range(4)]
    for order in orders:
        await start(dispatch, order)
    firsts = [await wait_for_round(o.order_id, 1) for o in orders]

    assert {a.staff_id for a in firsts} == {there}
    assert all(a.reason["excluded"].get(str(away)) == "not on duty" for a in firsts)


async def test_with_only_them_on_leave_the_order_waits_until_the_leave_is_cancelled(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=1)
    person = world.consultants[0].id
    now = datetime.now(UTC)
    leave = await api.post(
        f"{V1}/staff/{person}/leave",
        json={
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(days=3)).isoformat(),
        },
        headers=admin(),
    )
    assert leave.status_code == 201, leave.text
    order = new_order(world)
    await start(dispatch, order)

    await wait_until_waiting(order.order_id)
    assert await assignments_of(order.order_id) == []

    cancelled = await api.delete(f"{V1}/staff/{person}/leave/{leave.json()['id']}", headers=admin())

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["woken"] == 1
    assert (await wait_for_round(order.order_id, 1)).staff_id == person


async def test_a_new_pattern_wakes_an_order_waiting_for_a_shift(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    order = new_order(world)
    await start(dispatch, order)

    await wait_until_waiting(order.order_id)

    everyday = {"shifts": [{"weekday": d, "start": "00:00", "end": "00:00"} for d in range(7)]}
    response = await api.put(f"{V1}/staff/{person}/patterns", json=everyday, headers=admin())

    assert response.status_code == 200, response.text
    assert response.json()["woken"] == 1
    assert (await wait_for_round(order.order_id, 1)).staff_id == person


async def test_roll_endpoint_rolls_and_wakes_waiting_orders(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    await set_rule("new", channels={})
    world = await make_store_world(consultants=1, on_duty=False)
    person = world.consultants[0].id
    order = new_order(world)
    await start(dispatch, order)

    await wait_until_waiting(order.order_id)
    await add_patterns(person, [(d, "00:00", "00:00") for d in range(7)])

    response = await api.post(f"{V1}/roster/roll", json={"days": 3}, headers=admin())

    assert response.status_code == 200, response.text
    assert (response.json()["staff"], response.json()["woken"]) == (1, 1)
    assert response.json()["slots_added"] == 4  # yesterday's (overnight) and 3 days
    assert (await wait_for_round(order.order_id, 1)).staff_id == person


async def test_leave_validation(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=1)
    person = world.consultants[0].id
    now = datetime.now(UTC)

    async def post(body: dict[str, Any]) -> httpx.Response:
        return await offline_api.post(f"{V1}/staff/{person}/leave", json=body, headers=admin())

    backwards = await post(
        {"starts_at": (now + timedelta(days=2)).isoformat(), "ends_at": now.isoformat()}
    )
    naive = await post({"starts_at": "2030-01-01T09:00:00", "ends_at": "2030-01-02T09:00:00"})
    over = await post(
        {
            "starts_at": (now - timedelta(days=3)).isoformat(),
            "ends_at": (now - timedelta(days=2)).isoformat(),
        }
    )

    assert backwards.status_code == 422 and "after starts_at" in backwards.text
    assert naive.status_code == 422 and "timezone" in naive.text
    assert over.status_code == 422 and "over already" in over.text
    unknown = await offline_api.delete(f"{V1}/staff/{person}/leave/999999", headers=admin())
    assert unknown.status_code == 404
