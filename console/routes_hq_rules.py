"""Head office's own allocation rules: in force in every sub-site that has none of its own.
The same page as a sub-site's rule (routes_site): messages at the fields, a preview of each
consultant's weight and share in the stores the rule governs, then the save through the
API's own `put_rule` (head office only; audited with old and new values)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api import rules as api_rules
from api.deps import DB
from console.routes_hq import as_head_office, head_office
from console.routes_site import RulePlace, add_rule_pages
from console.session import Person
from models import OrderType

router = APIRouter(prefix="/console/hq", include_in_schema=False)


def head_office_rules(db: DB, person: Person) -> RulePlace:
    async def save(order_type: OrderType, rule: api_rules.RuleIn) -> Any:
        return await api_rules.put_rule(
            order_type=order_type, body=rule, db=db, caller=as_head_office(person)
        )

    return RulePlace(None, "/console/hq/rules", save)


add_rule_pages(router, head_office, head_office_rules)
