"""Allocation rules: head office's per order type, a sub-site's own instead where set.

`rule_in_force` is the one answer to "which rule governs this order now"; the draw, the
points booked on a transition and the weights the API shows all read it.
"""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession

from models import DEFAULT_CHANNELS, AllocationRule, SubSiteRule
from workflows.contracts import Rule


def rule_snapshot(rule: AllocationRule | SubSiteRule) -> Rule:
    """The rule as the workflow reads it: `Rule` carries the table's fields by name, with
    the same defaults (tests/test_rule_fields.py keeps the two in step)."""
    values = {f.name: getattr(rule, f.name) for f in fields(Rule)}
    # A partial channel map (e.g. only "assigned") merges with the defaults kind by kind.
    return Rule(**values | {"channels": DEFAULT_CHANNELS | dict(rule.channels)})


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
