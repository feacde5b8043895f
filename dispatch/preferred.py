"""The customer's preferred consultant and the routing trail's wording (pure).

Routing (`activities/routing.py`) and the availability look-up (`activities/lookups.py`)
load the rows; these functions decide what they mean:

- `wish_note`: why a wished consultant cannot steer routing (missing or inactive);
- `relabel_trail`: the trail of `dispatch.routing.choose_store` in the words the order's
  story uses (a store passed over for having no active consultant says so, and the
  consultant step names why the wish did not count);
- `preferred_for_store`: whether the first round goes to the wished consultant, once the
  store is chosen, or the note why not;
- `availability`: whether the wished consultant can take an order at an instant, and why not.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dispatch.roster import Window, next_free_start, on_duty
from dispatch.routing import TrailStep


@dataclass(frozen=True, slots=True)
class Person:
    """What the decisions read of a staff member."""

    id: int
    store_id: int | None
    active: bool
    is_consultant: bool
    rotation_paused: bool = False


@dataclass(frozen=True, slots=True)
class Availability:
    available: bool
    reason: str = ""  # why not ("" when available)
    next_duty_start: datetime | None = None  # only when the roster alone stands in the way


def wish_note(wish_id: int | None, person: Person | None) -> str | None:
    """Why the wished consultant (`wish_id`, loaded as `person`) cannot lead routing."""
    if wish_id is not None and person is None:
        return f"preferred consultant #{wish_id} does not exist"
    if person is not None and not person.active:
        return f"preferred consultant #{wish_id} is inactive"
    return None


def relabel_trail(
    trail: Iterable[TrailStep], *, unstaffed: Collection[int | None], consultant_note: str | None
) -> list[dict[str, Any]]:
    """The trail as recorded: `choose_store` sees a store without an active consultant as
    inactive (it can never take an order), the story names the real reason; an empty
    consultant step names why the wish did not count, when there was one."""
    relabelled = []
    for t in trail:
        outcome = t.outcome
        if t.store_id in unstaffed and outcome == "store inactive":
            outcome = "no active consultant"
        elif t.step == "consultant" and t.store_id is None and consultant_note:
            outcome = consultant_note
        relabelled.append({"step": t.step, "store_id": t.store_id, "outcome": outcome})
    return relabelled


def preferred_for_store(person: Person | None, store_id: int | None) -> tuple[int | None, str]:
    """The consultant the first round goes to in the chosen store (None: the draw decides),
    and a note when an active wished person cannot be given the order ("" otherwise)."""
    if person is None or not person.active:
        return None, ""  # already told by `wish_note`
    if not person.is_consultant:
        return None, f"preferred staff #{person.id} is not a consultant: not assigned"
    if person.store_id != store_id:
        return None, (
            f"preferred consultant #{person.id} works at store {person.store_id}, "
            f"the order is tied to store {store_id}: not assigned"
        )
    return person.id, ""


def availability(
    person: Person, at: datetime, duty: Sequence[Window], away: Sequence[Window]
) -> Availability:
    """Can `person` take an order at `at` given their duty windows and leaves.

    Available means: active, a consultant, rotation not paused, on duty at `at` and not on
    leave. Capacity is not counted: the customer asked for this person. When only the
    roster stands in the way, `next_duty_start` says when they are next on duty (for the
    rule's `wait_for_shift`); a paused rotation has no known end, so None.
    """
    if not person.active:
        return Availability(False, f"staff {person.id} is inactive")
    if not person.is_consultant:
        return Availability(False, f"staff {person.id} is not a consultant")
    if person.rotation_paused:
        return Availability(False, f"staff {person.id} has paused their rotation (out of office)")
    if on_duty(at, duty, away):
        return Availability(True)
    on_leave = any(w.covers(at) for w in duty) and any(w.covers(at) for w in away)
    why = f"staff {person.id} is " + ("on leave" if on_leave else "not on duty")
    return Availability(False, why, next_free_start(at, duty, away))
