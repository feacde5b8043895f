"""`GET /api/v1/orders/stuck`: the stuck-order finder over HTTP (operations/stuck.py), for
head office and the console's operations page. Registered before the orders router, so
`/orders/stuck` is not taken for an order id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.access import require
from api.deps import Caller, Temporal
from models import Role
from operations.stuck import Action, StuckKind, Thresholds, find_what_can_be_found

router = APIRouter(prefix="/orders", tags=["operations"])
MINUTES_A_YEAR = 525_600


class StuckOrderOut(BaseModel):
    order_id: str
    kind: StuckKind
    since: datetime
    age_seconds: float
    action: Action = Field(description="what moves it on: redrive, reassign, cancel, reconcile")
    detail: str
    store_id: int | None


class StuckPage(BaseModel):
    items: list[StuckOrderOut]
    total: int
    limit: int
    offset: int
    unchecked: str = Field(default="", description="kinds that could not be looked for, and why")


@router.get("/stuck", response_model=StuckPage)
async def list_stuck(
    client: Temporal,
    caller: Caller,
    kind: Annotated[list[StuckKind] | None, Query()] = None,
    store_id: int | None = None,
    waiting_minutes: Annotated[float | None, Query(gt=0, le=MINUTES_A_YEAR)] = None,
    escalated_minutes: Annotated[float | None, Query(gt=0, le=MINUTES_A_YEAR)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> StuckPage:
    """Orders that will not move on by themselves, oldest first, each with its age and the
    suggested action. Thresholds default to the STUCK_* settings."""
    require(caller, Role.HEAD_OFFICE)
    defaults = Thresholds()
    thresholds = Thresholds(
        waiting=timedelta(minutes=waiting_minutes) if waiting_minutes else defaults.waiting,
        escalated=(
            timedelta(minutes=escalated_minutes) if escalated_minutes else defaults.escalated
        ),
    )
    found, unchecked = await find_what_can_be_found(
        client, thresholds=thresholds, kinds=frozenset(kind or StuckKind)
    )
    if store_id is not None:
        found = [s for s in found if s.store_id == store_id]
    page = found[offset : offset + limit]
    return StuckPage(
        items=[StuckOrderOut.model_validate(s, from_attributes=True) for s in page],
        total=len(found),
        limit=limit,
        offset=offset,
        unchecked=unchecked,
    )
