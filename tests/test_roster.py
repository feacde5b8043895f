"""Roster maths: weekly patterns in local time -> UTC windows, leave, on duty, next free (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from dispatch.roster import (
    WeeklyShift,
    Window,
    next_free_start,
    on_duty,
    subtract,
    windows_from_patterns,
)

SHANGHAI = "Asia/Shanghai"
MONDAY = date(2024, 6, 3)  # a Monday


def utc(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=UTC)


def at(hour: int, minute: int = 0, day: date = MONDAY) -> datetime:
    return utc(day, hour, minute)


def win(start_hour: float, end_hour: float, day: date = MONDAY) -> Window:
    """A window on `day` (UTC) between fractional hours, e.g. win(9, 12.5)."""
    base = utc(day, 0)
    return Window(base + timedelta(hours=start_hour), base + timedelta(hours=end_hour))


def shift(weekday: int, start: str, end: str) -> WeeklyShift:
    return WeeklyShift(weekday, time.fromisoformat(start), time.fromisoformat(end))


def every_day(start: str, end: str) -> list[WeeklyShift]:
    return [shift(d, start, end) for d in range(7)]


# ------------------------------------------------------------------ windows, no DST


def test_monday_day_shift_in_shanghai_is_01_to_09_utc() -> None:
    windows = windows_from_patterns(
        [shift(0, "09:00", "17:00")], zone=SHANGHAI, first_day=MONDAY, days=1
    )
    assert windows == [Window(at(1), at(9))]
    assert windows[0].starts_at.tzinfo is UTC


def test_overnight_shift_ends_the_next_local_day() -> None:
    windows = windows_from_patterns(
        [shift(0, "22:00", "06:00")], zone=SHANGHAI, first_day=MONDAY, days=1
    )
    tz = ZoneInfo(SHANGHAI)
    assert windows == [Window(at(14), at(22))]  # Mon 22:00 -> Tue 06:00 local (UTC+8)
    assert windows[0].starts_at.astimezone(tz) == datetime(2024, 6, 3, 22, tzinfo=tz)
    assert windows[0].ends_at.astimezone(tz) == datetime(2024, 6, 4, 6, tzinfo=tz)


def test_end_equal_to_start_is_a_24_hour_shift() -> None:
    windows = windows_from_patterns(
        [shift(0, "08:00", "08:00")], zone=SHANGHAI, first_day=MONDAY, days=1
    )
    assert windows == [Window(at(0), at(0, day=MONDAY + timedelta(days=1)))]


def test_several_shifts_on_one_weekday_come_out_sorted() -> None:
    shifts = [
        shift(1, "09:00", "17:00"),  # Tuesday
        shift(0, "13:00", "17:00"),  # Monday afternoon, given before the morning
        shift(0, "08:00", "12:00"),  # Monday morning
    ]
    windows = windows_from_patterns(shifts, zone=SHANGHAI, first_day=MONDAY, days=7)
    tuesday = MONDAY + timedelta(days=1)
    assert windows == [
        Window(at(0), at(4)),
        Window(at(5), at(9)),
        Window(at(1, day=tuesday), at(9, day=tuesday)),
    ]


def test_days_limits_the_local_dates_covered() -> None:
    wednesday = MONDAY + timedelta(days=2)
    windows = windows_from_patterns(
        every_day("09:00", "17:00"), zone=SHANGHAI, first_day=wednesday, days=3
    )
    assert [w.starts_at.date() for w in windows] == [
        wednesday,
        wednesday + timedelta(days=1),
        wednesday + timedelta(days=2),
    ]
    empty = windows_from_patterns(
        every_day("09:00", "17:00"), zone=SHANGHAI, first_day=MONDAY, days=0
    )
    assert empty == []


def test_a_weekly_shift_repeats_every_seven_days() -> None:
    windows = windows_from_patterns(
        [shift(0, "09:00", "17:00")], zone=SHANGHAI, first_day=MONDAY, days=21
    )
    assert [w.starts_at for w in windows] == [
        at(1),
        at(1) + timedelta(days=7),
        at(1) + timedelta(days=14),
    ]
    # A range that starts on Tuesday and is six days long contains no Monday.
    tuesday = MONDAY + timedelta(days=1)
    assert (
        windows_from_patterns(
            [shift(0, "09:00", "17:00")], zone=SHANGHAI, first_day=tuesday, days=6
        )
        == []
    )


def test_no_shifts_give_no_windows() -> None:
    assert windows_from_patterns([], zone=SHANGHAI, first_day=MONDAY, days=7) == []


# ------------------------------------------------------------------ windows across DST


@pytest.mark.parametrize(
    ("zone", "first_monday", "change_day", "utc_hour_before", "utc_hour_after"),
    [
        ("Europe/Berlin", date(2024, 3, 25), date(2024, 3, 31), 8, 7),  # spring forward
        ("Europe/Berlin", date(2024, 10, 21), date(2024, 10, 27), 7, 8),  # fall back
        ("America/New_York", date(2024, 3, 4), date(2024, 3, 10), 14, 13),
        ("America/New_York", date(2024, 10, 28), date(2024, 11, 3), 13, 14),
    ],
)
def test_local_start_stays_0900_while_the_utc_instant_moves_an_hour(
    zone: str, first_monday: date, change_day: date, utc_hour_before: int, utc_hour_after: int
) -> None:
    tz = ZoneInfo(zone)
    windows = windows_from_patterns(
        every_day("09:00", "17:00"), zone=zone, first_day=first_monday, days=14
    )
    assert len(windows) == 14
    for i, window in enumerate(windows):
        day = first_monday + timedelta(days=i)
        local_start = window.starts_at.astimezone(tz)
        local_end = window.ends_at.astimezone(tz)
        assert (local_start.date(), local_start.time()) == (day, time(9))
        assert (local_end.date(), local_end.time()) == (day, time(17))
        expected_hour = utc_hour_before if day < change_day else utc_hour_after
        assert window.starts_at == utc(day, expected_hour), day
        assert window.ends_at - window.starts_at == timedelta(hours=8)


def test_overnight_shift_across_spring_forward_is_an_hour_shorter() -> None:
    saturday = date(2024, 3, 30)  # Berlin moves 02:00 -> 03:00 on Sunday 31 March
    windows = windows_from_patterns(
        [shift(5, "22:00", "06:00")], zone="Europe/Berlin", first_day=saturday, days=1
    )
    assert windows == [Window(utc(saturday, 21), utc(date(2024, 3, 31), 4))]
    assert windows[0].ends_at - windows[0].starts_at == timedelta(hours=7)


def test_overnight_shift_across_fall_back_is_an_hour_longer() -> None:
    saturday = date(2024, 10, 26)  # Berlin moves 03:00 -> 02:00 on Sunday 27 October
    windows = windows_from_patterns(
        [shift(5, "22:00", "06:00")], zone="Europe/Berlin", first_day=saturday, days=1
    )
    assert windows == [Window(utc(saturday, 20), utc(date(2024, 10, 27), 5))]
    assert windows[0].ends_at - windows[0].starts_at == timedelta(hours=9)


@pytest.mark.parametrize(
    ("zone", "day", "expected_start"),
    [
        # 02:30 does not exist that night. The module resolves it with the earlier offset
        # (fold=0): 02:30 CET = 01:30 UTC, i.e. 03:30 CEST on the wall clock.
        ("Europe/Berlin", date(2024, 3, 31), datetime(2024, 3, 31, 1, 30, tzinfo=UTC)),
        # 02:30 EST = 07:30 UTC = 03:30 EDT.
        ("America/New_York", date(2024, 3, 10), datetime(2024, 3, 10, 7, 30, tzinfo=UTC)),
    ],
)
def test_a_start_inside_the_spring_forward_gap_resolves_an_hour_later(
    zone: str, day: date, expected_start: datetime
) -> None:
    windows = windows_from_patterns([shift(6, "02:30", "10:00")], zone=zone, first_day=day, days=1)
    assert len(windows) == 1
    assert windows[0].starts_at == expected_start
    assert windows[0].starts_at.astimezone(ZoneInfo(zone)).time() == time(3, 30)
    assert windows[0].ends_at.astimezone(ZoneInfo(zone)).time() == time(10)


def test_a_repeated_fall_back_time_takes_its_first_occurrence() -> None:
    day = date(2024, 10, 27)  # Berlin: 02:00-03:00 happens twice (CEST, then CET)
    windows = windows_from_patterns(
        [shift(6, "02:30", "10:00")], zone="Europe/Berlin", first_day=day, days=1
    )
    assert windows[0].starts_at == utc(day, 0, 30)  # 02:30 CEST, the first one
    assert windows[0].ends_at == utc(day, 9)  # 10:00 CET


def test_a_shift_inside_the_spring_forward_gap_never_ends_before_it_starts() -> None:
    # A shift 02:30-03:00 on the spring-forward night: the start resolves (as documented) to
    # 01:30 UTC, the end to 01:00 UTC. Such a window would cover nothing, yet
    # next_free_start() would report it as free, so it must not be produced at all.
    day = date(2024, 3, 31)
    windows = windows_from_patterns(
        [shift(6, "02:30", "03:00")], zone="Europe/Berlin", first_day=day, days=1
    )
    for window in windows:
        assert window.starts_at <= window.ends_at, window
    free = next_free_start(utc(day, 0), windows, [])
    assert free is None or on_duty(free, windows, [])


# ------------------------------------------------------------------ subtract


def test_subtract_with_no_leave_keeps_the_window() -> None:
    assert subtract(win(9, 17), []) == [win(9, 17)]


@pytest.mark.parametrize(
    "leave",
    [win(9, 17), win(8, 18), win(0, 24)],
    ids=["exactly", "wider", "whole-day"],
)
def test_subtract_leave_covering_all(leave: Window) -> None:
    assert subtract(win(9, 17), [leave]) == []


def test_subtract_leave_in_the_middle_splits_the_window() -> None:
    assert subtract(win(9, 17), [win(12, 13)]) == [win(9, 12), win(13, 17)]


@pytest.mark.parametrize("leave", [win(9, 11), win(7, 11)], ids=["from-start", "before-start"])
def test_subtract_leave_at_the_start(leave: Window) -> None:
    assert subtract(win(9, 17), [leave]) == [win(11, 17)]


@pytest.mark.parametrize("leave", [win(15, 17), win(15, 20)], ids=["to-end", "past-end"])
def test_subtract_leave_at_the_end(leave: Window) -> None:
    assert subtract(win(9, 17), [leave]) == [win(9, 15)]


@pytest.mark.parametrize(
    "leave",
    [win(5, 9), win(17, 20), win(1, 3), win(9, 17, day=MONDAY + timedelta(days=1))],
    ids=["touching-start", "touching-end", "earlier", "next-day"],
)
def test_subtract_leave_that_does_not_overlap(leave: Window) -> None:
    assert subtract(win(9, 17), [leave]) == [win(9, 17)]


def test_subtract_two_leaves() -> None:
    assert subtract(win(9, 17), [win(10, 11), win(14, 15)]) == [
        win(9, 10),
        win(11, 14),
        win(15, 17),
    ]
    # Given in the other order, the same parts remain.
    parts = subtract(win(9, 17), [win(14, 15), win(10, 11)])
    assert sorted(parts, key=lambda w: w.starts_at) == [win(9, 10), win(11, 14), win(15, 17)]


def test_subtract_overlapping_leaves() -> None:
    assert subtract(win(9, 17), [win(10, 13), win(12, 14)]) == [win(9, 10), win(14, 17)]
    assert subtract(win(9, 17), [win(8, 12), win(12, 18)]) == []


# ------------------------------------------------------------------ on_duty


def test_on_duty_inside_a_slot_and_not_on_leave() -> None:
    slots = [win(9, 17)]
    leaves = [win(12, 13)]
    assert on_duty(at(10), slots, leaves)
    assert on_duty(at(9), slots, leaves)  # the slot's start is included
    assert not on_duty(at(17), slots, leaves)  # its end is not
    assert not on_duty(at(8, 59), slots, leaves)
    assert not on_duty(at(12), slots, leaves)  # the leave's start is included
    assert not on_duty(at(12, 30), slots, leaves)
    assert on_duty(at(13), slots, leaves)  # the leave's end is not


def test_on_duty_needs_a_slot() -> None:
    assert not on_duty(at(10), [], [])
    assert not on_duty(at(10), [], [win(9, 11)])
    assert on_duty(at(10), [win(9, 11)], [win(9, 11, day=MONDAY + timedelta(days=1))])


# ------------------------------------------------------------------ next_free_start

TUESDAY = MONDAY + timedelta(days=1)
SLOTS = [win(9, 17), win(9, 17, day=TUESDAY)]


def test_next_free_start_inside_a_free_slot_is_now() -> None:
    assert next_free_start(at(10, 15), SLOTS, []) == at(10, 15)
    assert next_free_start(at(9), SLOTS, []) == at(9)


def test_next_free_start_before_a_slot_is_its_start() -> None:
    assert next_free_start(at(6), SLOTS, []) == at(9)
    assert next_free_start(at(17), SLOTS, []) == at(9, day=TUESDAY)  # the end is exclusive
    assert next_free_start(at(20), SLOTS, []) == at(9, day=TUESDAY)


def test_next_free_start_skips_a_slot_fully_covered_by_leave() -> None:
    assert next_free_start(at(6), SLOTS, [win(0, 24)]) == at(9, day=TUESDAY)


def test_next_free_start_after_a_partial_leave_is_the_leave_end() -> None:
    leaves = [win(9, 12)]
    assert next_free_start(at(6), SLOTS, leaves) == at(12)
    assert next_free_start(at(10), SLOTS, leaves) == at(12)  # now is on leave
    assert next_free_start(at(13), SLOTS, leaves) == at(13)


def test_next_free_start_ignores_the_order_of_the_slots() -> None:
    assert next_free_start(at(6), list(reversed(SLOTS)), []) == at(9)


@pytest.mark.parametrize(
    ("after", "slots", "leaves"),
    [
        (at(6), [], []),
        (at(6, day=TUESDAY + timedelta(days=1)), SLOTS, []),
        (at(17, day=TUESDAY), SLOTS, []),
        (at(6), SLOTS, [Window(at(0), at(0, day=TUESDAY + timedelta(days=1)))]),
    ],
    ids=["no-slots", "all-past", "at-last-end", "all-on-leave"],
)
def test_next_free_start_is_none_when_nothing_is_free(
    after: datetime, slots: list[Window], leaves: list[Window]
) -> None:
    assert next_free_start(after, slots, leaves) is None


def test_next_free_start_is_consistent_with_on_duty() -> None:
    slots = [win(9, 17), win(20, 26), win(9, 17, day=TUESDAY)]
    leaves = [win(8, 10), win(12, 13), win(21, 30)]
    for minutes in range(0, 48 * 60, 15):
        after = at(0) + timedelta(minutes=minutes)
        free = next_free_start(after, slots, leaves)
        if free is not None:
            assert free >= after
            assert on_duty(free, slots, leaves), (after, free)
