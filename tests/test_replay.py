"""Recorded histories of each workflow type replay against the current code.

The JSON files beside this test are real histories, recorded from the scenarios in
test_durability.py (`make record-histories`). A change to workflow logic that would break a
running order fails here; such a change must be guarded with `workflow.patched`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from workflows.contracts import OrderInput, OrderView
from workflows.dispatch import ORDER_WORKFLOWS, OrderDispatch

HISTORIES = Path(__file__).parent / "histories"
RECORDED = {
    "new_order": "NewOrderWorkflow",
    "unassigned_order": "UnassignedOrderWorkflow",
    "assigned_unprocessed_order": "AssignedUnprocessedOrderWorkflow",
    # Recorded after the "preferred-consultant" patch: its marker and the wish's wait.
    "new_order_preferred_consultant": "NewOrderWorkflow",
}


def load(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    return WorkflowHistory.from_json(f"recorded-{name}", path.read_text())


@pytest.mark.parametrize("name", sorted(RECORDED))
async def test_recorded_history_replays_on_current_code(name: str) -> None:
    history = load(name)
    assert (
        history.events[0].workflow_execution_started_event_attributes.workflow_type.name
        == (RECORDED[name])
    )
    result = await Replayer(workflows=ORDER_WORKFLOWS).replay_workflow(history)
    assert result.replay_failure is None


@workflow.defn(name="NewOrderWorkflow", sandboxed=False)
class NewOrderWorkflowWithAnUnguardedChange(OrderDispatch):
    """The dispatch loop with a timer added in front and no `workflow.patched` guard."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        await workflow.sleep(1)
        return await self._dispatch(start)


async def test_an_unguarded_change_is_caught_as_nondeterministic() -> None:
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[NewOrderWorkflowWithAnUnguardedChange]).replay_workflow(
            load("new_order")
        )
