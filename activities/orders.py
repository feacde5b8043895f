"""The order activities, gathered: the one list the worker registers, and the names the
workflows call as `acts.<name>` (the activity names Temporal records are the functions' names,
whichever module defines them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.lookups import (
    check_staff_in_store,
    consultant_available,
    next_duty_start,
    store_contacts,
)
from activities.projection import record_transition
from activities.routing import route_order
from activities.selection import assign_order, load_rule

ORDER_ACTIVITIES: list[Callable[..., Any]] = [
    route_order,
    consultant_available,
    load_rule,
    assign_order,
    record_transition,
    next_duty_start,
    store_contacts,
    check_staff_in_store,
]
