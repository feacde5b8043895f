"""Allocation rules per order type; running orders pick a change up at their next round."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import ConfigDict, Field, field_validator

from activities.orders import get_or_create_rule
from api.deps import DB, Caller
from models import AllocationRuleFields, Channel, NoticeKind, OrderType
from models.base import utcnow

router = APIRouter(prefix="/rules", tags=["rules"])


class RuleIn(AllocationRuleFields):
    """Every field of a rule; PUT replaces the rule whole."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    channels: dict[NoticeKind, list[Channel]] = Field(default_factory=dict)

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
    rule = await get_or_create_rule(db, order_type.value)
    for name, value in body.model_dump(exclude={"channels"}).items():
        setattr(rule, name, value)
    if body.channels:
        rule.channels = {k.value: [c.value for c in v] for k, v in body.channels.items()}
    rule.updated_at = utcnow()
    db.add(rule)
    await db.commit()
    await db.refresh(rule)
    return rule.model_dump(mode="json")
