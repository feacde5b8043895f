"""Dependencies shared by the routers: a database session, the Temporal client, the caller."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from models import ApiToken, Role, Staff, StaffRole, SubSiteAdmin
from models.db import session
from services.scope import Principal
from settings import settings


async def db_session() -> AsyncIterator[AsyncSession]:
    async with session() as db:
        yield db


DB = Annotated[AsyncSession, Depends(db_session)]


async def temporal_client(request: Request) -> Client:
    client: Client | None = getattr(request.app.state, "temporal", None)
    if client is None:
        from starter import connect

        try:
            client = await connect()
        except Exception as exc:
            raise HTTPException(
                503, f"Temporal at {settings.TEMPORAL_ADDRESS} is unreachable: {exc}"
            ) from exc
        request.app.state.temporal = client
    return client


Temporal = Annotated[Client, Depends(temporal_client)]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_bearer = HTTPBearer(auto_error=False)


async def principal(
    db: DB, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    if credentials is None:
        raise HTTPException(
            401,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    token = credentials.credentials
    if hmac.compare_digest(token, settings.ADMIN_TOKEN):
        return Principal(name="admin", role=Role.HEAD_OFFICE)
    row = (
        await db.exec(
            select(ApiToken).where(
                ApiToken.token_hash == hash_token(token), col(ApiToken.revoked_at).is_(None)
            )
        )
    ).first()
    if row is None:
        raise HTTPException(401, "unknown or revoked token", headers={"WWW-Authenticate": "Bearer"})
    if row.staff_id is not None:
        await _check_standing(db, row)
    return Principal(
        name=row.name,
        role=Role(row.role),
        staff_id=row.staff_id,
        store_id=row.store_id,
        subsite_id=row.subsite_id,
    )


async def _check_standing(db: AsyncSession, row: ApiToken) -> None:
    """A person's token grants only what the person still is: demoting a manager, removing
    an admin or moving someone takes effect on their next request, with no token to chase."""
    assert row.staff_id is not None
    lapsed = await standing_lapse(
        db,
        staff_id=row.staff_id,
        role=Role(row.role),
        store_id=row.store_id,
        subsite_id=row.subsite_id,
    )
    if lapsed is not None:
        raise HTTPException(
            403, f"token {row.name!r} ({row.role}) has lapsed: {lapsed}; ask an admin for a new one"
        )


async def standing_lapse(
    db: AsyncSession, *, staff_id: int, role: Role, store_id: int | None, subsite_id: int | None
) -> str | None:
    """Why a person no longer holds the role and scope they were granted (None: they do).
    The one check behind API tokens and console sessions alike."""
    staff = await db.get(Staff, staff_id)
    if staff is None or not staff.active:
        return f"staff {staff_id} is no longer active"
    if role in (Role.STAFF, Role.STORE_MANAGER) and staff.store_id != store_id:
        return f"staff {staff.id} no longer works in store {store_id}"
    if role == Role.STORE_MANAGER and staff.role != StaffRole.MANAGER:
        return f"staff {staff.id} is no longer a manager"
    if (
        role == Role.SUBSITE_ADMIN
        and subsite_id is not None
        and await db.get(SubSiteAdmin, (subsite_id, staff.id)) is None
    ):
        return f"staff {staff.id} is no longer an admin of sub-site {subsite_id}"
    return None


Caller = Annotated[Principal, Depends(principal)]
