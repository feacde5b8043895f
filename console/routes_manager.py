"""A store manager's pages: the live board, the roster with editing, staff and points.

Changes go through the JSON API's functions with the manager's principal (scope checks,
"a manager manages consultants", "never your own points" all live there).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from api import staff as api_staff
from api.deps import DB
from console.auth import Form, Manager
from console.queries import board, store_staff
from console.web import attempt_then, refused, render
from models.base import utcnow

router = APIRouter(prefix="/console", include_in_schema=False)
WEEKDAYS = range(7)


@router.get("/board")
async def board_page(request: Request, db: DB, person: Manager) -> Response:
    return render(
        request, "board.html", person=person, columns=await board(db, person.store.id or 0)
    )


@router.get("/board/columns")
async def board_fragment(request: Request, db: DB, person: Manager) -> Response:
    """The columns alone: fetched again whenever the live feed reports a change."""
    return render(
        request, "_board.html", person=person, columns=await board(db, person.store.id or 0)
    )


@router.get("/roster")
async def roster_page(request: Request, db: DB, person: Manager) -> Response:
    """Who is on duty now (paused people flagged with their reason), and the week's slots."""
    store_id, caller = person.store.id or 0, person.principal
    duty = (
        await api_staff.who_is_on_duty(
            store_id=store_id, db=db, caller=caller, at=None, include_paused=True
        )
    ).model_dump(mode="json")
    now = utcnow()
    slots = [
        s.model_dump(mode="json")
        for s in (
            await api_staff.store_slots(
                store_id=store_id, db=db, caller=caller, start=now, end=now + timedelta(days=7)
            )
        ).items
    ]
    people = await store_staff(db, store_id)
    patterns = {
        s.id: await api_staff.get_patterns(staff_id=s.id or 0, db=db, caller=caller)
        for s in people
        if s.role == "consultant"
    }
    leave = {
        s.id: (
            await api_staff.list_leave(staff_id=s.id or 0, db=db, caller=caller, include_past=False)
        ).items
        for s in people
    }
    zone = ZoneInfo(person.store.timezone)
    # Keyed by (month-day, weekday number): the page names the weekday in its language.
    days: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for slot in slots:  # by the store's local day, in its local time
        start = datetime.fromisoformat(slot["starts_at"]).astimezone(zone)
        end = datetime.fromisoformat(slot["ends_at"]).astimezone(zone)
        shown = {**slot, "from": start.strftime("%H:%M"), "to": end.strftime("%H:%M")}
        days.setdefault((start.strftime("%m-%d"), start.weekday()), []).append(shown)
    for row in duty["on_duty"]:
        row["until"] = datetime.fromisoformat(row["slot"]["ends_at"]).astimezone(zone)
    return render(
        request,
        "roster.html",
        person=person,
        duty=duty["on_duty"],
        days=days,
        people=people,
        names={s.id: s.name for s in people},
        patterns=patterns,
        leave=leave,
    )


def _shifts(form: dict[str, str]) -> list[api_staff.ShiftIn]:
    """`start-<weekday>` / `end-<weekday>` fields (HH:MM; both blank: no shift that day)."""
    shifts = []
    for day in WEEKDAYS:
        start, end = form.get(f"start-{day}", "").strip(), form.get(f"end-{day}", "").strip()
        if not start and not end:
            continue
        if not start or not end:
            raise HTTPException(422, f"weekday {day}: give both the start and the end")
        try:
            shifts.append(
                api_staff.ShiftIn(
                    weekday=day, start=time.fromisoformat(start), end=time.fromisoformat(end)
                )
            )
        except ValueError as exc:
            raise HTTPException(422, f"weekday {day}: {start}–{end} is not a time range") from exc
    return shifts


@router.post("/staff/{staff_id}/patterns")
async def save_patterns(
    staff_id: int, request: Request, db: DB, person: Manager, form: Form
) -> Response:
    async def call() -> Any:
        body = api_staff.PatternsIn(shifts=_shifts(form))
        return await api_staff.put_patterns(
            staff_id=staff_id, body=body, request=request, db=db, caller=person.principal
        )

    return await attempt_then(
        request, person, "/console/roster", call, "/console/roster?done=patterns"
    )


def _local_instant(text: str, zone: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise HTTPException(422, f"{text!r} is not a date and time") from exc
    return value.replace(tzinfo=ZoneInfo(zone)) if value.tzinfo is None else value.astimezone(UTC)


@router.post("/roster/swap")
async def swap(request: Request, db: DB, person: Manager, form: Form) -> Response:
    """Two people of the store exchange one slot each (the JSON API's swap)."""

    async def call() -> Any:
        try:
            first, second = int(form.get("slot_id", "")), int(form.get("other_slot_id", ""))
        except ValueError as exc:
            raise HTTPException(422, "choose two shifts to swap") from exc
        body = api_staff.SwapIn(
            slot_id=first, other_slot_id=second, reason=form.get("reason", "").strip()
        )
        return await api_staff.swap_slots(
            body=body, request=request, db=db, caller=person.principal
        )

    return await attempt_then(request, person, "/console/roster", call, "/console/roster?done=swap")


@router.post("/staff/{staff_id}/leave")
async def add_leave(
    staff_id: int, request: Request, db: DB, person: Manager, form: Form
) -> Response:
    async def call() -> Any:
        zone = person.store.timezone
        body = api_staff.LeaveIn(
            starts_at=_local_instant(form.get("starts_at", ""), zone),
            ends_at=_local_instant(form.get("ends_at", ""), zone),
            reason=form.get("reason", "").strip(),
        )
        return await api_staff.add_leave(
            staff_id=staff_id, body=body, request=request, db=db, caller=person.principal
        )

    return await attempt_then(
        request, person, "/console/roster", call, "/console/roster?done=leave"
    )


@router.post("/staff/{staff_id}/leave/{leave_id}/delete")
async def delete_leave(
    staff_id: int, leave_id: int, request: Request, db: DB, person: Manager, form: Form
) -> Response:
    return await attempt_then(
        request,
        person,
        "/console/roster",
        lambda: api_staff.delete_leave(
            staff_id=staff_id, leave_id=leave_id, request=request, db=db, caller=person.principal
        ),
        "/console/roster?done=leave-deleted",
    )


@router.get("/staff")
async def staff_page(request: Request, db: DB, person: Manager) -> Response:
    """The store's people with their points balance; one person's ledger when chosen."""
    caller = person.principal
    people = await store_staff(db, person.store.id or 0)
    balances = {
        s.id: (await api_staff.get_staff(staff_id=s.id or 0, db=db, caller=caller)).points
        for s in people
    }
    chosen = request.query_params.get("id")
    ledger = None
    if chosen and chosen.isdigit():
        try:
            ledger = await api_staff.get_points(
                staff_id=int(chosen), db=db, caller=caller, limit=50, offset=0
            )
        except HTTPException as exc:
            return refused(
                request, exc.status_code, str(exc.detail), person=person, back="/console/staff"
            )
    return render(
        request, "staff.html", person=person, people=people, balances=balances, ledger=ledger
    )


@router.post("/staff/{staff_id}/points")
async def adjust_points(
    staff_id: int, request: Request, db: DB, person: Manager, form: Form
) -> Response:
    back = f"/console/staff?id={staff_id}"

    async def call() -> Any:
        try:
            delta = int(form.get("delta", ""))
        except ValueError as exc:
            raise HTTPException(422, "the adjustment must be a whole number") from exc
        body = api_staff.PointsIn(delta=delta, reason=form.get("reason", "").strip())
        return await api_staff.adjust_points(
            staff_id=staff_id, body=body, db=db, caller=person.principal
        )

    return await attempt_then(request, person, back, call, f"{back}&done=points")
