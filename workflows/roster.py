"""Roster workflows: the recurring maintenance run and the start of one person's leave.

`RosterMaintenanceWorkflow` is what the `roster-maintenance` Schedule starts (see
`worker.ensure_roster_schedule`): it rolls the duty roster forward for the next cycle,
releases open orders held by people who can no longer handle them, and wakes every order
waiting for a shift. `LeaveStartWorkflow` sleeps until a planned leave begins, then has the
person's open orders re-dispatched at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.roster import (
        LeaveStart,
        Released,
        ReleaseRequest,
        RollRequest,
        RollResult,
        RosterMaintenanceInput,
        RosterMaintenanceResult,
        SweepResult,
        WakeRequest,
        leave_workflow_id,
        release_absent_assignees,
        release_staff_orders,
        roll_roster,
        wake_waiting_orders,
    )

STEP_TIMEOUT = timedelta(minutes=5)
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=20,
)


@workflow.defn
class RosterMaintenanceWorkflow:
    """Roll the roster `days` ahead, release absent people's orders, wake waiting orders."""

    @workflow.run
    async def run(self, request: RosterMaintenanceInput) -> RosterMaintenanceResult:
        rolled: RollResult = await workflow.execute_activity(
            roll_roster,
            RollRequest(days=request.days),
            summary=f"roll duty slots {request.days} days ahead",
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        swept: SweepResult = await workflow.execute_activity(
            release_absent_assignees,
            summary="release orders held by inactive, moved or absent staff",
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        woken: int = await workflow.execute_activity(
            wake_waiting_orders,
            WakeRequest(store_ids=None),
            summary="wake the orders waiting for a shift",
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        result = RosterMaintenanceResult(
            staff=rolled.staff,
            slots_added=rolled.slots_added,
            released=sum(1 for r in swept.released if r.result == "redispatched"),
            woken=woken,
        )
        workflow.set_current_details(
            f"rolled {result.slots_added} slots for {result.staff} staff · "
            f"released {result.released} orders · woke {result.woken} waiting orders"
        )
        return result


@workflow.defn
class LeaveStartWorkflow:
    """Wait for a planned leave to begin, then re-dispatch the person's open orders."""

    @workflow.run
    async def run(self, leave: LeaveStart) -> list[Released]:
        wait = (leave.starts_at - workflow.now()).total_seconds()
        if wait > 0:
            await workflow.sleep(wait, summary=f"until staff {leave.staff_id}'s leave begins")
        released: list[Released] = await workflow.execute_activity(
            release_staff_orders,
            ReleaseRequest(
                staff_id=leave.staff_id,
                trigger="on leave",
                reason=leave.reason or f"leave {leave.leave_id} began",
                by=leave.by,
                leave_id=leave.leave_id,
                at=workflow.now(),
            ),
            summary=f"re-dispatch staff {leave.staff_id}'s open orders",
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=STEP_RETRY,
        )
        return released


ROSTER_WORKFLOWS = [RosterMaintenanceWorkflow, LeaveStartWorkflow]
__all__ = [
    "ROSTER_WORKFLOWS",
    "LeaveStart",
    "LeaveStartWorkflow",
    "RosterMaintenanceInput",
    "RosterMaintenanceResult",
    "RosterMaintenanceWorkflow",
    "leave_workflow_id",
]
