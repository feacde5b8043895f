"""Status webhooks against a real local HTTP receiver that checks each signature (written
here from the scheme, not with the sender's code) and counts deliveries per event id."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from models import Assignment
from settings import settings
from tests.api_helpers import events_of
from tests.conftest import Dispatch, eventually, free_port
from tests.factories import make_store_world
from tests.test_order_workflow import new_order, start, wait_for_round
from workflows.contracts import OrderRequest, OrderView, StaffAction
from workflows.dispatch import NewOrderWorkflow

SECRET = "webhook-secret-for-tests-0123456789"


@dataclass
class Receiver:
    """The web backend's end: verifies, dedups by Idempotency-Key, can be told to fail."""

    url: str = ""
    fail_first: int = 0  # answer 503 to this many requests first (a backend restarting)
    refuse: bool = False  # answer 400 to everything (a backend that rejects the events)
    requests: Counter[str] = field(default_factory=Counter)  # event id -> requests seen
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # first of each id
    bad_signatures: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        parts = dict(p.split("=", 1) for p in request.headers["O2O-Signature"].split(","))
        expected = hmac.new(
            SECRET.encode(), parts["t"].encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        fresh = abs(time.time() - int(parts["t"])) < 300
        if not (hmac.compare_digest(expected, parts["v1"]) and fresh):
            self.bad_signatures += 1
            return web.Response(status=401)
        event = json.loads(body)
        assert request.headers["Idempotency-Key"] == event["id"]
        self.requests[event["id"]] += 1
        if self.refuse:
            return web.Response(status=400, text="unknown order")
        if self.fail_first > 0:
            self.fail_first -= 1
            return web.Response(status=503)
        self.events.setdefault(event["id"], event)
        return web.Response(status=204)


@pytest.fixture
async def receiver(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/o2o", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    r.url = f"http://127.0.0.1:{port}/hooks/o2o"
    monkeypatch.setattr(settings, "WEBHOOK_URL", r.url)
    monkeypatch.setattr(settings, "WEBHOOK_SECRET", SECRET)
    monkeypatch.setattr(settings, "WEBHOOK_MAX_ATTEMPTS", 3)
    yield r
    await runner.cleanup()


async def handled_in_one_round(dispatch: Dispatch) -> tuple[OrderRequest, Assignment, OrderView]:
    """An order accepted and completed by its first assignee; the run's result (it ends only
    once its webhooks settled)."""
    world = await make_store_world(consultants=2)
    order = new_order(world)
    handle = await start(dispatch, order)
    first = await wait_for_round(order.order_id, 1)
    await handle.execute_update(NewOrderWorkflow.accept, StaffAction(staff_id=first.staff_id))
    await handle.execute_update(NewOrderWorkflow.complete, StaffAction(staff_id=first.staff_id))
    return order, first, await handle.result()


async def test_every_status_change_is_delivered_signed_once_per_event(
    dispatch: Dispatch, receiver: Receiver
) -> None:
    receiver.fail_first = 2  # the first two requests fail: Temporal retries them
    order, first, _ = await handled_in_one_round(dispatch)

    events = sorted(receiver.events.values(), key=lambda e: int(e["id"].rsplit(":", 1)[1]))
    assert [(e["status"], e["assignee_id"], e["round"]) for e in events] == [
        ("received", None, 0),
        ("assigned", first.staff_id, 1),
        ("accepted", first.staff_id, 1),
        ("completed", first.staff_id, 1),
    ]
    assert [e["id"] for e in events] == [f"{order.order_id}:{n}" for n in range(1, 5)]
    assert {e["order_id"] for e in events} == {order.order_id}
    assert receiver.bad_signatures == 0
    # Each event accepted once; the two refused requests were retried, not dropped.
    assert sum(receiver.requests.values()) == len(events) + 2
    assert not [e for e in await events_of(order.order_id) if e.kind == "webhook_failed"]


async def test_a_refused_webhook_is_recorded_on_the_order_and_holds_nothing_up(
    dispatch: Dispatch, receiver: Receiver
) -> None:
    receiver.refuse = True
    order, _, view = await handled_in_one_round(dispatch)
    assert view.status == "completed"

    async def recorded() -> None:
        failed = [e for e in await events_of(order.order_id) if e.kind == "webhook_failed"]
        assert len(failed) == 4
        assert all("HTTP 400" in e.detail["error"] for e in failed)

    await eventually(recorded)
    # A 400 is final: one request per event, no retries.
    assert set(receiver.requests.values()) == {1}


def test_a_webhook_url_without_a_real_secret_is_refused() -> None:
    from pydantic import ValidationError

    from settings import Settings

    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        Settings(_env_file=None, WEBHOOK_URL="https://backend.example/hooks", WEBHOOK_SECRET="x")
    assert Settings(_env_file=None, WEBHOOK_URL="https://b.example/h", WEBHOOK_SECRET=SECRET)
