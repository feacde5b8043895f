"""A store manager's fairness check and the audit of their store, as pages.

Both read through the API's own functions (api.reports, api.audit) with the manager's
principal: the same scope, the same figures as the JSON answers.
"""

from __future__ import annotations

from datetime import timedelta
from typing import cast

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from sqlmodel import col, select

from api import audit as api_audit
from api import reports as api_reports
from api.deps import DB
from console.auth import Manager, Person
from console.queries import store_staff
from console.routes_hq import as_head_office
from console.web import refused, render
from models import SubSite
from models.base import utcnow
from reports.fairness import TOO_SMALL, VERDICTS, judgement
from reports.summary import SECTIONS, Where
from services.audit import KINDS

router = APIRouter(prefix="/console", include_in_schema=False)
PERIODS = (7, 30, 90)
BAR = 240.0  # the width of a 100 % bar in the chart's SVG units


@router.get("/reports/fairness")
async def fairness_page(request: Request, db: DB, person: Manager, days: int = 30) -> Response:
    """Each consultant's share of first-round offers next to what their points imply."""
    if days not in PERIODS:
        return refused(request, 422, f"days: one of {PERIODS}", person=person, back="/console")
    until = utcnow()
    report = await api_reports.get_fairness(
        store_id=person.store.id or 0,
        db=db,
        caller=person.principal,
        since=until - timedelta(days=days),
        until=until,
    )
    names = {s.id: s.name for s in await store_staff(db, person.store.id or 0)}
    return render(
        request,
        "fairness.html",
        person=person,
        report=report,
        names=names,
        days=days,
        periods=PERIODS,
        bar=BAR,
        # The verdict in the page's language: the report's own sentence, translated.
        verdict=VERDICTS[judgement(report.p_value)],
        too_small=TOO_SMALL if report.too_small and report.p_value is not None else "",
    )


@router.get("/reports")
async def summary_page(
    request: Request, db: DB, person: Manager, days: int = 30, scope: str = ""
) -> Response:
    """The store's report over a period, each section with its CSV; head office chooses a
    sub-site or every store (`scope=subsite-<id>` or `all`)."""
    if days not in PERIODS:
        return refused(request, 422, f"days: one of {PERIODS}", person=person, back="/console")
    try:
        where = await _scope(db, person, days, scope)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    report = await api_reports.get_summary(db=db, where=where)
    statuses = report.sections["status"]
    most = max((r["orders"] for r in statuses), default=0)
    return render(
        request,
        "reports.html",
        person=person,
        report=report,
        days=days,
        periods=PERIODS,
        most=most,
        bar=BAR,
        scope=scope,
        sites=(await db.exec(select(SubSite).order_by(col(SubSite.name)))).all()
        if person.is_head_office
        else [],
    )


@router.get("/reports/{section}.csv")
async def summary_csv(
    section: str, request: Request, db: DB, person: Manager, days: int = 30, scope: str = ""
) -> Response:
    if section not in SECTIONS or days not in PERIODS:
        return refused(
            request, 404, f"no report {section!r}", person=person, back="/console/reports"
        )
    try:
        where = await _scope(db, person, days, scope)
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    return await api_reports.get_summary_csv(
        section=cast(api_reports.Section, section), db=db, where=where
    )


async def _scope(db: DB, person: Person, days: int, scope: str = "") -> Where:
    """The manager's store over the last `days` (head office: a sub-site's or every store's,
    as `scope` says), checked as the API checks it."""
    until = utcnow()
    since = until - timedelta(days=days)
    if not scope:
        return await api_reports.report_scope(
            db=db, caller=person.principal, store_id=person.store.id, since=since, until=until
        )
    if not person.is_head_office:
        raise HTTPException(403, "a report of another scope is for head office")
    subsite = scope.removeprefix("subsite-")
    if scope != "all" and (subsite == scope or not subsite.isdigit()):
        raise HTTPException(422, "scope: all, or subsite-<id>")
    return await api_reports.report_scope(
        db=db,
        caller=as_head_office(person),
        subsite_id=None if scope == "all" else int(subsite),
        since=since,
        until=until,
    )


@router.get("/audit")
async def audit_page(
    request: Request,
    db: DB,
    person: Manager,
    kind: str | None = None,
    object_id: str | None = None,
) -> Response:
    """Who changed what in the person's widest scope (their store; their sub-site for its
    admin; everything for head office): everything, or one kind, or one object."""
    if kind and kind not in KINDS:
        return refused(
            request, 422, f"kind: one of {', '.join(KINDS)}", person=person, back="/console/audit"
        )
    try:
        page = await api_audit.list_audit(
            db=db,
            caller=person.widest,
            kind=cast(api_audit.Kind, kind) if kind else None,
            object_id=object_id or None,
            actor=None,
            store_id=None,
            subsite_id=None,
            since=None,
            until=None,
            limit=200,
            offset=0,
        )
    except HTTPException as exc:
        return refused(request, exc.status_code, str(exc.detail), person=person, back="/console")
    return render(
        request,
        "audit.html",
        person=person,
        entries=page.items,
        total=page.total,
        kind=kind or "",
        object_id=object_id or "",
        kinds=KINDS,
    )
