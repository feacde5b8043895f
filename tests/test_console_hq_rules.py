"""Head office's own rules in the console: messages at the fields, a preview of the weights
in the stores the rule governs (those of sub-sites without a rule of their own), the save
through the API's `put_rule` with its audit entry; a sub-site admin is refused."""

from __future__ import annotations

import re

import httpx
from sqlmodel import select

from models import AllocationRule, AuditEntry, SubSiteRule
from models.db import session
from tests.conftest import Sinks
from tests.factories import make_store_world
from tests.test_console_hq import admin_signed_in
from tests.test_console_pages import csrf_of, pages

__all__ = ["pages"]  # the fixture, shared with the console's other page tests


async def test_head_office_previews_and_saves_its_rule(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    governed = await make_store_world(consultants=2, points=[50, 400])
    own_rule = await make_store_world(consultants=1, points=[400])
    async with session() as db:  # this sub-site keeps its own rule: head office's is not its
        db.add(SubSiteRule(subsite_id=own_rule.subsite.id, order_type="new"))
        await db.commit()
    await admin_signed_in(pages, sinks, head_office=True)
    page = await pages.get("/console/hq/rules/new")
    assert page.status_code == 200, page.text
    assert 'action="/console/hq/rules/new"' in page.text
    assert 'href="/console/hq/rules/new"' in page.text  # the navigation offers it
    fields = dict(
        re.findall(r'<input id="f-(\w+)" name="\w+" inputmode="numeric" value="([^"]*)"', page.text)
    )
    form = {"csrf": csrf_of(page), "skip_previous_assignees": "on"} | fields
    form |= {"selection_method": "weighted_random", "after_escalation": "keep_reassigning"}
    form |= {"wish_fallback": "store"}

    bad = await pages.post("/console/hq/rules/new", data=form | {"accept_timeout_seconds": "x"})
    assert bad.status_code == 422 and 'data-error="accept_timeout_seconds"' in bad.text
    preview = await pages.post("/console/hq/rules/new", data=form | {"weight_cap": "100"})
    assert preview.status_code == 200 and "data-preview" in preview.text
    shown = set(re.findall(r'data-weight="([^"]+)"', preview.text))
    assert {c.name for c in governed.consultants} <= shown
    assert own_rule.consultants[0].name not in shown  # its sub-site's own rule governs it
    async with session() as db:
        before = await db.get(AllocationRule, "new")
        assert before is not None and before.weight_cap is None  # not saved yet

    saved = await pages.post(
        "/console/hq/rules/new", data=form | {"weight_cap": "100", "step": "save"}
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == "/console/hq/rules/new?done=saved"
    async with session() as db:
        rule = await db.get(AllocationRule, "new")
        assert rule is not None and rule.weight_cap == 100
        [entry] = (await db.exec(select(AuditEntry).where(AuditEntry.kind == "rule"))).all()
    assert entry.object_id == "head_office/new" and entry.subsite_id is None
    assert (entry.old["weight_cap"], entry.new["weight_cap"]) == (None, 100)


async def test_a_sub_site_admin_is_refused_head_offices_rules(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await admin_signed_in(pages, sinks, head_office=False)
    assert (await pages.get("/console/hq/rules/new")).status_code == 403
    own = await pages.get("/console/site/rules/new")  # their own sub-site's, as before
    posted = await pages.post(
        "/console/hq/rules/new", data={"csrf": csrf_of(own), "step": "save", "max_rounds": "9"}
    )
    assert posted.status_code == 403
    async with session() as db:
        assert (await db.exec(select(AuditEntry))).all() == []
