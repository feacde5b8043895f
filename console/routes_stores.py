"""One store's details, changed in the browser by whoever runs it: an admin of its sub-site,
or head office (any store). Name, address, the store's own phone and e-mail, open or
closed, the sub-site's default.

The person acts with their widest role (`Person.widest`); the API's own `update_store`
decides whether the store is theirs to change, checks each field, keeps one default per
sub-site, refuses to close a store people still work in, and records who changed what.
Its refusals about a field show at that field.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from api import stores as api_stores
from api.access import check_store
from api.deps import DB
from console.auth import Form, PageRefused, SignedIn
from console.session import Person
from console.web import at_fields, redirect, render, undo
from models import Store
from services.errors import DomainError
from services.scope import Principal

router = APIRouter(prefix="/console/stores", include_in_schema=False)
TEXT_FIELDS = ("name", "address", "phone", "email")
FIELDS = (*TEXT_FIELDS, "active", "is_default")


def runner(person: Person) -> Principal:
    """Only sub-site admins and head office run stores (a manager keeps their own roster)."""
    if not (person.is_site_admin or person.is_head_office):
        raise PageRefused(403, "this page is for the sub-site's admins and head office")
    return person.widest


async def _store(db: DB, caller: Principal, store_id: int) -> Store:
    try:
        return await check_store(db, caller, store_id)  # the API's scope check, as it reads
    except HTTPException as exc:
        raise PageRefused(exc.status_code, str(exc.detail)) from exc


def _changes(store: Store, form: dict[str, str]) -> dict[str, Any]:
    """What the form changes: a blank phone or e-mail clears it; the checkboxes say open
    and default (unticking the default is the API's to refuse, at the field)."""
    sent: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value: str | None = form.get(name, "").strip()
        if name in ("phone", "email") and not value:
            value = None
        if (value or "") != (getattr(store, name) or ""):
            sent[name] = value
    for name in ("active", "is_default"):
        ticked = form.get(name) == "on"
        if ticked != getattr(store, name):
            sent[name] = ticked
    return sent


def _page(
    request: Request,
    person: Person,
    store: Store,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        request,
        "store.html",
        person=person,
        status=status,
        store=store,
        values=values or {name: getattr(store, name) for name in FIELDS},
        errors=errors or {},
        done=request.query_params.get("done", ""),
    )


@router.get("/{store_id}")
async def store_page(store_id: int, request: Request, db: DB, person: SignedIn) -> Response:
    store = await _store(db, runner(person), store_id)
    return _page(request, person, store)


@router.post("/{store_id}")
async def change_store(
    store_id: int, request: Request, db: DB, person: SignedIn, form: Form
) -> Response:
    caller = runner(person)
    store = await _store(db, caller, store_id)
    sent = _changes(store, form)
    shown = {name: getattr(store, name) for name in FIELDS} | sent
    back = f"/console/stores/{store_id}"
    try:
        body = api_stores.StorePatch.model_validate(sent)
        await api_stores.update_store(
            store_id=store_id, body=body, request=request, db=db, caller=caller
        )
    except (ValidationError, HTTPException, DomainError) as exc:
        errors = at_fields(request, person, exc, FIELDS, back)
        if isinstance(errors, Response):
            return errors
        await undo(db, person, store)  # nothing of the refused change stays
        return _page(request, person, store, values=shown, errors=errors, status=422)
    return redirect(request, f"{back}?done=saved")
