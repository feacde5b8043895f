"""Who may do what: roles and their scopes, checked by every endpoint.

| role          | scope                                                               |
|---------------|---------------------------------------------------------------------|
| staff         | their own orders: list, read, accept, complete, decline             |
| store_manager | their store: its orders (reassign, re-dispatch), staff and roster    |
| subsite_admin | their sub-site: its stores, staff, orders, rosters and admins        |
| head_office   | everything (the bootstrap ADMIN_TOKEN is head office)               |
| service       | the web backend: submits orders and reads them                      |

Staff records, points and the roster: staff read their own (record, points, pattern, leave)
and who is on duty in their store; managers and admins manage those of their scope; only
head office rolls the whole roster by hand. Tokens are issued, listed and revoked by admins:
head office any role, a sub-site admin staff, manager and admin tokens of their sub-site.
"""

from __future__ import annotations

from fastapi import HTTPException
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Principal
from models import Assignment, Order, Role, Staff, Store
from services.scope import in_scope

MANAGERS = (Role.STORE_MANAGER, Role.SUBSITE_ADMIN, Role.HEAD_OFFICE)
STAFF_READERS = (Role.STAFF, *MANAGERS)  # the service token has no business with staff
ADMINS = (Role.SUBSITE_ADMIN, Role.HEAD_OFFICE)
# The token roles a sub-site admin may issue (for people of their own sub-site).
SUBSITE_ISSUABLE = (Role.STAFF, Role.STORE_MANAGER, Role.SUBSITE_ADMIN)


def forbidden(message: str) -> HTTPException:
    return HTTPException(403, message)


def require(caller: Principal, *roles: Role) -> None:
    if caller.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise forbidden(f"this needs a token of role {allowed}; yours is {caller.role.value}")


def in_store_scope(caller: Principal, *, store_id: int | None, subsite_id: int | None) -> bool:
    """Whether a store (and its sub-site) lies inside the caller's scope (a staff member's
    scope here is their store: who is on duty with them, their store's record)."""
    if caller.role is Role.STAFF:
        return store_id is not None and store_id == caller.store_id
    return in_scope(caller, store_id=store_id, subsite_id=subsite_id)


async def check_store(db: AsyncSession, caller: Principal, store_id: int) -> Store:
    store = await db.get(Store, store_id)
    if store is None:
        raise HTTPException(404, f"no store {store_id}")
    if not in_store_scope(caller, store_id=store.id, subsite_id=store.subsite_id):
        raise forbidden(f"store {store_id} is outside your scope")
    return store


async def check_staff(db: AsyncSession, caller: Principal, staff_id: int) -> Staff:
    staff = await db.get(Staff, staff_id)
    if staff is None:
        raise HTTPException(404, f"no staff member {staff_id}")
    if caller.role is Role.STAFF and caller.staff_id != staff_id:
        raise forbidden("a staff token reaches only its own staff member")
    await check_store(db, caller, staff.store_id)
    return staff


async def check_order(db: AsyncSession, caller: Principal, order: Order) -> None:
    """May the caller see this order? Staff see the orders they hold or have held."""
    if caller.role is Role.STAFF:
        held = await db.exec(
            select(Assignment.id).where(
                Assignment.order_id == order.id, Assignment.staff_id == caller.staff_id
            )
        )
        if held.first() is None:
            raise forbidden(f"order {order.id} has never been yours")
        return
    if not in_store_scope(caller, store_id=order.store_id, subsite_id=order.subsite_id):
        raise forbidden(f"order {order.id} belongs to a store outside your scope")


async def load_order(db: AsyncSession, caller: Principal, order_id: str) -> Order:
    order = await db.get(Order, order_id)
    if order is None:
        raise HTTPException(
            404, f"no order {order_id!r} (a just-submitted order appears once routed)"
        )
    await check_order(db, caller, order)
    return order


def acting_staff(caller: Principal, requested: int | None) -> int:
    """The staff member a staff action is for: a staff token acts only as itself; a manager
    or admin acts on behalf of the staff member named (the order's scope is checked apart)."""
    if caller.role is Role.STAFF:
        if requested is not None and requested != caller.staff_id:
            raise forbidden("a staff token acts only for its own staff member")
        assert caller.staff_id is not None
        return caller.staff_id
    if caller.role not in MANAGERS:
        raise forbidden("accept, complete and decline are the assignee's actions")
    if requested is None:
        raise HTTPException(422, "staff_id is required when a manager acts for a staff member")
    return requested


async def read_staff(db: AsyncSession, caller: Principal, staff_id: int) -> Staff:
    """A staff member the caller may see: their own, or one of a store in their scope."""
    require(caller, *STAFF_READERS)
    return await check_staff(db, caller, staff_id)


async def manage_staff(db: AsyncSession, caller: Principal, staff_id: int) -> Staff:
    """A staff member the caller may change: a manager's or admin's, of a store in scope."""
    require(caller, *MANAGERS)
    return await check_staff(db, caller, staff_id)


async def manage_store(db: AsyncSession, caller: Principal, store_id: int) -> Store:
    require(caller, *MANAGERS)
    return await check_store(db, caller, store_id)


def may_issue(caller: Principal, role: Role, *, subsite_id: int | None) -> None:
    """Head office issues any token; a sub-site admin only staff, manager and admin tokens
    for people of their own sub-site (`subsite_id`: the sub-site of the token's person)."""
    require(caller, *ADMINS)
    if caller.role is Role.HEAD_OFFICE:
        return
    if role not in SUBSITE_ISSUABLE:
        raise forbidden(f"a sub-site admin cannot issue {role.value} tokens")
    if subsite_id is None or subsite_id != caller.subsite_id:
        raise forbidden("a sub-site admin issues tokens only for people of their own sub-site")
