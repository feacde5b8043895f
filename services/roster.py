"""The roster in SQL: the one definition of "on duty" and "on leave" at an instant.

A window covers `at` when it starts at or before it and ends after it (the same half-open
rule as `dispatch.roster.Window.covers`, which the pure code uses on loaded rows). Someone
is on duty when one of their duty slots covers `at` and none of their leaves does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists
from sqlmodel import col

from models import DutySlot, Leave


def covers(starts_at: Any, ends_at: Any, at: Any) -> ColumnElement[bool]:
    """`[starts_at, ends_at)` contains `at`."""
    return and_(starts_at <= at, ends_at > at)


def on_leave(staff_id: Any, at: datetime | Any) -> ColumnElement[bool]:
    """A leave of `staff_id` covers `at`."""
    return exists().where(
        col(Leave.staff_id) == staff_id, covers(col(Leave.starts_at), col(Leave.ends_at), at)
    )


def on_duty(staff_id: Any, at: datetime) -> ColumnElement[bool]:
    """A duty slot of `staff_id` covers `at` and no leave of theirs does."""
    slot = exists().where(
        col(DutySlot.staff_id) == staff_id,
        covers(col(DutySlot.starts_at), col(DutySlot.ends_at), at),
    )
    return and_(slot, ~on_leave(staff_id, at))
