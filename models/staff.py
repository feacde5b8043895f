"""Staff members and their points ledger (the balance is always derived, never stored)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, timestamp


class StaffRole(StrEnum):
    CONSULTANT = "consultant"
    MANAGER = "manager"


class Language(StrEnum):
    ZH = "zh"
    EN = "en"


class Staff(SQLModel, table=True):
    __tablename__ = "staff"

    id: int | None = Field(default=None, primary_key=True)
    store_id: int = Field(foreign_key="store.id", index=True)
    role: str = enum_field(StaffRole, default=StaffRole.CONSULTANT)
    name: str = Field(max_length=100)
    phone: str | None = Field(default=None, max_length=20, description="E.164")
    email: str | None = Field(default=None, max_length=254)
    language: str = enum_field(Language, default=Language.ZH)
    active: bool = True
    rotation_paused: bool = Field(default=False, description="out of office: never selected")
    pause_reason: str = Field(default="", max_length=300, description="why paused (if paused)")
    capacity: int | None = Field(
        default=None, ge=1, description="open orders at most; rule's if null"
    )
    created_at: datetime = timestamp(default_now=True)

    __table_args__ = (enum_check("role", StaffRole), enum_check("language", Language))


class PointsEntry(SQLModel, table=True):
    """One line of the points ledger: who, how much, why, when, which order."""

    __tablename__ = "points_entry"

    id: int | None = Field(default=None, primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    delta: int
    reason: str = Field(max_length=200)
    actor: str = Field(default="system", max_length=100)
    order_id: str | None = Field(default=None, foreign_key="dispatch_order.id", index=True)
    # Automatic entries carry a key so a retried activity never books them twice.
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    created_at: datetime = timestamp(default_now=True, index=True)
