"""The console's server-side records: used order links and sign-in codes.

A link in a notice is signed, not stored; what the server must remember is that it was used
(single use), so a row is written only when a link acts. A sign-in code is stored hashed,
with its attempts, so it expires, locks after too many tries and is rate-limited.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.base import timestamp


class ConsoleLinkUse(SQLModel, table=True):
    """One `/o/<token>` link that has acted (accept or decline); a second use is refused."""

    __tablename__ = "console_link_use"

    token_digest: str = Field(primary_key=True, max_length=64, description="sha256 hex")
    order_id: str = Field(foreign_key="dispatch_order.id", index=True)
    round: int
    staff_id: int = Field(foreign_key="staff.id")
    purpose: str = Field(max_length=32)
    action: str = Field(max_length=32)
    used_at: datetime = timestamp(default_now=True)


class SignInCode(SQLModel, table=True):
    """A 6-digit code sent by SMS to sign in to the console (stored as an HMAC, never plain)."""

    __tablename__ = "console_sign_in_code"

    id: int | None = Field(default=None, primary_key=True)
    phone: str = Field(max_length=20, index=True, description="E.164, as typed and normalised")
    client_ip: str | None = Field(default=None, max_length=45, index=True)
    # None when no active staff member has the number: the row still counts for rate limits.
    staff_id: int | None = Field(default=None, foreign_key="staff.id")
    code_hash: str = Field(default="", max_length=64)
    attempts: int = 0
    created_at: datetime = timestamp(default_now=True, index=True)
    expires_at: datetime = timestamp()
    used_at: datetime | None = timestamp(nullable=True)
    # The one SMS this code was sent in (idempotency key `sign-in:<id>`): its outcome.
    sms_status: str = Field(default="", max_length=32)
    sms_provider_id: str = Field(default="", max_length=200)
    sms_error: str = Field(default="", max_length=500)
