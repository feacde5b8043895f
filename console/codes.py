"""Sign-in by phone number and a 6-digit code sent by SMS.

- A code lives 5 minutes and allows 5 attempts; it is stored as an HMAC, never in plain.
- Asking for codes is rate-limited per phone number and per client address; a number no
  active staff member has gets the same answer (and counts the same), so the form does not
  tell who works here.
- Each code is sent once through the configured SMS provider (the sink in development)
  with the idempotency key `sign-in:<id>`; the outcome is recorded on the code's row.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models import SignInCode, Staff
from models.base import utcnow
from notify.contacts import normalize_phone
from notify.sms import provider_from_settings
from settings import settings

LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5
WINDOW = timedelta(minutes=15)
PER_PHONE = 3  # codes per number per window
PER_ADDRESS = 10  # codes per client address per window


class CodeRefused(ValueError):
    """The request for a code, or the code given, is refused; the message says why."""

    def __init__(self, reason: str, status: int = 422) -> None:
        super().__init__(reason)
        self.reason, self.status = reason, status


def _digest(code_id: int, code: str) -> str:
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{code_id}:{code}".encode(), hashlib.sha256).hexdigest()


def phone_of(raw: str) -> str:
    try:
        return normalize_phone(raw, settings.DEFAULT_COUNTRY)
    except ValueError as exc:
        raise CodeRefused("not_a_phone") from exc


async def _count(db: AsyncSession, *conditions: object) -> int:
    since = utcnow() - WINDOW
    query = select(func.count()).where(col(SignInCode.created_at) > since, *conditions)  # type: ignore[arg-type]
    return int((await db.exec(query)).one())


@dataclass(frozen=True)
class Sent:
    phone: str
    code_id: int


async def request_code(db: AsyncSession, *, raw_phone: str, client_ip: str | None) -> Sent:
    """Record a code for the number and send it (when a staff member has it)."""
    phone = phone_of(raw_phone)
    if await _count(db, col(SignInCode.phone) == phone) >= PER_PHONE:
        raise CodeRefused("too_many_for_phone", 429)
    if client_ip and await _count(db, col(SignInCode.client_ip) == client_ip) >= PER_ADDRESS:
        raise CodeRefused("too_many_for_address", 429)
    staff = (
        await db.exec(
            select(Staff).where(Staff.phone == phone, col(Staff.active)).order_by(col(Staff.id))
        )
    ).first()
    row = SignInCode(
        phone=phone,
        client_ip=client_ip,
        staff_id=staff.id if staff else None,
        expires_at=utcnow() + LIFETIME,
        sms_status="" if staff else "no_staff",
    )
    db.add(row)
    await db.flush()
    assert row.id is not None
    code = f"{secrets.randbelow(1_000_000):06d}"
    row.code_hash = _digest(row.id, code) if staff else ""
    await db.commit()  # the row (and its place in the rate limit) before anything is sent
    if staff is not None:
        await _send(db, row, code)
    return Sent(phone=phone, code_id=row.id)


async def _send(db: AsyncSession, row: SignInCode, code: str) -> None:
    text = f"O2O sign-in code / 登录验证码: {code} (5 min)"
    try:
        provider_id = await provider_from_settings().send(
            to=row.phone, text=text, idempotency_key=f"sign-in:{row.id}"
        )
        row.sms_status, row.sms_provider_id = "sent", provider_id[:200]
    except Exception as exc:  # the person asks again; the failure is on the row
        row.sms_status, row.sms_error = "failed", f"{type(exc).__name__}: {exc}"[:500]
    db.add(row)
    await db.commit()


async def check_code(db: AsyncSession, *, raw_phone: str, code: str) -> Staff:
    """The staff member the code signs in; each try counts, the code works once."""
    phone = phone_of(raw_phone)
    row = (
        await db.exec(
            select(SignInCode)
            .where(SignInCode.phone == phone, col(SignInCode.used_at).is_(None))
            .order_by(col(SignInCode.id).desc())
            .with_for_update()
        )
    ).first()
    if row is None or row.expires_at <= utcnow():
        raise CodeRefused("expired")
    if row.attempts >= MAX_ATTEMPTS:
        raise CodeRefused("too_many_attempts", 429)
    row.attempts += 1
    db.add(row)
    right = bool(row.code_hash) and hmac.compare_digest(
        row.code_hash, _digest(row.id or 0, code.strip())
    )
    staff = await db.get(Staff, row.staff_id) if right and row.staff_id else None
    if staff is None or not staff.active:
        await db.commit()
        raise CodeRefused("wrong_code")
    row.used_at = utcnow()
    await db.commit()
    return staff
