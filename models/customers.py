"""Customers and their communication records (who served them, when, where, what was said)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from models.base import timestamp


class Customer(SQLModel, table=True):
    __tablename__ = "customer"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, index=True)
    phone: str | None = Field(default=None, max_length=20, unique=True, description="E.164")
    email: str | None = Field(default=None, max_length=254, index=True)
    created_at: datetime = timestamp(default_now=True)


class CommunicationRecord(SQLModel, table=True):
    __tablename__ = "communication_record"

    id: int | None = Field(default=None, primary_key=True)
    customer_id: int = Field(foreign_key="customer.id", index=True)
    staff_id: int = Field(foreign_key="staff.id", index=True)
    store_id: int = Field(foreign_key="store.id")
    order_id: str | None = Field(default=None, foreign_key="dispatch_order.id", unique=True)
    channel: str = Field(default="order", max_length=32)
    summary: str = Field(default="", max_length=2000)
    occurred_at: datetime = timestamp(default_now=True, index=True)
