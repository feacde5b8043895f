"""Allocation rules per order type; running orders pick a change up at their next round.

Head office keeps one rule per order type (`/rules/{order_type}`); a sub-site's admin may
give their sub-site its own (`/subsites/{id}/rules/{order_type}`), which is then in force
for that sub-site's orders instead — whole, not field by field — until they remove it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import ConfigDict, Field, field_validator, model_validator
from sqlmodel.ext.asyncio.session import AsyncSession

from api.access import forbidden, require
from api.deps import DB, Caller, Principal
from api.subsites import is_admin_of
from models import (
    DEFAULT_CHANNELS,
    AfterEscalation,
    AllocationRule,
    AllocationRuleFields,
    Channel,
    NoticeKind,
    OrderType,
    Role,
    SelectionMethod,
    SubSite,
    SubSiteRule,
    WishFallback,
)
from models.base import utcnow
from services import audit
from services.rules import get_or_create_rule, rule_in_force

router = APIRouter(prefix="/rules", tags=["rules"])
subsite_router = APIRouter(prefix="/subsites/{subsite_id}/rules", tags=["rules"])
SubSiteId = Annotated[int, Path(ge=1)]


# Notices someone has to act on: a rule may not switch all their channels off.
MUST_REACH = (NoticeKind.ASSIGNED, NoticeKind.TIMED_OUT, NoticeKind.ESCALATED)


class RuleIn(AllocationRuleFields):
    """Every field of a rule; PUT replaces the rule whole."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    selection_method: SelectionMethod = SelectionMethod.WEIGHTED_RANDOM
    after_escalation: AfterEscalation = AfterEscalation.KEEP_REASSIGNING
    wish_fallback: WishFallback = WishFallback.STORE
    channels: dict[NoticeKind, list[Channel]] = Field(
        default_factory=lambda: {
            NoticeKind(k): [Channel(c) for c in v] for k, v in DEFAULT_CHANNELS.items()
        }
    )

    @model_validator(mode="after")
    def _reminder_inside_the_deadline(self) -> RuleIn:
        if self.reminder_before_seconds and (
            self.reminder_before_seconds >= self.accept_timeout_seconds
        ):
            raise ValueError(
                f"reminder_before_seconds ({self.reminder_before_seconds}) must be below "
                f"accept_timeout_seconds ({self.accept_timeout_seconds}), or 0 for no reminder"
            )
        return self

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: dict[NoticeKind, list[Channel]]) -> dict[NoticeKind, list[Channel]]:
        for kind, channels in value.items():
            if len(set(channels)) != len(channels):
                raise ValueError(f"channels for {kind.value!r} list a channel twice")
            # A kind left out keeps its default channels (the loop merges kind by kind); an
            # empty list would leave someone who must act never told.
            if not channels and kind in MUST_REACH:
                raise ValueError(
                    f"channels for {kind.value!r} may not be empty: nobody would be told"
                )
        return value


class RulePublic(AllocationRuleFields):
    """A rule as the API shows it: the table's own fields (one definition, with defaults)."""

    order_type: str
    channels: dict[str, list[str]]
    updated_at: datetime


class RuleInForce(RulePublic):
    """The rule in force for a sub-site's orders, and whose it is."""

    subsite_id: int
    source: str  # "sub-site" | "head office"


def _public(rule: AllocationRule | SubSiteRule) -> RulePublic:
    return RulePublic.model_validate(rule.model_dump())


@router.get("/{order_type}", response_model=RulePublic)
async def get_rule(order_type: OrderType, db: DB, caller: Caller) -> RulePublic:
    return _public(await get_or_create_rule(db, order_type.value))


def _fill(rule: AllocationRule | SubSiteRule, body: RuleIn) -> None:
    for name, value in body.model_dump(mode="json", exclude={"channels"}).items():
        setattr(rule, name, value)
    rule.channels = {k.value: [c.value for c in v] for k, v in body.channels.items()}
    rule.updated_at = utcnow()


@router.put("/{order_type}", response_model=RulePublic)
async def put_rule(order_type: OrderType, body: RuleIn, db: DB, caller: Caller) -> RulePublic:
    """Head office's rule: in force in every sub-site that has none of its own."""
    require(caller, Role.HEAD_OFFICE)
    rule = await get_or_create_rule(db, order_type.value)
    old = audit.snapshot(rule)
    _fill(rule, body)
    db.add(rule)
    await audit.record(
        db, actor=caller.name, kind="rule", object_id=f"head_office/{order_type}", old=old, new=rule
    )
    await db.commit()
    await db.refresh(rule)
    return _public(rule)


async def _site(db: AsyncSession, caller: Principal, subsite_id: int, *, change: bool) -> None:
    if await db.get(SubSite, subsite_id) is None:
        raise HTTPException(404, f"no sub-site {subsite_id}")
    if change and not is_admin_of(caller, subsite_id):
        raise forbidden(f"only head office or an admin of sub-site {subsite_id} sets its rules")


def _in_force(rule: AllocationRule | SubSiteRule, subsite_id: int) -> RuleInForce:
    own = isinstance(rule, SubSiteRule)
    return RuleInForce.model_validate(
        rule.model_dump(exclude={"subsite_id"})
        | {"subsite_id": subsite_id, "source": "sub-site" if own else "head office"}
    )


@subsite_router.get("/{order_type}", response_model=RuleInForce)
async def get_subsite_rule(
    subsite_id: SubSiteId, order_type: OrderType, db: DB, caller: Caller
) -> RuleInForce:
    """The rule in force for the sub-site's orders: its own, else head office's (`source`)."""
    await _site(db, caller, subsite_id, change=False)
    return _in_force(await rule_in_force(db, order_type.value, subsite_id), subsite_id)


@subsite_router.put("/{order_type}", response_model=RuleInForce)
async def put_subsite_rule(
    subsite_id: SubSiteId, order_type: OrderType, body: RuleIn, db: DB, caller: Caller
) -> RuleInForce:
    """The sub-site's own rule (whole); its running orders use it from their next round."""
    await _site(db, caller, subsite_id, change=True)
    found = await db.get(SubSiteRule, (subsite_id, order_type.value))
    old = audit.snapshot(found)
    rule = found or SubSiteRule(subsite_id=subsite_id, order_type=order_type.value)
    _fill(rule, body)
    db.add(rule)
    where = f"{subsite_id}/{order_type}"
    await audit.record(
        db,
        actor=caller.name,
        kind="rule",
        object_id=where,
        old=old,
        new=rule,
        subsite_id=subsite_id,
    )
    await db.commit()
    await db.refresh(rule)
    return _in_force(rule, subsite_id)


@subsite_router.delete("/{order_type}", status_code=204)
async def delete_subsite_rule(
    subsite_id: SubSiteId, order_type: OrderType, db: DB, caller: Caller
) -> Response:
    """Back to head office's rule (404 if the sub-site had none of its own)."""
    await _site(db, caller, subsite_id, change=True)
    rule = await db.get(SubSiteRule, (subsite_id, order_type.value))
    if rule is None:
        raise HTTPException(404, f"sub-site {subsite_id} has no rule of its own for {order_type}")
    await db.delete(rule)
    where = f"{subsite_id}/{order_type}"
    old = audit.snapshot(rule)
    await audit.record(
        db,
        actor=caller.name,
        kind="rule",
        object_id=where,
        old=old,
        new=None,
        subsite_id=subsite_id,
    )
    await db.commit()
    return Response(status_code=204)
