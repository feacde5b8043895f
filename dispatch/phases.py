"""The phases of an order's dispatch loop and the pure decision of which comes next.

The workflow (`workflows/dispatch.py`) keeps one `phase` and asks `next_phase` what to do
at the top of every turn of its loop; the order's status (API, projection, search
attribute) is read from the phase with `status_of`. No I/O and no Temporal here: the rules
are tested like `dispatch/selection.py`, in tests/test_phases.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Phase(StrEnum):
    ROUTING = "routing"  # tying the order to a store
    SELECTING = "selecting"  # choosing this round's assignee (the round's row may land now)
    OFFERED = "offered"  # with one person, waiting for their accept
    ACCEPTED = "accepted"  # accepted, waiting for it to be processed
    WAITING_FOR_SHIFT = "waiting_for_shift"  # nobody can take it now (see `wait_reason`)
    WAITING_FOR_MANAGER = "waiting_for_manager"  # escalated; the rule says a manager acts next
    COMPLETED = "completed"
    CANCELLED = "cancelled"


ENDED = frozenset({Phase.COMPLETED, Phase.CANCELLED})

# Why an order waits in WAITING_FOR_SHIFT (the projection's and the view's `wait_reason`).
NO_ROSTER = "no roster"  # no duty slot ahead at all: escalated at once
NOBODY_FREE = "nobody free"  # someone is on duty, but all at their cap
NEXT_SHIFT = "next shift"  # nobody on duty now; a shift is ahead
WISH = "preferred consultant's shift"  # the customer's consultant starts soon


@dataclass(frozen=True)
class Situation:
    """What the loop knows at the top of a turn; all `next_phase` needs."""

    routed: bool
    ended: Phase | None = None  # COMPLETED or CANCELLED once an update ended the order
    assignment: str | None = None  # the current assignment's status: offered | accepted
    escalated: bool = False
    waits_for_manager: bool = False  # the rule's after_escalation is wait_for_manager
    request_waiting: bool = False  # a manager's (or the import's) request is to be served
    nobody_free: bool = False  # the last selection found nobody


def next_phase(s: Situation) -> Phase:
    """The phase the order is in, hence what the loop does next."""
    if s.ended is not None:
        return s.ended
    if not s.routed:
        return Phase.ROUTING
    if s.assignment == "accepted":
        return Phase.ACCEPTED
    if s.assignment == "offered":
        return Phase.OFFERED
    if s.request_waiting:
        return Phase.SELECTING  # a manager's request is served whatever else holds
    if s.escalated and s.waits_for_manager:
        return Phase.WAITING_FOR_MANAGER
    if s.nobody_free:
        return Phase.WAITING_FOR_SHIFT
    return Phase.SELECTING


def escalation_due(*, round_: int, max_rounds: int, escalated: bool) -> bool:
    """Past the rule's rounds and not escalated yet: escalate before the next selection."""
    return not escalated and round_ >= max_rounds


_STATUS = {
    Phase.ROUTING: "received",
    Phase.SELECTING: "received",
    Phase.OFFERED: "assigned",
    Phase.ACCEPTED: "accepted",
    Phase.WAITING_FOR_SHIFT: "waiting",
    Phase.WAITING_FOR_MANAGER: "escalated",
    Phase.COMPLETED: "completed",
    Phase.CANCELLED: "cancelled",
}


def status_of(phase: Phase, *, escalated: bool) -> str:
    """The order's status (models.OrderStatus) in this phase. An escalated order reads
    `escalated` while it is with nobody or offered; waiting, accepted and ended say so."""
    if escalated and phase in (Phase.SELECTING, Phase.OFFERED, Phase.ROUTING):
        return "escalated"
    return _STATUS[phase]
