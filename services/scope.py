"""Who is calling, and the one rule of what their token lets them see.

| role          | sees                                      |
|---------------|-------------------------------------------|
| staff         | their own (orders they hold, themselves)  |
| store_manager | their store                               |
| subsite_admin | their sub-site                            |
| head_office   | everything                                |
| service       | everything it may read (orders)           |

`visible` is that rule as a SQL condition over the columns a query names for store,
sub-site and staff member; `in_scope` is the same rule for one row in Python; a list filter
naming something outside the scope is refused (`check_filters`), never answered empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, false
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from models import Role, Staff, Store
from services.errors import Forbidden


@dataclass(frozen=True)
class Principal:
    """Who is calling, with the scope their token grants."""

    name: str
    role: Role
    staff_id: int | None = None
    store_id: int | None = None
    subsite_id: int | None = None


UNLIMITED = (Role.HEAD_OFFICE, Role.SERVICE)
T = TypeVar("T")


def visible(
    caller: Principal, *, store: Any = None, subsite: Any = None, staff: Any = None
) -> ColumnElement[bool] | None:
    """The caller's scope as a condition on the given columns; None: no limit."""
    if caller.role in UNLIMITED:
        return None
    column, value = {
        Role.STAFF: (staff, caller.staff_id),
        Role.STORE_MANAGER: (store, caller.store_id),
        Role.SUBSITE_ADMIN: (subsite, caller.subsite_id),
    }[caller.role]
    if column is None or value is None:
        return false()  # the query has nothing this role could own
    condition: ColumnElement[bool] = column == value
    return condition


def narrowed(
    query: SelectOfScalar[T],
    caller: Principal,
    model: Any,
    equal: Mapping[str, object],
    *,
    store: Any = None,
    subsite: Any = None,
    staff: Any = None,
) -> SelectOfScalar[T]:
    """`query` within the caller's scope (`visible` over the columns named), then only the
    rows whose `model` columns equal each value given (None: not filtered): the order list's
    and the audit's query."""
    mine = visible(caller, store=store, subsite=subsite, staff=staff)
    if mine is not None:
        query = query.where(mine)
    for name, value in equal.items():
        if value is not None:
            query = query.where(getattr(model, name) == value)
    return query


def in_scope(
    caller: Principal,
    *,
    store_id: int | None = None,
    subsite_id: int | None = None,
    staff_id: int | None = None,
) -> bool:
    """The same rule for one row: does it lie inside the caller's scope?"""
    if caller.role in UNLIMITED:
        return True
    owned = {
        Role.STAFF: (staff_id, caller.staff_id),
        Role.STORE_MANAGER: (store_id, caller.store_id),
        Role.SUBSITE_ADMIN: (subsite_id, caller.subsite_id),
    }[caller.role]
    return owned[0] is not None and owned[0] == owned[1]


async def check_filters(
    *,
    db: AsyncSession,
    caller: Principal,
    store_id: int | None = None,
    subsite_id: int | None = None,
    staff_id: int | None = None,
    staff_param: str = "staff_id",
) -> None:
    """Refuse (403) a list filter that names a store, sub-site or person outside the scope."""
    if caller.role in UNLIMITED:
        return
    if subsite_id is not None and caller.role is not Role.SUBSITE_ADMIN:
        raise Forbidden(f"subsite_id={subsite_id} is outside your scope ({caller.role.value})")
    if subsite_id is not None and subsite_id != caller.subsite_id:
        raise Forbidden(f"subsite_id={subsite_id} is outside your scope")
    if store_id is not None:
        store = await db.get(Store, store_id)
        if store is None or not in_scope(
            caller, store_id=store.id, subsite_id=store.subsite_id, staff_id=caller.staff_id
        ):
            raise Forbidden(f"store_id={store_id} is outside your scope")
        if caller.role is Role.STAFF and store.id != caller.store_id:
            raise Forbidden(f"store_id={store_id} is outside your scope")
    if staff_id is not None:
        person = await db.get(Staff, staff_id)
        store = await db.get(Store, person.store_id) if person is not None else None
        if person is None or not in_scope(
            caller,
            store_id=person.store_id,
            subsite_id=store.subsite_id if store else None,
            staff_id=person.id,
        ):
            raise Forbidden(f"{staff_param}={staff_id} is outside your scope")
