"""A sub-site admin's pages: the sub-site's allocation rule, with validation at each field
and a preview of what a change does before it is saved.

The signed-in person acts as the sub-site's admin here when they are listed as one (the
same listing the API checks for an admin token); the rule is saved by the API's own
`put_subsite_rule`, so its checks and its audit entry are the API's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlmodel import col, select

from api import rules as api_rules
from api import staff as api_staff
from api import stores as api_stores
from api import subsites as api_subsites
from api.deps import DB
from console.auth import Form, PageRefused, SignedIn
from console.session import Person
from console.web import attempt_then, redirect, refused, render
from dispatch.weights import weight
from models import OrderType, Role, Staff, StaffRole, Store, SubSiteRule
from services.points import balance_of
from services.rules import rule_in_force
from services.scope import Principal

router = APIRouter(prefix="/console/site", include_in_schema=False)
FIELDS = list(api_rules.RuleIn.model_fields)
SCALAR_FIELDS = [f for f in FIELDS if f != "channels"]


async def site_admin(person: SignedIn) -> Person:
    """The person, if they are listed as an admin of their store's sub-site."""
    if not person.is_site_admin:
        raise PageRefused(403, "this page is for the sub-site's admins")
    return person


def as_admin(person: Person) -> Principal:
    """The principal the person acts with here: their sub-site's admin."""
    return person.acting_as(Role.SUBSITE_ADMIN)


SiteAdmin = Annotated[Person, Depends(site_admin)]


@dataclass(frozen=True)
class RulePlace:
    """Whose rule a rule page shows and saves: a sub-site's own, or head office's (None),
    the page's address, and the API function that saves it (with its checks and audit)."""

    subsite_id: int | None
    base: str
    save: Callable[[OrderType, api_rules.RuleIn], Awaitable[Any]]


def site_rules(db: DB, person: Person) -> RulePlace:
    async def save(order_type: OrderType, rule: api_rules.RuleIn) -> Any:
        return await api_rules.put_subsite_rule(
            subsite_id=person.store.subsite_id,
            order_type=order_type,
            body=rule,
            db=db,
            caller=as_admin(person),
        )

    return RulePlace(person.store.subsite_id, "/console/site/rules", save)


@dataclass(frozen=True)
class WeightRow:
    store: str
    name: str
    points: int
    before: int
    after: int
    share_before: float
    share_after: float


async def preview(
    db: DB, place: RulePlace, order_type: OrderType, before: int | None, after: int | None
) -> list[WeightRow]:
    """Each active consultant's weight and share of their store's total, under the cap in
    force and under the new one (as if everyone were on duty), in the stores the rule
    governs: the sub-site's; for head office's, those of every sub-site without its own."""
    own_rules = select(SubSiteRule.subsite_id).where(SubSiteRule.order_type == order_type.value)
    governed = (
        col(Store.subsite_id) == place.subsite_id
        if place.subsite_id is not None
        else col(Store.subsite_id).not_in(own_rules)
    )
    rows = (
        await db.exec(
            select(Store.name, Staff.name, balance_of(Staff.id))
            .join(Store, col(Store.id) == Staff.store_id)
            .where(
                governed,
                col(Staff.active),
                col(Staff.role) == StaffRole.CONSULTANT,
            )
            .order_by(col(Store.name), col(Staff.name))
        )
    ).all()
    weights = [
        (s, n, int(p), weight(int(p), cap=before), weight(int(p), cap=after)) for s, n, p in rows
    ]
    totals: dict[str, tuple[int, int]] = {}
    for s, _, _, b, a in weights:
        tb, ta = totals.get(s, (0, 0))
        totals[s] = (tb + b, ta + a)
    return [
        WeightRow(s, n, p, b, a, b / totals[s][0], a / totals[s][1]) for s, n, p, b, a in weights
    ]


def _parsed(form: dict[str, str]) -> dict[str, Any]:
    """The form's fields as the API's body: blank optional numbers are none, a missing
    checkbox is false."""
    body: dict[str, Any] = {name: form.get(name, "").strip() for name in SCALAR_FIELDS}
    body = {k: (None if v == "" else v) for k, v in body.items()}
    body["skip_previous_assignees"] = form.get("skip_previous_assignees") == "on"
    return body


def _text(value: object) -> str:
    """A field's value as the form shows it (to tell which fields a change touches)."""
    return "" if value is None else "on" if value is True else str(value)


def _errors(exc: ValidationError) -> dict[str, str]:
    """Each message at its field ("" for a message about the rule as a whole)."""
    out: dict[str, str] = {}
    for e in exc.errors():
        field = str(e["loc"][0]) if e["loc"] else ""
        message = str(e["msg"]).removeprefix("Value error, ")
        out[field] = f"{out[field]}; {message}" if field in out else message
    return out


async def rule_form(
    request: Request,
    db: DB,
    person: Person,
    order_type: OrderType,
    place: RulePlace,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    rows: list[WeightRow] | None = None,
    status: int = 200,
) -> Response:
    """The rule page: the rule in force, the form (with messages at the fields), and the
    preview when there is one."""
    current = await rule_in_force(db, order_type.value, place.subsite_id)
    shown = values or {name: getattr(current, name) for name in SCALAR_FIELDS}
    return render(
        request,
        "site_rule.html",
        person=person,
        status=status,
        order_type=order_type,
        order_types=list(OrderType),
        base=place.base,
        head_office=place.subsite_id is None,
        source="sub-site" if hasattr(current, "subsite_id") else "head office",
        changed={n for n in SCALAR_FIELDS if _text(getattr(current, n)) != _text(shown.get(n))},
        current={name: getattr(current, name) for name in SCALAR_FIELDS},
        values=shown,
        errors=errors or {},
        rows=rows,
        enums={
            name: [m.value for m in api_rules.RuleIn.model_fields[name].annotation]  # type: ignore[union-attr]
            for name in ("selection_method", "after_escalation", "wish_fallback")
        },
        done=request.query_params.get("done", ""),
    )


def add_rule_pages(
    router: APIRouter,
    allowed: Callable[..., Awaitable[Person]],
    place: Callable[[DB, Person], RulePlace],
) -> None:
    """The rule page's GET and POST on `router` (`/rules/{order_type}` under its prefix),
    for the people `allowed` lets in, showing and saving the rule `place` names."""

    @router.get("/rules/{order_type}")
    async def rule_page(
        order_type: OrderType, request: Request, db: DB, person: Person = Depends(allowed)
    ) -> Response:
        return await rule_form(request, db, person, order_type, place(db, person))

    @router.post("/rules/{order_type}")
    async def rule_change(
        order_type: OrderType,
        request: Request,
        db: DB,
        form: Form,
        person: Person = Depends(allowed),
    ) -> Response:
        return await change_rule(request, db, person, order_type, form, place(db, person))


async def change_rule(
    request: Request,
    db: DB,
    person: Person,
    order_type: OrderType,
    form: dict[str, str],
    place: RulePlace,
) -> Response:
    """`step=preview`: check the fields and show what the change does; `step=save`: the
    same checks, then the API saves it (and records who changed what)."""
    body = _parsed(form)
    try:
        rule = api_rules.RuleIn.model_validate(body)
    except ValidationError as exc:
        return await rule_form(
            request, db, person, order_type, place, values=body, errors=_errors(exc), status=422
        )
    current = await rule_in_force(db, order_type.value, place.subsite_id)
    if form.get("step") != "save":
        rows = await preview(db, place, order_type, current.weight_cap, rule.weight_cap)
        return await rule_form(request, db, person, order_type, place, values=body, rows=rows)
    # The form changes the scalar fields; the channels stay as the rule in force has them.
    rule = api_rules.RuleIn.model_validate(body | {"channels": current.channels})
    try:
        await place.save(order_type, rule)
    except HTTPException as exc:
        return refused(
            request, exc.status_code, str(exc.detail), person=person, back=request.url.path
        )
    return redirect(request, f"{place.base}/{order_type.value}?done=saved")


@router.get("")
async def site_page(request: Request, db: DB, person: SiteAdmin) -> Response:
    """The sub-site: its stores (open one, choose the default) and its admins."""
    site = await api_subsites.get_subsite(
        subsite_id=person.store.subsite_id, db=db, caller=as_admin(person)
    )
    people = (
        await db.exec(
            select(Staff)
            .join(Store, col(Store.id) == Staff.store_id)
            .where(col(Store.subsite_id) == site.id, col(Staff.active))
            .order_by(col(Staff.name))
        )
    ).all()
    admins = {a.id for a in site.admins}
    return render(
        request,
        "site.html",
        person=person,
        site=site,
        candidates=[p for p in people if p.id not in admins],
        people=people,
        languages=["zh", "en"],
        roles=[r.value for r in StaffRole],
        done=request.query_params.get("done", ""),
    )


@router.post("/stores")
async def open_store(request: Request, db: DB, person: SiteAdmin, form: Form) -> Response:
    """A new store of the sub-site (the API checks the code, the region and who may)."""
    fields = {k: form.get(k, "").strip() for k in ("code", "name", "region_code", "city")}

    async def act() -> Any:
        body = api_stores.StoreIn(subsite_id=person.store.subsite_id, **fields)
        return await api_stores.create_store(
            body=body, db=db, caller=as_admin(person), response=Response()
        )

    return await attempt_then(request, person, "/console/site", act, "/console/site?done=opened")


@router.post("/stores/{store_id}/default")
async def make_default(
    store_id: int, request: Request, db: DB, person: SiteAdmin, form: Form
) -> Response:
    async def act() -> Any:
        return await api_stores.update_store(
            store_id=store_id,
            body=api_stores.StorePatch(is_default=True),
            request=request,
            db=db,
            caller=as_admin(person),
        )

    return await attempt_then(request, person, "/console/site", act, "/console/site?done=default")


@router.post("/admins")
async def add_admin(request: Request, db: DB, person: SiteAdmin, form: Form) -> Response:
    chosen = form.get("staff_id", "")
    staff_id = int(chosen) if chosen.isdigit() else 0  # none chosen: the API's 404 says so

    async def act() -> Any:
        return await api_subsites.add_admin(
            subsite_id=person.store.subsite_id, staff_id=staff_id, db=db, caller=as_admin(person)
        )

    return await attempt_then(
        request, person, "/console/site", act, "/console/site?done=admin_added"
    )


@router.post("/admins/{staff_id}/remove")
async def remove_admin(
    staff_id: int, request: Request, db: DB, person: SiteAdmin, form: Form
) -> Response:
    async def act() -> Any:
        return await api_subsites.remove_admin(
            subsite_id=person.store.subsite_id, staff_id=staff_id, db=db, caller=as_admin(person)
        )

    return await attempt_then(
        request, person, "/console/site", act, "/console/site?done=admin_removed"
    )


STAFF_FIELDS = ("name", "phone", "email", "language", "role", "store_id")


@router.post("/staff")
async def add_staff(request: Request, db: DB, person: SiteAdmin, form: Form) -> Response:
    """A new person in one of the sub-site's stores (the API checks the store and who may)."""
    fields = {k: form.get(k, "").strip() or None for k in STAFF_FIELDS}

    async def act() -> Any:
        body = api_staff.StaffIn.model_validate({k: v for k, v in fields.items() if v})
        return await api_staff.create_staff(body=body, db=db, caller=as_admin(person))

    return await attempt_then(
        request, person, "/console/site", act, "/console/site?done=staff_added"
    )


@router.post("/staff/{staff_id}")
async def change_staff(
    staff_id: int, request: Request, db: DB, person: SiteAdmin, form: Form
) -> Response:
    """Change what the form changes: name, contacts, language, role, store (a move), and
    `active` off (a deactivation) — a move or a deactivation hands their open orders on."""
    current = await db.get(Staff, staff_id)
    sent: dict[str, Any] = {}
    for name in STAFF_FIELDS:
        value = form.get(name, "").strip() or None
        before = getattr(current, name, None) if current else None
        if str(value or "") != str(before or ""):
            sent[name] = value
    if form.get("deactivate") == "on":
        sent["active"] = False
    sent["reason"] = form.get("reason", "").strip()

    async def act() -> Any:
        body = api_staff.StaffPatch.model_validate(sent)
        return await api_staff.update_staff(
            staff_id=staff_id, body=body, request=request, db=db, caller=as_admin(person)
        )

    return await attempt_then(
        request, person, "/console/site", act, "/console/site?done=staff_changed"
    )


add_rule_pages(router, site_admin, site_rules)
