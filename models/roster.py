"""The duty roster: weekly patterns, the concrete slots rolled forward from them, leave."""

from __future__ import annotations

from datetime import datetime, time
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, timestamp


class DutyPattern(SQLModel, table=True):
    """A weekly shift in the store's local time; `end <= start` means it ends the next day."""

    __tablename__ = "duty_pattern"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start: time
    end: time

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        UniqueConstraint("staff_id", "weekday", "start", name="one_pattern_per_start"),
    )


class SlotSource(StrEnum):
    PATTERN = "pattern"
    SWAP = "swap"
    MANUAL = "manual"


class DutySlot(SQLModel, table=True):
    """A concrete duty window. Generated ahead from patterns; swaps and manual slots override."""

    __tablename__ = "duty_slot"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    store_id: int = Field(foreign_key="store.id")
    starts_at: datetime = timestamp()
    ends_at: datetime = timestamp()
    source: str = enum_field(SlotSource, default=SlotSource.PATTERN)
    # A swapped slot names whose pattern it came from, so the roll never brings that back.
    replaces_staff_id: int | None = Field(default=None, foreign_key="staff.id")

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="slot_positive"),
        UniqueConstraint("staff_id", "starts_at", name="one_slot_per_start"),
        Index("duty_slot_store_window", "store_id", "starts_at", "ends_at"),
        enum_check("source", SlotSource),
    )


class Leave(SQLModel, table=True):
    """Time off: overrides every slot it overlaps."""

    __tablename__ = "leave"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    starts_at: datetime = timestamp()
    ends_at: datetime = timestamp()
    reason: str = Field(default="", max_length=200)

    __table_args__ = (CheckConstraint("ends_at > starts_at", name="leave_positive"),)
