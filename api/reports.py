"""Reports: a period's summary (reports/summary.py) with a CSV of each section, and the
fairness check of a store's draws (reports/fairness.py)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Response
from pydantic import AwareDatetime, BaseModel

from api.access import MANAGERS, require
from api.deps import DB, Caller
from models import Role, Store
from models.base import utcnow
from reports.records import store_fairness
from reports.summary import Where, summary
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


class SummaryOut(BaseModel):
    store_id: int | None
    subsite_id: int | None
    since: AwareDatetime
    until: AwareDatetime
    sections: dict[str, list[dict[str, Any]]]


async def report_scope(
    db: DB,
    caller: Caller,
    store_id: int | None = None,
    subsite_id: int | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Where:
    """The report's scope: what was asked, else the caller's own (a manager's store, an
    admin's sub-site, head office's everything); the default period is the last 30 days."""
    require(caller, *MANAGERS)
    if store_id is not None and await db.get(Store, store_id) is None:
        raise HTTPException(404, f"no store {store_id}")
    await scope.check_filters(db=db, caller=caller, store_id=store_id, subsite_id=subsite_id)
    if store_id is None and subsite_id is None:
        if caller.role is Role.STORE_MANAGER:
            store_id = caller.store_id
        elif caller.role is Role.SUBSITE_ADMIN:
            subsite_id = caller.subsite_id
    end = until or utcnow()
    start = since or end - timedelta(days=30)
    if start >= end:
        raise HTTPException(422, "since must be before until")
    return Where(since=start, until=end, store_id=store_id, subsite_id=subsite_id)


ReportScope = Annotated[Where, Depends(report_scope)]


@router.get("/summary", response_model=SummaryOut)
async def get_summary(db: DB, where: ReportScope) -> SummaryOut:
    """Orders by status, time to accept (p50/p90 seconds), offers, timeouts and declines
    per consultant, escalations, the backlog waiting for a shift now, notices by channel
    and status — for a store, a sub-site or every store, over a period."""
    report = await summary(db, where)
    return SummaryOut(
        store_id=where.store_id,
        subsite_id=where.subsite_id,
        since=where.since,
        until=where.until,
        sections=report.sections,
    )


Section = Literal["status", "accept", "consultants", "escalations", "backlog", "notices"]


CSV_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the section's rows as CSV, one header line",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


@router.get("/summary/{section}.csv", response_class=Response, responses=CSV_ANSWER)
async def get_summary_csv(section: Section, db: DB, where: ReportScope) -> Response:
    """One section of the summary as CSV (a header row, then its rows)."""
    rows = (await summary(db, where)).sections[section]
    return Response(
        csv_text(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{section}.csv"'},
    )


def csv_text(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out.getvalue()
