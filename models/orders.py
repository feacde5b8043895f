"""Orders, their assignments (one row per round) and their audit trail.

The workflow is the one place an order changes state; these rows are its projection,
kept in step by activities so lists and queries never need to ask Temporal.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, json_field, timestamp


class OrderType(StrEnum):
    NEW = "new"
    UNASSIGNED = "unassigned"
    ASSIGNED_UNPROCESSED = "assigned_unprocessed"


class OrderStatus(StrEnum):
    RECEIVED = "received"  # workflow started, store not yet resolved
    WAITING = "waiting"  # nobody on duty can take it; waits for the next shift
    ASSIGNED = "assigned"  # offered to one staff member, not yet accepted
    ACCEPTED = "accepted"  # accepted, being processed
    ESCALATED = "escalated"  # past the rule's rounds and still not accepted
    COMPLETED = "completed"  # processed: the workflow has ended
    CANCELLED = "cancelled"  # ended unhandled by a manager, the web backend or Temporal


class Order(SQLModel, table=True):
    __tablename__ = "dispatch_order"  # `order` is a reserved word

    id: str = Field(primary_key=True, max_length=64, description="given by the web backend")
    type: str = enum_field(OrderType, index=True)
    category: str = Field(default="", max_length=64)
    priority: int = Field(default=0, description="higher first among waiting orders")
    customer_id: int | None = Field(default=None, foreign_key="customer.id", index=True)
    customer_name: str = Field(default="", max_length=100)
    client_ip: str | None = Field(default=None, max_length=45)
    host: str | None = Field(default=None, max_length=253)
    region_code: str | None = Field(default=None, max_length=16)
    city: str | None = Field(default=None, max_length=100)
    subsite_id: int | None = Field(default=None, foreign_key="subsite.id", index=True)
    # One column, so an order is tied to exactly one store at a time.
    store_id: int | None = Field(default=None, foreign_key="store.id", index=True)
    store_reason: str = Field(default="", max_length=300)
    requested_store_id: int | None = Field(default=None, foreign_key="store.id")
    preferred_staff_id: int | None = Field(default=None, foreign_key="staff.id")
    assignee_id: int | None = Field(default=None, foreign_key="staff.id", index=True)
    status: str = enum_field(OrderStatus, default=OrderStatus.RECEIVED, index=True)
    # The dispatch loop's phase (dispatch.phases.Phase) and, while waiting, why.
    phase: str = Field(default="routing", max_length=32)
    wait_reason: str = Field(default="", max_length=64)
    escalated: bool = False
    round: int = Field(default=0, description="assignment rounds so far")
    reassign_count: int = 0
    workflow_id: str = Field(max_length=100, unique=True)
    created_at: datetime = timestamp(default_now=True, index=True)
    updated_at: datetime = timestamp(default_now=True)
    assigned_at: datetime | None = timestamp(nullable=True)
    accepted_at: datetime | None = timestamp(nullable=True)
    completed_at: datetime | None = timestamp(nullable=True)
    cancelled_at: datetime | None = timestamp(nullable=True)
    cancel_reason: str = Field(default="", max_length=300)

    __table_args__ = (enum_check("type", OrderType), enum_check("status", OrderStatus))


class AssignmentOutcome(StrEnum):
    OFFERED = "offered"  # open: waiting for accept
    ACCEPTED = "accepted"  # open: waiting for completion
    COMPLETED = "completed"
    TIMED_OUT = "timed_out"
    DECLINED = "declined"
    REASSIGNED = "reassigned"  # taken away by a manager or a re-dispatch
    RELEASED = "released"  # the assignee left (deactivated, leave)
    CANCELLED = "cancelled"  # the order was cancelled while with them


OPEN_OUTCOMES = (AssignmentOutcome.OFFERED, AssignmentOutcome.ACCEPTED)


class Assignment(SQLModel, table=True):
    """One round of an order: who got it, why, until when, and how it ended."""

    __tablename__ = "assignment"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="dispatch_order.id")
    staff_id: int = Field(foreign_key="staff.id", index=True)
    round: int = Field(ge=1)
    assigned_at: datetime = timestamp()
    accept_deadline: datetime = timestamp()
    accepted_at: datetime | None = timestamp(nullable=True)
    process_deadline: datetime | None = timestamp(nullable=True)
    closed_at: datetime | None = timestamp(nullable=True)
    outcome: str = enum_field(AssignmentOutcome, default=AssignmentOutcome.OFFERED)
    # The decision with its inputs: method, candidates, values, draw, exclusions, warnings.
    reason: dict[str, Any] = json_field()

    __table_args__ = (
        UniqueConstraint("order_id", "round", name="one_assignment_per_round"),
        Index(
            "one_open_assignment_per_order",
            "order_id",
            unique=True,
            postgresql_where=text("outcome IN ('offered', 'accepted')"),
        ),
        enum_check("outcome", AssignmentOutcome),
    )


class OrderEvent(SQLModel, table=True):
    """The audit trail: every routing and assignment decision, with its reason."""

    __tablename__ = "order_event"

    id: int | None = Field(default=None, primary_key=True)
    order_id: str = Field(foreign_key="dispatch_order.id", index=True)
    # Unique per order, so an activity retried after it wrote the event writes nothing more.
    key: str = Field(max_length=120)
    kind: str = Field(max_length=40)
    actor: str = Field(default="workflow", max_length=100)
    detail: dict[str, Any] = json_field()
    at: datetime = timestamp(default_now=True)

    __table_args__ = (UniqueConstraint("order_id", "key", name="one_event_per_key"),)
