"""How points become a selection weight.

    weight(balance) = min(cap, max(WEIGHT_FLOOR, balance))      (cap optional)

The floor keeps every eligible person in the draw (nobody has no chance, however low their
balance); the cap stops one person with a huge balance from taking everything.
"""

from __future__ import annotations

WEIGHT_FLOOR = 1


def weight(balance: int, *, cap: int | None = None) -> int:
    value = max(WEIGHT_FLOOR, balance)
    if cap is not None:
        value = min(value, max(WEIGHT_FLOOR, cap))
    return value
