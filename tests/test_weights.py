"""Points -> selection weight: weight(balance) = min(cap, max(WEIGHT_FLOOR, balance)) (pure)."""

from __future__ import annotations

import pytest

from dispatch.weights import WEIGHT_FLOOR, weight


def test_the_floor_is_one() -> None:
    assert WEIGHT_FLOOR == 1


@pytest.mark.parametrize(
    ("balance", "expected"),
    [(-1_000_000, 1), (-50, 1), (-1, 1), (0, 1), (1, 1), (2, 2), (7, 7), (10**9, 10**9)],
)
def test_without_a_cap_the_balance_is_floored_at_one(balance: int, expected: int) -> None:
    assert weight(balance) == expected
    assert weight(balance, cap=None) == expected


@pytest.mark.parametrize(
    ("balance", "cap", "expected"),
    [
        (100, 10, 10),  # above the cap: capped
        (10, 10, 10),  # at the cap
        (9, 10, 9),  # below the cap: unchanged
        (-50, 10, 1),  # the floor still applies under a cap
        (0, 1, 1),
        (5, 1, 1),  # a cap of 1 makes everyone equal
    ],
)
def test_the_cap_limits_the_weight(balance: int, cap: int, expected: int) -> None:
    assert weight(balance, cap=cap) == expected


@pytest.mark.parametrize(("balance", "cap"), [(100, 0), (100, -5), (-3, 0), (0, -100), (1, 0)])
def test_a_cap_below_the_floor_gives_the_floor(balance: int, cap: int) -> None:
    # Nobody drops out of the draw, whatever the configured cap.
    assert weight(balance, cap=cap) == WEIGHT_FLOOR


def test_the_documented_formula_over_a_grid() -> None:
    for balance in range(-30, 31):
        assert weight(balance) == max(1, balance)
        for cap in range(-5, 26):
            value = weight(balance, cap=cap)
            assert value == min(max(1, cap), max(1, balance))
            assert value >= 1
