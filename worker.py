"""The worker: runs the order and roster workflows and their activities from settings.

At start it makes sure the `roster-maintenance` Schedule exists (created once, idempotently).

Tuned for a small machine (see README "Performance and reliability"); more workers on more
machines share the task queue — Temporal is the only scheduler.

A worker takes one of three roles (`o2o worker --role`): `all` (the default, one process
does everything), or the two halves of it, run as two processes on one task queue:
`workflows` (the order and roster workflows and the database steps they run as local
activities) and `activities` (notices, status webhooks, the roster's activities). Python
runs a process on one core; split, a backlog of notices (an SMTP outage, a burst) no longer
queues the workflow tasks that answer staff and fire timers behind it on that core
(docs/benchmarks, "2026-12-05, later").
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.notices import send_notice
from activities.orders import ORDER_ACTIVITIES
from activities.roster import ROSTER_ACTIVITIES, ROSTER_DAYS
from activities.webhooks import WEBHOOK_ACTIVITIES
from models.db import require_current_schema
from notify.sms import close_clients as close_sms_clients
from settings import WorkerRole, settings
from workflows.dispatch import ORDER_WORKFLOWS
from workflows.roster import ROSTER_WORKFLOWS, RosterMaintenanceInput, RosterMaintenanceWorkflow

ROSTER_SCHEDULE_ID = "roster-maintenance"
ACTIVITIES: list[Callable[..., Any]] = [
    *ORDER_ACTIVITIES,
    send_notice,
    *ROSTER_ACTIVITIES,
    *WEBHOOK_ACTIVITIES,
]
ROSTER_EVERY = timedelta(hours=6)


def build_worker(
    client: Client,
    *,
    task_queue: str | None = None,
    max_cached_workflows: int | None = None,
    activities: Sequence[Callable[..., Any]] | None = None,
    role: WorkerRole = WorkerRole.ALL,
) -> Worker:
    """The worker for orders and the roster; `activities` replaces the set (tests slow one).

    Every role registers every activity: the workflows' local activities run in the
    workflows process, which then polls no activity tasks (`no_remote_activities`)."""
    cache = (
        settings.WORKER_MAX_CACHED_WORKFLOWS
        if max_cached_workflows is None
        else max_cached_workflows
    )
    return Worker(
        client,
        task_queue=task_queue or settings.TEMPORAL_TASK_QUEUE,
        workflows=([] if role == WorkerRole.ACTIVITIES else [*ORDER_WORKFLOWS, *ROSTER_WORKFLOWS]),
        activities=activities or ACTIVITIES,
        no_remote_activities=role == WorkerRole.WORKFLOWS,
        max_concurrent_workflow_tasks=settings.WORKER_MAX_CONCURRENT_WORKFLOW_TASKS,
        max_concurrent_activities=settings.WORKER_MAX_CONCURRENT_ACTIVITIES,
        max_concurrent_local_activities=settings.WORKER_MAX_CONCURRENT_LOCAL_ACTIVITIES,
        # Above the open orders: a timer that wakes an evicted order replays its whole
        # history first (300 open orders with 100 slots: timers 30 s late; docs/benchmarks).
        max_cached_workflows=cache,
        # Still sandboxed (determinism checks stay on), but modules are imported once per
        # process instead of once per workflow run: 18 % of worker CPU became 5 % (bench).
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_all_modules()
        ),
    )


def roster_schedule(task_queue: str) -> Schedule:
    """Every 6 hours: roll the roster 14 days ahead, release absent people's orders, wake the
    orders waiting for a shift. A run still going when the next is due makes that one skip."""
    return Schedule(
        action=ScheduleActionStartWorkflow(
            RosterMaintenanceWorkflow.run,
            RosterMaintenanceInput(days=ROSTER_DAYS),
            id=ROSTER_SCHEDULE_ID,  # the server appends the scheduled time
            task_queue=task_queue,
            execution_timeout=timedelta(hours=1),
            static_summary=f"Roster maintenance: roll {ROSTER_DAYS} days ahead, wake waiters",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=ROSTER_EVERY)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=ROSTER_EVERY),
        state=ScheduleState(note="created by the worker at start (worker.ensure_roster_schedule)"),
    )


async def ensure_roster_schedule(client: Client, *, task_queue: str | None = None) -> bool:
    """Create the `roster-maintenance` schedule if it is missing; True if created now.

    Idempotent: every worker start calls it. When the schedule exists, its action, spec and
    policy are brought in step with this code; its state (paused by an operator, say) is kept.
    """
    schedule = roster_schedule(task_queue or settings.TEMPORAL_TASK_QUEUE)
    try:
        # The first run comes at once, so a fresh installation has its roster straight away.
        await client.create_schedule(ROSTER_SCHEDULE_ID, schedule, trigger_immediately=True)
        return True
    except ScheduleAlreadyRunningError:
        pass
    handle: ScheduleHandle = client.get_schedule_handle(ROSTER_SCHEDULE_ID)

    def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
        return ScheduleUpdate(replace(schedule, state=current.description.schedule.state))

    await handle.update(keep_state)
    return False


async def main(
    client: Client | None = None, stop: asyncio.Event | None = None, role: WorkerRole | None = None
) -> None:
    from observability.runtime import metrics_address, worker_runtime
    from starter import connect

    require_current_schema()  # migrations run once, elsewhere (`o2o migrate`)
    if client is None:
        runtime = worker_runtime()
        client = await connect(runtime=runtime)
        if runtime is not None:
            print(f"metrics on http://{metrics_address()}/metrics")
    role = role or settings.WORKER_ROLE
    created = await ensure_roster_schedule(client)
    print(f"schedule {ROSTER_SCHEDULE_ID!r} " + ("created" if created else "already there"))
    try:
        async with build_worker(client, role=role):
            print(
                f"worker ({role}) polling {settings.TEMPORAL_TASK_QUEUE!r}"
                f" on {settings.TEMPORAL_ADDRESS}"
            )
            await (stop or asyncio.Event()).wait()
    finally:
        await close_sms_clients()


if __name__ == "__main__":
    asyncio.run(main())
