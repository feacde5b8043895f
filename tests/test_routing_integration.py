"""Order diversion on real data: `route_order` against PostgreSQL and the real GeoLite2 file.

The activities are called directly (they are plain coroutines); one test goes through the
HTTP API and the workflow on the time-skipping server to show the Host header arrives.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlmodel import select

from activities.lookups import consultant_available
from activities.projection import record_transition
from activities.routing import route_order
from activities.selection import assign_order, load_rule
from geo import locate
from models import DutySlot, Leave, Order, OrderEvent, Staff, Store
from models.db import session
from settings import settings
from tests.conftest import eventually
from tests.routing_factories import IPS, Country, add_record, domain, make_country, make_customer
from workflows.contracts import AssignRequest, CustomerIn, OrderRequest, RoutedOrder, Transition


@pytest.fixture
async def country(clean_db: str) -> Country:
    return await make_country()


def order(**fields: Any) -> OrderRequest:
    base: dict[str, Any] = {
        "order_id": f"R{uuid.uuid4().hex[:12]}",
        "type": "new",
        "customer": CustomerIn(name="Han Meimei", phone=f"+86139{uuid.uuid4().int % 10**8:08d}"),
        "category": "tour",
    }
    return OrderRequest(**(base | fields))


async def order_row(order_id: str) -> Order:
    async with session() as db:
        row = await db.get(Order, order_id)
        assert row is not None
        return row


async def routed_event(order_id: str) -> dict[str, Any]:
    async with session() as db:
        events = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == order_id, OrderEvent.kind == "routed"
                )
            )
        ).all()
    assert len(events) == 1, f"{len(events)} routed events"
    return events[0].detail


def outcomes(detail: dict[str, Any]) -> list[tuple[str, str]]:
    return [(t["step"], t["outcome"]) for t in detail["trail"]]


async def assign(routed: RoutedOrder, order_id: str, *, forced: int | None = None) -> int | None:
    rule = await load_rule("new")
    assert routed.store_id is not None
    result = await assign_order(
        AssignRequest(
            order_id=order_id,
            store_id=routed.store_id,
            round=1,
            at=datetime.now(UTC),
            rule=rule,
            forced_staff_id=forced,
            forced_reason="customer's preferred consultant" if forced else "",
        )
    )
    return result.staff_id


async def first_round(routed: RoutedOrder, order_id: str) -> int | None:
    """What the workflow is to do with `preferred_staff_id` in round 1 (see the report)."""
    if routed.preferred_staff_id is not None:
        status = await consultant_available(routed.preferred_staff_id, datetime.now(UTC))
        if status.available:
            return await assign(routed, order_id, forced=routed.preferred_staff_id)
    return await assign(routed, order_id)


# ------------------------------------------------------------------ sub-site by IP and host


@pytest.mark.parametrize(
    ("site", "store"),
    [("bj", "bj-main"), ("sh", "sh-main"), ("gz", "gz-tianhe"), ("cd", "cd-main")],
)
async def test_order_from_a_located_ip_lands_in_its_city_store(
    country: Country, site: str, store: str
) -> None:
    request = order(client_ip=IPS[site])

    routed = await route_order(request)

    assert (country.store_code(routed.store_id), routed.subsite_code) == (store, site)
    row = await order_row(request.order_id)
    assert row.subsite_id == country.sites[site].id
    assert row.region_code == {"bj": "CN-BJ", "sh": "CN-SH", "gz": "CN-GD", "cd": "CN-SC"}[site]
    assert row.city == {"bj": "Beijing", "sh": "Shanghai", "gz": "Guangzhou", "cd": "Chengdu"}[site]
    assert row.store_reason == f"sub-site {site} (from IP location) store covering {row.city}"
    detail = await routed_event(request.order_id)
    assert detail["step"] == "subsite_city"
    assert detail["subsite"] == {"id": country.sites[site].id, "code": site, "via": "ip"}
    assert detail["location"]["kind"] == "ok"
    assert outcomes(detail)[:4] == [
        ("named", "no store named on the order"),
        ("wished", "customer chose no store"),
        ("consultant", "no preferred consultant's store"),
        ("last_served", "no store served the customer before"),
    ]


async def test_a_foreign_visitor_goes_to_the_head_office_default_store(country: Country) -> None:
    request = order(client_ip=IPS["foreign"])

    routed = await route_order(request)

    assert country.store_code(routed.store_id) == "bj-main"
    assert routed.reason == "head-office default store"
    row = await order_row(request.order_id)
    assert (row.region_code, row.city, row.subsite_id) == (None, None, country.sites["bj"].id)
    detail = await routed_event(request.order_id)
    assert detail["subsite"] is None
    assert detail["location"]["kind"] == "foreign"
    assert detail["location"]["country_code"] == "US"
    assert ("subsite_city", "no sub-site for the order") in outcomes(detail)


async def test_an_order_through_the_sh_host_lands_in_a_shanghai_store(country: Country) -> None:
    # The host wins over the IP (a Beijing visitor ordering on the Shanghai site).
    request = order(host=f"SH.{settings.ROOT_DOMAIN}:8443", client_ip=IPS["bj"])

    routed = await route_order(request)

    assert country.store_code(routed.store_id) == "sh-main"
    assert routed.subsite_code == "sh"
    assert routed.reason == "sub-site sh (from host) default store"
    row = await order_row(request.order_id)
    assert (row.region_code, row.city) == ("CN-BJ", "Beijing")  # where the visitor is
    detail = await routed_event(request.order_id)
    assert detail["subsite"]["via"] == "host"
    assert ("subsite_city", "no store of sub-site sh (from host) in Beijing") in outcomes(detail)


async def test_an_unknown_host_falls_back_to_the_ip(country: Country) -> None:
    request = order(host="api.internal:8000", client_ip=IPS["cd"])

    routed = await route_order(request)

    assert routed.subsite_code == "cd"
    assert (await routed_event(request.order_id))["subsite"]["via"] == "ip"


# ------------------------------------------------------------------ precedence


async def test_a_named_store_beats_the_wish_and_the_location(country: Country) -> None:
    request = order(
        store_id=country.stores["gz-sz"].id,
        wished_store_id=country.stores["sh-east"].id,
        client_ip=IPS["cd"],
    )

    routed = await route_order(request)

    assert (routed.store_id, routed.reason) == (
        country.stores["gz-sz"].id,
        "store named on the order",
    )
    assert (await order_row(request.order_id)).requested_store_id == country.stores["gz-sz"].id


async def test_the_customers_chosen_store_beats_history_and_location(country: Country) -> None:
    customer = await make_customer("Lin Tao", phone="+8613911110004")
    await add_record(customer, country.consultants["bj-west"][0], days_ago=3)
    request = order(
        customer=CustomerIn(name="Lin Tao", phone="+8613911110004"),
        wished_store_id=country.stores["sh-east"].id,
        client_ip=IPS["cd"],
    )

    routed = await route_order(request)

    assert (routed.store_id, routed.reason) == (
        country.stores["sh-east"].id,
        "store the customer chose",
    )
    assert (await routed_event(request.order_id))["wished_store_id"] == routed.store_id


async def test_skipped_steps_are_recorded_with_their_reasons(country: Country) -> None:
    async with session() as db:
        closed = await db.get(Store, country.stores["sh-east"].id)
        assert closed is not None
        closed.active = False
        db.add(closed)
        # Chengdu's city store has nobody who could take an order.
        for person in country.consultants["cd-main"]:
            row = await db.get(Staff, person.id)
            assert row is not None
            row.active = False
            db.add(row)
        await db.commit()
    request = order(
        wished_store_id=closed.id,
        preferred_staff_id=999_999,
        client_ip=IPS["cd"],
    )

    routed = await route_order(request)

    # Chengdu's default store has nobody: the other Chengdu store takes the order.
    assert country.store_code(routed.store_id) == "cd-wuhou"
    assert routed.reason == "sub-site cd (from IP location) store covering Chengdu"
    detail = await routed_event(request.order_id)
    assert outcomes(detail) == [
        ("named", "no store named on the order"),
        ("wished", "store inactive"),
        ("consultant", "preferred consultant #999999 does not exist"),
        ("last_served", "no store served the customer before"),
        ("subsite_city", "no active consultant"),
        ("subsite_city", "chosen"),
    ]
    assert [t["store_id"] for t in detail["trail"]][4:] == [
        country.stores["cd-main"].id,
        country.stores["cd-wuhou"].id,
    ]
    # An unknown staff id is not written to the order (it would break its foreign key).
    assert (await order_row(request.order_id)).preferred_staff_id is None


async def test_with_nobody_anywhere_the_order_still_gets_one_store(clean_db: str) -> None:
    country = await make_country(consultants=0)
    request = order(client_ip=IPS["sh"])

    routed = await route_order(request)

    assert country.store_code(routed.store_id) == "sh-main"
    detail = await routed_event(request.order_id)
    assert detail["notes"] == [
        "no store on the way has an active consultant: tied to the first active one"
    ]


async def test_routing_twice_decides_once(country: Country) -> None:
    request = order(client_ip=IPS["gz"])

    first = await route_order(request)
    async with session() as db:  # the world changes between the attempts
        store = await db.get(Store, first.store_id)
        assert store is not None
        store.active = False
        db.add(store)
        await db.commit()
    again = await route_order(request)

    assert again == first
    await routed_event(request.order_id)  # still exactly one routed event


async def test_the_geoip_database_is_opened_once_per_process(country: Country) -> None:
    await route_order(order(client_ip=IPS["bj"]))
    opened = locate._open_shared.cache_info().misses

    await asyncio.gather(*(route_order(order(client_ip=IPS["sh"])) for _ in range(5)))

    assert locate._open_shared.cache_info().misses == opened
    assert locate.shared_locator() is locate.shared_locator()


# ------------------------------------------------------------------ returning customers


async def serve(routed: RoutedOrder, order_id: str, staff_id: int) -> None:
    """The assignee accepts and processes the order: its handling becomes a record."""
    now = datetime.now(UTC)
    for kind in ("accepted", "completed"):
        await record_transition(
            Transition(order_id=order_id, kind=kind, at=now, round=1, staff_id=staff_id)
        )


async def off_duty_for_two_hours(staff_id: int) -> datetime:
    back = datetime.now(UTC) + timedelta(hours=2)
    async with session() as db:
        await (await db.connection()).execute(
            text("DELETE FROM duty_slot WHERE staff_id = :s"), {"s": staff_id}
        )
        person = await db.get(Staff, staff_id)
        assert person is not None
        db.add(
            DutySlot(
                staff_id=staff_id,
                store_id=person.store_id,
                starts_at=back,
                ends_at=back + timedelta(hours=8),
            )
        )
        await db.commit()
    return back


async def test_a_returning_customer_goes_to_their_previous_consultant(country: Country) -> None:
    phone = "+8613911110002"
    first = order(
        customer=CustomerIn(name="Li Lei", phone=phone), store_id=country.stores["cd-wuhou"].id
    )
    routed = await route_order(first)
    served_by = await first_round(routed, first.order_id)
    assert served_by in {c.id for c in country.consultants["cd-wuhou"]}
    assert served_by is not None
    await serve(routed, first.order_id, served_by)

    # Next time, from Beijing, asking for whoever served them last.
    again = order(
        customer=CustomerIn(name="Li Lei", phone=phone),
        client_ip=IPS["bj"],
        prefer_last_consultant=True,
    )
    routed_again = await route_order(again)

    assert routed_again.store_id == country.stores["cd-wuhou"].id
    assert routed_again.preferred_staff_id == served_by
    assert routed_again.reason == f"store of the customer's preferred consultant #{served_by}"
    status = await consultant_available(served_by, datetime.now(UTC))
    assert (status.available, status.reason, status.store_id) == (
        True,
        "",
        country.stores["cd-wuhou"].id,
    )
    assert await first_round(routed_again, again.order_id) == served_by
    detail = await routed_event(again.order_id)
    assert detail["wish"] == {"staff_id": served_by, "source": "last"}
    assert detail["last_served"]["staff_id"] == served_by
    assert (await order_row(again.order_id)).preferred_staff_id == served_by


async def test_an_off_duty_previous_consultant_leaves_the_order_to_their_store(
    country: Country,
) -> None:
    customer = await make_customer("Jim Green", email="jim.green@o2o.test")
    previous, colleague = country.consultants["gz-sz"]
    await add_record(customer, country.consultants["sh-main"][0], days_ago=30)
    await add_record(customer, previous, days_ago=2)  # the latest record decides
    back = await off_duty_for_two_hours(previous.id)
    # Found by email (a different case) although this order gives no phone.
    request = order(
        customer=CustomerIn(name="Jim Green", email="Jim.Green@o2o.test"),
        client_ip=IPS["cd"],
        prefer_last_consultant=True,
    )

    routed = await route_order(request)

    assert routed.store_id == country.stores["gz-sz"].id
    assert routed.preferred_staff_id == previous.id  # the wish stands; the workflow asks
    status = await consultant_available(previous.id, datetime.now(UTC))
    assert (status.available, status.reason) == (False, f"staff {previous.id} is not on duty")
    assert status.next_duty_start is not None
    assert abs((status.next_duty_start - back).total_seconds()) < 1
    assert await first_round(routed, request.order_id) == colleague.id


async def test_without_the_wish_the_last_store_is_used_but_nobody_is_preferred(
    country: Country,
) -> None:
    customer = await make_customer("Lucy King", phone="+8613911110005")
    await add_record(customer, country.consultants["sh-east"][1], days_ago=1)
    request = order(customer=CustomerIn(name="Lucy King", phone="+8613911110005"))

    routed = await route_order(request)

    assert (routed.store_id, routed.reason) == (
        country.stores["sh-east"].id,
        "store that last served the customer",
    )
    assert routed.preferred_staff_id is None


async def test_a_named_consultant_outside_the_named_store_is_not_preferred(
    country: Country,
) -> None:
    wanted = country.consultants["cd-main"][0]
    request = order(store_id=country.stores["bj-main"].id, preferred_staff_id=wanted.id)

    routed = await route_order(request)

    assert routed.store_id == country.stores["bj-main"].id
    assert routed.preferred_staff_id is None
    notes = (await routed_event(request.order_id))["notes"]
    assert notes == [
        f"preferred consultant #{wanted.id} works at store {wanted.store_id}, "
        f"the order is tied to store {routed.store_id}: not assigned"
    ]


async def test_consultant_availability_reasons(country: Country) -> None:
    person, other = country.consultants["bj-west"]
    manager = country.managers["bj-west"]
    now = datetime.now(UTC)
    async with session() as db:
        db.add(
            Leave(
                staff_id=person.id,
                starts_at=now - timedelta(hours=1),
                ends_at=now + timedelta(hours=3),
            )
        )
        row = await db.get(Staff, other.id)
        assert row is not None
        row.rotation_paused = True
        db.add(row)
        await db.commit()

    on_leave = await consultant_available(person.id, now)
    paused = await consultant_available(other.id, now)
    not_consultant = await consultant_available(manager.id, now)
    missing = await consultant_available(999_999, now)

    assert (on_leave.available, on_leave.reason) == (False, f"staff {person.id} is on leave")
    assert on_leave.next_duty_start == now + timedelta(hours=3)
    assert (paused.available, paused.next_duty_start) == (False, None)
    assert "paused" in paused.reason
    assert not_consultant.reason == f"staff {manager.id} is not a consultant"
    assert (missing.available, missing.store_id) == (False, None)


# ------------------------------------------------------------------ many orders at once


async def test_200_concurrent_orders_each_get_one_store_and_one_open_assignment(
    country: Country,
) -> None:
    places = [IPS["bj"], IPS["sh"], IPS["gz"], IPS["cd"], IPS["foreign"], None]
    requests = [
        order(
            # Every fourth order shares a customer with others: they meet on the phone.
            customer=CustomerIn(name=f"C{i % 50}", phone=f"+861380000{i % 50:04d}"),
            client_ip=places[i % len(places)],
            host=domain("sh") if i % 7 == 0 else None,
        )
        for i in range(200)
    ]

    async def one(request: OrderRequest) -> None:
        # Delivered twice at once, as a retried activity may be: still one decision.
        first, second = await asyncio.gather(route_order(request), route_order(request))
        assert first == second
        assert await assign(first, request.order_id) is not None

    await asyncio.wait_for(asyncio.gather(*(one(r) for r in requests)), timeout=60)

    async with session() as db:
        conn = await db.connection()
        rows = (
            await conn.execute(
                text(
                    """
                    SELECT o.id, o.store_id, s.subsite_id = o.subsite_id AS same_site,
                           count(a.id) FILTER (WHERE a.outcome IN ('offered', 'accepted'))
                               AS open_assignments,
                           bool_and(st.store_id = o.store_id) AS assignee_in_store,
                           (SELECT count(*) FROM order_event e
                             WHERE e.order_id = o.id AND e.kind = 'routed') AS routed_events
                      FROM dispatch_order o
                      JOIN store s ON s.id = o.store_id
                      LEFT JOIN assignment a ON a.order_id = o.id
                      LEFT JOIN staff st ON st.id = a.staff_id
                     GROUP BY o.id, o.store_id, s.subsite_id, o.subsite_id
                    """
                )
            )
        ).all()
        customers: int = (await conn.execute(text("SELECT count(*) FROM customer"))).scalar_one()
    assert len(rows) == 200, f"{len(rows)} orders routed"
    assert all(r.store_id is not None and r.same_site for r in rows)
    assert [r.id for r in rows if r.open_assignments != 1] == []
    assert all(r.assignee_in_store and r.routed_events == 1 for r in rows)
    assert customers == 50


# ------------------------------------------------------------------ through the API and workflow


async def test_an_order_posted_on_the_sh_site_is_assigned_in_shanghai(
    api: httpx.AsyncClient,
) -> None:
    country = await make_country()
    body = {
        "order_id": f"H{uuid.uuid4().hex[:10]}",
        "customer": {"name": "Wei Hua", "phone": "+8613911110006"},
        "client_ip": IPS["gz"],
    }
    headers = {
        "Authorization": f"Bearer {settings.ADMIN_TOKEN}",
        "Host": domain("sh"),
    }

    response = await api.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 202, response.text

    async def assigned() -> dict[str, Any]:
        got = await api.get(f"/api/v1/orders/{body['order_id']}", headers=headers)
        assert got.status_code == 200, got.text
        story: dict[str, Any] = got.json()
        assert len(story["assignments"]) == 1
        return story

    story = await eventually(assigned)
    assert country.site_of(story["store_id"]) == "sh"
    assert (story["host"], story["region_code"], story["city"]) == (
        domain("sh"),
        "CN-GD",
        "Guangzhou",
    )
    shanghai = {c.id for c in country.consultants[country.store_code(story["store_id"])]}
    assert story["assignments"][0]["staff_id"] in shanghai


async def test_a_wished_store_arrives_through_the_api(api: httpx.AsyncClient) -> None:
    country = await make_country()
    body = {
        "order_id": f"W{uuid.uuid4().hex[:10]}",
        "customer": {"name": "Han Meimei", "phone": "+8613911110007"},
        "wished_store_id": country.stores["cd-wuhou"].id,
        "prefer_last_consultant": True,
    }
    headers = {"Authorization": f"Bearer {settings.ADMIN_TOKEN}"}

    response = await api.post("/api/v1/orders", json=body, headers=headers)
    assert response.status_code == 202, response.text

    async def routed() -> dict[str, Any]:
        got = await api.get(f"/api/v1/orders/{body['order_id']}", headers=headers)
        assert got.status_code == 200, got.text
        story: dict[str, Any] = got.json()
        assert story["store_reason"], "received, not routed yet"
        return story

    story = await eventually(routed)
    assert (story["store_id"], story["store_reason"]) == (
        country.stores["cd-wuhou"].id,
        "store the customer chose",
    )
    event = next(e for e in story["events"] if e["kind"] == "routed")
    assert event["detail"]["notes"] == [
        "customer asked for their last consultant, but nobody has served them"
    ]
