"""Who changed what: the audit of setup data, in the caller's scope (services/audit.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.access import MANAGERS, require
from api.deps import DB, Caller
from api.public import Page, Public, page_of
from services import audit, scope

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditPublic(Public):
    id: int
    at: datetime
    actor: str
    kind: str
    object_id: str
    action: str
    old: dict[str, Any]  # the changed fields before
    new: dict[str, Any]  # and after
    store_id: int | None
    subsite_id: int | None


Kind = Literal[
    "rule", "roster", "staff", "store", "subsite", "admin", "token", "leave", "swap", "points"
]


@router.get("", response_model=Page[AuditPublic])
async def list_audit(
    db: DB,
    caller: Caller,
    kind: Kind | None = None,
    object_id: Annotated[str | None, Query(max_length=100)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    store_id: int | None = None,
    subsite_id: int | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[AuditPublic]:
    """Every change to rules, rosters, staff, stores, sub-sites, admins and tokens: who, when,
    the changed fields' old and new values; newest first. Managers see their store's, sub-site
    admins their sub-site's, head office all."""
    require(caller, *MANAGERS)
    await scope.check_filters(db=db, caller=caller, store_id=store_id, subsite_id=subsite_id)
    query = audit.entries(
        caller,
        kind=kind,
        object_id=object_id,
        actor=actor,
        store_id=store_id,
        subsite_id=subsite_id,
        since=since,
        until=until,
    )
    return await page_of(db, query, AuditPublic, limit=limit, offset=offset)
