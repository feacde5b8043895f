"""Who changed what: one row per change to setup data (rules, rosters, staff, stores,
sub-sites, admins, tokens), written in the same transaction as the change itself."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from models.base import json_field, timestamp


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = timestamp(default_now=True, index=True)
    actor: str = Field(max_length=200, index=True, description="the caller's name, or cli")
    kind: str = Field(max_length=32, index=True, description="rule, roster, staff, store, …")
    object_id: str = Field(max_length=100, description="the changed object's id within kind")
    action: str = Field(max_length=32, description="created, changed, deleted, revoked, …")
    old: dict[str, Any] = json_field()  # the changed fields before ({} when created)
    new: dict[str, Any] = json_field()  # and after ({} when deleted)
    # The scope the change lies in, so each reader sees only their own (services.scope).
    store_id: int | None = Field(default=None, index=True)
    subsite_id: int | None = Field(default=None, index=True)
