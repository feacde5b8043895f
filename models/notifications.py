"""Every notice sent (or tried) with its outcome; the idempotency key makes it exactly-once."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, timestamp


class NoticeKind(StrEnum):
    ASSIGNED = "assigned"
    REMINDER = "reminder"
    TIMED_OUT = "timed_out"
    ESCALATED = "escalated"
    WAITING = "waiting"
    CANCELLED = "cancelled"  # the order the recipient held was cancelled


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class NoticeStatus(StrEnum):
    PENDING = "pending"  # row written, nothing sent yet
    SENDING = "sending"  # a send is under way, nothing irreversible done yet
    # Handed to the relay / provider, outcome not recorded yet: a retry that finds a row
    # here does not know whether the message went out (see activities/notices.py).
    DELIVERING = "delivering"
    SENT = "sent"
    FAILED = "failed"  # retries exhausted
    SKIPPED = "skipped"  # no usable address for this channel: a recorded warning


class Notification(SQLModel, table=True):
    __tablename__ = "notification"

    id: int | None = Field(default=None, primary_key=True)
    idempotency_key: str = Field(max_length=200, unique=True)
    order_id: str | None = Field(default=None, foreign_key="dispatch_order.id", index=True)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    kind: str = enum_field(NoticeKind)
    channel: str = enum_field(Channel)
    round: int = 0
    recipient: str = Field(default="", max_length=254)
    language: str = Field(default="zh", max_length=8)
    template: str = Field(max_length=100)
    subject: str = Field(default="", max_length=300)
    status: str = enum_field(NoticeStatus, default=NoticeStatus.PENDING, index=True)
    attempts: int = 0
    # Retries that found the notice `delivering` (a worker died mid-hand-over) and recovered it.
    in_doubt_recoveries: int = 0
    last_error: str = Field(default="", max_length=1000)
    provider_message_id: str = Field(default="", max_length=200)
    created_at: datetime = timestamp(default_now=True)
    sent_at: datetime | None = timestamp(nullable=True)

    __table_args__ = (
        enum_check("kind", NoticeKind),
        enum_check("channel", Channel),
        enum_check("status", NoticeStatus),
    )
