"""Who changed what: every change to setup data is recorded once, here.

The service or route that makes a change takes a `snapshot` of the object before it and
calls `record` after it, before its commit: the entry lands in the same transaction as the
change (no change without its entry, no entry for a change rolled back). Only the fields
that differ are kept, old and new side by side.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from models.audit import AuditEntry
from models.sites import Store
from services import scope
from services.scope import Principal

HIDDEN = frozenset({"token_hash", "updated_at", "created_at"})  # never worth (or safe) keeping


def snapshot(row: SQLModel | dict[str, Any] | None) -> dict[str, Any]:
    """The object's fields as JSON values ({} for none)."""
    if row is None:
        return {}
    data = row if isinstance(row, dict) else row.model_dump(mode="json")
    return {k: v for k, v in data.items() if k not in HIDDEN}


async def record(
    db: AsyncSession,
    *,
    actor: str,
    kind: str,
    object_id: object,
    old: dict[str, Any],
    new: SQLModel | dict[str, Any] | None,
    action: str | None = None,
    store_id: int | None = None,
    subsite_id: int | None = None,
) -> AuditEntry | None:
    """Add the entry for one change to `db`'s transaction; None when nothing changed.

    `new` may be the changed row itself (its id is flushed first, for a created row)."""
    if isinstance(new, SQLModel) and getattr(new, "id", 0) is None:
        await db.flush()
    after = snapshot(new)
    if object_id is None and isinstance(new, SQLModel):
        object_id = getattr(new, "id", None)
    keys = sorted(set(old) | set(after))
    changed = [k for k in keys if old.get(k) != after.get(k)]
    if not changed:
        return None
    if store_id is not None and subsite_id is None:  # a store's change is its sub-site's too
        store = await db.get(Store, store_id)
        subsite_id = store.subsite_id if store else None
    entry = AuditEntry(
        actor=actor[:200],
        kind=kind,
        object_id=str(object_id)[:100],
        action=action or ("created" if not old else "deleted" if not after else "changed"),
        old={k: old[k] for k in changed if k in old},
        new={k: after[k] for k in changed if k in after},
        store_id=store_id,
        subsite_id=subsite_id,
    )
    db.add(entry)
    return entry


KINDS = ("rule", "roster", "staff", "store", "subsite", "admin", "token", "leave", "swap", "points")


def entries(
    caller: Principal,
    *,
    kind: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
    store_id: int | None = None,
    subsite_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> SelectOfScalar[AuditEntry]:
    """The entries the caller may read (a manager: their store's; a sub-site admin: their
    sub-site's; head office: all), filtered, newest first. The API and the console read this."""
    wanted = {
        "kind": kind,
        "object_id": object_id,
        "actor": actor,
        "store_id": store_id,
        "subsite_id": subsite_id,
    }
    query = scope.narrowed(
        select(AuditEntry).order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc()),
        caller,
        AuditEntry,
        wanted,
        store=AuditEntry.store_id,
        subsite=AuditEntry.subsite_id,
    )
    if since is not None:
        query = query.where(col(AuditEntry.at) >= since)
    if until is not None:
        query = query.where(col(AuditEntry.at) < until)
    return query
