"""Recorded histories of each workflow type replay against the current code.

The JSON files in histories/ are real histories of the 1.0 loop, recorded from the scenarios
in test_durability.py and test_preferred_consultant.py (`make record-histories`). A change
to workflow logic that would break a running order fails here. From 1.0 on such a change
goes `workflow.patched(id)` → `workflow.deprecate_patch(id)` → plain code, one release each
(README, "Changing the workflow"): while an id is patched, the histories recorded before it
move to `histories/before-<id>/` and both generations replay; once no order of the old
generation can still be open, the folder goes with the `deprecate_patch` step.
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
SCENARIOS = {
    "new_order": "NewOrderWorkflow",
    "unassigned_order": "UnassignedOrderWorkflow",
    "assigned_unprocessed_order": "AssignedUnprocessedOrderWorkflow",
    # Recorded after the "preferred-consultant" patch: its marker and the wish's wait.
    "new_order_preferred_consultant": "NewOrderWorkflow",
}
# Only the 1.0 generation: the 0.x generations (and their patch ids) were retired with
# the 1.0 baseline; `o2o upgrade-check` finds 0.x orders that would still be open.
GENERATIONS = ("",)
RECORDED = {f"{g}{name}": kind for g in GENERATIONS for name, kind in SCENARIOS.items()}


def load(name: str) -> WorkflowHistory:
    path = HISTORIES / f"{name}.json"
    return WorkflowHistory.from_json(f"recorded-{name}", path.read_text())


def test_every_recorded_history_is_replayed() -> None:
    on_disk = {str(p.relative_to(HISTORIES).with_suffix("")) for p in HISTORIES.rglob("*.json")}
    assert on_disk == set(RECORDED)


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
        return await self._dispatch()


async def test_an_unguarded_change_is_caught_as_nondeterministic() -> None:
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[NewOrderWorkflowWithAnUnguardedChange]).replay_workflow(
            load("new_order")
        )


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_database_steps_are_local_activities_and_only_messages_go_by_the_queue(
    name: str,
) -> None:
    events = load(name).events
    regular = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    markers = [e for e in events if e.HasField("marker_recorded_event_attributes")]
    assert regular == {"send_notice"}
    assert len(markers) >= 3  # route, rule, select, projection writes


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_the_1_0_histories_carry_no_patch_marker(name: str) -> None:
    patches = [
        e
        for e in load(name).events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]
    assert patches == []


@workflow.defn(name="NewOrderWorkflow", sandboxed=False)
class NewOrderWorkflowWithAGuardedChange(OrderDispatch):
    """The first step of the rule: the same timer, behind `workflow.patched`."""

    @workflow.run
    async def run(self, start: OrderInput) -> OrderView:
        if workflow.patched("example-change"):
            await workflow.sleep(1)
        return await self._dispatch()


async def test_a_change_behind_patched_replays_the_1_0_histories() -> None:
    result = await Replayer(workflows=[NewOrderWorkflowWithAGuardedChange]).replay_workflow(
        load("new_order")
    )
    assert result.replay_failure is None
