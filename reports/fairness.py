"""The fairness check: did the draws give each consultant the share their points imply?

Every first-round assignment records its draw (dispatch.selection.Decision.as_reason):
each candidate's value, hence the chance p_i = value_i / total that they were chosen,
given who was on duty and free at that draw. Over many draws a consultant's expected
number of first-round offers is E_i = sum of their p_i, and what they got is O_i.
Pearson's statistic X² = sum (O_i - E_i)² / E_i is compared with the chi-square
distribution with k - 1 degrees of freedom (k consultants who had a chance): a small
p-value says the offers are further from the points than chance explains. With candidate
sets that change between draws this is the usual approximation, sound when every E_i is
at least 5 (Cochran's rule) — below that the report warns that the sample is too small.
Pure: no I/O.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_EXPECTED = 5.0  # Cochran: each expected count at least this for the approximation
MIN_DRAWS = 30


@dataclass(frozen=True)
class Share:
    staff_id: int
    offers: int  # first-round offers they got (O_i)
    expected: float  # what their points implied (E_i)
    share: float  # offers / draws
    implied: float  # expected / draws


@dataclass(frozen=True)
class Fairness:
    draws: int
    shares: list[Share]
    chi_square: float | None
    degrees: int
    p_value: float | None
    too_small: bool
    verdict: str


def chi2_sf(x: float, degrees: int) -> float:
    """P(X >= x) for X chi-square with `degrees` degrees of freedom: the regularized upper
    incomplete gamma Q(degrees/2, x/2) (series below a+1, continued fraction above; as in
    Numerical Recipes, `gammq`)."""
    if degrees < 1:
        raise ValueError("degrees must be >= 1")
    if x <= 0:
        return 1.0
    a, z = degrees / 2.0, x / 2.0
    log_front = a * math.log(z) - z - math.lgamma(a)
    if z < a + 1.0:  # series for P, then Q = 1 - P
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= z / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300  # Lentz's continued fraction for Q
    b = z + 1.0 - a
    c, d = 1.0 / tiny, 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


@dataclass(frozen=True)
class RecordedDraw:
    values: Mapping[int, int]  # each candidate's value in the draw
    chosen: int


def fairness(draws: Iterable[RecordedDraw]) -> Fairness:
    expected: dict[int, float] = defaultdict(float)
    offers: dict[int, int] = defaultdict(int)
    n = 0
    for d in draws:
        total = sum(d.values.values())
        if total <= 0 or d.chosen not in d.values:
            continue  # not a weighted draw (a manager's choice): no chance to compare with
        n += 1
        offers[d.chosen] += 1
        for staff_id, value in d.values.items():
            expected[staff_id] += value / total
    people = sorted(expected)
    shares = (
        [Share(s, offers[s], expected[s], offers[s] / n, expected[s] / n) for s in people]
        if n
        else []
    )
    chances = [s for s in shares if s.expected > 0]
    degrees = len(chances) - 1
    too_small = n < MIN_DRAWS or any(s.expected < MIN_EXPECTED for s in chances)
    if degrees < 1:
        return Fairness(n, shares, None, 0, None, True, verdict(None, too_small=True, draws=n))
    x2 = sum((s.offers - s.expected) ** 2 / s.expected for s in chances)
    p = chi2_sf(x2, degrees)
    return Fairness(n, shares, x2, degrees, p, too_small, verdict(p, too_small=too_small, draws=n))


# The verdicts, by judgement (the console translates these same sentences): {p} and {draws}
# are filled in; a too-small sample adds TOO_SMALL.
VERDICTS = {
    "not_enough": "Not enough to judge: {draws} draws with at least two consultants in them.",
    "far": "The offers are further from what the points imply than chance explains"
    " (p = {p}): look at who gets more or less than their share.",
    "leans": "The offers lean away from the points a little more than chance usually does"
    " (p = {p}); watch the next period.",
    "matches": "The offers match the shares the points imply (p = {p}).",
}
TOO_SMALL = "The sample is too small to judge reliably: wait for more orders."


def judgement(p: float | None) -> str:
    """Which verdict the p-value earns (a key of VERDICTS)."""
    if p is None:
        return "not_enough"
    return "far" if p < 0.01 else "leans" if p < 0.05 else "matches"


def verdict(p: float | None, *, too_small: bool, draws: int) -> str:
    """The figures in one plain sentence."""
    sentence = VERDICTS[judgement(p)].format(p="" if p is None else f"{p:.3g}", draws=draws)
    return f"{sentence} {TOO_SMALL}" if too_small and p is not None else sentence
