"""Reports: the fairness check of a store's draws (reports/fairness.py)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException
from pydantic import AwareDatetime, BaseModel

from api.access import MANAGERS, require
from api.deps import DB, Caller
from models import Store
from models.base import utcnow
from reports.records import store_fairness
from services import scope

router = APIRouter(prefix="/reports", tags=["reports"])


class ShareOut(BaseModel):
    staff_id: int
    offers: int
    expected: float
    share: float
    implied: float


class FairnessOut(BaseModel):
    store_id: int
    since: AwareDatetime
    until: AwareDatetime
    draws: int
    shares: list[ShareOut]
    chi_square: float | None
    degrees: int
    p_value: float | None
    too_small: bool
    verdict: str


@router.get("/fairness", response_model=FairnessOut)
async def get_fairness(
    store_id: int,
    db: DB,
    caller: Caller,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> FairnessOut:
    """Each consultant's share of first-round offers next to the share their points imply
    given who was in each draw, Pearson's chi-square p-value and a verdict (default period:
    the last 30 days)."""
    require(caller, *MANAGERS)
    if await db.get(Store, store_id) is None:
        raise HTTPException(404, f"no store {store_id}")
    await scope.check_filters(db=db, caller=caller, store_id=store_id)
    end = until or utcnow()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise HTTPException(422, "since must be before until")
    report = await store_fairness(db, store_id=store_id, since=start, until=end)
    return FairnessOut(
        store_id=store_id,
        since=start,
        until=end,
        draws=report.draws,
        shares=[ShareOut(**vars(s)) for s in report.shares],
        chi_square=report.chi_square,
        degrees=report.degrees,
        p_value=report.p_value,
        too_small=report.too_small,
        verdict=report.verdict,
    )
