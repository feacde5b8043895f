"""Allocation rules: head office's per order type, a sub-site's own instead where set.

`rule_in_force` is the one answer to "which rule governs this order now"; the draw, the
points booked on a transition and the weights the API shows all read it.
"""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from models import AllocationRule, SubSiteRule
from workflows.contracts import Rule


def rule_snapshot(rule: AllocationRule | SubSiteRule) -> Rule:
    return Rule(
        order_type=rule.order_type,
        accept_timeout_seconds=rule.accept_timeout_seconds,
        process_timeout_seconds=rule.process_timeout_seconds,
        reassign_period_seconds=rule.reassign_period_seconds,
        reminder_before_seconds=rule.reminder_before_seconds,
        max_rounds=rule.max_rounds,
        skip_previous_assignees=rule.skip_previous_assignees,
        capacity_per_staff=rule.capacity_per_staff,
        after_escalation=rule.after_escalation,
        channels=dict(rule.channels),
        wish_fallback=rule.wish_fallback,
        wish_wait_seconds=rule.wish_wait_seconds,
        weight_cap=rule.weight_cap,
    )


async def get_or_create_rule(db: AsyncSession, order_type: str) -> AllocationRule:
    rule = await db.get(AllocationRule, order_type)
    if rule is None:
        await db.exec(
            insert(AllocationRule)
            .values(**AllocationRule(order_type=order_type).model_dump())
            .on_conflict_do_nothing(index_elements=["order_type"])
        )
        await db.commit()
        rule = await db.get(AllocationRule, order_type)
    assert rule is not None
    return rule


async def rule_in_force(
    db: AsyncSession, order_type: str, subsite_id: int | None
) -> AllocationRule | SubSiteRule:
    """The sub-site's own rule for the order type if its admin set one, else head office's."""
    if subsite_id is not None:
        own = await db.get(SubSiteRule, (subsite_id, order_type))
        if own is not None:
            return own
    return await get_or_create_rule(db, order_type)
