"""Weighted random ("roulette wheel") selection: `pick`, `select` and the decision record (pure)."""

from __future__ import annotations

import itertools
import json
import math
import random
from collections import Counter
from collections.abc import Sequence

import pytest

from dispatch.selection import Candidate, Decision, pick, select
from dispatch.weights import weight

# ------------------------------------------------------------------ helpers


def below(x: float) -> float:
    """The largest float strictly below `x`."""
    return math.nextafter(x, -math.inf)


def chi_square(observed: Sequence[int], expected: Sequence[float]) -> float:
    return sum((o - e) ** 2 / e for o, e in zip(observed, expected, strict=True))


def eligible_ids(candidates: Sequence[Candidate], *, rule_capacity: int | None) -> set[int]:
    """Who may be chosen at all, written out independently of the module."""
    ids = set()
    for c in candidates:
        cap = c.capacity if c.capacity is not None else rule_capacity
        if c.active and not c.paused and c.on_duty and (cap is None or c.open_orders < cap):
            ids.add(c.staff_id)
    return ids


def random_candidates(rng: random.Random) -> list[Candidate]:
    ids = rng.sample(range(1, 500), rng.randint(0, 8))
    return [
        Candidate(
            staff_id=staff_id,
            points=rng.randint(-20, 60),
            open_orders=rng.randint(0, 4),
            capacity=rng.choice([None, None, 1, 2, 3, 5]),
            on_duty=rng.random() < 0.8,
            active=rng.random() < 0.9,
            paused=rng.random() < 0.1,
        )
        for staff_id in ids
    ]


# ------------------------------------------------------------------ pick


def test_pick_draw_zero_chooses_the_first() -> None:
    assert pick([5, 1, 1], 0.0) == 0
    assert pick([1, 1000], 0.0) == 0
    assert pick([7], 0.0) == 0


@pytest.mark.parametrize(
    ("boundary_draw", "index_below", "index_at"),
    [
        # values [1, 2, 1, 4]: total 8, cumulative 1, 3, 4, 8 -> boundaries at 1/8, 3/8, 4/8.
        # A total that is a power of two keeps draw * total exact in binary floating point.
        (0.125, 0, 1),
        (0.375, 1, 2),
        (0.5, 2, 3),
    ],
)
def test_pick_just_below_a_boundary_vs_at_it(
    boundary_draw: float, index_below: int, index_at: int
) -> None:
    values = [1, 2, 1, 4]
    assert pick(values, below(boundary_draw)) == index_below
    # Each interval is half-open [start, end): the boundary itself belongs to the next one.
    assert pick(values, boundary_draw) == index_at


def test_pick_intervals_are_proportional_to_the_values() -> None:
    # values [2, 1, 5] over 8 eighths: draws k/8 for k = 0..7 land on 0,0,1,2,2,2,2,2.
    assert [pick([2, 1, 5], k / 8) for k in range(8)] == [0, 0, 1, 2, 2, 2, 2, 2]


@pytest.mark.parametrize("values", [[1, 2, 3, 4, 10], [1000, 1], [3], [1, 1, 1], [7, 13, 2]])
def test_pick_draw_near_one_chooses_the_last(values: list[int]) -> None:
    last = len(values) - 1
    assert pick(values, 0.999999) == last
    assert pick(values, below(1.0)) == last


@pytest.mark.parametrize("values", [[], [0], [1, 0, 2], [1, -1], [-5]])
def test_pick_rejects_values_that_are_not_all_positive(values: list[int]) -> None:
    with pytest.raises(ValueError):
        pick(values, 0.5)


@pytest.mark.parametrize("draw", [-0.1, below(0.0), 1.0, 1.5, math.nan, math.inf, -math.inf])
def test_pick_rejects_draws_outside_zero_one(draw: float) -> None:
    with pytest.raises(ValueError):
        pick([1, 2, 3], draw)


# ------------------------------------------------------------------ exclusivity


def test_exactly_one_eligible_person_is_chosen_for_thousands_of_random_sets() -> None:
    rng = random.Random(20240601)
    chosen_count = nobody_count = reused_count = 0
    for _ in range(4000):
        candidates = random_candidates(rng)
        all_ids = {c.staff_id for c in candidates}
        rule_capacity = rng.choice([None, 1, 2, 4])
        previous = frozenset(rng.sample(sorted(all_ids), min(len(all_ids), rng.randint(0, 3))))
        skip_previous = rng.random() < 0.8
        draw = rng.random()

        decision = select(
            candidates,
            draw=draw,
            previous=previous,
            skip_previous=skip_previous,
            rule_capacity=rule_capacity,
        )

        eligible = eligible_ids(candidates, rule_capacity=rule_capacity)
        fresh = eligible - previous if skip_previous else eligible
        pool = fresh or eligible
        if not pool:
            nobody_count += 1
            assert decision.staff_id is None
            assert decision.values == {}
            assert set(decision.excluded) == all_ids
            continue

        chosen_count += 1
        assert decision.staff_id in pool
        assert set(decision.values) == pool
        # Every candidate is either in the draw or excluded with a reason, never both.
        assert set(decision.excluded) == all_ids - pool
        assert all(decision.excluded.values())
        assert decision.reused_previous == (skip_previous and not fresh)
        reused_count += decision.reused_previous
        assert decision.total == sum(decision.values.values())
        assert all(v >= 1 for v in decision.values.values())
        assert decision.draw == draw
        # The draw lands inside the chosen person's slice of the wheel (ordered by staff id).
        order = sorted(decision.values)
        start = sum(decision.values[s] for s in order[: order.index(decision.staff_id)])
        end = start + decision.values[decision.staff_id]
        assert start <= draw * decision.total < end
    # The random sets really exercised every branch.
    assert chosen_count > 1000
    assert nobody_count > 20
    assert reused_count > 20


# ------------------------------------------------------------------ eligibility


def test_each_ineligible_candidate_is_excluded_with_its_reason() -> None:
    candidates = [
        Candidate(1, points=50, active=False),
        Candidate(2, points=50, paused=True),
        Candidate(3, points=50, on_duty=False),
        Candidate(4, points=50, open_orders=2, capacity=2),  # own cap reached
        Candidate(5, points=50, open_orders=3),  # rule's cap reached
        Candidate(6, points=5, open_orders=1, capacity=1),  # own cap below the rule's
        Candidate(7, points=5, open_orders=3, capacity=5),  # own cap above the rule's
        Candidate(8, points=5, open_orders=2),  # under the rule's cap
    ]
    for draw in (0.0, 0.5, below(1.0)):
        decision = select(candidates, draw=draw, rule_capacity=3)
        assert decision.excluded == {
            1: "inactive",
            2: "rotation paused",
            3: "not on duty",
            4: "at capacity (2/2)",
            5: "at capacity (3/3)",
            6: "at capacity (1/1)",
        }
        assert set(decision.values) == {7, 8}
        assert decision.staff_id in {7, 8}


def test_no_capacity_anywhere_means_no_cap() -> None:
    decision = select([Candidate(1, points=3, open_orders=10_000)], draw=0.3)
    assert decision.staff_id == 1
    assert decision.excluded == {}


def test_nobody_eligible_gives_no_choice_but_keeps_the_reasons() -> None:
    decision = select(
        [Candidate(1, points=9, on_duty=False), Candidate(2, points=9, paused=True)], draw=0.4
    )
    assert decision.staff_id is None
    assert decision.values == {}
    assert decision.total == 0
    assert decision.excluded == {1: "not on duty", 2: "rotation paused"}


def test_no_candidates_gives_no_choice() -> None:
    decision = select([], draw=0.4)
    assert decision.staff_id is None
    assert decision.excluded == {}


# ------------------------------------------------------------------ earlier assignees


def test_previous_assignees_are_skipped_while_someone_else_is_eligible() -> None:
    candidates = [Candidate(1, points=100), Candidate(2, points=100), Candidate(3, points=1)]
    for draw in (0.0, 0.25, 0.5, 0.75, below(1.0)):
        decision = select(candidates, draw=draw, previous=frozenset({1, 2}))
        assert decision.staff_id == 3
        assert decision.reused_previous is False
        assert decision.excluded == {1: "had this order before", 2: "had this order before"}
        assert decision.values == {3: 1}


def test_previous_assignee_is_reused_only_when_nobody_else_is_eligible() -> None:
    candidates = [
        Candidate(1, points=10),
        Candidate(2, points=10, on_duty=False),
        Candidate(3, points=10, open_orders=4, capacity=4),
    ]
    for draw in (0.0, 0.5, below(1.0)):
        decision = select(candidates, draw=draw, previous=frozenset({1}))
        assert decision.staff_id == 1
        assert decision.reused_previous is True
        assert decision.values == {1: 10}
        assert decision.excluded == {2: "not on duty", 3: "at capacity (4/4)"}


def test_several_previous_assignees_all_stay_in_the_draw_when_reused() -> None:
    candidates = [Candidate(1, points=1), Candidate(2, points=3)]
    decision = select(candidates, draw=0.0, previous=frozenset({1, 2}))
    assert (decision.staff_id, decision.reused_previous) == (1, True)
    assert decision.values == {1: 1, 2: 3}
    decision = select(candidates, draw=0.25, previous=frozenset({1, 2}))
    assert (decision.staff_id, decision.reused_previous) == (2, True)


def test_an_ineligible_previous_assignee_is_not_reused() -> None:
    candidates = [Candidate(1, points=10, on_duty=False)]
    decision = select(candidates, draw=0.5, previous=frozenset({1}))
    assert decision.staff_id is None
    assert decision.reused_previous is False
    assert decision.excluded == {1: "not on duty"}


def test_skip_previous_false_keeps_previous_assignees_in_the_draw() -> None:
    candidates = [Candidate(1, points=1), Candidate(2, points=1)]
    decision = select(candidates, draw=0.0, previous=frozenset({1}), skip_previous=False)
    assert decision.staff_id == 1  # the first slice of the wheel is staff 1's
    assert decision.values == {1: 1, 2: 1}
    assert decision.excluded == {}
    assert decision.reused_previous is False


# ------------------------------------------------------------------ order, cap, reason


def test_the_decision_does_not_depend_on_the_order_of_the_candidates() -> None:
    rng = random.Random(7)
    base = [Candidate(i, points=p) for i, p in [(31, 5), (4, 1), (17, 9), (8, 3), (22, 2)]]
    base.append(Candidate(9, points=4, on_duty=False))
    for _ in range(200):
        draw = rng.random()
        reference = select(base, draw=draw, previous=frozenset({17}))
        for _ in range(5):
            shuffled = base[:]
            rng.shuffle(shuffled)
            assert select(shuffled, draw=draw, previous=frozenset({17})) == reference


def test_every_permutation_gives_the_same_choice_for_every_draw() -> None:
    base = [Candidate(3, points=2), Candidate(1, points=1), Candidate(2, points=5)]
    draws = [k / 8 for k in range(8)]
    expected = [select(base, draw=d).staff_id for d in draws]
    # Slices in staff-id order: 1 -> [0, 1/8), 2 -> [1/8, 6/8), 3 -> [6/8, 1).
    assert expected == [1, 2, 2, 2, 2, 2, 3, 3]
    for perm in itertools.permutations(base):
        assert [select(perm, draw=d).staff_id for d in draws] == expected


def test_weight_cap_limits_the_values_in_the_draw() -> None:
    candidates = [Candidate(1, points=1), Candidate(2, points=100), Candidate(3, points=-4)]
    decision = select(candidates, draw=0.0, weight_cap=10)
    assert decision.values == {1: 1, 2: 10, 3: 1}
    assert decision.total == 12
    assert select(candidates, draw=below(1.0), weight_cap=10).staff_id == 3


def test_as_reason_is_json_serialisable_with_string_keys() -> None:
    decision = select(
        [
            Candidate(12, points=4),
            Candidate(3, points=-7),
            Candidate(40, points=2, on_duty=False),
            Candidate(5, points=8),
        ],
        draw=0.3,
        previous=frozenset({5}),
    )
    reason = decision.as_reason()
    text = json.dumps(reason)
    back = json.loads(text)
    assert back == reason
    assert back["values"] == {"3": 1, "12": 4}
    assert back["excluded"] == {"40": "not on duty", "5": "had this order before"}
    assert all(isinstance(k, str) for k in back["values"])
    assert all(isinstance(k, str) for k in back["excluded"])
    assert back["staff_id"] == decision.staff_id
    assert back["method"] == "weighted_random"
    assert back["draw"] == 0.3
    assert back["total"] == 5
    assert back["reused_previous"] is False
    # The decision itself is left untouched (its keys stay ints).
    assert set(decision.values) == {3, 12}


def test_as_reason_of_an_empty_decision() -> None:
    reason = select([Candidate(1, points=1, active=False)], draw=0.9).as_reason()
    assert json.loads(json.dumps(reason)) == {
        "staff_id": None,
        "method": "weighted_random",
        "values": {},
        "excluded": {"1": "inactive"},
        "draw": None,
        "total": 0,
        "reused_previous": False,
    }
    assert isinstance(Decision(staff_id=None, method="x").as_reason(), dict)


# ------------------------------------------------------------------ distribution

DRAWS = 20_000


def _draw_counts(candidates: list[Candidate], seed: int) -> Counter[int | None]:
    rng = random.Random(seed)
    return Counter(select(candidates, draw=rng.random()).staff_id for _ in range(DRAWS))


def test_choices_follow_value_over_total_chi_square() -> None:
    points = [1, 2, 3, 4, 10]
    candidates = [Candidate(i + 1, points=p) for i, p in enumerate(points)]
    counts = _draw_counts(candidates, seed=424242)
    total = sum(weight(p) for p in points)
    observed = [counts[i + 1] for i in range(len(points))]
    expected = [DRAWS * weight(p) / total for p in points]
    assert sum(observed) == DRAWS
    statistic = chi_square(observed, expected)
    # Goodness of fit, 5 categories -> df = 4; critical value at significance p = 0.001 is
    # 18.467. The seed is fixed, so the outcome is deterministic (statistic 10.42 with this
    # seed); a wrong mapping from draw to person (e.g. uniform, or reversed slices) gives
    # a statistic in the thousands.
    assert statistic < 18.467, (statistic, observed, expected)


def test_the_weight_floor_keeps_a_negative_balance_in_the_draw() -> None:
    candidates = [Candidate(1, points=-50), Candidate(2, points=4), Candidate(3, points=5)]
    assert select(candidates, draw=0.0).values == {1: 1, 2: 4, 3: 5}
    counts = _draw_counts(candidates, seed=99)
    observed = [counts[1], counts[2], counts[3]]
    expected = [DRAWS * 1 / 10, DRAWS * 4 / 10, DRAWS * 5 / 10]
    # df = 2 (3 categories); critical value at significance p = 0.001 is 13.816. Fixed seed
    # (statistic 0.15 with it).
    statistic = chi_square(observed, expected)
    assert statistic < 13.816, (statistic, observed, expected)
    # And directly: the -50 candidate is chosen about 1/10 of the time (the binomial standard
    # deviation is sqrt(20000 * 0.1 * 0.9) = 42.4; allow 5 of them).
    assert abs(counts[1] - DRAWS / 10) < 5 * 42.4


def test_with_everyone_excluded_the_latest_stays_out_while_anyone_else_is_eligible() -> None:
    people = [Candidate(staff_id=1, points=5), Candidate(staff_id=2, points=500)]
    for draw in (0.0, 0.5, below(1.0)):
        decision = select(people, draw=draw, previous=frozenset({1, 2}), latest=2)
        assert decision.staff_id == 1 and decision.reused_previous
        assert decision.excluded == {2: "had this order last"}
    alone = select(people[1:], draw=0.3, previous=frozenset({2}), latest=2)
    assert alone.staff_id == 2  # nobody else on duty: better them than no one


def test_someone_no_channel_reaches_is_not_selected() -> None:
    people = [Candidate(staff_id=1, points=5, reachable=False), Candidate(staff_id=2, points=5)]
    decision = select(people, draw=0.0)
    assert decision.staff_id == 2
    assert decision.excluded == {1: "no channel of the assigned notice reaches them"}
