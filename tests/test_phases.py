"""The dispatch loop's phases: `next_phase` and `status_of` (pure, no Temporal)."""

from __future__ import annotations

import pytest

from dispatch.phases import Phase, Situation, escalation_due, next_phase, status_of


@pytest.mark.parametrize(
    ("situation", "expected"),
    [
        (Situation(routed=False), Phase.ROUTING),
        (Situation(routed=True), Phase.SELECTING),
        (Situation(routed=True, assignment="offered"), Phase.OFFERED),
        (Situation(routed=True, assignment="accepted"), Phase.ACCEPTED),
        (Situation(routed=True, nobody_free=True), Phase.WAITING_FOR_SHIFT),
        (Situation(routed=True, escalated=True), Phase.SELECTING),
        (Situation(routed=True, escalated=True, waits_for_manager=True), Phase.WAITING_FOR_MANAGER),
        # A manager's request is served whatever else holds: escalated, or nobody free.
        (
            Situation(routed=True, escalated=True, waits_for_manager=True, request_waiting=True),
            Phase.SELECTING,
        ),
        (Situation(routed=True, nobody_free=True, request_waiting=True), Phase.SELECTING),
        # The holder keeps it while a request waits: the handler takes it back first.
        (Situation(routed=True, assignment="offered", request_waiting=True), Phase.OFFERED),
        # An ended order stays ended, whatever else is true.
        (
            Situation(routed=True, ended=Phase.CANCELLED, assignment="offered", nobody_free=True),
            Phase.CANCELLED,
        ),
        (Situation(routed=False, ended=Phase.COMPLETED), Phase.COMPLETED),
    ],
)
def test_next_phase(situation: Situation, expected: Phase) -> None:
    assert next_phase(situation) is expected


@pytest.mark.parametrize(
    ("round_", "max_rounds", "escalated", "due"),
    [(0, 3, False, False), (2, 3, False, False), (3, 3, False, True), (5, 3, True, False)],
)
def test_escalation_is_due_once_past_the_rules_rounds(
    round_: int, max_rounds: int, escalated: bool, due: bool
) -> None:
    assert escalation_due(round_=round_, max_rounds=max_rounds, escalated=escalated) is due


def test_every_phase_has_a_status_of_the_projection() -> None:
    from models import OrderStatus

    statuses = {status_of(p, escalated=e) for p in Phase for e in (False, True)}
    assert statuses <= {s.value for s in OrderStatus}
    assert status_of(Phase.OFFERED, escalated=False) == "assigned"
    assert status_of(Phase.OFFERED, escalated=True) == "escalated"
    assert status_of(Phase.WAITING_FOR_SHIFT, escalated=True) == "waiting"
    assert status_of(Phase.WAITING_FOR_MANAGER, escalated=True) == "escalated"
    assert status_of(Phase.CANCELLED, escalated=True) == "cancelled"
    assert status_of(Phase.ACCEPTED, escalated=True) == "accepted"
