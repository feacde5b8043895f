"""The period report: percentiles (pure), and every section over orders as the projection
records them, for a store, through the API (JSON and CSV) and in a manager's scope only."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import get_args

import httpx
import pytest

from api import reports as api_reports
from models import Assignment, Notification, Order
from models.base import utcnow
from models.db import session
from reports.summary import SECTIONS, percentile
from tests.api_helpers import admin, manager_of
from tests.conftest import Sinks
from tests.factories import StoreWorld, make_store_world
from tests.test_console_pages import pages, sign_in

__all__ = ["pages"]  # the console's fixture


def test_percentiles_interpolate_between_the_sorted_values() -> None:
    values = [float(v) for v in range(10, 0, -1)]  # 10..1, unsorted on purpose
    assert (percentile(values, 0.5), percentile(values, 0.9)) == (5.5, pytest.approx(9.1))
    assert (percentile([], 0.5), percentile([7.0], 0.9)) == (None, 7.0)


def test_the_api_sections_are_the_reports() -> None:
    assert get_args(api_reports.Section) == SECTIONS


async def seed(world: StoreWorld) -> None:
    """Four orders: three accepted after 10, 20 and 40 s by one consultant (one of them
    after the other consultant let it time out), one escalated and waiting for a shift."""
    now = utcnow()
    a, b = world.consultants
    async with session() as db:
        for i, (status, phase) in enumerate(
            [("accepted", "accepted")] * 3 + [("escalated", "waiting_for_shift")]
        ):
            db.add(
                Order(
                    id=f"R-{world.store.id}-{i}",
                    type="new",
                    store_id=world.store.id,
                    subsite_id=world.subsite.id,
                    status=status,
                    phase=phase,
                    wait_reason="next shift" if phase == "waiting_for_shift" else "",
                    escalated=status == "escalated",
                    workflow_id=f"order-R-{world.store.id}-{i}",
                    created_at=now - timedelta(hours=1),
                    updated_at=now,
                )
            )
        await db.flush()
        for i, seconds in enumerate((10, 20, 40)):
            start = now - timedelta(minutes=30)
            db.add(
                Assignment(
                    order_id=f"R-{world.store.id}-{i}",
                    staff_id=a.id,
                    round=2 if i == 0 else 1,
                    assigned_at=start,
                    accept_deadline=start + timedelta(minutes=15),
                    accepted_at=start + timedelta(seconds=seconds),
                    outcome="accepted",
                )
            )
        db.add(
            Assignment(
                order_id=f"R-{world.store.id}-0",
                staff_id=b.id,
                round=1,
                assigned_at=now - timedelta(minutes=50),
                accept_deadline=now - timedelta(minutes=35),
                outcome="timed_out",
            )
        )
        for n, (channel, status) in enumerate(
            [("sms", "sent"), ("sms", "failed"), ("email", "sent")]
        ):
            db.add(
                Notification(
                    idempotency_key=f"r-{world.store.id}-{n}",
                    order_id=f"R-{world.store.id}-{n}",
                    kind="assigned",
                    channel=channel,
                    template="assigned",
                    status=status,
                )
            )
        await db.commit()


async def test_a_stores_report_through_the_api_and_as_csv(offline_api: httpx.AsyncClient) -> None:
    world = await make_store_world(consultants=2)
    other = await make_store_world(consultants=2)
    await seed(world)
    await seed(other)  # another store's orders stay out of this store's report
    manager = await manager_of(world)
    answer = await offline_api.get("/api/v1/reports/summary", headers=manager)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["store_id"] == world.store.id  # a manager's own store by default
    s = report["sections"]
    assert s["status"] == [
        {"status": "accepted", "orders": 3},
        {"status": "escalated", "orders": 1},
    ]
    assert s["accept"] == [{"accepted": 3, "p50_seconds": 20.0, "p90_seconds": 36.0}]
    a, b = world.consultants
    by_id = {r["staff_id"]: r for r in s["consultants"]}
    assert (by_id[a.id]["offers"], by_id[a.id]["timed_out"]) == (3, 0)
    assert (by_id[b.id]["offers"], by_id[b.id]["timed_out"], by_id[b.id]["declined"]) == (1, 1, 0)
    assert s["escalations"] == [{"escalated": 1}]
    assert s["backlog"] == [{"wait_reason": "next shift", "orders": 1}]
    assert s["notices"] == [
        {"channel": "email", "status": "sent", "notices": 1},
        {"channel": "sms", "status": "failed", "notices": 1},
        {"channel": "sms", "status": "sent", "notices": 1},
    ]
    whole = await offline_api.get("/api/v1/reports/summary", headers=admin())
    assert whole.json()["sections"]["escalations"] == [{"escalated": 2}]  # head office: all

    exported = await offline_api.get("/api/v1/reports/summary/consultants.csv", headers=manager)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {(r["staff_id"], r["offers"], r["timed_out"]) for r in rows} == {
        (str(a.id), "3", "0"),
        (str(b.id), "1", "1"),
    }
    outside = await offline_api.get(
        "/api/v1/reports/summary", params={"store_id": other.store.id}, headers=manager
    )
    assert outside.status_code == 403
    bad = await offline_api.get("/api/v1/reports/summary/nothing.csv", headers=manager)
    assert bad.status_code == 422


async def test_a_managers_report_page_and_its_csv(pages: httpx.AsyncClient, sinks: Sinks) -> None:
    world = await make_store_world(consultants=2)
    await seed(world)
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    page = await pages.get("/console/reports?days=7")
    assert page.status_code == 200, page.text
    assert page.text.count('<rect x="80"') == 2  # a bar per status
    assert "p50 20.0 s · p90 36.0 s" in page.text
    exported = await pages.get("/console/reports/notices.csv?days=7")
    assert exported.status_code == 200 and exported.text.splitlines()[0] == "channel,status,notices"
    assert (await pages.get("/console/reports/bogus.csv")).status_code == 404
