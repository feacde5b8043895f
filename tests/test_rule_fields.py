"""One definition per boundary type: the workflow's `Rule` and the rule tables share their
fields and defaults; the order body and the workflow's `OrderRequest` share their fields."""

from __future__ import annotations

from dataclasses import MISSING, fields

from models import DEFAULT_CHANNELS, AllocationRule
from models.rules import AllocationRuleFields
from services.rules import rule_snapshot
from workflows.contracts import Rule


def test_every_rule_field_is_a_column_with_the_same_default() -> None:
    columns = AllocationRuleFields.model_fields
    for f in fields(Rule):
        if f.name in ("order_type", "channels"):
            continue  # the key, and a JSON column whose default is a factory
        assert f.name in columns, f"Rule.{f.name} has no column"
        default = f.default if f.default is not MISSING else None
        assert columns[f.name].default == default, f"Rule.{f.name}: {default!r}"


def test_a_snapshot_carries_every_field_of_the_row() -> None:
    row = AllocationRule(
        order_type="new",
        accept_timeout_seconds=60,
        reminder_before_seconds=10,
        max_rounds=7,
        weight_cap=9,
        wish_fallback="wait_for_shift",
        channels={"assigned": ["sms"]},
    )
    rule = rule_snapshot(row)
    assert (rule.accept_timeout_seconds, rule.reminder_before_seconds) == (60, 10)
    assert (rule.max_rounds, rule.weight_cap, rule.wish_fallback) == (7, 9, "wait_for_shift")
    # A partial channel map merges with the defaults kind by kind (the loop's 1.0 rule).
    assert rule.channels == DEFAULT_CHANNELS | {"assigned": ["sms"]}


def test_the_order_body_and_the_workflow_input_have_the_same_fields() -> None:
    from api.schemas import OrderIn
    from workflows.contracts import OrderRequest

    assert set(OrderIn.model_fields) == {f.name for f in fields(OrderRequest)}
    body = OrderIn.model_validate(
        {"order_id": "A1", "customer": {"phone": "+8613800000001"}, "wished_store_id": 3}
    )
    order = body.to_request(host="bj.o2o.localhost")
    assert (order.wished_store_id, order.host, order.type) == (3, "bj.o2o.localhost", "new")
