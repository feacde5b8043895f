"""Allocation rules, one per order type, and a sub-site's own rule where its admin set one;
running orders read the rule in force for their sub-site again at every round."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import enum_check, enum_field, json_field, timestamp
from models.orders import OrderType


class SelectionMethod(StrEnum):
    WEIGHTED_RANDOM = "weighted_random"


class AfterEscalation(StrEnum):
    KEEP_REASSIGNING = "keep_reassigning"
    WAIT_FOR_MANAGER = "wait_for_manager"


class WishFallback(StrEnum):
    WAIT_FOR_SHIFT = "wait_for_shift"  # wait up to wish_wait_seconds for the consultant's shift
    STORE = "store"  # give it to the consultant's store at once


# Which notice goes by which channel; the defaults when a rule names none.
DEFAULT_CHANNELS: dict[str, list[str]] = {
    "assigned": ["sms", "email"],
    "reminder": ["sms"],
    "timed_out": ["sms", "email"],
    "escalated": ["sms", "email"],
    "waiting": ["email"],
    "cancelled": ["sms", "email"],
}


class AllocationRuleFields(SQLModel):
    selection_method: str = enum_field(SelectionMethod, default=SelectionMethod.WEIGHTED_RANDOM)
    accept_timeout_seconds: int = Field(default=900, ge=1, le=7 * 86400)
    process_timeout_seconds: int = Field(default=86400, ge=1, le=30 * 86400)
    reassign_period_seconds: int = Field(
        default=0, ge=0, le=86400, description="pause between a timeout and the next round"
    )
    reminder_before_seconds: int = Field(
        default=300, ge=0, le=86400, description="remind the assignee this long before the deadline"
    )
    max_rounds: int = Field(default=3, ge=1, le=1000, description="rounds before escalation")
    skip_previous_assignees: bool = True
    capacity_per_staff: int | None = Field(default=None, ge=1, le=10000)
    after_escalation: str = enum_field(AfterEscalation, default=AfterEscalation.KEEP_REASSIGNING)
    wish_fallback: str = enum_field(WishFallback, default=WishFallback.STORE)
    wish_wait_seconds: int = Field(default=3600, ge=0, le=7 * 86400)
    points_processed_in_time: int = Field(default=2, ge=-1000, le=1000)
    points_timed_out: int = Field(default=-1, ge=-1000, le=1000)
    weight_cap: int | None = Field(
        default=None,
        ge=1,
        le=1_000_000,
        description="largest selection weight anyone gets, whatever their balance (none if null)",
    )


def _rule_checks() -> tuple[CheckConstraint, ...]:
    """The enum checks every rule table has (a constraint belongs to one table: made anew)."""
    return (
        enum_check("order_type", OrderType),
        enum_check("selection_method", SelectionMethod),
        enum_check("after_escalation", AfterEscalation),
        enum_check("wish_fallback", WishFallback),
    )


class AllocationRule(AllocationRuleFields, table=True):
    __tablename__ = "allocation_rule"

    order_type: str = Field(primary_key=True, max_length=32)
    channels: dict[str, list[str]] = json_field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    updated_at: datetime = timestamp(default_now=True)

    __table_args__ = _rule_checks()


class SubSiteRule(AllocationRuleFields, table=True):
    """A sub-site's own rule for an order type: in force there instead of the head-office
    rule, whole (not field by field), until its admin removes it."""

    __tablename__ = "subsite_rule"

    subsite_id: int = Field(foreign_key="subsite.id", primary_key=True)
    order_type: str = Field(primary_key=True, max_length=32)
    channels: dict[str, list[str]] = json_field(default_factory=lambda: dict(DEFAULT_CHANNELS))
    updated_at: datetime = timestamp(default_now=True)

    __table_args__ = _rule_checks()
