"""What Temporal knows about an order's workflow, read once and shaped for the operations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryReverseRequest
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from starter import workflow_id
from workflows.dispatch import ORDER_WORKFLOWS

# Visibility query for the order workflows still running (the roster's are not orders).
RUNNING_ORDERS = "ExecutionStatus = 'Running' AND WorkflowType IN ({})".format(
    ", ".join(f"'{w.__name__}'" for w in ORDER_WORKFLOWS)
)


@dataclass(frozen=True)
class FailingTask:
    """A workflow task or an activity that has been tried `attempt` times and failed."""

    what: str  # "workflow task" or "activity <name>"
    attempt: int
    since: datetime | None
    failure: str  # the last failure's message, first line
    failure_type: str = ""  # an application error's type, or the Python exception's name


@dataclass(frozen=True)
class OrderWorkflow:
    """One order's workflow as Temporal describes it (None fields: not known)."""

    workflow_id: str
    run_id: str
    status: WorkflowExecutionStatus | None
    workflow_task: FailingTask | None
    activities: tuple[FailingTask, ...]
    close_time: datetime | None

    @property
    def running(self) -> bool:
        return self.status is WorkflowExecutionStatus.RUNNING


async def describe(client: Client, order_id: str) -> OrderWorkflow | None:
    """The order's latest run, or None when Temporal has no workflow for it."""
    try:
        description = await client.get_workflow_handle(workflow_id(order_id)).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return shape(description)


def shape(d: WorkflowExecutionDescription) -> OrderWorkflow:
    raw = d.raw_description
    task: FailingTask | None = None
    if raw.HasField("pending_workflow_task") and raw.pending_workflow_task.attempt > 1:
        pending = raw.pending_workflow_task
        task = FailingTask(
            what="workflow task",
            attempt=pending.attempt,
            since=pending.original_scheduled_time.ToDatetime().astimezone()
            if pending.HasField("original_scheduled_time")
            else None,
            failure="",  # filled in by `workflow_task_failure` for the few that need it
        )
    return OrderWorkflow(
        workflow_id=d.id,
        run_id=d.run_id,
        status=d.status,
        workflow_task=task,
        activities=tuple(_activity(a) for a in raw.pending_activities if a.attempt > 1),
        close_time=d.close_time,
    )


def _activity(a: PendingActivityInfo) -> FailingTask:
    failure = a.last_failure
    kind = (
        failure.application_failure_info.type
        if failure.HasField("application_failure_info")
        else ""
    )
    return FailingTask(
        what=f"activity {a.activity_type.name}",
        attempt=a.attempt,
        since=a.scheduled_time.ToDatetime().astimezone() if a.HasField("scheduled_time") else None,
        failure=(failure.message.splitlines() or [""])[0],
        failure_type=kind,
    )


async def workflow_task_failure(client: Client, wf: OrderWorkflow) -> str:
    """The last workflow-task failure's message, from the newest events of the history."""
    response = await client.workflow_service.get_workflow_execution_history_reverse(
        GetWorkflowExecutionHistoryReverseRequest(
            namespace=client.namespace,
            execution=WorkflowExecution(workflow_id=wf.workflow_id, run_id=wf.run_id),
            maximum_page_size=20,
        )
    )
    for event in response.history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            message = event.workflow_task_failed_event_attributes.failure.message
            return (message.splitlines() or [""])[0]
    return "the workflow task fails on every attempt (see the worker's log)"
