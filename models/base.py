"""Column helpers shared by every table: aware timestamps, JSON documents, enum checks."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Column, DateTime, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def timestamp(*, nullable: bool = False, default_now: bool = False, index: bool = False) -> Any:
    """A `timestamptz` column; every instant in the database is timezone-aware."""
    return Field(
        default_factory=utcnow if default_now else None,
        sa_column=Column(
            DateTime(timezone=True),
            nullable=nullable,
            index=index,
            server_default=func.now() if default_now else None,
        ),
    )


def json_field(*, default_factory: Any = dict) -> Any:
    server_default = "[]" if default_factory is list else "{}"
    return Field(
        default_factory=default_factory,
        sa_column=Column(JSONB, nullable=False, server_default=server_default),
    )


def enum_field(enum: type[StrEnum], *, default: StrEnum | None = None, index: bool = False) -> Any:
    """A short string column; the allowed values are a CHECK constraint (see `enum_check`)."""
    if default is None:
        return Field(sa_type=String(32), index=index)
    return Field(default=default, sa_type=String(32), index=index)


def enum_check(column: str, enum: type[StrEnum]) -> CheckConstraint:
    values = ", ".join(f"'{member.value}'" for member in enum)
    return CheckConstraint(f"{column} IN ({values})", name=f"{column}_allowed")
