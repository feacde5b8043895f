"""Points through the one service: nobody grants themselves points, and every weight the
API shows is the one the draw would use, under the sub-site's own rule where it has one."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlmodel import select

from dispatch.weights import weight
from models import PointsEntry, Role, SubSiteRule
from models.db import session
from services import points
from services.staff import candidates
from tests.api_helpers import V1, admin, bearer, make_token
from tests.factories import make_store_world


async def test_a_manager_may_not_grant_points_to_themselves(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    assert world.manager.id is not None
    token = await make_token(Role.STORE_MANAGER, staff_id=world.manager.id, store_id=world.store.id)

    response = await offline_api.post(
        f"{V1}/staff/{world.manager.id}/points",
        json={"delta": 50, "reason": "great week"},
        headers=bearer(token),
    )

    assert response.status_code == 403, response.text
    assert "themselves" in response.json()["detail"]
    async with session() as db:
        booked = (
            await db.exec(select(PointsEntry).where(PointsEntry.staff_id == world.manager.id))
        ).all()
    assert booked == []


async def test_weights_shown_follow_the_subsites_own_cap(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1, points=[40])
    person = world.consultants[0]
    assert person.id is not None and world.subsite.id is not None
    async with session() as db:
        db.add(SubSiteRule(subsite_id=world.subsite.id, order_type="new", weight_cap=7))
        await db.commit()

    ledger = await offline_api.get(f"{V1}/staff/{person.id}/points", headers=admin())
    on_duty = await offline_api.get(f"{V1}/stores/{world.store.id}/on-duty", headers=admin())

    assert ledger.status_code == 200 and on_duty.status_code == 200, ledger.text + on_duty.text
    assert ledger.json()["weight_by_order_type"]["new"] == 7  # not head office's (no cap): 40
    assert ledger.json()["weight"] == 7
    [row] = [r for r in on_duty.json()["on_duty"] if r["staff_id"] == person.id]
    assert row["weight"] == 7
    # ... and it is what the draw weighs: the candidate's points under the rule in force.
    async with session() as db:
        [candidate] = await candidates(db, store_id=world.store.id, at=datetime.now(UTC))
        caps = await points.weight_caps(db=db, store_id=world.store.id)
    assert weight(candidate.points, cap=caps["new"]) == row["weight"]
