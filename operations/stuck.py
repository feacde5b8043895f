"""The stuck-order finder: orders that will not move on by themselves, each with its age and
the action that moves it (`o2o stuck`, `GET /api/v1/orders/stuck`, the console's page).

Kinds (see `StuckKind`): a workflow task that keeps failing; an activity that keeps failing
(a data error no retry can fix); waiting for a shift too long; escalated and untouched too
long; notices failed for good; the database and the workflow disagree.

The database kinds are one query each. The Temporal kinds list the running order workflows
(visibility) and describe each: fine for the thousands of open orders this system holds.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlmodel import col, select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from models import Notification, Order, OrderStatus
from models.db import session
from models.notifications import NoticeStatus
from operations.errors import OperationError
from operations.workflows import (
    RUNNING_ORDERS,
    OrderWorkflow,
    describe,
    workflow_task_failure,
)
from settings import settings

# An order in one of these is over in the database (the loop's cancel adds `cancelled`).
CLOSED_STATUSES = (OrderStatus.COMPLETED.value, "cancelled")
# Failure types that name bad data: retrying the same row gives the same answer.
DATA_ERRORS = frozenset(
    {"DataError", "IntegrityError", "ValueError", "KeyError", "LookupError", "AssertionError"}
)
DESCRIBE_AT_ONCE = 16
STUCK_REASON = "stuck: "  # the wait reason of an order whose step the database refused


class StuckKind(StrEnum):
    WORKFLOW_TASK_FAILING = "workflow_task_failing"
    ACTIVITY_FAILING = "activity_failing"
    WAITING_FOR_SHIFT = "waiting_for_shift"
    ESCALATED_UNTOUCHED = "escalated_untouched"
    NOTICES_FAILED = "notices_failed"
    OUT_OF_STEP = "out_of_step"


class Action(StrEnum):
    REDRIVE = "redrive"  # o2o redrive: a new selection, or a reset of a failed run
    REASSIGN = "reassign"  # a manager names someone (POST /orders/{id}/reassign)
    CANCEL = "cancel"  # nobody will ever take it
    RECONCILE = "reconcile"  # o2o reconcile: the database follows the workflow


# The kinds that ask Temporal (list and describe the running order workflows).
TEMPORAL_KINDS = frozenset(
    {StuckKind.WORKFLOW_TASK_FAILING, StuckKind.ACTIVITY_FAILING, StuckKind.OUT_OF_STEP}
)


@dataclass(frozen=True)
class Thresholds:
    waiting: timedelta = field(
        default_factory=lambda: timedelta(minutes=settings.STUCK_WAITING_MINUTES)
    )
    escalated: timedelta = field(
        default_factory=lambda: timedelta(minutes=settings.STUCK_ESCALATED_MINUTES)
    )
    activity_attempts: int = field(default_factory=lambda: settings.STUCK_ACTIVITY_ATTEMPTS)
    workflow_task_attempts: int = 2  # the second failure is no accident any more
    out_of_step: timedelta = field(
        default_factory=lambda: timedelta(seconds=settings.STUCK_OUT_OF_STEP_SECONDS)
    )


@dataclass(frozen=True)
class StuckOrder:
    order_id: str
    kind: StuckKind
    since: datetime
    age_seconds: float
    action: Action
    detail: str
    store_id: int | None = None


class VisibilityUnavailable(OperationError):
    """The Temporal server has no visibility store to list workflows with (the test server)."""


async def find_what_can_be_found(
    client: Client,
    *,
    thresholds: Thresholds | None = None,
    kinds: frozenset[StuckKind] | None = None,
) -> tuple[list[StuckOrder], str]:
    """`find_stuck`, or its database kinds alone with a note saying what went unchecked."""
    try:
        return await find_stuck(client, thresholds=thresholds, kinds=kinds), ""
    except VisibilityUnavailable as exc:
        found = await find_stuck(None, thresholds=thresholds, kinds=kinds, database_only=True)
        return found, str(exc)


async def find_stuck(
    client: Client | None,
    *,
    thresholds: Thresholds | None = None,
    kinds: frozenset[StuckKind] | None = None,
    now: datetime | None = None,
    database_only: bool = False,
) -> list[StuckOrder]:
    """Every stuck order (one line per order and kind), oldest first. Without a client only
    the database kinds can be looked for (`database_only`)."""
    t = thresholds or Thresholds()
    now = now or datetime.now(UTC)
    wanted = frozenset(StuckKind) if kinds is None else kinds
    found: list[StuckOrder] = []
    if wanted & {StuckKind.WAITING_FOR_SHIFT, StuckKind.ESCALATED_UNTOUCHED}:
        found += await _lingering(t, now, wanted)
    if StuckKind.NOTICES_FAILED in wanted:
        found += await _notices_failed(now)
    if StuckKind.ACTIVITY_FAILING in wanted:
        found += await _refused_by_the_database(now)
    if wanted & TEMPORAL_KINDS and not database_only:
        if client is None:
            raise ValueError("the Temporal kinds of stuck orders need a Temporal client")
        running = await _running_orders(client)
        found += await _failing(client, running, t, now, wanted)
        if StuckKind.OUT_OF_STEP in wanted:
            found += await _out_of_step(client, running, t, now)
    return sorted(found, key=lambda s: (s.since, s.order_id, s.kind))


def _stuck(
    order_id: str,
    kind: StuckKind,
    since: datetime,
    now: datetime,
    action: Action,
    detail: str,
    store_id: int | None = None,
) -> StuckOrder:
    return StuckOrder(
        order_id, kind, since, round((now - since).total_seconds(), 1), action, detail, store_id
    )


# ---------------------------------------------------------------- the database's kinds


async def _lingering(
    t: Thresholds, now: datetime, wanted: frozenset[StuckKind]
) -> list[StuckOrder]:
    """Waiting for a shift, or escalated with nobody acting, for longer than the threshold.
    `updated_at` moves with every transition, so it dates the state the order is in."""
    found: list[StuckOrder] = []
    checks = (
        (StuckKind.WAITING_FOR_SHIFT, OrderStatus.WAITING, t.waiting),
        (StuckKind.ESCALATED_UNTOUCHED, OrderStatus.ESCALATED, t.escalated),
    )
    async with session() as db:
        for kind, status, limit in checks:
            if kind not in wanted:
                continue
            rows = await db.exec(
                select(Order).where(
                    Order.status == status,
                    Order.updated_at <= now - limit,
                    # a refused step is listed once, as such (_refused_by_the_database)
                    col(Order.wait_reason).not_like(f"{STUCK_REASON}%"),
                )
            )
            for order in rows:
                found.append(_lingerer(order, kind, now))
    return found


def _lingerer(order: Order, kind: StuckKind, now: datetime) -> StuckOrder:
    if kind is StuckKind.WAITING_FOR_SHIFT:
        day = now - order.updated_at > timedelta(days=1)
        action = Action.CANCEL if day else Action.REASSIGN
        detail = (
            "no one of the store has been on duty for over a day: cancel, or reassign"
            if day
            else "nobody of the store is on duty: reassign to someone who can take it"
        )
    else:
        action = Action.REASSIGN
        detail = f"escalated after round {order.round}; no manager has acted: reassign"
    return _stuck(order.id, kind, order.updated_at, now, action, detail, order.store_id)


async def _notices_failed(now: datetime) -> list[StuckOrder]:
    """Open orders with a notice that failed for good (every retry spent, or refused)."""
    async with session() as db:
        rows = await db.exec(
            select(Order.id, Order.store_id, Notification.created_at, Notification.last_error)
            .join(Notification, col(Notification.order_id) == col(Order.id))
            .where(
                Notification.status == NoticeStatus.FAILED.value,
                col(Order.status).not_in(CLOSED_STATUSES),
            )
            .order_by(col(Notification.created_at))
        )
        failed: dict[str, list[tuple[int | None, datetime, str]]] = {}
        for order_id, store_id, at, error in rows:
            failed.setdefault(order_id, []).append((store_id, at, error))
    return [
        _stuck(
            order_id,
            StuckKind.NOTICES_FAILED,
            notices[0][1],
            now,
            Action.REASSIGN,
            f"{len(notices)} notice(s) failed for good, e.g. {notices[-1][2][:160]}; the "
            "assignee may not know: reach them another way, or reassign",
            notices[0][0],
        )
        for order_id, notices in failed.items()
    ]


async def _refused_by_the_database(now: datetime) -> list[StuckOrder]:
    """Orders whose step the database refused: the loop runs its database steps as local
    activities (invisible to Temporal's pending-activity list), stops retrying a refusal of
    the data, and parks the order as `stuck: <error>` for a manager (OrderDispatch._stuck)."""
    async with session() as db:
        rows = await db.exec(
            select(Order).where(
                col(Order.wait_reason).startswith(STUCK_REASON),
                col(Order.status).not_in(CLOSED_STATUSES),
            )
        )
        found = []
        for order in rows:
            refusal = order.wait_reason.removeprefix(STUCK_REASON)
            detail = f"the database refused a step ({refusal}), a data error: fix the row it "
            found.append(
                _stuck(
                    order.id,
                    StuckKind.ACTIVITY_FAILING,
                    order.updated_at,
                    now,
                    Action.REDRIVE,
                    detail + "names, then redrive",
                    order.store_id,
                )
            )
    return found


# ---------------------------------------------------------------- Temporal's kinds


async def _running_orders(client: Client) -> list[OrderWorkflow]:
    try:
        ids = [w.id async for w in client.list_workflows(RUNNING_ORDERS)]
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        raise VisibilityUnavailable(
            f"Temporal cannot list workflows ({exc.message}); the workflow kinds "
            f"({', '.join(sorted(TEMPORAL_KINDS))}) were not checked"
        ) from None
    gate = asyncio.Semaphore(DESCRIBE_AT_ONCE)

    async def one(workflow_id: str) -> OrderWorkflow | None:
        async with gate:
            return await describe(client, workflow_id.removeprefix("order-"))

    described = await asyncio.gather(*(one(i) for i in ids))
    return [w for w in described if w is not None and w.running]


async def _failing(
    client: Client,
    running: list[OrderWorkflow],
    t: Thresholds,
    now: datetime,
    wanted: frozenset[StuckKind],
) -> list[StuckOrder]:
    found: list[StuckOrder] = []
    for wf in running:
        order_id = wf.workflow_id.removeprefix("order-")
        task = wf.workflow_task
        if (
            StuckKind.WORKFLOW_TASK_FAILING in wanted
            and task is not None
            and task.attempt >= t.workflow_task_attempts
        ):
            failure = await workflow_task_failure(client, wf)
            found.append(
                _stuck(
                    order_id,
                    StuckKind.WORKFLOW_TASK_FAILING,
                    task.since or now,
                    now,
                    Action.REDRIVE,
                    f"workflow task failed {task.attempt - 1} times: {failure[:200]}; fix the "
                    "code or data, deploy, then redrive (resets to the last good task)",
                )
            )
        if StuckKind.ACTIVITY_FAILING not in wanted:
            continue
        for a in wf.activities:
            if a.attempt < t.activity_attempts:
                continue
            data = a.failure_type in DATA_ERRORS or any(e in a.failure for e in DATA_ERRORS)
            hint = "a data error: fix the row it names" if data else "check what it depends on"
            found.append(
                _stuck(
                    order_id,
                    StuckKind.ACTIVITY_FAILING,
                    a.since or now,
                    now,
                    Action.REDRIVE,
                    f"{a.what} failed {a.attempt - 1} times: {a.failure[:200]}; {hint}, then "
                    "redrive",
                )
            )
    return found


async def _out_of_step(
    client: Client, running: list[OrderWorkflow], t: Thresholds, now: datetime
) -> list[StuckOrder]:
    """Open in the database but closed or missing in Temporal, or the reverse."""
    running_ids = {w.workflow_id for w in running}
    found: list[StuckOrder] = []
    async with session() as db:
        orders = (
            await db.exec(
                select(Order).where(
                    Order.updated_at <= now - t.out_of_step,
                    col(Order.status).not_in(CLOSED_STATUSES)
                    | col(Order.workflow_id).in_(running_ids),
                )
            )
        ).all()
    for order in orders:
        open_in_db = order.status not in CLOSED_STATUSES
        if open_in_db == (order.workflow_id in running_ids):
            continue
        if not open_in_db:
            detail, action = (
                f"{order.status} in the database but its workflow still runs: reconcile",
                Action.RECONCILE,
            )
        else:
            wf = await describe(client, order.id)
            if wf is None:
                detail = (
                    f"{order.status} in the database, no workflow in Temporal: "
                    "redrive starts it again"
                )
                action = Action.REDRIVE
            elif wf.running:  # it started running since the list was read
                continue
            elif wf.status is not None and wf.status.name == "COMPLETED":
                detail = f"{order.status} in the database, its workflow completed: reconcile"
                action = Action.RECONCILE
            else:
                status = wf.status.name.lower() if wf.status else "closed"
                detail = f"{order.status} in the database, its workflow {status}: redrive resets it"
                action = Action.REDRIVE
        found.append(
            _stuck(
                order.id,
                StuckKind.OUT_OF_STEP,
                order.updated_at,
                now,
                action,
                detail,
                order.store_id,
            )
        )
    return found
