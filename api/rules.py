"""Allocation rules per order type; running orders pick a change up at their next round."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field, field_validator

from activities.orders import get_or_create_rule
from api.access import require
from api.deps import DB, Caller
from models import (
    DEFAULT_CHANNELS,
    AfterEscalation,
    AllocationRuleFields,
    Channel,
    NoticeKind,
    OrderType,
    Role,
    SelectionMethod,
    WishFallback,
)
from models.base import utcnow

router = APIRouter(prefix="/rules", tags=["rules"])


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

    @field_validator("channels")
    @classmethod
    def _no_repeats(cls, value: dict[NoticeKind, list[Channel]]) -> dict[NoticeKind, list[Channel]]:
        for kind, channels in value.items():
            if len(set(channels)) != len(channels):
                raise ValueError(f"channels for {kind.value!r} list a channel twice")
        return value


@router.get("/{order_type}")
async def get_rule(order_type: OrderType, db: DB, caller: Caller) -> dict[str, Any]:
    return (await get_or_create_rule(db, order_type.value)).model_dump(mode="json")


@router.put("/{order_type}")
async def put_rule(order_type: OrderType, body: RuleIn, db: DB, caller: Caller) -> dict[str, Any]:
    require(caller, Role.HEAD_OFFICE)  # one rule per order type serves every sub-site
    rule = await get_or_create_rule(db, order_type.value)
    for name, value in body.model_dump(mode="json", exclude={"channels"}).items():
        setattr(rule, name, value)
    rule.channels = {k.value: [c.value for c in v] for k, v in body.channels.items()}
    rule.updated_at = utcnow()
    db.add(rule)
    await db.commit()
    await db.refresh(rule)
    return rule.model_dump(mode="json")
