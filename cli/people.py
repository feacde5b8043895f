"""`o2o token …`, `o2o staff …`, `o2o roster …`: the same operations as the API, straight on
the database (and on Temporal where orders must be re-dispatched or woken).

o2o token issue --role staff --staff-id 12        prints the new token once
o2o token list | o2o token revoke 7
o2o staff list --store-id 3 | o2o staff add --store-id 3 --name "Li Na"
o2o staff pause 12 | o2o staff resume 12 | o2o staff deactivate 12 --reason "left"
o2o staff points 12 [--add 5 --reason "VIP feedback"]
o2o roster roll [--days 14] | o2o roster on-duty 3 [--at 2026-12-01T10:00:00+08:00]
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

console = Console()
T = TypeVar("T")

token_app = typer.Typer(help="Issue, list and revoke API tokens.", no_args_is_help=True)
staff_app = typer.Typer(help="Staff members, their rotation and points.", no_args_is_help=True)
roster_app = typer.Typer(help="The duty roster.", no_args_is_help=True)


def _run(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    from models.db import migrate

    migrate()
    return asyncio.run(work())


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]{message}[/red]")
    return typer.Exit(code)


async def _temporal() -> Any:
    from starter import connect

    try:
        return await connect()
    except Exception as exc:
        raise _fail(f"Temporal is unreachable ({exc}); nothing was changed") from exc


async def _wake_quietly(store_ids: list[int] | None) -> int | None:
    from activities.roster import wake_waiting
    from starter import connect

    try:
        return len(await wake_waiting(await connect(), store_ids))
    except Exception:
        return None


# ---------------------------------------------------------------- tokens


@token_app.command("issue")
def token_issue(
    role: Annotated[str, typer.Option(help="staff | store_manager | subsite_admin | …")],
    staff_id: Annotated[int | None, typer.Option(help="whose token")] = None,
    name: Annotated[str, typer.Option(help="label (default: the person's name)")] = "",
) -> None:
    """Issue a token; the plain token is printed once and stored hashed."""
    from api.tokens import TokenError, issue_token
    from models import Role
    from models.db import session

    try:
        chosen = Role(role)
    except ValueError:
        raise _fail(f"unknown role {role!r}; one of {[r.value for r in Role]}", 2) from None

    async def issue() -> tuple[Any, str]:
        async with session() as db:
            return await issue_token(db, role=chosen, staff_id=staff_id, name=name)

    try:
        row, text = _run(issue)
    except TokenError as exc:
        raise _fail(exc.message, 2) from None
    console.print(f"token {row.id} ({row.role}, {row.name}):")
    console.print(text, markup=False, highlight=False)
    console.print("[dim]shown once: it is stored hashed[/dim]")


@token_app.command("list")
def token_list(
    all_: Annotated[bool, typer.Option("--all", help="revoked ones too")] = False,
) -> None:
    """Every token, without secrets."""
    from sqlmodel import col, select

    from models import ApiToken
    from models.db import session

    async def rows() -> list[ApiToken]:
        async with session() as db:
            query = select(ApiToken).order_by(col(ApiToken.id))
            if not all_:
                query = query.where(col(ApiToken.revoked_at).is_(None))
            return list((await db.exec(query)).all())

    table = Table("id", "name", "role", "staff", "store", "sub-site", "created", "revoked")
    for r in _run(rows):
        table.add_row(
            str(r.id),
            r.name,
            r.role,
            str(r.staff_id or ""),
            str(r.store_id or ""),
            str(r.subsite_id or ""),
            f"{r.created_at:%Y-%m-%d %H:%M}",
            f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "",
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token: refused (401) from now on."""
    from api.tokens import TokenError, revoke
    from models.db import session

    async def work() -> Any:
        async with session() as db:
            return await revoke(db, token_id)

    try:
        row = _run(work)
    except TokenError as exc:
        raise _fail(exc.message, 2) from None
    console.print(f"token {row.id} revoked at {row.revoked_at:%Y-%m-%d %H:%M:%S} UTC")


# ---------------------------------------------------------------- staff


@staff_app.command("list")
def staff_list(
    store_id: Annotated[int | None, typer.Option(help="only this store")] = None,
) -> None:
    """Staff with their role, rotation and points balance."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from models import PointsEntry, Staff
    from models.db import session

    async def rows() -> list[Any]:
        points = (
            select(func.coalesce(func.sum(PointsEntry.delta), 0))
            .where(col(PointsEntry.staff_id) == Staff.id)
            .scalar_subquery()
        )
        query = select(Staff, points).order_by(col(Staff.id))
        if store_id is not None:
            query = query.where(Staff.store_id == store_id)
        async with session() as db:
            return list((await db.exec(query)).all())

    table = Table("id", "name", "store", "role", "active", "rotation", "points", "phone", "email")
    for staff, points in _run(rows):
        table.add_row(
            str(staff.id),
            staff.name,
            str(staff.store_id),
            staff.role,
            "yes" if staff.active else "no",
            "paused" if staff.rotation_paused else "on",
            str(points),
            staff.phone or "",
            staff.email or "",
        )
    console.print(table)


@staff_app.command("add")
def staff_add(
    store_id: Annotated[int, typer.Option()],
    name: Annotated[str, typer.Option()],
    role: Annotated[str, typer.Option(help="consultant | manager")] = "consultant",
    phone: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str, typer.Option(help="zh | en")] = "zh",
) -> None:
    """Add a staff member to a store (give them a pattern with the API to put them on duty)."""
    from pydantic import ValidationError

    from api.staff import StaffIn
    from models import Staff, Store
    from models.db import session

    try:
        body = StaffIn(
            store_id=store_id,
            name=name,
            role=role,
            phone=phone,
            email=email,
            language=language,
        )
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]{'.'.join(map(str, error['loc']))}: {error['msg']}[/red]")
        raise typer.Exit(2) from None

    async def add() -> Staff:
        async with session() as db:
            if await db.get(Store, store_id) is None:
                raise _fail(f"no store {store_id}", 2)
            staff = Staff(**body.model_dump())
            db.add(staff)
            await db.commit()
            await db.refresh(staff)
            return staff

    staff = _run(add)
    console.print(f"staff {staff.id} ({staff.name}) added to store {staff.store_id}")


def _set_paused(staff_id: int, paused: bool) -> None:
    from models import Staff
    from models.db import session

    async def work() -> tuple[Staff, int | None]:
        async with session() as db:
            staff = await db.get(Staff, staff_id)
            if staff is None:
                raise _fail(f"no staff member {staff_id}", 2)
            staff.rotation_paused = paused
            db.add(staff)
            await db.commit()
        woken = None if paused else await _wake_quietly([staff.store_id])
        return staff, woken

    staff, woken = _run(work)
    state = "paused" if paused else "resumed"
    console.print(f"staff {staff_id} ({staff.name}): rotation {state}")
    if woken:
        console.print(f"woke {woken} waiting orders of store {staff.store_id}")


@staff_app.command("pause")
def staff_pause(staff_id: int) -> None:
    """Out of office: left out of every draw until resumed."""
    _set_paused(staff_id, True)


@staff_app.command("resume")
def staff_resume(staff_id: int) -> None:
    """Back in the draw; the store's waiting orders look again."""
    _set_paused(staff_id, False)


@staff_app.command("deactivate")
def staff_deactivate(
    staff_id: int, reason: Annotated[str, typer.Option(help="recorded on each order")] = ""
) -> None:
    """Deactivate someone: their tokens are revoked, their open orders re-dispatched now."""
    from sqlalchemy import update
    from sqlmodel import col

    from activities.roster import Released, release_open_orders
    from models import ApiToken, Staff
    from models.base import utcnow
    from models.db import session

    async def work() -> list[Released]:
        client = await _temporal()
        async with session() as db:
            staff = await db.get(Staff, staff_id)
            if staff is None:
                raise _fail(f"no staff member {staff_id}", 2)
            staff.active = False
            db.add(staff)
            await db.exec(
                update(ApiToken)
                .where(col(ApiToken.staff_id) == staff_id, col(ApiToken.revoked_at).is_(None))
                .values(revoked_at=utcnow())
            )
            await db.commit()
        return await release_open_orders(
            client,
            staff_id,
            trigger="deactivated",
            reason=reason or f"staff {staff_id} deactivated (command line)",
            by="cli",
        )

    released = _run(work)
    console.print(f"staff {staff_id} deactivated; {len(released)} open orders released")
    for r in released:
        console.print(f"  {r.order_id}: {r.result} → staff {r.assignee_id} ({r.status})")


@staff_app.command("points")
def staff_points(
    staff_id: int,
    add: Annotated[int, typer.Option(help="a manual adjustment (needs --reason)")] = 0,
    reason: Annotated[str, typer.Option()] = "",
    limit: Annotated[int, typer.Option()] = 20,
) -> None:
    """Show the balance and the latest ledger lines; `--add N --reason …` adjusts first."""
    from sqlalchemy import func
    from sqlmodel import col, select

    from dispatch.weights import weight
    from models import PointsEntry, Staff
    from models.db import session

    if add and not reason.strip():
        raise _fail("a manual adjustment needs --reason", 2)

    async def work() -> tuple[int, list[PointsEntry]]:
        async with session() as db:
            if await db.get(Staff, staff_id) is None:
                raise _fail(f"no staff member {staff_id}", 2)
            if add:
                db.add(PointsEntry(staff_id=staff_id, delta=add, reason=reason, actor="cli"))
                await db.commit()
            balance = (
                await db.exec(
                    select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
                        PointsEntry.staff_id == staff_id
                    )
                )
            ).one()
            rows = (
                await db.exec(
                    select(PointsEntry)
                    .where(PointsEntry.staff_id == staff_id)
                    .order_by(col(PointsEntry.created_at).desc(), col(PointsEntry.id).desc())
                    .limit(limit)
                )
            ).all()
            return int(balance), list(rows)

    balance, rows = _run(work)
    console.print(f"staff {staff_id}: balance {balance}, selection weight {weight(balance)}")
    table = Table("when", "delta", "reason", "actor", "order")
    for e in rows:
        table.add_row(
            f"{e.created_at:%Y-%m-%d %H:%M}", f"{e.delta:+d}", e.reason, e.actor, e.order_id or ""
        )
    console.print(table)


# ---------------------------------------------------------------- roster


@roster_app.command("roll")
def roster_roll(days: Annotated[int, typer.Option(min=1, max=92)] = 14) -> None:
    """Roll the duty roster `days` ahead now (what the schedule does), then wake waiting orders."""
    from activities.roster import RollRequest, RollResult, roll
    from models.db import session

    async def work() -> tuple[RollResult, int | None]:
        async with session() as db:
            result = await roll(db, RollRequest(days=days))
            await db.commit()
        return result, await _wake_quietly(None)

    result, woken = _run(work)
    console.print(
        f"rolled {days} days: {result.slots_added} new slots for {result.staff} staff"
        + ("" if woken is None else f"; woke {woken} waiting orders")
        + (" (Temporal unreachable: waiting orders not woken)" if woken is None else "")
    )


@roster_app.command("on-duty")
def roster_on_duty(
    store_id: int,
    at: Annotated[str | None, typer.Option(help="ISO time with offset (default now)")] = None,
) -> None:
    """Who is on duty in a store at a time."""
    from api.staff import on_duty_query
    from models.db import session

    instant = datetime.fromisoformat(at) if at else datetime.now(UTC)
    if instant.tzinfo is None:
        raise _fail("give --at with its offset, e.g. 2026-12-01T10:00:00+08:00", 2)

    async def work() -> list[Any]:
        async with session() as db:
            return list((await db.execute(on_duty_query(store_id, instant))).all())

    table = Table("staff", "name", "role", "points", "open orders", "slot")
    for r in _run(work):
        table.add_row(
            str(r.staff_id),
            r.name,
            r.role,
            str(r.points),
            str(r.open_orders),
            f"{r.starts_at:%m-%d %H:%M}–{r.ends_at:%m-%d %H:%M} UTC ({r.source})",
        )
    console.print(f"store {store_id} at {instant.isoformat()}:")
    console.print(table)
