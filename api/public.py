"""Public types: what the API answers, never a table row as such.

Each `…Public` lists the fields a client may read (an `ApiToken`'s hash, say, is never one
of them); `Page[T]` is the one shape of every paged list. Routes declare these as their
`response_model`, so `/docs` shows them and nothing else leaves.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")


class Public(BaseModel):
    """Built from a row's attributes (`X.of(row)`); unknown attributes are left out."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def of(cls, row: Any, **extra: Any) -> Any:
        """The public view of `row`, with `extra` fields the row does not have."""
        if not extra:
            return cls.model_validate(row)
        names = [n for n in cls.model_fields if n not in extra and hasattr(row, n)]
        return cls.model_validate({n: getattr(row, n) for n in names} | extra)


class Page(BaseModel, Generic[T]):
    """One page of a list: `items` from `offset`, at most `limit`, of `total` in all."""

    items: list[T]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- orders


class OrderPublic(Public):
    id: str
    type: str
    category: str
    priority: int
    customer_id: int | None
    customer_name: str
    client_ip: str | None
    host: str | None
    region_code: str | None
    city: str | None
    subsite_id: int | None
    store_id: int | None
    store_reason: str
    requested_store_id: int | None
    preferred_staff_id: int | None
    assignee_id: int | None
    status: str
    phase: str = Field(description="the dispatch loop's phase (dispatch.phases.Phase)")
    wait_reason: str = Field(description="why it waits (phase waiting_for_shift/_manager)")
    escalated: bool
    round: int
    reassign_count: int
    workflow_id: str
    created_at: datetime
    updated_at: datetime
    assigned_at: datetime | None
    accepted_at: datetime | None
    completed_at: datetime | None
    cancelled_at: datetime | None
    cancel_reason: str


class AssignmentPublic(Public):
    """One round: who got the order, why (the selection's inputs), until when, and how it
    ended."""

    id: int
    order_id: str
    staff_id: int
    round: int
    assigned_at: datetime
    accept_deadline: datetime
    accepted_at: datetime | None
    process_deadline: datetime | None
    closed_at: datetime | None
    outcome: str
    reason: dict[str, Any]


class OrderEventPublic(Public):
    id: int
    order_id: str
    key: str
    kind: str
    actor: str
    detail: dict[str, Any]
    at: datetime


class NoticePublic(Public):
    id: int
    idempotency_key: str
    order_id: str | None
    staff_id: int | None
    kind: str
    channel: str
    round: int
    recipient: str
    language: str
    template: str
    subject: str
    status: str
    attempts: int
    in_doubt_recoveries: int
    last_error: str
    provider_message_id: str
    created_at: datetime
    sent_at: datetime | None


class OrderDetail(OrderPublic):
    """One order's full story: every round, every event of its trail, every notice."""

    assignments: list[AssignmentPublic]
    events: list[OrderEventPublic]
    notices: list[NoticePublic]


# ---------------------------------------------------------------- staff and points


class ReleasedPublic(Public):
    """What became of one open order taken from someone who cannot handle it any more."""

    order_id: str
    result: str
    assignee_id: int | None = None
    status: str = ""


class StaffPublic(Public):
    id: int
    store_id: int
    role: str
    name: str
    phone: str | None
    email: str | None
    language: str
    active: bool
    rotation_paused: bool
    pause_reason: str  # why paused (the person's own words, or their manager's)
    capacity: int | None
    created_at: datetime
    points: int | None = None  # the balance, where the answer reads it
    released: list[ReleasedPublic] | None = None  # open orders re-dispatched by this change
    woken: int | None = None  # waiting orders told that the roster changed


class PointsEntryPublic(Public):
    id: int
    staff_id: int
    delta: int
    reason: str
    actor: str
    order_id: str | None
    idempotency_key: str | None
    created_at: datetime


class PointsLedger(BaseModel):
    """A balance, the weight it gives in the draw now (per order type, under the rule in
    force for the person's sub-site) and one page of the ledger, newest first."""

    staff_id: int
    balance: int
    weight: int
    weight_by_order_type: dict[str, int]
    entries: list[PointsEntryPublic]
    total: int
    limit: int
    offset: int


class PointsAdjusted(BaseModel):
    entry: PointsEntryPublic
    balance: int
    weight: int


# ---------------------------------------------------------------- stores


class StorePublic(Public):
    id: int
    subsite_id: int
    code: str
    name: str
    region_code: str
    city: str
    address: str
    phone: str | None
    email: str | None
    timezone: str
    is_default: bool
    active: bool
    created_at: datetime
    woken: int | None = None


async def page_of(
    db: AsyncSession, query: SelectOfScalar[Any], view: type[Public], *, limit: int, offset: int
) -> Page[Any]:
    """One page of `query`'s rows as `view`s, with the count of all its rows."""
    total = (await db.exec(select(func.count()).select_from(query.subquery()))).one()
    rows = (await db.exec(query.limit(limit).offset(offset))).all()
    return Page(items=[view.of(r) for r in rows], total=total, limit=limit, offset=offset)


class TokenPublic(Public):
    """A token without its secret (the plain token is in the answer that issues it only)."""

    id: int
    name: str
    role: str
    staff_id: int | None
    store_id: int | None
    subsite_id: int | None
    created_at: datetime
    revoked_at: datetime | None


class IssuedToken(TokenPublic):
    token: str  # the plain token: shown in this answer only, stored hashed


class SubSitePublic(Public):
    id: int
    code: str
    name: str
    domain: str
    regions: list[dict[str, Any]]
    is_head_office: bool
    active: bool
    created_at: datetime


class AdminPublic(Public):
    id: int
    name: str
    store_id: int
    role: str


class SubSiteDetail(SubSitePublic):
    stores: list[StorePublic]
    admins: list[AdminPublic]


# ---------------------------------------------------------------- customers


class CustomerPublic(Public):
    id: int
    name: str
    phone: str | None
    email: str | None
    created_at: datetime


class PersonRef(BaseModel):
    id: int
    name: str
    active: bool


class StoreRef(BaseModel):
    id: int
    code: str
    name: str


class RecordPublic(BaseModel):
    """One communication record: who of which store served the customer, when, how."""

    id: int
    occurred_at: datetime
    channel: str
    summary: str
    order_id: str | None
    staff: PersonRef
    store: StoreRef


class CustomerOrder(Public):
    id: str
    type: str
    status: str
    store_id: int | None
    assignee_id: int | None
    created_at: datetime


class CustomerDetail(CustomerPublic):
    records: list[RecordPublic]
    last_served: RecordPublic | None
    orders: list[CustomerOrder]


# ---------------------------------------------------------------- geo


class SiteRef(BaseModel):
    id: int
    code: str
    domain: str


class Resolved(BaseModel):
    """Where an address is, and the sub-site covering it (None: the main site), and why."""

    ip: str
    kind: str
    country_code: str | None
    region_code: str | None
    city: str | None
    network: str | None
    subsite: SiteRef | None
    reason: str


# ---------------------------------------------------------------- roster


class ShiftPublic(BaseModel):
    weekday: int  # 0 = Monday
    start: time
    end: time


class PatternsPublic(BaseModel):
    """A person's weekly shifts, in the local time of their store (`timezone`)."""

    staff_id: int
    store_id: int
    timezone: str
    shifts: list[ShiftPublic]
    slots_added: int | None = None  # after a change: slots rolled from the new shifts
    woken: int | None = None


class LeavePublic(Public):
    id: int
    staff_id: int
    starts_at: datetime
    ends_at: datetime
    reason: str
    released: list[ReleasedPublic] | None = None  # a leave that has begun: orders re-dispatched
    workflow_id: str | None = None  # a later leave: the workflow that waits for its start
    woken: int | None = None


class LeaveDeleted(BaseModel):
    deleted: int
    woken: int | None


class SlotPublic(Public):
    id: int | None
    staff_id: int
    store_id: int
    starts_at: datetime
    ends_at: datetime
    source: str
    replaces_staff_id: int | None


class SlotRef(BaseModel):
    id: int
    starts_at: datetime
    ends_at: datetime
    source: str


class OnDutyPerson(BaseModel):
    staff_id: int
    name: str
    role: str
    rotation_paused: bool
    capacity: int | None
    open_orders: int
    points: int
    weight: int  # under the rule in force for new orders of the store's sub-site
    weight_by_order_type: dict[str, int]
    slot: SlotRef


class OnDuty(BaseModel):
    """Who is on duty in a store at an instant, with what the draw weighs."""

    store_id: int
    at: datetime
    on_duty: list[OnDutyPerson]


class Swapped(BaseModel):
    slots: list[SlotPublic]
    reason: str
    woken: int | None


class Rolled(BaseModel):
    days: int
    staff: int
    slots_added: int
    woken: int | None


class Health(BaseModel):
    """`ok` when the database and Temporal both answer (200); else `degraded` (503)."""

    status: str
    database: str
    temporal: str
