"""Roster maths: concrete duty windows from weekly patterns, and the next moment someone is free.

Patterns are in the store's local time; windows are aware UTC instants, so a daylight-saving
change moves the UTC instant of a shift but never its local start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class WeeklyShift:
    weekday: int  # 0 = Monday
    start: time
    end: time  # end <= start: the shift ends on the next day


@dataclass(frozen=True, slots=True)
class Window:
    starts_at: datetime
    ends_at: datetime

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


def _local(day: date, at: time, zone: ZoneInfo) -> datetime:
    # A wall time inside a spring-forward gap resolves with the earlier offset (fold=0), i.e.
    # an hour later in real time; a repeated autumn time takes its first occurrence.
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def windows_from_patterns(
    shifts: Iterable[WeeklyShift], *, zone: str, first_day: date, days: int
) -> list[Window]:
    """Every window the shifts produce on `days` local dates starting at `first_day`."""
    tz = ZoneInfo(zone)
    by_weekday: dict[int, list[WeeklyShift]] = {}
    for shift in shifts:
        by_weekday.setdefault(shift.weekday, []).append(shift)
    windows: list[Window] = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        for shift in by_weekday.get(day.weekday(), []):
            end_day = day if shift.end > shift.start else day + timedelta(days=1)
            window = Window(_local(day, shift.start, tz), _local(end_day, shift.end, tz))
            if window.ends_at > window.starts_at:  # a shift wholly inside a DST gap never happens
                windows.append(window)
    return sorted(windows, key=lambda w: w.starts_at)


def subtract(window: Window, leaves: Sequence[Window]) -> list[Window]:
    """The parts of `window` that no leave covers."""
    parts = [window]
    for leave in leaves:
        remaining: list[Window] = []
        for part in parts:
            if leave.ends_at <= part.starts_at or leave.starts_at >= part.ends_at:
                remaining.append(part)
                continue
            if leave.starts_at > part.starts_at:
                remaining.append(Window(part.starts_at, leave.starts_at))
            if leave.ends_at < part.ends_at:
                remaining.append(Window(leave.ends_at, part.ends_at))
        parts = remaining
    return parts


def on_duty(at: datetime, slots: Sequence[Window], leaves: Sequence[Window]) -> bool:
    return any(slot.covers(at) for slot in slots) and not any(lv.covers(at) for lv in leaves)


def next_free_start(
    after: datetime, slots: Sequence[Window], leaves: Sequence[Window]
) -> datetime | None:
    """The first instant at or after `after` when a slot is not covered by leave, if any."""
    best: datetime | None = None
    for slot in slots:
        for part in subtract(slot, leaves):
            if part.ends_at <= after:
                continue
            start = max(part.starts_at, after)
            if best is None or start < best:
                best = start
    return best
