"""Staff, their points ledger and the duty roster.

Staff: list, create, read, update (contacts, language, role, capacity), move between stores,
deactivate, pause and resume one person's rotation. Deactivating or moving someone, and a
leave that starts now, re-dispatches their open orders at once with the reason recorded.

Points: the balance is derived from the ledger; managers add manual adjustments with a reason.

Roster: weekly patterns in the store's time zone, leave, swaps, who is on duty in a store at
an instant (one SQL query), and rolling the roster forward by hand. After every roster change
the store's orders waiting for a shift are woken (`roster_changed`).
"""

from __future__ import annotations

import contextlib
from datetime import datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Select, delete, func
from sqlalchemy import select as sql_select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from api.access import (
    STAFF_READERS,
    check_store,
    forbidden,
    manage_staff,
    manage_store,
    read_staff,
    require,
)
from api.deps import DB, Caller, Principal, temporal_client
from api.public import (
    LeaveDeleted,
    LeavePublic,
    OnDuty,
    OnDutyPerson,
    Page,
    PatternsPublic,
    PointsAdjusted,
    PointsEntryPublic,
    PointsLedger,
    ReleasedPublic,
    Rolled,
    ShiftPublic,
    SlotPublic,
    SlotRef,
    StaffPublic,
    Swapped,
    page_of,
)
from api.schemas import EmailAddress, PhoneNumber
from dispatch.weights import weight
from models import (
    DutyPattern,
    DutySlot,
    Language,
    Leave,
    OrderType,
    PointsEntry,
    Role,
    SlotSource,
    Staff,
    StaffRole,
    Store,
)
from models.base import utcnow
from services import audit, points, scope
from services import staff as staff_service
from services.roster import covers, on_leave
from services.roster_changes import (
    ROSTER_DAYS,
    RollRequest,
    release_open_orders,
    reroll_staff,
    roll,
    wake_waiting,
)
from services.staff import NO_CONTACT, open_orders_of
from settings import settings
from workflows.roster import LeaveStart, LeaveStartWorkflow, leave_workflow_id

router = APIRouter(tags=["staff and roster"])

Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
SlotLimit = Annotated[int, Query(ge=1, le=5000)]  # a window of slots, most on one page


# ---------------------------------------------------------------- bodies


class StaffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    store_id: int = Field(ge=1)
    name: str = Field(min_length=1, max_length=100)
    role: StaffRole = StaffRole.CONSULTANT
    phone: PhoneNumber = Field(default=None, max_length=32, description="stored as E.164")
    email: EmailAddress = Field(default=None, max_length=254)
    language: Language = Language.ZH
    capacity: int | None = Field(default=None, ge=1, le=10000, description="open orders at most")

    @model_validator(mode="after")
    def _reachable(self) -> StaffIn:
        if not (self.phone or self.email):
            raise ValueError(NO_CONTACT)
        return self


class StaffPatch(BaseModel):
    """Only the fields sent change; `null` clears phone, email or capacity."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: PhoneNumber = Field(default=None, max_length=32)
    email: EmailAddress = Field(default=None, max_length=254)
    language: Language | None = None
    role: StaffRole | None = None
    capacity: int | None = Field(default=None, ge=1, le=10000)
    store_id: int | None = Field(default=None, ge=1, description="move to this store")
    active: bool | None = Field(default=None, description="false deactivates")
    reason: str = Field(default="", max_length=300, description="recorded on released orders")

    @model_validator(mode="after")
    def _no_null_for_required(self) -> StaffPatch:
        for name in ("name", "language", "role", "store_id", "active"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class PauseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=300)
    reassign_open: bool = Field(default=False, description="also re-dispatch their open orders")


class PointsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: int = Field(ge=-100_000, le=100_000, description="never 0")
    reason: str = Field(min_length=1, max_length=200)
    order_id: str | None = Field(default=None, max_length=64)

    @field_validator("delta")
    @classmethod
    def _not_zero(cls, value: int) -> int:
        if value == 0:
            raise ValueError("an adjustment of 0 points changes nothing")
        return value

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("say why the points change")
        return value.strip()


class ShiftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    start: time = Field(description="local time in the store's time zone")
    end: time = Field(description="end <= start: the shift ends the next day")

    @field_validator("start", "end")
    @classmethod
    def _wall_clock(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a local time without offset: the store's time zone applies")
        return value


class PatternsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    shifts: list[ShiftIn] = Field(max_length=50)

    @field_validator("shifts")
    @classmethod
    def _one_per_start(cls, shifts: list[ShiftIn]) -> list[ShiftIn]:
        starts = [(s.weekday, s.start) for s in shifts]
        if len(set(starts)) != len(starts):
            raise ValueError("two shifts start at the same time on the same weekday")
        # On the week's clock (minutes from Monday 00:00, wrapping on Sunday night), a shift
        # that begins before the previous one ends would put the person on duty twice.
        week = 7 * 24 * 60
        spans = sorted((s.weekday * 1440 + _minutes(s.start), s) for s in shifts)
        for i, (start, shift) in enumerate(spans if len(spans) > 1 else []):
            next_start, following = spans[(i + 1) % len(spans)]
            if i == len(spans) - 1:
                next_start += week
            if start + _length(shift) > next_start:
                raise ValueError(f"shifts overlap: {_shift(shift)} and {_shift(following)}")
        return shifts


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _length(shift: ShiftIn) -> int:
    """Minutes on duty; an end at or before the start is the next day's."""
    length = _minutes(shift.end) - _minutes(shift.start)
    return length if length > 0 else length + 1440


def _shift(shift: ShiftIn) -> str:
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[shift.weekday]
    return f"{day} {shift.start:%H:%M}–{shift.end:%H:%M}"


class LeaveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _positive(self) -> LeaveIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class SwapIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slot_id: int = Field(ge=1)
    other_slot_id: int = Field(ge=1)
    reason: str = Field(default="", max_length=200)


class RollIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(default=ROSTER_DAYS, ge=1, le=92)


# ---------------------------------------------------------------- helpers


async def _client_or_none(request: Request) -> Client | None:
    """The Temporal client if it answers; waking waiting orders is best effort."""
    try:
        return await temporal_client(request)
    except HTTPException:
        return None


async def wake_stores(
    request: Request, store_ids: list[int] | None, staff_ids: list[int] | None = None
) -> int | None:
    """Signal `roster_changed` (for these staff, if named) to the waiting orders of these
    stores; None if Temporal is down (the orders look again at their own next timer)."""
    client = await _client_or_none(request)
    if client is None:
        return None
    try:
        return len(await wake_waiting(client, store_ids, staff_ids))
    except RPCError:
        return None


def _staff_json(staff: Staff, **extra: Any) -> StaffPublic:
    view: StaffPublic = StaffPublic.of(staff, **extra)
    return view


async def _active_store(db: AsyncSession, caller: Principal, store_id: int) -> Store:
    store = await manage_store(db, caller, store_id)
    if not store.active:
        raise HTTPException(409, f"store {store_id} is inactive")
    return store


def _released_json(released: list[Any]) -> list[ReleasedPublic]:
    return [ReleasedPublic.of(r) for r in released]


# ---------------------------------------------------------------- staff


@router.get("/staff", response_model=Page[StaffPublic])
async def list_staff(
    db: DB,
    caller: Caller,
    store_id: int | None = None,
    subsite_id: int | None = None,
    active: bool | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Page[StaffPublic]:
    """Staff in the caller's scope (a staff token sees only itself), by id."""
    require(caller, *STAFF_READERS)
    await scope.check_filters(db=db, caller=caller, store_id=store_id, subsite_id=subsite_id)
    query = select(Staff).join(Store, col(Store.id) == Staff.store_id).order_by(col(Staff.id))
    mine = scope.visible(caller, store=Staff.store_id, subsite=Store.subsite_id, staff=Staff.id)
    if mine is not None:
        query = query.where(mine)
    if store_id is not None:
        query = query.where(Staff.store_id == store_id)
    if subsite_id is not None:
        query = query.where(Store.subsite_id == subsite_id)
    if active is not None:
        query = query.where(Staff.active == active)
    return await page_of(db, query, StaffPublic, limit=limit, offset=offset)


def _managers_by_admins(caller: Principal, *roles: str | None) -> None:
    """A store manager runs their consultants; making or changing a manager is an admin's."""
    if caller.role is Role.STORE_MANAGER and StaffRole.MANAGER in roles:
        raise forbidden("a store manager manages consultants; managers are an admin's to manage")


@router.post("/staff", status_code=201, response_model=StaffPublic)
async def create_staff(body: StaffIn, db: DB, caller: Caller) -> StaffPublic:
    """A new staff member of a store in the caller's scope (no pattern yet: not on duty)."""
    await _active_store(db, caller, body.store_id)
    _managers_by_admins(caller, body.role)
    staff = Staff(**body.model_dump())
    db.add(staff)
    await audit.record(
        db,
        actor=caller.name,
        kind="staff",
        object_id=None,
        old={},
        new=staff,
        store_id=staff.store_id,
    )
    await db.commit()
    await db.refresh(staff)
    return _staff_json(staff, points=0)


@router.get("/staff/{staff_id}", response_model=StaffPublic)
async def get_staff(staff_id: int, db: DB, caller: Caller) -> StaffPublic:
    staff = await read_staff(db, caller, staff_id)
    return _staff_json(staff, points=await points.balance(db=db, staff_id=staff_id))


@router.patch("/staff/{staff_id}", response_model=StaffPublic)
async def update_staff(
    staff_id: int, body: StaffPatch, request: Request, db: DB, caller: Caller
) -> StaffPublic:
    """Change the fields sent. `store_id` moves the person, `active: false` deactivates them:
    either re-dispatches their open orders at once (the reason is recorded on each order)."""
    staff = await manage_staff(db, caller, staff_id)
    sent = body.model_fields_set
    _managers_by_admins(caller, staff.role, body.role if "role" in sent else None)
    old_store = staff.store_id
    moving = "store_id" in sent and body.store_id != staff.store_id
    new_store = await _active_store(db, caller, body.store_id) if moving and body.store_id else None
    deactivating = "active" in sent and body.active is False and staff.active
    # Reassigning needs Temporal: refuse before changing anything if it does not answer.
    client = await temporal_client(request) if moving or deactivating else None
    changed = await staff_service.update(
        db=db,
        staff=staff,
        changes={name: getattr(body, name) for name in sent - {"reason"}},
        new_store=new_store,
        client=client,
        actor=caller.name,
        reason=body.reason,
    )
    staff, released = changed.staff, changed.released
    woken = None
    if sent & {"store_id", "active", "capacity", "role"}:
        woken = await wake_stores(request, sorted({old_store, staff.store_id}), [staff_id])
    return _staff_json(
        staff,
        points=await points.balance(db=db, staff_id=staff_id),
        released=_released_json(released),
        woken=woken,
    )


async def _manage_or_self(db: AsyncSession, caller: Principal, staff_id: int) -> Staff:
    """Pausing and resuming is a manager's, and also each staff member's own."""
    if caller.role is Role.STAFF and caller.staff_id == staff_id:
        return await read_staff(db, caller, staff_id)
    return await manage_staff(db, caller, staff_id)


@router.post("/staff/{staff_id}/pause", response_model=StaffPublic)
async def pause_rotation(
    staff_id: int, body: PauseIn, request: Request, db: DB, caller: Caller
) -> StaffPublic:
    """Out of office: left out of every draw until they resume (open orders stay with them
    unless `reassign_open`). A staff member may pause themself; the reason is kept."""
    staff = await _manage_or_self(db, caller, staff_id)
    client = await temporal_client(request) if body.reassign_open else None
    staff.rotation_paused = True
    staff.pause_reason = body.reason
    db.add(staff)
    await db.commit()
    await db.refresh(staff)
    released = []
    if client is not None:
        released = await release_open_orders(
            client,
            staff_id,
            trigger="paused",
            reason=body.reason or f"staff {staff_id}'s rotation paused by {caller.name}",
            by=caller.name,
        )
    return _staff_json(staff, released=_released_json(released))


@router.post("/staff/{staff_id}/resume", response_model=StaffPublic)
async def resume_rotation(staff_id: int, request: Request, db: DB, caller: Caller) -> StaffPublic:
    """Back in the draw; the store's orders waiting for a shift look again now."""
    staff = await _manage_or_self(db, caller, staff_id)
    staff.rotation_paused = False
    staff.pause_reason = ""
    db.add(staff)
    await db.commit()
    await db.refresh(staff)
    return _staff_json(staff, woken=await wake_stores(request, [staff.store_id], [staff_id]))


# ---------------------------------------------------------------- points


@router.get("/staff/{staff_id}/points", response_model=PointsLedger)
async def get_points(
    staff_id: int, db: DB, caller: Caller, limit: Limit = 50, offset: Offset = 0
) -> PointsLedger:
    """The balance (the sum of the ledger), the selection weight it gives, and the ledger,
    newest first."""
    staff = await read_staff(db, caller, staff_id)
    balance = await points.balance(db=db, staff_id=staff_id)
    total = (await db.exec(select(func.count()).where(PointsEntry.staff_id == staff_id))).one()
    entries = (
        await db.exec(
            select(PointsEntry)
            .where(PointsEntry.staff_id == staff_id)
            .order_by(col(PointsEntry.created_at).desc(), col(PointsEntry.id).desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    by_type = await points.weights(db=db, staff=staff, points=balance)
    return PointsLedger(
        staff_id=staff_id,
        balance=balance,
        weight=by_type[OrderType.NEW],
        weight_by_order_type=by_type,
        entries=[PointsEntryPublic.of(e) for e in entries],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/staff/{staff_id}/points", status_code=201, response_model=PointsAdjusted)
async def adjust_points(staff_id: int, body: PointsIn, db: DB, caller: Caller) -> PointsAdjusted:
    """A manual adjustment: the caller is recorded as its actor, with the reason given."""
    staff = await manage_staff(db, caller, staff_id)
    entry = await points.adjust(
        db=db,
        staff_id=staff_id,
        delta=body.delta,
        reason=body.reason,
        actor=caller.name,
        actor_staff_id=caller.staff_id,
        order_id=body.order_id,
    )
    balance = await points.balance(db=db, staff_id=staff_id)
    by_type = await points.weights(db=db, staff=staff, points=balance)
    return PointsAdjusted(
        entry=PointsEntryPublic.of(entry), balance=balance, weight=by_type[OrderType.NEW]
    )


# ---------------------------------------------------------------- patterns


async def _patterns(db: AsyncSession, staff: Staff) -> PatternsPublic:
    store = await db.get(Store, staff.store_id)
    assert store is not None
    rows = (
        await db.exec(
            select(DutyPattern)
            .where(DutyPattern.staff_id == staff.id)
            .order_by(col(DutyPattern.weekday), col(DutyPattern.start))
        )
    ).all()
    assert staff.id is not None and store.id is not None
    return PatternsPublic(
        staff_id=staff.id,
        store_id=store.id,
        timezone=store.timezone,
        shifts=[ShiftPublic(weekday=p.weekday, start=p.start, end=p.end) for p in rows],
    )


@router.get("/staff/{staff_id}/patterns", response_model=PatternsPublic)
async def get_patterns(staff_id: int, db: DB, caller: Caller) -> PatternsPublic:
    """The weekly shifts, in the local time of the person's store (`timezone`)."""
    return await _patterns(db, await read_staff(db, caller, staff_id))


def _by_day(shift: dict[str, Any]) -> tuple[int, str]:
    return shift["weekday"], shift["start"]


@router.put("/staff/{staff_id}/patterns", response_model=PatternsPublic)
async def put_patterns(
    staff_id: int, body: PatternsIn, request: Request, db: DB, caller: Caller
) -> PatternsPublic:
    """Replace the weekly shifts; slots not yet begun are rolled again from them at once."""
    staff = await manage_staff(db, caller, staff_id)
    before = (await _patterns(db, staff)).model_dump(mode="json")["shifts"]
    old = {"shifts": sorted(before, key=_by_day)}
    await db.exec(delete(DutyPattern).where(col(DutyPattern.staff_id) == staff_id))
    for shift in body.shifts:
        db.add(
            DutyPattern(staff_id=staff_id, weekday=shift.weekday, start=shift.start, end=shift.end)
        )
    await db.flush()
    await audit.record(
        db,
        actor=caller.name,
        kind="roster",
        object_id=staff_id,
        old=old,
        new={"shifts": sorted(body.model_dump(mode="json")["shifts"], key=_by_day)},
        store_id=staff.store_id,
    )
    rolled = await reroll_staff(db, staff_id, at=utcnow())
    await db.commit()
    result = await _patterns(db, staff)
    woken = await wake_stores(request, [staff.store_id], [staff_id])
    return result.model_copy(update={"slots_added": rolled.slots_added, "woken": woken})


# ---------------------------------------------------------------- leave


@router.get("/staff/{staff_id}/leave", response_model=Page[LeavePublic])
async def list_leave(
    staff_id: int,
    db: DB,
    caller: Caller,
    include_past: bool = False,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Page[LeavePublic]:
    await read_staff(db, caller, staff_id)
    query = select(Leave).where(Leave.staff_id == staff_id).order_by(col(Leave.starts_at))
    if not include_past:
        query = query.where(Leave.ends_at > utcnow())
    return await page_of(db, query, LeavePublic, limit=limit, offset=offset)


@router.post("/staff/{staff_id}/leave", status_code=201, response_model=LeavePublic)
async def add_leave(
    staff_id: int, body: LeaveIn, request: Request, db: DB, caller: Caller
) -> LeavePublic:
    """Time off. A leave that has begun re-dispatches the person's open orders now; a later
    one does so when it begins (a `leave-<id>` workflow waits for it)."""
    staff = await manage_staff(db, caller, staff_id)
    now = utcnow()
    if body.ends_at <= now:
        raise HTTPException(422, "the leave is over already")
    client = await temporal_client(request)
    leave = Leave(
        staff_id=staff_id, starts_at=body.starts_at, ends_at=body.ends_at, reason=body.reason
    )
    db.add(leave)
    await db.flush()
    assert leave.id is not None
    await audit.record(
        db,
        actor=caller.name,
        kind="leave",
        object_id=leave.id,
        old={},
        new=leave,
        store_id=staff.store_id,
    )
    released = []
    workflow_id = None
    reason = body.reason or f"on leave until {body.ends_at.isoformat()}"
    if body.starts_at <= now:
        await db.commit()
        released = await release_open_orders(
            client, staff_id, trigger="on leave", reason=reason, by=caller.name
        )
    else:
        # The trigger first, then the row: a leave is never saved without what starts it (a
        # trigger whose row was not saved finds no leave when it wakes, and releases nothing).
        workflow_id = leave_workflow_id(leave.id)
        try:
            await _start_leave_trigger(client, leave, reason, by=caller.name)
        except RPCError as exc:
            raise HTTPException(
                503, f"Temporal did not take the leave's trigger ({exc}); nothing was saved"
            ) from exc
        await db.commit()
    await db.refresh(leave)
    view: LeavePublic = LeavePublic.of(
        leave,
        released=_released_json(released),
        workflow_id=workflow_id,
        woken=await wake_stores(request, [staff.store_id], [staff_id]),
    )
    return view


async def _start_leave_trigger(client: Client, leave: Leave, reason: str, *, by: str) -> None:
    assert leave.id is not None
    await client.start_workflow(
        LeaveStartWorkflow.run,
        LeaveStart(
            leave_id=leave.id,
            staff_id=leave.staff_id,
            starts_at=leave.starts_at,
            reason=reason,
            by=by,
        ),
        id=leave_workflow_id(leave.id),
        task_queue=settings.TEMPORAL_TASK_QUEUE,
        static_summary=f"Leave {leave.id} of staff {leave.staff_id} begins {leave.starts_at}",
    )


@router.delete("/staff/{staff_id}/leave/{leave_id}", response_model=LeaveDeleted)
async def delete_leave(
    staff_id: int, leave_id: int, request: Request, db: DB, caller: Caller
) -> LeaveDeleted:
    """Cancel a leave (or end it early): the person is back on their roster at once."""
    staff = await manage_staff(db, caller, staff_id)
    leave = await db.get(Leave, leave_id)
    if leave is None or leave.staff_id != staff_id:
        raise HTTPException(404, f"staff {staff_id} has no leave {leave_id}")
    await audit.record(
        db,
        actor=caller.name,
        kind="leave",
        object_id=leave_id,
        old=audit.snapshot(leave),
        new=None,
        store_id=staff.store_id,
    )
    await db.delete(leave)
    await db.commit()
    client = await _client_or_none(request)
    if client is not None:
        # The planned start need not fire (it would find no leave anyway).
        with contextlib.suppress(RPCError):
            await client.get_workflow_handle(leave_workflow_id(leave_id)).cancel()
    woken = await wake_stores(request, [staff.store_id], [staff_id])
    return LeaveDeleted(deleted=leave_id, woken=woken)


# ---------------------------------------------------------------- slots, swaps, on duty


def _swap_view(slot: DutySlot) -> dict[str, object]:
    """What a swap's audit entry keeps of one slot: whose window, when (JSON values)."""
    return {
        "id": slot.id,
        "staff_id": slot.staff_id,
        "starts_at": slot.starts_at.isoformat(),
        "ends_at": slot.ends_at.isoformat(),
    }


def _slot_json(slot: DutySlot) -> SlotPublic:
    view: SlotPublic = SlotPublic.of(slot)
    return view


def _window(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    start = start or utcnow()
    try:
        end = end or start + timedelta(days=ROSTER_DAYS)
    except OverflowError:
        raise HTTPException(422, "`from` is too far in the future: give `to` as well") from None
    if end <= start:
        raise HTTPException(422, "`to` must be after `from`")
    return start, end


@router.get("/staff/{staff_id}/slots", response_model=Page[SlotPublic])
async def staff_slots(
    staff_id: int,
    db: DB,
    caller: Caller,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: SlotLimit = 1000,
    offset: Offset = 0,
) -> Page[SlotPublic]:
    """The person's concrete duty slots overlapping [from, to) (default: the next 14 days)."""
    await read_staff(db, caller, staff_id)
    lo, hi = _window(start, end)
    query = (
        select(DutySlot)
        .where(DutySlot.staff_id == staff_id, DutySlot.ends_at > lo, DutySlot.starts_at < hi)
        .order_by(col(DutySlot.starts_at))
    )
    return await page_of(db, query, SlotPublic, limit=limit, offset=offset)


@router.get("/stores/{store_id}/slots", response_model=Page[SlotPublic])
async def store_slots(
    store_id: int,
    db: DB,
    caller: Caller,
    start: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: SlotLimit = 1000,
    offset: Offset = 0,
) -> Page[SlotPublic]:
    """The store's duty slots overlapping [from, to): what a manager swaps."""
    require(caller, *STAFF_READERS)
    await check_store(db, caller, store_id)
    lo, hi = _window(start, end)
    query = (
        select(DutySlot)
        .where(DutySlot.store_id == store_id, DutySlot.ends_at > lo, DutySlot.starts_at < hi)
        .order_by(col(DutySlot.starts_at), col(DutySlot.staff_id))
    )
    return await page_of(db, query, SlotPublic, limit=limit, offset=offset)


def on_duty_query(store_id: int, at: datetime, *, include_paused: bool = False) -> Select[Any]:
    """Who is on duty in `store_id` at `at`: one SQL statement.

    Active staff of the store with a slot of the store covering `at` and no leave covering
    it; people whose rotation is paused are out of office (included only when asked, flagged).
    With each person: the covering slot, their points balance and their open orders.
    """
    query = (
        sql_select(
            col(Staff.id).label("staff_id"),
            col(Staff.name),
            col(Staff.role),
            col(Staff.rotation_paused),
            col(Staff.capacity),
            col(DutySlot.id).label("slot_id"),
            col(DutySlot.starts_at),
            col(DutySlot.ends_at),
            col(DutySlot.source),
            points.balance_of(Staff.id).label("points"),
            open_orders_of(Staff.id).label("open_orders"),
        )
        .join(DutySlot, col(DutySlot.staff_id) == Staff.id)
        .where(
            col(DutySlot.store_id) == store_id,
            col(Staff.store_id) == store_id,
            col(Staff.active),
            covers(col(DutySlot.starts_at), col(DutySlot.ends_at), at),
            ~on_leave(Staff.id, at),
        )
        .ext(distinct_on(col(Staff.id)))  # overlapping slots: one row per person, earliest slot
        .order_by(col(Staff.id), col(DutySlot.starts_at))
    )
    if not include_paused:
        query = query.where(~col(Staff.rotation_paused))
    return query


@router.get("/stores/{store_id}/on-duty", response_model=OnDuty)
async def who_is_on_duty(
    store_id: int,
    db: DB,
    caller: Caller,
    at: AwareDatetime | None = None,
    include_paused: bool = False,
) -> OnDuty:
    """Who is on duty in store S at time T (default now), with points and selection weight."""
    require(caller, *STAFF_READERS)
    await check_store(db, caller, store_id)
    instant = at or utcnow()
    query = on_duty_query(store_id, instant, include_paused=include_paused)
    rows = (await (await db.connection()).execute(query)).all()
    caps = await points.weight_caps(db=db, store_id=store_id)
    return OnDuty(
        store_id=store_id,
        at=instant,
        on_duty=[
            OnDutyPerson(
                staff_id=r.staff_id,
                name=r.name,
                role=r.role,
                rotation_paused=r.rotation_paused,
                capacity=r.capacity,
                open_orders=int(r.open_orders),
                points=int(r.points),
                weight=weight(int(r.points), cap=caps[OrderType.NEW]),
                weight_by_order_type=points.weights_under(int(r.points), caps),
                slot=SlotRef(
                    id=r.slot_id, starts_at=r.starts_at, ends_at=r.ends_at, source=r.source
                ),
            )
            for r in rows
        ],
    )


@router.post("/roster/swaps", status_code=201, response_model=Swapped)
async def swap_slots(body: SwapIn, request: Request, db: DB, caller: Caller) -> Swapped:
    """Two staff of one store exchange one slot each: each takes the other's window.

    Both slots are replaced by `swap` slots that remember whose pattern they came from, so
    rolling the roster again never brings the originals back.
    """
    if body.slot_id == body.other_slot_id:
        raise HTTPException(422, "a slot cannot be swapped with itself")
    first = await db.get(DutySlot, body.slot_id, with_for_update=True)
    second = await db.get(DutySlot, body.other_slot_id, with_for_update=True)
    for slot_id, slot in ((body.slot_id, first), (body.other_slot_id, second)):
        if slot is None:
            raise HTTPException(404, f"no duty slot {slot_id}")
    assert first is not None and second is not None
    if first.store_id != second.store_id:
        raise HTTPException(422, "both slots must belong to the same store")
    await manage_store(db, caller, first.store_id)
    if first.staff_id == second.staff_id:
        raise HTTPException(422, "both slots belong to the same person")
    now = utcnow()
    if first.ends_at <= now or second.ends_at <= now:
        raise HTTPException(409, "a slot that is over cannot be swapped")
    for person_id in (first.staff_id, second.staff_id):
        person = await db.get(Staff, person_id)
        if person is None or not person.active or person.store_id != first.store_id:
            raise HTTPException(409, f"staff {person_id} is not an active member of the store")

    def taken_by(slot: DutySlot, taker: int) -> DutySlot:
        owner = slot.replaces_staff_id or slot.staff_id  # whose pattern the window came from
        back_home = owner == taker
        return DutySlot(
            staff_id=taker,
            store_id=slot.store_id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            source=SlotSource.PATTERN if back_home else SlotSource.SWAP,
            replaces_staff_id=None if back_home else owner,
        )

    new = [taken_by(first, second.staff_id), taken_by(second, first.staff_id)]
    before = {"slots": [_swap_view(first), _swap_view(second)]}
    await db.delete(first)
    await db.delete(second)
    await db.flush()
    db.add_all(new)
    await db.flush()
    await audit.record(
        db,
        actor=caller.name,
        kind="swap",
        object_id=f"{body.slot_id}-{body.other_slot_id}",
        old=before,
        new={"slots": [_swap_view(s) for s in new], "reason": body.reason},
        action="swapped",
        store_id=first.store_id,
    )
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise HTTPException(
            409, "one of them already has a slot starting at the other's start time"
        ) from exc
    for slot in new:
        await db.refresh(slot)
    return Swapped(
        slots=[_slot_json(s) for s in new],
        reason=body.reason,
        woken=await wake_stores(request, [new[0].store_id], [s.staff_id for s in new]),
    )


@router.post("/roster/roll", response_model=Rolled)
async def roll_now(request: Request, db: DB, caller: Caller, body: RollIn | None = None) -> Rolled:
    """Run the roll now (what the `roster-maintenance` schedule does), then wake every order
    waiting for a shift."""
    require(caller, Role.HEAD_OFFICE)
    days = body.days if body else ROSTER_DAYS
    result = await roll(db, RollRequest(days=days))
    await db.commit()
    return Rolled(
        days=days,
        staff=result.staff,
        slots_added=result.slots_added,
        woken=await wake_stores(request, None),
    )
