"""The accept clock starts when the assignee is told (the "deadline-from-notice" patch): a
notice that leaves late — a backlog after a worker restart, a slow relay — does not cost the
person their chance, and does not make the order go round again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity

from activities.notices import NoticeOutcome, NoticeRequest, send_notice
from starter import start_order
from tests.api_helpers import assignments_of
from tests.conftest import Dispatch, dispatch_with
from tests.factories import make_store_world
from tests.test_manager_requests import events_of_kind
from tests.test_order_workflow import new_order, set_rule, wait_for_round

HELD = 4.0  # seconds the first round's notices are held back, twice the accept timeout


class HeldNotices:
    """`send_notice` that holds round 1's "assigned" notices until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    @activity.defn(name="send_notice")
    async def send_notice(self, request: NoticeRequest) -> NoticeOutcome:
        if request.kind == "assigned" and request.round == 1:
            await self.release.wait()
        return await send_notice(request)


@pytest.fixture
async def held(dispatch: Dispatch) -> AsyncIterator[tuple[Dispatch, HeldNotices]]:
    notices = HeldNotices()
    async with dispatch_with(dispatch, {send_notice: notices.send_notice}) as held_back:
        yield held_back, notices


async def test_the_accept_deadline_runs_from_the_notice_not_from_the_selection(
    held: tuple[Dispatch, HeldNotices],
) -> None:
    dispatch, notices = held
    await set_rule(
        accept_timeout_seconds=2,
        reminder_before_seconds=0,
        reassign_period_seconds=0,
        max_rounds=10,
    )
    world = await make_store_world(consultants=2)
    order = new_order(world)
    await start_order(order, client=dispatch.client, task_queue=dispatch.task_queue)
    first = await wait_for_round(order.order_id, 1)
    assert first.accept_deadline - first.assigned_at == timedelta(seconds=2)

    await asyncio.sleep(HELD)  # the selection's own deadline has long passed
    rows = await assignments_of(order.order_id)
    assert [(r.round, r.outcome) for r in rows] == [(1, "offered")]

    notices.release.set()
    second = await wait_for_round(order.order_id, 2)  # nobody accepts: it times out later
    first = (await assignments_of(order.order_id))[0]
    assert first.outcome == "timed_out"
    held_for = first.accept_deadline - first.assigned_at
    assert held_for >= timedelta(seconds=HELD + 2), held_for  # told after HELD, then 2 s
    assert first.closed_at is not None and first.closed_at >= first.accept_deadline
    moved = await events_of_kind(order.order_id, "deadline_moved")
    assert [(e.detail["round"], e.detail["staff_id"]) for e in moved] == [(1, first.staff_id)]
    # Round 2's notice was not held: it was told at once, its deadline stays where it was.
    assert second.accept_deadline - second.assigned_at == timedelta(seconds=2)
