"""Sub-sites (regional second-level domains), their stores and their admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

from models.base import json_field, timestamp


class SubSite(SQLModel, table=True):
    __tablename__ = "subsite"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, description="e.g. 'bj'; the domain's first label")
    name: str = Field(max_length=100)
    domain: str = Field(max_length=253, unique=True, description="e.g. bj.example.com")
    # [{"code": "CN-BJ", "cities": ["Beijing"]}, ...] — ISO 3166-2 codes, optional city names.
    regions: list[dict[str, Any]] = json_field(default_factory=list)
    is_head_office: bool = Field(default=False, description="its default store is the last resort")
    active: bool = True
    created_at: datetime = timestamp(default_now=True)

    __table_args__ = (
        Index(
            "one_head_office",
            "is_head_office",
            unique=True,
            postgresql_where=text("is_head_office"),
        ),
    )


class Store(SQLModel, table=True):
    __tablename__ = "store"

    id: int | None = Field(default=None, primary_key=True)
    subsite_id: int = Field(foreign_key="subsite.id", index=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(max_length=100)
    region_code: str = Field(max_length=16, description="ISO 3166-2, e.g. CN-BJ")
    city: str = Field(max_length=100)
    address: str = Field(default="", max_length=300)
    # The store's own contacts (the front desk), shown to head office and on the console.
    phone: str | None = Field(default=None, max_length=32, description="E.164")
    email: str | None = Field(default=None, max_length=254)
    timezone: str = Field(default="Asia/Shanghai", max_length=64)
    is_default: bool = Field(default=False, description="the sub-site's fallback store")
    active: bool = True
    created_at: datetime = timestamp(default_now=True)

    __table_args__ = (
        Index(
            "one_default_store_per_subsite",
            "subsite_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )


class SubSiteAdmin(SQLModel, table=True):
    """A staff member of the sub-site made its admin."""

    __tablename__ = "subsite_admin"

    subsite_id: int = Field(foreign_key="subsite.id", primary_key=True)
    staff_id: int = Field(foreign_key="staff.id", primary_key=True)
    created_at: datetime = timestamp(default_now=True)
