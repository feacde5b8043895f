"""Sub-site admins and head office in a real browser (Debian's chromium) against a whole
running system with the demo data: head office cancels another sub-site's stuck order
from its page, runs the sub-sites and its own rules; a sub-site admin changes a store of
their sub-site and is refused everything else; every role's main pages in Chinese at
desktop width and at 360 px. Screenshots land in docs/console/.

In the demo data the manager of each sub-site's default store is its admin, and bj is the
head-office sub-site: bj-chaoyang's manager is head office, sh-jingan's the admin of sh.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console_stack import RunningStack, wait_until
from tests.test_console_browser import (
    DESKTOP,
    PHONE,
    SHOTS,
    browser_context_args,
    browser_type_launch_args,
    manager_phone,
    offered,
    shoot,
    sign_in_by_code,
    stack,
    store_id,
    submit,
)

__all__ = ["browser_context_args", "browser_type_launch_args", "stack"]  # the fixtures
pytestmark = pytest.mark.browser
NARROW = 360


@pytest.fixture(scope="module")
def hq(stack: RunningStack, browser: Browser) -> Iterator[BrowserContext]:
    """Head office, signed in once for the module (sign-in codes are limited per number)."""
    context = browser.new_context(viewport=PHONE)
    sign_in_by_code(stack, context.new_page(), manager_phone(stack, "bj-chaoyang"))
    yield context
    context.close()


def audit(stack: RunningStack, query: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = stack.api("GET", f"/audit?{query}")["items"]
    return items


def test_head_office_cancels_another_sub_sites_stuck_order_from_its_page(
    stack: RunningStack, hq: BrowserContext
) -> None:
    """An order of a store whose people are all paused waits; a day later it is on the stuck
    list, whose "reassign or cancel" opens the order page acting as head office."""
    pudong = stack.sql(
        "SELECT s.id FROM staff s JOIN store t ON t.id = s.store_id"
        " WHERE t.code = 'sh-pudong' AND s.role = 'consultant'"
    )
    for person in pudong:  # nobody of the store can take an order now
        stack.api("POST", f"/staff/{person['id']}/pause", {"reason": "browser test"})
    try:
        # A customer of their own (the demo customers' earlier consultants draw orders back).
        customer = {"name": "Stuck Customer", "phone": "13911119999"}
        order = {"order_id": "WEB-H001", "type": "new", "customer": customer}
        stack.api("POST", "/orders", order | {"store_id": store_id(stack, "sh-pudong")})
        wait_until(
            lambda: stack.sql(
                "SELECT id FROM dispatch_order WHERE id = %s AND status = 'waiting'", "WEB-H001"
            ),
            within=60,
        )
        stack.sql(
            "UPDATE dispatch_order SET updated_at = now() - interval '2 days' WHERE id = %s",
            "WEB-H001",
        )
        page = hq.new_page()
        page.goto(f"{stack.url}/console")
        page.get_by_role("link", name="Stuck orders").click()
        row = page.locator('[data-stuck="WEB-H001"]')
        expect(row).to_have_attribute("data-action", "cancel")
        shoot(page, "hq-stuck", wide=True)
        row.get_by_role("link", name="Reassign or cancel").click()
        expect(page.get_by_role("heading", name="Order WEB-H001")).to_be_visible()
        page.get_by_text("Cancel the order…").click()
        page.locator("#cancel-reason").select_option("duplicate")
        page.get_by_role("button", name="Cancel the order").click()
        expect(page.get_by_role("status")).to_have_text("Cancelled.")
        [event] = stack.sql(
            "SELECT actor FROM order_event WHERE order_id = %s AND kind = 'cancelled'", "WEB-H001"
        )
        assert "console" in event["actor"], event
        page.close()
    finally:
        for person in pudong:
            stack.api("POST", f"/staff/{person['id']}/resume")


def test_head_office_runs_the_sub_sites_and_its_rules(
    stack: RunningStack, hq: BrowserContext
) -> None:
    page = hq.new_page()
    page.goto(f"{stack.url}/console")
    page.get_by_role("link", name="Sites and regions").click()
    expect(page.locator('[data-site="sh"]')).to_be_visible()
    page.get_by_text("A new sub-site…").click()
    page.get_by_label("Code").fill("hz")
    page.get_by_label("Sub-site name").fill("杭州分站 Hangzhou")
    page.get_by_label("Regions (ISO 3166-2), one a line").fill("CN-ZJ: Hangzhou\nCN-SH")
    page.get_by_role("button", name="Create the sub-site").click()
    expect(page.locator('[data-error="regions"]')).to_contain_text("covered by sub-site sh")
    shoot(page, "hq-site-error")
    page.get_by_label("Regions (ISO 3166-2), one a line").fill("CN-ZJ: Hangzhou, Ningbo")
    page.get_by_role("button", name="Create the sub-site").click()
    expect(page.get_by_role("status")).to_have_text("Sub-site created.")
    page.get_by_label("Sub-site name").fill("浙江分站 Zhejiang")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    [site] = stack.sql("SELECT id, name, regions FROM subsite WHERE code = 'hz'")
    assert site["regions"] == [{"code": "CN-ZJ", "cities": ["Hangzhou", "Ningbo"]}]
    entries = audit(stack, f"kind=subsite&object_id={site['id']}")
    assert [e["action"] for e in entries] == ["changed", "created"]
    assert (entries[0]["old"]["name"], entries[0]["new"]["name"]) == (
        "杭州分站 Hangzhou",
        "浙江分站 Zhejiang",
    )

    # The default store of sh: chosen on its page, the change audited on both stores.
    page.get_by_role("link", name="All sub-sites").click()
    page.locator('[data-site="sh"] a').click()
    pudong = store_id(stack, "sh-pudong")
    page.get_by_label("Default store").select_option(str(pudong))
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    shoot(page, "hq-site", wide=True)
    assert stack.sql("SELECT is_default FROM store WHERE id = %s", pudong)[0]["is_default"]
    [moved] = audit(stack, f"kind=store&object_id={pudong}")
    assert (moved["old"], moved["new"]) == ({"is_default": False}, {"is_default": True})

    # Head office's own rule, after its preview.
    page.get_by_role("link", name="Head office's rule", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Head office's rule"))).to_be_visible()
    page.get_by_label("Largest weight in the draw").fill("20")
    page.get_by_role("button", name="Preview the change").click()
    expect(page.locator("[data-preview] tbody tr").first).to_contain_text("→")
    shoot(page, "hq-rule-preview", wide=True)
    page.get_by_role("button", name="Save the rule").click()
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    [rule] = audit(stack, "kind=rule&object_id=head_office/new")[:1]
    assert rule["new"]["weight_cap"] == 20
    page.close()


def test_a_sub_site_admin_changes_a_store_and_is_refused_elsewhere(
    stack: RunningStack, browser: Browser
) -> None:
    page = browser.new_context(viewport=PHONE).new_page()
    sign_in_by_code(stack, page, manager_phone(stack, "sh-jingan"))
    page.get_by_role("link", name="Sub-site").click()
    page.locator('[data-store="sh-jingan"] a').click()
    page.get_by_label("Phone").fill("call the desk")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('[data-error="phone"]')).to_contain_text("not a phone number")
    shoot(page, "store-field-error")
    page.get_by_label("Phone").fill("+86 21 5000 0000")
    page.get_by_label("E-mail").fill("jingan@o2o.test")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Saved.")
    shoot(page, "store", wide=True)
    jingan = store_id(stack, "sh-jingan")
    entry = audit(stack, f"kind=store&object_id={jingan}")[0]  # the newest
    assert (entry["old"]["phone"], entry["new"]["phone"]) == (None, "+862150000000")
    assert entry["new"]["email"] == "jingan@o2o.test" and "console" in entry["actor"]
    # Another sub-site's store, head office's pages: refused, with a page saying why.
    refusals = {
        f"/console/stores/{store_id(stack, 'bj-haidian')}": "outside your scope",
        "/console/hq/sites": "head office",
        "/console/hq/rules/new": "head office",
    }
    for path, why in refusals.items():
        answer = page.goto(f"{stack.url}{path}")
        assert answer is not None and answer.status == 403, path
        expect(page.get_by_role("alert")).to_contain_text(why)
    page.context.close()
    # A manager who is no admin: not the sub-site's pages, not even their own store's.
    plain = browser.new_context(viewport=PHONE).new_page()
    sign_in_by_code(stack, plain, manager_phone(stack, "sh-pudong"))
    for path in ("/console/site", f"/console/stores/{store_id(stack, 'sh-pudong')}"):
        answer = plain.goto(f"{stack.url}{path}")
        assert answer is not None and answer.status == 403, path
    plain.context.close()


# ---------------------------------------------------------------- every role in Chinese


def in_chinese(page: Page) -> None:
    page.get_by_role("button", name="中文").click()
    expect(page.get_by_role("button", name="English")).to_be_visible()


def shoot_zh(page: Page, name: str) -> None:
    """The page in Chinese at desktop width and at 360 px, where nothing may stick out."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size(DESKTOP)
    page.screenshot(path=str(SHOTS / f"zh-{name}-1366.png"), full_page=True)
    page.set_viewport_size({"width": NARROW, "height": 740})
    width = page.evaluate("document.documentElement.scrollWidth")
    page.screenshot(path=str(SHOTS / f"zh-{name}-360.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert width <= NARROW, f"{page.url} is {width} px wide at {NARROW} px"


def visit(page: Page, url: str, name: str) -> None:
    answer = page.goto(url)
    assert answer is not None and answer.status == 200, url
    expect(page.get_by_role("button", name="English")).to_be_visible()  # still Chinese
    shoot_zh(page, name)


def test_every_roles_pages_in_chinese(
    stack: RunningStack, browser: Browser, hq: BrowserContext
) -> None:
    base = stack.url
    # The consultant, from the link in their SMS.
    submit(stack, "WEB-Z001", code="bj-haidian")
    offer = offered(stack, "WEB-Z001")
    consultant = browser.new_context(viewport=PHONE).new_page()
    consultant.goto(offer.link)
    in_chinese(consultant)
    shoot_zh(consultant, "offer")
    consultant.get_by_role("button", name="接单").click()
    visit(consultant, f"{base}/console/me", "my-orders")
    visit(consultant, f"{base}/console/me/account", "account")
    visit(consultant, f"{base}/console/orders/WEB-Z001", "order")
    consultant.context.close()

    # A store manager.
    manager = browser.new_context(viewport=PHONE).new_page()
    sign_in_by_code(stack, manager, manager_phone(stack, "bj-haidian"))
    in_chinese(manager)
    for path, name in (
        ("/console/board", "board"),
        ("/console/roster", "roster"),
        ("/console/staff", "staff"),
        ("/console/orders/WEB-Z001/story", "story"),
        ("/console/reports", "reports"),
        ("/console/reports/fairness", "fairness"),
        ("/console/audit", "audit"),
    ):
        visit(manager, f"{base}{path}", name)
    manager.context.close()

    # A sub-site admin (sh) and head office.
    admin = browser.new_context(viewport=PHONE).new_page()
    sign_in_by_code(stack, admin, manager_phone(stack, "sh-jingan"))
    in_chinese(admin)
    visit(admin, f"{base}/console/site", "site")
    visit(admin, f"{base}/console/site/rules/new", "site-rule")
    visit(admin, f"{base}/console/stores/{store_id(stack, 'sh-pudong')}", "store")
    admin.context.close()
    office = hq.new_page()
    office.goto(f"{base}/console/hq/orders")
    in_chinese(office)
    sh = stack.sql("SELECT id FROM subsite WHERE code = 'sh'")[0]["id"]
    for path, name in (
        ("/console/hq/orders", "hq-orders"),
        ("/console/hq/stuck", "hq-stuck"),
        ("/console/hq/tokens", "hq-tokens"),
        ("/console/hq/sites", "hq-sites"),
        (f"/console/hq/sites/{sh}", "hq-site"),
        ("/console/hq/rules/new", "hq-rule"),
        ("/console/audit", "hq-audit"),
        ("/console/reports?scope=all", "hq-reports"),
    ):
        visit(office, f"{base}{path}", name)
    expect(office.get_by_role("heading", level=1)).to_contain_text("全部门店")  # the scope
    office.close()
