"""Recorded histories of each workflow type replay against the current code.

The JSON files in histories/ are real histories, recorded from the scenarios in
test_durability.py and test_preferred_consultant.py (`make record-histories`). A change to
workflow logic that would break a running order fails here; such a change must be guarded
with `workflow.patched`. When one is, the histories recorded before it move to a folder named
after the patch (they are the orders still running on the old branch) and the scenarios are
recorded again: both generations must replay.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from workflows.contracts import OrderInput, OrderView
from workflows.dispatch import (
    DEADLINE_FROM_NOTICE,
    ORDER_WORKFLOWS,
    SERVE_REQUESTS,
    OrderDispatch,
)

HISTORIES = Path(__file__).parent / "histories"
SCENARIOS = {
    "new_order": "NewOrderWorkflow",
    "unassigned_order": "UnassignedOrderWorkflow",
    "assigned_unprocessed_order": "AssignedUnprocessedOrderWorkflow",
    # Recorded after the "preferred-consultant" patch: its marker and the wish's wait.
    "new_order_preferred_consultant": "NewOrderWorkflow",
}
# Current code, then each patch's predecessors: before "deadline-from-notice" (the accept
# clock ran from the selection), before "serve-requests" (no marker, the old request
# handling), before "local-lookups" (lookups as regular activities).
GENERATIONS = (
    "",
    "before-deadline-from-notice/",
    "before-serve-requests/",
    "before-local-lookups/",
)
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
        return await self._dispatch(start)


async def test_an_unguarded_change_is_caught_as_nondeterministic() -> None:
    with pytest.raises(NondeterminismError):
        await Replayer(workflows=[NewOrderWorkflowWithAnUnguardedChange]).replay_workflow(
            load("new_order")
        )


@pytest.mark.parametrize(
    ("name", "local"),
    [
        ("new_order", True),
        ("before-deadline-from-notice/new_order", True),
        ("before-serve-requests/new_order", True),
        ("before-local-lookups/new_order", False),
    ],
)
def test_lookups_are_local_activities_since_the_patch(name: str, local: bool) -> None:
    events = load(name).events
    regular = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
    }
    markers = [e for e in events if e.HasField("marker_recorded_event_attributes")]
    assert ("load_rule" in regular) is not local
    assert "route_order" in regular and "assign_order" in regular  # writes stay regular
    assert bool(markers) is local


def patches_in(name: str) -> list[str]:
    return [
        json.loads(e.marker_recorded_event_attributes.details["patch-data"].payloads[0].data)["id"]
        for e in load(name).events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_patch"
    ]


@pytest.mark.parametrize(
    ("name", "serve_requests", "deadline_from_notice"),
    [
        ("new_order", True, True),
        ("before-deadline-from-notice/new_order", True, False),
        ("before-serve-requests/new_order", False, False),
    ],
)
def test_each_generation_carries_the_markers_of_its_patches(
    name: str, serve_requests: bool, deadline_from_notice: bool
) -> None:
    patches = patches_in(name)
    assert (SERVE_REQUESTS in patches) is serve_requests
    assert (DEADLINE_FROM_NOTICE in patches) is deadline_from_notice
