"""The customer's wish in the dispatch loop: their consultant when free, else wait or fall back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlmodel import select

from models import DutySlot, OrderEvent
from models.db import session
from tests.conftest import Dispatch, eventually
from tests.factories import StoreWorld, make_store_world
from tests.test_durability import record_history
from tests.test_order_workflow import new_order, set_rule, start, wait_for_round
from workflows.contracts import StaffAction
from workflows.dispatch import NewOrderWorkflow


async def shift_later(world: StoreWorld, staff_id: int, *, hours: float) -> datetime:
    """Take `staff_id` off duty until `hours` from now (their next shift)."""
    starts = datetime.now(UTC) + timedelta(hours=hours)
    async with session() as db:
        await db.exec(delete(DutySlot).where(DutySlot.staff_id == staff_id))
        db.add(
            DutySlot(
                staff_id=staff_id,
                store_id=world.store.id,
                starts_at=starts,
                ends_at=starts + timedelta(hours=8),
            )
        )
        await db.commit()
    return starts


async def waiting_rule_and_store() -> StoreWorld:
    """The rule waits up to two hours for a preferred consultant; a store of three."""
    await set_rule(
        wish_fallback="wait_for_shift", wish_wait_seconds=7200, reminder_before_seconds=0
    )
    return await make_store_world(consultants=3)


async def events(order_id: str, kind: str) -> list[OrderEvent]:
    async with session() as db:
        rows = await db.exec(
            select(OrderEvent).where(OrderEvent.order_id == order_id, OrderEvent.kind == kind)
        )
        return list(rows.all())


async def test_preferred_consultant_on_duty_gets_the_first_round(dispatch: Dispatch) -> None:
    world = await make_store_world(consultants=4)
    wanted = world.consultants[2]
    order = new_order(world, preferred_staff_id=wanted.id)

    await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    assert (first.staff_id, first.reason["method"]) == (wanted.id, "named")
    assert first.reason["note"] == "by customer: the customer's preferred consultant"


async def test_off_duty_preferred_consultant_is_waited_for_when_the_rule_says_so(
    dispatch: Dispatch,
) -> None:
    world = await waiting_rule_and_store()
    wanted = world.consultants[1]
    shift = await shift_later(world, wanted.id, hours=1)
    order = new_order(world, preferred_staff_id=wanted.id)
    handle = await start(dispatch, order)

    async def waiting() -> None:
        assert (await handle.query(NewOrderWorkflow.live_state)).status == "waiting"
        assert len(await events(order.order_id, "waiting")) == 1

    await eventually(waiting)
    await dispatch.env.sleep(timedelta(hours=1, minutes=1))
    first = await wait_for_round(order.order_id, 1)

    assert first.staff_id == wanted.id and first.assigned_at >= shift
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=wanted.id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=wanted.id))
    await handle.result()
    await record_history(handle, "new_order_preferred_consultant")


async def test_off_duty_preferred_consultant_falls_back_to_their_store(
    dispatch: Dispatch,
) -> None:
    await set_rule(wish_fallback="store")
    world = await make_store_world(consultants=3)
    wanted = world.consultants[0]
    await shift_later(world, wanted.id, hours=5)
    order = new_order(world, preferred_staff_id=wanted.id)

    await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)

    assert first.staff_id != wanted.id and first.reason["method"] == "weighted_random"
    [fallback] = await events(order.order_id, "wish_fallback")
    assert fallback.detail["staff_id"] == wanted.id
    assert "not on duty" in fallback.detail["note"]


async def test_a_wait_for_the_consultant_ends_only_for_a_change_that_concerns_them(
    dispatch: Dispatch,
) -> None:
    world = await waiting_rule_and_store()
    wanted, colleague = world.consultants[1], world.consultants[2]
    assert wanted.id is not None and colleague.id is not None
    await shift_later(world, wanted.id, hours=1)
    order = new_order(world, preferred_staff_id=wanted.id)
    handle = await start(dispatch, order)

    async def waiting() -> None:
        view = await handle.query(NewOrderWorkflow.live_state)
        assert view.phase == "waiting_for_shift"
        assert view.wait_reason == "preferred consultant's shift"

    await eventually(waiting)
    # A colleague's roster changed: the wait for the consultant goes on.
    await handle.signal(NewOrderWorkflow.roster_changed, [colleague.id])
    await handle.query(NewOrderWorkflow.live_state)  # the signal has been taken in
    await waiting()
    assert await events(order.order_id, "wish_fallback") == []

    # Their own roster changed (still off duty): the order looks again, and goes to the store.
    await handle.signal(NewOrderWorkflow.roster_changed, [wanted.id])
    first = await wait_for_round(order.order_id, 1)
    assert first.staff_id != wanted.id
    assert len(await events(order.order_id, "wish_fallback")) == 1
