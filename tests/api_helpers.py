"""Helpers shared by the API tests: the app over ASGI (with or without Temporal), bearer
tokens for the admin and for made-up principals, duty patterns and rows read back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time
from typing import Any

import httpx
from fastapi import FastAPI
from sqlmodel import col, select

from api.app import create_app
from api.deps import hash_token
from models import (
    ApiToken,
    Assignment,
    DutyPattern,
    DutySlot,
    OrderEvent,
    Role,
    Store,
    SubSiteAdmin,
)
from models.db import session
from settings import settings
from tests.factories import StoreWorld

V1 = "/api/v1"


def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def api_client(temporal: Any = None) -> AsyncIterator[httpx.AsyncClient]:
    """The app in-process; `temporal` stands in for (or is) the Temporal client."""
    app: FastAPI = create_app()
    app.state.temporal = temporal
    # App errors come back as 500 responses, so a failing test shows the status it got.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


class NoTemporal:
    """Stands in for the Temporal client where a request must not reach it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the request reached Temporal (client.{name})")


async def manager_of(world: StoreWorld) -> dict[str, str]:
    """Authorization headers of the world's store manager, as `/tokens` would issue them."""
    assert world.manager.id is not None and world.store.id is not None
    token = await make_token(Role.STORE_MANAGER, staff_id=world.manager.id, store_id=world.store.id)
    return bearer(token)


async def make_token(
    role: Role,
    *,
    staff_id: int | None = None,
    store_id: int | None = None,
    subsite_id: int | None = None,
    name: str | None = None,
) -> str:
    """A token as `/tokens` would issue it: an admin token's person is listed as an admin
    of the sub-site (the API checks that listing on every request)."""
    token = f"tok-{uuid.uuid4().hex}"
    async with session() as db:
        listed = role is Role.SUBSITE_ADMIN and staff_id is not None and subsite_id is not None
        if listed and await db.get(SubSiteAdmin, (subsite_id, staff_id)) is None:
            db.add(SubSiteAdmin(subsite_id=subsite_id, staff_id=staff_id))
        db.add(
            ApiToken(
                name=name or f"{role.value} {staff_id or ''}".strip(),
                token_hash=hash_token(token),
                role=role,
                staff_id=staff_id,
                store_id=store_id,
                subsite_id=subsite_id,
            )
        )
        await db.commit()
    return token


async def set_timezone(store_id: int, zone: str) -> None:
    async with session() as db:
        store = await db.get(Store, store_id)
        assert store is not None
        store.timezone = zone
        db.add(store)
        await db.commit()


async def add_patterns(staff_id: int, shifts: list[tuple[int, str, str]]) -> None:
    async with session() as db:
        for weekday, start, end in shifts:
            db.add(
                DutyPattern(
                    staff_id=staff_id,
                    weekday=weekday,
                    start=time.fromisoformat(start),
                    end=time.fromisoformat(end),
                )
            )
        await db.commit()


async def add_slot(
    staff_id: int, store_id: int, starts_at: datetime, ends_at: datetime, source: str = "pattern"
) -> int:
    async with session() as db:
        slot = DutySlot(
            staff_id=staff_id,
            store_id=store_id,
            starts_at=starts_at,
            ends_at=ends_at,
            source=source,
        )
        db.add(slot)
        await db.commit()
        assert slot.id is not None
        return slot.id


async def slots_of(staff_id: int) -> list[DutySlot]:
    async with session() as db:
        rows = await db.exec(
            select(DutySlot).where(DutySlot.staff_id == staff_id).order_by(col(DutySlot.starts_at))
        )
        return list(rows.all())


async def assignments_of(order_id: str) -> list[Assignment]:
    async with session() as db:
        rows = await db.exec(
            select(Assignment)
            .where(Assignment.order_id == order_id)
            .order_by(col(Assignment.round))
        )
        return list(rows.all())


async def events_of(order_id: str) -> list[OrderEvent]:
    async with session() as db:
        rows = await db.exec(
            select(OrderEvent)
            .where(OrderEvent.order_id == order_id)
            .order_by(col(OrderEvent.at), col(OrderEvent.id))
        )
        return list(rows.all())
