"""Roster activities: roll concrete duty slots forward from each person's weekly pattern."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from temporalio import activity

from dispatch.roster import WeeklyShift, windows_from_patterns
from models import DutyPattern, DutySlot, SlotSource, Staff, Store
from models.db import session


@dataclass(frozen=True)
class RollRequest:
    days: int = 14
    first_day: date | None = None  # default: today (UTC date)


@dataclass(frozen=True)
class RollResult:
    staff: int
    slots_added: int


@activity.defn
async def roll_roster(request: RollRequest) -> RollResult:
    """Generate every pattern slot of the next `days` days; slots already there are kept."""
    first_day = request.first_day or datetime.now(UTC).date()
    async with session() as db:
        rows = (
            await db.exec(
                select(DutyPattern, Staff, Store)
                .join(Staff, col(Staff.id) == DutyPattern.staff_id)
                .join(Store, col(Store.id) == Staff.store_id)
                .where(Staff.active)
            )
        ).all()
        by_staff: dict[int, tuple[Staff, Store, list[WeeklyShift]]] = {}
        for pattern, staff, store in rows:
            assert staff.id is not None
            entry = by_staff.setdefault(staff.id, (staff, store, []))
            entry[2].append(WeeklyShift(pattern.weekday, pattern.start, pattern.end))
        added = 0
        for staff_id, (_, store, shifts) in by_staff.items():
            # Start a day early so an overnight shift from yesterday is covered too.
            windows = windows_from_patterns(
                shifts,
                zone=store.timezone,
                first_day=first_day - timedelta(days=1),
                days=request.days + 1,
            )
            if not windows:
                continue
            result = await db.exec(
                insert(DutySlot)
                .values(
                    [
                        {
                            "staff_id": staff_id,
                            "store_id": store.id,
                            "starts_at": w.starts_at,
                            "ends_at": w.ends_at,
                            "source": SlotSource.PATTERN.value,
                        }
                        for w in windows
                    ]
                )
                .on_conflict_do_nothing(constraint="one_slot_per_start")
            )
            added += result.rowcount or 0
        await db.commit()
    return RollResult(staff=len(by_staff), slots_added=added)
