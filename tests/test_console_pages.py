"""The console without a browser: signed links, sign-in codes, sessions, CSRF, vendored
files, translations — in-process over ASGI against the real PostgreSQL and SMS sink — and
the JSON API's new manager-on-behalf action against the time-skipping Temporal server."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from api.app import create_app
from console.links import OrderLink, TamperedLink, make_token, read_token
from models import OrderEvent, PointsEntry, Role, SignInCode, Staff, StaffRole
from models.db import session
from settings import settings
from tests.api_helpers import NoTemporal, admin, bearer, manager_of
from tests.api_helpers import make_token as api_token
from tests.conftest import Dispatch, Sinks, eventually
from tests.factories import StoreWorld, make_store_world
from tests.test_api_orders import act, offered, order_body, submit, wait_for_round

CONSOLE = Path(__file__).resolve().parent.parent / "console"


# ---------------------------------------------------------------- vendored files, words


def test_vendored_scripts_match_their_recorded_sha384() -> None:
    recorded = (CONSOLE / "static" / "VENDORED.md").read_text()
    base = (CONSOLE / "templates" / "base.html").read_text()
    for name in ("htmx-2.0.11.min.js", "htmx-ext-sse-2.2.4.min.js"):
        data = (CONSOLE / "static" / name).read_bytes()
        digest = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
        assert f"`{name}`" in recorded and digest in recorded, name
        tag = rf'src="/console/static/{re.escape(name)}"\s+integrity="{re.escape(digest)}"'
        assert re.search(tag, base), name


def test_every_message_of_the_templates_has_its_chinese() -> None:
    from console.i18n import catalog

    zh = catalog("zh")
    messages = set()
    for template in (CONSOLE / "templates").glob("*.html"):
        text = template.read_text()
        messages |= set(re.findall(r'_\("([^"]+)"', text)) | set(re.findall(r"_\('([^']+)'", text))
    assert messages, "no messages found: the pattern is wrong"
    assert sorted(m for m in messages if m not in zh) == []


def test_every_fairness_verdict_has_its_chinese() -> None:
    """The fairness page shows the report's verdict in the page's language."""
    from console.i18n import catalog
    from reports.fairness import TOO_SMALL, VERDICTS

    zh = catalog("zh")
    assert sorted(m for m in (*VERDICTS.values(), TOO_SMALL) if m not in zh) == []


# ---------------------------------------------------------------- signed links


def test_a_link_is_bound_to_its_order_round_staff_and_purpose() -> None:
    deadline = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)
    token = make_token(order_id="A-1", round=2, staff_id=7, purpose="reminder", deadline=deadline)
    assert read_token(token) == OrderLink("A-1", 2, 7, "reminder", deadline)
    # Rendered again (a retried notice), it is the same text.
    assert token == make_token(
        order_id="A-1", round=2, staff_id=7, purpose="reminder", deadline=deadline
    )
    payload, signature = token.rsplit(".", 1)
    other = make_token(order_id="A-1", round=2, staff_id=8, purpose="reminder", deadline=deadline)
    for bad in (payload + "." + signature[::-1], other.rsplit(".", 1)[0] + "." + signature, "x"):
        with pytest.raises(TamperedLink):
            read_token(bad)


@pytest.fixture
async def pages(clean_db: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = NoTemporal()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    english = {"Accept-Language": "en"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://test", headers=english
    ) as client:
        yield client


async def test_a_tampered_link_gets_its_page_not_an_error(pages: httpx.AsyncClient) -> None:
    response = await pages.get("/o/not-a-token")
    assert response.status_code == 400
    assert 'data-verdict="tampered"' in response.text
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"


# ---------------------------------------------------------------- sign-in by code


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def ask_code(
    client: httpx.AsyncClient, phone: str, ip: str = "203.0.113.9"
) -> httpx.Response:
    form = await client.get("/console/sign-in")
    return await client.post(
        "/console/sign-in",
        data={"csrf": csrf_of(form), "phone": phone},
        headers={"X-Forwarded-For": ip},
    )


async def sign_in(client: httpx.AsyncClient, sinks: Sinks, staff: Staff) -> httpx.Response:
    assert staff.phone is not None
    page = await ask_code(client, staff.phone)
    assert page.status_code == 200, page.text
    code = re.search(r"\b(\d{6})\b", [s for s in sinks.sms() if s["to"] == staff.phone][-1]["text"])
    assert code is not None
    return await client.post(
        "/console/sign-in/code",
        data={"csrf": csrf_of(page), "phone": staff.phone, "code": code.group(1)},
    )


async def test_a_code_is_sent_once_and_signs_in(pages: httpx.AsyncClient, sinks: Sinks) -> None:
    world = await make_store_world(consultants=1)
    manager = world.manager
    signed = await sign_in(pages, sinks, manager)
    assert signed.status_code == 303 and signed.headers["location"] == "/console/board"
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "secure" not in cookie
    [sms] = [s for s in sinks.sms() if s["to"] == manager.phone]
    async with session() as db:
        [row] = (await db.exec(select(SignInCode))).all()
    assert sms["idempotency_key"] == f"sign-in:{row.id}"
    assert (row.sms_status, row.attempts, row.used_at is not None) == ("sent", 1, True)
    assert row.code_hash and row.code_hash not in sms["text"]  # stored as an HMAC only
    board = await pages.get("/console/board")
    assert board.status_code == 200 and world.store.name in board.text
    out = await pages.post("/console/sign-out", data={"csrf": csrf_of(board)})
    assert out.status_code == 303 and out.headers["location"] == "/console/sign-in"
    assert (await pages.get("/console/board")).status_code == 303  # to sign in again


async def test_an_unknown_number_gets_the_same_answer_and_no_sms(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    await make_store_world(consultants=1)
    page = await ask_code(pages, "+8613999999999")
    assert page.status_code == 200 and 'name="code"' in page.text
    assert sinks.sms() == []


async def test_codes_are_rate_limited_per_phone_and_per_address(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    phone = world.consultants[0].phone
    assert phone is not None
    for _ in range(3):
        assert (await ask_code(pages, phone)).status_code == 200
    refused = await ask_code(pages, phone)
    assert refused.status_code == 429 and "Too many codes for this number" in refused.text
    assert len([s for s in sinks.sms() if s["to"] == phone]) == 3
    for n in range(7):  # the same address, other numbers: 10 per address in all
        assert (await ask_code(pages, f"+86139000000{n:02d}", ip="198.51.100.7")).status_code == 200
    for n in range(3):
        await ask_code(pages, f"+86139000001{n:02d}", ip="198.51.100.7")
    refused = await ask_code(pages, "+8613900000200", ip="198.51.100.7")
    assert refused.status_code == 429 and "from this network" in refused.text


async def test_five_tries_then_the_code_is_locked_and_it_expires(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    phone = world.consultants[0].phone
    assert phone is not None
    page = await ask_code(pages, phone)
    code = re.search(r"\b(\d{6})\b", sinks.sms()[-1]["text"])
    assert code is not None
    wrong = f"{(int(code.group(1)) + 1) % 1_000_000:06d}"
    data = {"csrf": csrf_of(page), "phone": phone}
    for _ in range(5):
        answer = await pages.post("/console/sign-in/code", data=data | {"code": wrong})
        assert answer.status_code == 422 and "not right" in answer.text
    locked = await pages.post("/console/sign-in/code", data=data | {"code": code.group(1)})
    assert locked.status_code == 429 and "Too many tries" in locked.text
    # A new code, expired before it is used.
    page = await ask_code(pages, phone)
    code = re.search(r"\b(\d{6})\b", sinks.sms()[-1]["text"])
    assert code is not None
    async with session() as db:
        row = (await db.exec(select(SignInCode).order_by(col(SignInCode.id).desc()))).first()
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
        db.add(row)
        await db.commit()
    late = await pages.post("/console/sign-in/code", data=data | {"code": code.group(1)})
    assert late.status_code == 422 and "expired" in late.text


async def test_a_form_without_csrf_is_refused(pages: httpx.AsyncClient) -> None:
    await pages.get("/console/sign-in")  # a session cookie, but no token in the form
    response = await pages.post("/console/sign-in", data={"phone": "+8613800000001"})
    assert response.status_code == 403 and 'data-refused="csrf"' in response.text


@pytest.mark.parametrize("change", ["deactivated", "moved", "demoted"])
async def test_a_session_lapses_when_its_person_changes(
    pages: httpx.AsyncClient, sinks: Sinks, change: str
) -> None:
    world = await make_store_world(consultants=1)
    other = await make_store_world(consultants=1)
    await sign_in(pages, sinks, world.manager)
    assert (await pages.get("/console/board")).status_code == 200
    async with session() as db:
        staff = await db.get(Staff, world.manager.id)
        assert staff is not None
        if change == "deactivated":
            staff.active = False
        elif change == "moved":
            staff.store_id = other.store.id or 0
        else:
            staff.role = StaffRole.CONSULTANT
        db.add(staff)
        await db.commit()
    lapsed = await pages.get("/console/board")
    assert lapsed.status_code == 303
    assert lapsed.headers["location"] == "/console/sign-in?next=/console/board&why=lapsed"


async def test_the_cookie_is_secure_behind_https(
    pages: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "https://o2o.example.com")
    response = await pages.get("/console/sign-in")
    assert "secure" in response.headers["set-cookie"].lower()


# ---------------------------------------------------------------- the JSON API's side


async def test_a_manager_accepts_on_the_assignees_behalf_recorded_as_theirs(
    api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=2)
    body, first = await offered(api, world)
    manager = await manager_of(world)

    response = await act(api, body["order_id"], "accept", {"staff_id": first["staff_id"]}, manager)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"

    async def recorded() -> list[str]:
        async with session() as db:
            rows = await db.exec(
                select(OrderEvent.actor).where(
                    OrderEvent.order_id == body["order_id"], OrderEvent.kind == "accepted"
                )
            )
            actors = list(rows.all())
        assert actors
        return actors

    assert await eventually(recorded) == [f"store_manager {world.manager.id}"]
    # ...and completes it for them with the consultant's note, again recorded as theirs.
    done = await act(
        api,
        body["order_id"],
        "complete",
        {"staff_id": first["staff_id"], "reason": "booked the tour by phone"},
        manager,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    async with session() as db:
        completed = (
            await db.exec(
                select(OrderEvent).where(
                    OrderEvent.order_id == body["order_id"], OrderEvent.kind == "completed"
                )
            )
        ).one()
    assert completed.actor == f"store_manager {world.manager.id}"
    assert completed.detail["note"] == "booked the tour by phone"
    # A manager of another store may not.
    elsewhere: StoreWorld = await make_store_world(consultants=1)
    response = await act(
        api,
        body["order_id"],
        "complete",
        {"staff_id": first["staff_id"]},
        await manager_of(elsewhere),
    )
    assert response.status_code == 403, response.text


async def test_nobody_adjusts_their_own_points_and_staff_pause_themselves(
    offline_api: httpx.AsyncClient,
) -> None:
    world = await make_store_world(consultants=1)
    manager = await manager_of(world)
    response = await offline_api.post(
        f"/api/v1/staff/{world.manager.id}/points",
        json={"delta": 5, "reason": "me"},
        headers=manager,
    )
    assert response.status_code == 403, response.text
    assert "grant points to themselves" in response.json()["detail"]
    async with session() as db:
        rows = await db.exec(select(PointsEntry).where(PointsEntry.staff_id == world.manager.id))
        assert rows.all() == []
    consultant = world.consultants[0]
    token = bearer(await api_token(Role.STAFF, staff_id=consultant.id, store_id=world.store.id))
    paused = await offline_api.post(
        f"/api/v1/staff/{consultant.id}/pause", json={"reason": "doctor"}, headers=token
    )
    assert paused.status_code == 200, paused.text
    assert (paused.json()["rotation_paused"], paused.json()["pause_reason"]) == (True, "doctor")
    someone_else = await offline_api.post(
        f"/api/v1/staff/{world.manager.id}/pause", json={"reason": "x"}, headers=token
    )
    assert someone_else.status_code == 403
    resumed = await offline_api.post(f"/api/v1/staff/{consultant.id}/resume", headers=token)
    assert (resumed.json()["rotation_paused"], resumed.json()["pause_reason"]) == (False, "")


async def test_a_consultant_pauses_and_resumes_themself_on_the_page(
    pages: httpx.AsyncClient, sinks: Sinks
) -> None:
    world = await make_store_world(consultants=1)
    consultant = world.consultants[0]
    signed = await sign_in(pages, sinks, consultant)
    assert signed.headers["location"] == "/console/me"
    account = await pages.get("/console/me/account")
    assert account.status_code == 200 and 'action="/console/me/pause"' in account.text
    paused = await pages.post(
        "/console/me/pause", data={"csrf": csrf_of(account), "reason": "at the dentist"}
    )
    assert paused.status_code == 303
    async with session() as db:
        row = await db.get(Staff, consultant.id)
        assert row is not None and (row.rotation_paused, row.pause_reason) == (
            True,
            "at the dentist",
        )
    account = await pages.get("/console/me/account")
    assert "at the dentist" in account.text
    await pages.post("/console/me/resume", data={"csrf": csrf_of(account)})
    async with session() as db:
        row = await db.get(Staff, consultant.id)
        assert row is not None and (row.rotation_paused, row.pause_reason) == (False, "")
    # A consultant is not a manager: the board is refused.
    board = await pages.get("/console/board")
    assert board.status_code == 403 and "this page is for store managers" in board.text


async def test_cancel_takes_the_api_reasons(api: httpx.AsyncClient, dispatch: Dispatch) -> None:
    """The console's cancel is the API's: an unknown reason is a 422 page naming it, never a
    500, and the order goes on; a known one cancels the order."""
    world = await make_store_world(consultants=1)
    body = order_body(world)
    await submit(api, body)
    await wait_for_round(api, body["order_id"], 1)
    signed = await sign_in(api, dispatch.sinks, world.manager)
    assert signed.status_code == 303
    page = await api.get(f"/console/orders/{body['order_id']}")
    assert page.status_code == 200 and 'value="duplicate"' in page.text
    refused = await api.post(
        f"/console/orders/{body['order_id']}/cancel",
        data={"csrf": csrf_of(page), "reason": "the customer called"},
    )
    assert refused.status_code == 422 and 'data-refused="refused"' in refused.text
    assert "customer_cancelled" in refused.text
    live = await api.get(f"/api/v1/orders/{body['order_id']}", headers=admin())
    assert live.json()["status"] == "assigned"
    done = await api.post(
        f"/console/orders/{body['order_id']}/cancel",
        data={"csrf": csrf_of(page), "reason": "duplicate"},
    )
    assert done.status_code == 303
    live = await api.get(f"/api/v1/orders/{body['order_id']}", headers=admin())
    assert live.json()["status"] == "cancelled"


async def test_a_refusal_by_a_service_is_a_page(pages: httpx.AsyncClient, sinks: Sinks) -> None:
    """A rule the services enforce (nobody grants themselves points) reaches the person as
    the console's refusal page, as the API's own refusals do, not as a JSON body."""
    world = await make_store_world(consultants=1)
    assert (await sign_in(pages, sinks, world.manager)).status_code == 303
    staff_page = await pages.get(f"/console/staff?id={world.manager.id}")
    refused = await pages.post(
        f"/console/staff/{world.manager.id}/points",
        data={"csrf": csrf_of(staff_page), "delta": "5", "reason": "me"},
    )
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "grant points to themselves" in refused.text
