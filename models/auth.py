"""API tokens: stored hashed, each bound to one role and its scope."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, timestamp


class Role(StrEnum):
    STAFF = "staff"
    STORE_MANAGER = "store_manager"
    SUBSITE_ADMIN = "subsite_admin"
    HEAD_OFFICE = "head_office"
    SERVICE = "service"  # the web backend's order intake


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, unique=True, description="sha256 hex of the token")
    role: str = enum_field(Role)
    staff_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    store_id: int | None = Field(default=None, foreign_key="store.id")
    subsite_id: int | None = Field(default=None, foreign_key="subsite.id")
    created_at: datetime = timestamp(default_now=True)
    revoked_at: datetime | None = timestamp(nullable=True)

    __table_args__ = (enum_check("role", Role),)
