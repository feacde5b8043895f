"""The preferred consultant's checks and the routing trail's wording (pure: no database,
no Temporal)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dispatch.preferred import (
    Availability,
    Person,
    availability,
    preferred_for_store,
    relabel_trail,
    wish_note,
)
from dispatch.roster import Window
from dispatch.routing import StoreInfo, TrailStep, choose_store

AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
ANNA = Person(id=7, store_id=2, active=True, is_consultant=True)


def shift(start: datetime, hours: int = 8) -> Window:
    return Window(start, start + hours * HOUR)


# ---------------------------------------------------------------- wish_note


def test_no_wish_has_no_note() -> None:
    assert wish_note(None, None) is None


def test_a_wished_person_who_does_not_exist_is_named() -> None:
    assert wish_note(41, None) == "preferred consultant #41 does not exist"


def test_an_inactive_wished_person_is_named() -> None:
    gone = Person(id=7, store_id=2, active=False, is_consultant=True)
    assert wish_note(7, gone) == "preferred consultant #7 is inactive"


def test_an_active_wished_person_has_no_note() -> None:
    assert wish_note(7, ANNA) is None


# ---------------------------------------------------------------- relabel_trail


def test_a_store_without_consultants_is_passed_over_in_those_words() -> None:
    trail = [TrailStep("named", 3, "store inactive"), TrailStep("default", 4, "chosen")]
    assert relabel_trail(trail, unstaffed={3}, consultant_note=None) == [
        {"step": "named", "store_id": 3, "outcome": "no active consultant"},
        {"step": "default", "store_id": 4, "outcome": "chosen"},
    ]


def test_a_really_inactive_store_keeps_its_reason() -> None:
    trail = [TrailStep("named", 3, "store inactive")]
    assert relabel_trail(trail, unstaffed={5}, consultant_note=None)[0]["outcome"] == (
        "store inactive"
    )


def test_the_empty_consultant_step_says_why_the_wish_did_not_count() -> None:
    trail = [TrailStep("consultant", None, "customer named no consultant")]
    note = "preferred consultant #41 does not exist"
    assert relabel_trail(trail, unstaffed=set(), consultant_note=note)[0]["outcome"] == note
    # without a note the step keeps choose_store's wording
    assert relabel_trail(trail, unstaffed=set(), consultant_note=None)[0]["outcome"] == (
        "customer named no consultant"
    )


def test_relabelling_a_real_choice() -> None:
    """The trail of `choose_store` over a store passed over for having nobody: the store
    `choose_store` saw as inactive is recorded as having no active consultant."""
    stores = [
        StoreInfo(id=1, subsite_id=1, region_code="", city="", is_default=False, active=False),
        StoreInfo(id=2, subsite_id=1, region_code="", city="", is_default=True, active=True),
    ]
    choice = choose_store(stores=stores, named_store_id=1, head_office_store_id=2)
    trail = relabel_trail(choice.trail, unstaffed={1}, consultant_note=None)
    assert trail[0] == {"step": "named", "store_id": 1, "outcome": "no active consultant"}
    assert trail[-1]["store_id"] == 2 and trail[-1]["outcome"] == "chosen"


# ---------------------------------------------------------------- preferred_for_store


def test_the_wished_consultant_of_the_chosen_store_gets_the_first_round() -> None:
    assert preferred_for_store(ANNA, 2) == (7, "")


def test_a_consultant_of_another_store_is_not_assigned() -> None:
    assert preferred_for_store(ANNA, 3) == (
        None,
        "preferred consultant #7 works at store 2, the order is tied to store 3: not assigned",
    )


def test_a_wished_manager_is_not_assigned() -> None:
    manager = Person(id=9, store_id=2, active=True, is_consultant=False)
    assert preferred_for_store(manager, 2) == (
        None,
        "preferred staff #9 is not a consultant: not assigned",
    )


def test_no_wish_or_an_inactive_one_leaves_the_draw_to_decide_without_a_second_note() -> None:
    assert preferred_for_store(None, 2) == (None, "")
    gone = Person(id=7, store_id=2, active=False, is_consultant=True)
    assert preferred_for_store(gone, 2) == (None, "")


# ---------------------------------------------------------------- availability


def test_on_duty_and_not_on_leave_is_available() -> None:
    assert availability(ANNA, AT, [shift(AT - HOUR)], []) == Availability(True)


def test_inactive_non_consultant_and_paused_say_so_with_no_next_start() -> None:
    duty = [shift(AT - HOUR)]
    gone = Person(id=7, store_id=2, active=False, is_consultant=True)
    manager = Person(id=7, store_id=2, active=True, is_consultant=False)
    paused = Person(id=7, store_id=2, active=True, is_consultant=True, rotation_paused=True)
    assert availability(gone, AT, duty, []) == Availability(False, "staff 7 is inactive")
    assert availability(manager, AT, duty, []) == Availability(False, "staff 7 is not a consultant")
    assert availability(paused, AT, duty, []) == Availability(
        False, "staff 7 has paused their rotation (out of office)"
    )


def test_off_duty_names_the_next_shift() -> None:
    later = AT + 3 * HOUR
    assert availability(ANNA, AT, [shift(later)], []) == Availability(
        False, "staff 7 is not on duty", later
    )


def test_on_leave_during_a_shift_names_the_leave_and_when_they_are_back() -> None:
    back = AT + 2 * HOUR
    found = availability(ANNA, AT, [shift(AT - HOUR)], [Window(AT - HOUR, back)])
    assert found == Availability(False, "staff 7 is on leave", back)


def test_nobody_rostered_ahead_has_no_next_start() -> None:
    assert availability(ANNA, AT, [], []) == Availability(False, "staff 7 is not on duty")
