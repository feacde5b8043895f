"""API tokens: issued (the plain token shown once), listed without secrets, revoked.

A token is stored as the sha256 of its text (`api.deps.hash_token`) with one role and the
scope that role needs, derived from the person it is issued for:

| role          | issued for                         | scope                            |
|---------------|------------------------------------|----------------------------------|
| staff         | a staff member                     | that person and their store      |
| store_manager | a manager                          | the manager's store              |
| subsite_admin | a registered admin of the sub-site | that sub-site                    |
| head_office   | nobody in particular (optional)    | everything                       |
| service       | the web backend                    | order intake; reads orders       |

Head office issues any role; a sub-site admin issues staff, store-manager and admin tokens
for people of their own sub-site, and lists and revokes those.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import ADMINS, may_issue, require
from api.deps import DB, Caller, Principal, hash_token
from api.public import IssuedToken, Page, TokenPublic, page_of
from models import ApiToken, Role, Staff, StaffRole, Store, SubSiteAdmin
from models.base import utcnow
from services import audit, scope

router = APIRouter(prefix="/tokens", tags=["tokens"])

TOKEN_PREFIX = "o2o_"


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    staff_id: int | None = Field(default=None, ge=1, description="whose token (not for service)")
    name: str = Field(default="", max_length=100, description="default: the person's name")


class TokenError(Exception):
    """A token that cannot be issued; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def new_token_text() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def token_scope(
    db: AsyncSession, role: Role, staff_id: int | None
) -> tuple[Staff | None, Store | None]:
    """The person and store a token of `role` for `staff_id` is bound to; TokenError if the
    pair makes no sense (no such person, a staff token without a person, …)."""
    if role in (Role.STAFF, Role.STORE_MANAGER, Role.SUBSITE_ADMIN) and staff_id is None:
        raise TokenError(422, f"a {role.value} token needs staff_id")
    if role is Role.SERVICE and staff_id is not None:
        raise TokenError(422, "a service token belongs to the web backend, not to a person")
    if staff_id is None:
        return None, None
    staff = await db.get(Staff, staff_id)
    if staff is None:
        raise TokenError(404, f"no staff member {staff_id}")
    if not staff.active:
        raise TokenError(409, f"staff {staff_id} is inactive")
    store = await db.get(Store, staff.store_id)
    assert store is not None
    if role is Role.STORE_MANAGER and staff.role != StaffRole.MANAGER:
        raise TokenError(422, f"staff {staff_id} is not a manager")
    if role is Role.SUBSITE_ADMIN:
        admin = await db.get(SubSiteAdmin, (store.subsite_id, staff_id))
        if admin is None:
            raise TokenError(
                409, f"staff {staff_id} is not an admin of sub-site {store.subsite_id}"
            )
    return staff, store


async def issue_token(
    db: AsyncSession,
    *,
    role: Role,
    staff_id: int | None,
    name: str = "",
    token: str | None = None,
    issuer: Principal | None = None,
) -> tuple[ApiToken, str]:
    """Store a new token (hashed) and return its row and its text; `issuer` None: the CLI."""
    staff, store = await token_scope(db, role, staff_id)
    if issuer is not None:
        try:
            may_issue(issuer, role, subsite_id=store.subsite_id if store else None)
        except HTTPException as exc:
            raise TokenError(exc.status_code, str(exc.detail)) from exc
    text = token or new_token_text()
    scoped = role in (Role.STAFF, Role.STORE_MANAGER, Role.SUBSITE_ADMIN)
    row = ApiToken(
        name=(name or (f"{staff.name}" if staff else role.value))[:100],
        token_hash=hash_token(text),
        role=role,
        staff_id=staff.id if staff else None,
        store_id=store.id if store and role is not Role.SUBSITE_ADMIN and scoped else None,
        subsite_id=store.subsite_id if store and scoped else None,
    )
    db.add(row)
    actor = issuer.name if issuer else "cli"
    await audit.record(
        db,
        actor=actor,
        kind="token",
        object_id=None,
        old={},
        new=row,
        store_id=row.store_id,
        subsite_id=row.subsite_id,
    )
    await db.commit()
    await db.refresh(row)
    return row, text


def token_json(row: ApiToken) -> TokenPublic:
    view: TokenPublic = TokenPublic.of(row)
    return view


@router.post("", status_code=201, response_model=IssuedToken)
async def create_token(body: TokenIn, db: DB, caller: Caller) -> IssuedToken:
    """Issue a token. The plain token is in this answer only: it is stored hashed."""
    require(caller, *ADMINS)
    try:
        row, text = await issue_token(
            db, role=body.role, staff_id=body.staff_id, name=body.name, issuer=caller
        )
    except TokenError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    issued: IssuedToken = IssuedToken.of(row, token=text)
    return issued


@router.get("", response_model=Page[TokenPublic])
async def list_tokens(
    db: DB,
    caller: Caller,
    staff_id: int | None = None,
    role: Role | None = None,
    include_revoked: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Page[TokenPublic]:
    """Tokens in the caller's scope, without their secrets."""
    require(caller, *ADMINS)
    query = select(ApiToken).order_by(col(ApiToken.id))
    mine = scope.visible(caller, subsite=ApiToken.subsite_id)
    if mine is not None:
        query = query.where(mine)
    if staff_id is not None:
        query = query.where(ApiToken.staff_id == staff_id)
    if role is not None:
        query = query.where(ApiToken.role == role)
    if not include_revoked:
        query = query.where(col(ApiToken.revoked_at).is_(None))
    return await page_of(db, query, TokenPublic, limit=limit, offset=offset)


async def revoke(
    db: AsyncSession, token_id: int, *, at: datetime | None = None, by: str = "cli"
) -> ApiToken:
    row = await db.get(ApiToken, token_id)
    if row is None:
        raise TokenError(404, f"no token {token_id}")
    if row.revoked_at is None:
        old = audit.snapshot(row)
        row.revoked_at = at or utcnow()
        db.add(row)
        await audit.record(
            db,
            actor=by,
            kind="token",
            object_id=token_id,
            old=old,
            new=row,
            action="revoked",
            store_id=row.store_id,
            subsite_id=row.subsite_id,
        )
        await db.commit()
        await db.refresh(row)
    return row


@router.delete("/{token_id}", response_model=TokenPublic)
async def revoke_token(token_id: int, db: DB, caller: Caller) -> TokenPublic:
    """Revoke a token: it is refused (401) from now on. Revoking twice changes nothing."""
    require(caller, *ADMINS)
    row = await db.get(ApiToken, token_id)
    if row is None:
        raise HTTPException(404, f"no token {token_id}")
    if caller.role is Role.SUBSITE_ADMIN and (
        row.subsite_id is None or row.subsite_id != caller.subsite_id
    ):
        raise HTTPException(403, f"token {token_id} is outside your sub-site")
    try:
        row = await revoke(db, token_id, by=caller.name)
    except TokenError as exc:
        raise HTTPException(exc.status, exc.message) from exc
    return token_json(row)
