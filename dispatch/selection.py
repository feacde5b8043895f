"""Weighted random selection of one staff member (the patent's claim 2).

Every eligible person gets a value > 0 from their points; one draw in [0, total) over the
cumulative values (a "roulette wheel") picks exactly one, with probability value / total.
The decision keeps its inputs so it can be stored as the assignment's reason.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from dispatch.weights import weight


@dataclass(frozen=True, slots=True)
class Candidate:
    staff_id: int
    points: int
    open_orders: int = 0
    capacity: int | None = None  # the person's own cap; None means the rule's
    on_duty: bool = True
    active: bool = True
    paused: bool = False
    reachable: bool = True  # some channel of the rule's `assigned` notice reaches them


@dataclass(frozen=True, slots=True)
class Decision:
    """Who was chosen (None if nobody could be) and everything the choice was made from."""

    staff_id: int | None
    method: str
    values: dict[int, int] = field(default_factory=dict)  # candidate -> value in the draw
    excluded: dict[int, str] = field(default_factory=dict)  # staff -> why not in the draw
    draw: float | None = None
    total: int = 0
    reused_previous: bool = False  # only earlier assignees were left, so they were allowed

    def as_reason(self) -> dict[str, Any]:
        reason = asdict(self)
        # JSON object keys are strings; keep them readable in the database and the UI.
        reason["values"] = {str(k): v for k, v in self.values.items()}
        reason["excluded"] = {str(k): v for k, v in self.excluded.items()}
        return reason


def pick(values: Sequence[int], draw: float) -> int:
    """Index chosen by `draw` in [0, 1) over the cumulative `values` (all > 0)."""
    if not values or any(v <= 0 for v in values):
        raise ValueError("every value must be > 0 and there must be at least one")
    if not 0.0 <= draw < 1.0:
        raise ValueError("draw must be in [0, 1)")
    cumulative = list(itertools.accumulate(values))
    return bisect.bisect_right(cumulative, draw * cumulative[-1])


def _why_ineligible(c: Candidate, *, rule_capacity: int | None) -> str | None:
    if not c.active:
        return "inactive"
    if c.paused:
        return "rotation paused"
    if not c.reachable:
        return "no channel of the assigned notice reaches them"
    if not c.on_duty:
        return "not on duty"
    capacity = c.capacity if c.capacity is not None else rule_capacity
    if capacity is not None and c.open_orders >= capacity:
        return f"at capacity ({c.open_orders}/{capacity})"
    return None


def select(
    candidates: Sequence[Candidate],
    *,
    draw: float,
    previous: frozenset[int] = frozenset(),
    skip_previous: bool = True,
    latest: int | None = None,
    rule_capacity: int | None = None,
    weight_cap: int | None = None,
) -> Decision:
    """Choose one of `candidates`; `previous` let this order time out or declined it.

    When everyone eligible is in `previous`, the exclusions are reset, but `latest` (the
    last person who had it) stays out as long as anyone else is eligible: an order is never
    handed straight back to the person who just declined it or let it time out."""
    excluded: dict[int, str] = {}
    eligible: list[Candidate] = []
    for c in candidates:
        why = _why_ineligible(c, rule_capacity=rule_capacity)
        if why:
            excluded[c.staff_id] = why
        else:
            eligible.append(c)

    fresh = [c for c in eligible if c.staff_id not in previous] if skip_previous else eligible
    reused = bool(skip_previous and eligible and not fresh)
    # Nobody fresh on duty: an earlier assignee is better than no one, the latest last.
    pool = fresh or [c for c in eligible if c.staff_id != latest] or eligible
    for c in eligible:
        if c not in pool:
            excluded[c.staff_id] = "had this order last" if reused else "had this order before"
    if not pool:
        return Decision(staff_id=None, method="weighted_random", excluded=excluded)

    pool = sorted(pool, key=lambda c: c.staff_id)  # the draw must not depend on query order
    values = [weight(c.points, cap=weight_cap) for c in pool]
    chosen = pool[pick(values, draw)]
    return Decision(
        staff_id=chosen.staff_id,
        method="weighted_random",
        values={c.staff_id: v for c, v in zip(pool, values, strict=True)},
        excluded=excluded,
        draw=draw,
        total=sum(values),
        reused_previous=reused,
    )
