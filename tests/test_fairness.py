"""The fairness check: the chi-square tail against textbook values, seeded runs of the real
selection with known weights (fair, and rigged), and a report over draws recorded by real
orders on the time-skipping server, through GET /api/v1/reports/fairness."""

from __future__ import annotations

import random

import httpx
import pytest

from dispatch.selection import Candidate, select
from reports.fairness import RecordedDraw, chi2_sf, fairness
from tests.api_helpers import admin, manager_of
from tests.conftest import Dispatch
from tests.factories import make_store_world
from tests.test_api_orders import offered

POINTS = {1: 100, 2: 200, 3: 300, 4: 400}


@pytest.mark.parametrize(
    ("x", "degrees", "tail"),
    [(3.841459, 1, 0.05), (5.991465, 2, 0.05), (11.344867, 3, 0.01), (0.0, 2, 1.0)],
)
def test_the_chi_square_tail_matches_the_tables(x: float, degrees: int, tail: float) -> None:
    assert chi2_sf(x, degrees) == pytest.approx(tail, rel=1e-5)


def seeded_draws(n: int, seed: int, *, rig: bool = False) -> list[RecordedDraw]:
    """`n` draws of the real selection; a changing roster (person 4 off duty every third
    draw), as in a store whose shifts overlap."""
    rng = random.Random(seed)
    draws = []
    for i in range(n):
        people = [
            Candidate(staff_id=s, points=p, on_duty=not (s == 4 and i % 3 == 0))
            for s, p in POINTS.items()
        ]
        decision = select(people, draw=rng.random())
        assert decision.staff_id is not None
        chosen = max(decision.values) if rig else decision.staff_id  # rigged: the last always
        draws.append(RecordedDraw(decision.values, chosen))
    return draws


def test_a_fair_seeded_run_reads_fair_and_its_implied_shares_follow_the_roster() -> None:
    report = fairness(seeded_draws(3000, seed=14))
    assert (report.draws, report.degrees, report.too_small) == (3000, 3, False)
    implied = {s.staff_id: s.implied for s in report.shares}
    # Person 4 is in two draws of three: 2/3 * 4/10 of the draws; the others share the rest.
    assert implied[4] == pytest.approx(2 / 3 * 0.4)
    assert implied[1] == pytest.approx(1 / 3 * 1 / 6 + 2 / 3 * 0.1)
    assert sum(implied.values()) == pytest.approx(1.0)
    assert report.p_value is not None and report.p_value > 0.01
    assert report.verdict.startswith("The offers match")
    for s in report.shares:  # observed shares near the implied ones (3000 draws: ±3 points)
        assert s.share == pytest.approx(s.implied, abs=0.03)


def test_a_rigged_run_is_caught_and_a_small_one_is_flagged() -> None:
    rigged = fairness(seeded_draws(300, seed=14, rig=True))
    assert rigged.p_value is not None and rigged.p_value < 1e-9
    assert "further from what the points imply" in rigged.verdict
    small = fairness(seeded_draws(12, seed=14))
    assert small.too_small and "too small" in small.verdict
    nothing = fairness([])
    assert (nothing.draws, nothing.p_value, nothing.too_small) == (0, None, True)


async def test_the_report_reads_the_draws_real_orders_recorded(
    api: httpx.AsyncClient, dispatch: Dispatch
) -> None:
    world = await make_store_world(consultants=3, points=[100, 200, 300])
    other = await make_store_world(consultants=1)
    chosen = []
    for _ in range(3):
        _, first = await offered(api, world)
        chosen.append(first["staff_id"])
    answer = await api.get(
        "/api/v1/reports/fairness", params={"store_id": world.store.id}, headers=admin()
    )
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["draws"] == 3 and report["too_small"] is True
    offers = {s["staff_id"]: s["offers"] for s in report["shares"]}
    assert offers == {c.id: chosen.count(c.id) for c in world.consultants}
    expected = {s["staff_id"]: s["expected"] for s in report["shares"]}
    assert expected == pytest.approx(
        {c.id: 3 * p / 600 for c, p in zip(world.consultants, (100, 200, 300), strict=True)}
    )
    manager = await manager_of(other)
    outside = await api.get(
        "/api/v1/reports/fairness", params={"store_id": world.store.id}, headers=manager
    )
    assert outside.status_code == 403
    missing = await api.get(
        "/api/v1/reports/fairness", params={"store_id": 999999}, headers=admin()
    )
    assert missing.status_code == 404
