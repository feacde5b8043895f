"""send_notice in a real activity context, against PostgreSQL, the mail sink and the SMS sink."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from sqlmodel import select
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

import activities.notices as notices
from activities.notices import NoticeOutcome, NoticeRequest, notice_key, send_notice
from console.links import OrderLink, read_token
from models import Notification, Order, OrderType, Staff
from models.db import session
from models.notifications import NoticeStatus
from notify.email import EmailError, message_id_for
from notify.log import notification_log
from notify.sinks import MailSink, SmsSink, read_duplicates, read_mail_index, read_sms_log
from notify.sms import SmsError
from settings import SmsProviderKind, SmtpSecurity, settings
from tests.factories import StoreWorld, make_store_world

ORDER = "A-1"
BASE_URL = "https://o2o.example.com"


@dataclasses.dataclass
class Sinks:
    mail: MailSink
    sms: SmsSink
    state: Path

    def mail_index(self) -> list[dict[str, Any]]:
        return read_mail_index(self.state)

    def sms_log(self) -> list[dict[str, Any]]:
        return read_sms_log(self.state)

    def message(self, entry: dict[str, Any]) -> EmailMessage:
        raw = (self.state / "mail" / entry["file"]).read_bytes()
        message = message_from_bytes(raw, policy=default_policy)
        assert isinstance(message, EmailMessage)
        return message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def sinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Sinks]:
    mail, sms = MailSink(tmp_path, port=0), SmsSink(tmp_path, port=0)
    await mail.start()
    await sms.start()
    for name, value in {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": mail.port,
        "SMTP_SECURITY": SmtpSecurity.NONE,
        "SMTP_USER": "",
        "SMTP_TIMEOUT_SECONDS": 5.0,
        "SMS_PROVIDER": SmsProviderKind.SINK,
        "SMS_URL": sms.url,
        "SMS_TIMEOUT_SECONDS": 5.0,
        "NOTICE_MAX_ATTEMPTS": 3,
        "PUBLIC_BASE_URL": BASE_URL,
    }.items():
        monkeypatch.setattr(settings, name, value)
    yield Sinks(mail, sms, tmp_path)
    await sms.stop()
    await mail.stop()


async def store_with_order(*, language: str = "zh") -> StoreWorld:
    world = await make_store_world(consultants=2, language=language)
    async with session() as db:
        db.add(
            Order(
                id=ORDER,
                type=OrderType.NEW,
                workflow_id=f"order-{ORDER}",
                store_id=world.store.id,
                customer_name="李四",
            )
        )
        await db.commit()
    return world


@pytest.fixture
async def world(clean_db: str) -> StoreWorld:
    return await store_with_order()


def assigned(staff: Staff, channel: str, *, store: str = "北京一店", **extra: Any) -> NoticeRequest:
    assert staff.id is not None
    return NoticeRequest(
        kind="assigned",
        channel=channel,
        order_id=ORDER,
        round=1,
        staff_id=staff.id,
        context={
            "customer_name": "李四",
            "category": "跟团游",
            "store_name": store,
            "deadline": "2025-11-25T06:30:00+00:00",
        },
        **extra,
    )


async def run(
    request: NoticeRequest, *, attempt: int = 1, retry_policy: RetryPolicy | None = None
) -> NoticeOutcome:
    """One activity attempt, with a real activity context as a worker would give it."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, retry_policy=retry_policy)
    result: NoticeOutcome = await env.run(send_notice, request)
    return result


async def sms_endpoint(
    handler: Callable[[web.Request], Awaitable[web.Response]], monkeypatch: pytest.MonkeyPatch
) -> web.AppRunner:
    """Serve `handler` as the SMS webhook (POST /sms) and point SMS_URL at it."""
    app = web.Application()
    app.router.add_post("/sms", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    monkeypatch.setattr(settings, "SMS_URL", f"http://127.0.0.1:{runner.addresses[0][1]}/sms")
    return runner


async def row(key: str) -> Notification:
    async with session() as db:
        return (
            await db.exec(select(Notification).where(Notification.idempotency_key == key))
        ).one()


async def set_contact(staff: Staff, **fields: str | None) -> None:
    async with session() as db:
        current = await db.get(Staff, staff.id)
        assert current is not None
        for name, value in fields.items():
            setattr(current, name, value)
        db.add(current)
        await db.commit()


async def test_assigned_notice_by_email_and_sms(world: StoreWorld, sinks: Sinks) -> None:
    staff = world.consultants[0]
    email_request, sms_request = assigned(staff, "email"), assigned(staff, "sms")
    email_key, sms_key = notice_key(email_request), notice_key(sms_request)
    assert email_key == f"{ORDER}:1:{staff.id}:email:assigned"

    assert (await run(email_request)).status == "sent"
    assert (await run(sms_request)).status == "sent"

    [mail] = sinks.mail_index()
    assert mail["to"] == [staff.email]
    assert mail["message_id"] == message_id_for(email_key)
    assert mail["subject"] == f"新订单 {ORDER} 已分配给您，请于 2025-11-25 14:30 (UTC+08:00) 前接单"
    message = sinks.message(mail)
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    assert f"{staff.name}，您好" in text.get_content()
    # The offer links to the console's signed page for this order, round and assignee.
    link = re.search(rf"{re.escape(BASE_URL)}/o/(\S+)", text.get_content())
    assert link is not None, text.get_content()
    assert read_token(link.group(1)) == OrderLink(
        order_id=ORDER,
        round=1,
        staff_id=staff.id,
        purpose="assigned",
        deadline=datetime(2025, 11, 25, 6, 30, tzinfo=UTC),
    )
    assert f'href="{BASE_URL}/o/{link.group(1)}"' in html.get_content()

    [sms] = sinks.sms_log()
    assert (sms["to"], sms["idempotency_key"]) == (staff.phone, sms_key)
    assert sms["text"].startswith(f"【O2O】新订单{ORDER}（李四，跟团游）")

    email_row, sms_row = await row(email_key), await row(sms_key)
    assert (email_row.status, email_row.attempts, email_row.recipient) == ("sent", 1, staff.email)
    assert email_row.provider_message_id == message_id_for(email_key)
    assert (email_row.language, email_row.template, email_row.subject) == (
        "zh",
        "assigned/zh",
        mail["subject"],
    )
    assert email_row.sent_at is not None and email_row.last_error == ""
    assert (sms_row.status, sms_row.recipient, sms_row.provider_message_id) == (
        "sent",
        staff.phone,
        sms["id"],
    )
    assert sms_row.subject == sms["text"]


async def test_a_forced_retry_after_a_successful_send_sends_nothing(
    world: StoreWorld, sinks: Sinks
) -> None:
    request = assigned(world.consultants[0], "email")
    first = await run(request)
    again = await run(request, attempt=2)  # e.g. the completion was lost and Temporal retried
    replay = await run(request)  # e.g. a reset workflow asks for the same notice again

    assert first.status == again.status == replay.status == "sent"
    assert again.detail == "already sent"
    assert len(sinks.mail_index()) == 1
    rows = await notification_log(order_id=ORDER)
    assert [(r.status, r.attempts) for r in rows] == [("sent", 1)]


async def test_smtp_down_retries_then_fails_while_the_sms_still_goes_out(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "SMTP_PORT", closed_port())
    staff = world.consultants[0]
    email_request = assigned(staff, "email")
    key = notice_key(email_request)

    for attempt in (1, 2):  # NOTICE_MAX_ATTEMPTS is 3: the first two raise for Temporal to retry
        with pytest.raises(EmailError):
            await run(email_request, attempt=attempt)
        pending = await row(key)
        assert (pending.status, pending.attempts) == ("pending", attempt)
        assert pending.last_error.startswith(f"attempt {attempt}: EmailError")

    outcome = await run(email_request, attempt=3)
    assert outcome.status == "failed" and "EmailError" in outcome.detail
    failed = await row(key)
    assert (failed.status, failed.attempts, failed.sent_at) == ("failed", 3, None)

    assert (await run(assigned(staff, "sms"))).status == "sent"
    assert [m["to"] for m in sinks.sms_log()] == [staff.phone]
    assert sinks.mail_index() == []

    # Once failed, the notice is settled: a later call does not try again.
    assert (await run(email_request, attempt=4)).status == "failed"
    assert (await row(key)).attempts == 3


async def test_the_retry_policy_can_end_the_attempts_sooner(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "SMTP_PORT", closed_port())
    request = assigned(world.consultants[0], "email")
    policy = RetryPolicy(maximum_attempts=2)
    with pytest.raises(EmailError):
        await run(request, attempt=1, retry_policy=policy)
    assert (await run(request, attempt=2, retry_policy=policy)).status == "failed"


async def test_a_permanent_sms_refusal_fails_at_once(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"error": "unknown sender"}, status=400)

    runner = await sms_endpoint(refuse, monkeypatch)
    try:
        outcome = await run(assigned(world.consultants[0], "sms"), attempt=1)
    finally:
        await runner.cleanup()
    assert outcome.status == "failed" and "PermanentSmsError" in outcome.detail
    assert "HTTP 400" in (await row(outcome.idempotency_key)).last_error


async def test_no_email_address_is_a_recorded_skip(world: StoreWorld, sinks: Sinks) -> None:
    staff = world.consultants[0]
    await set_contact(staff, email=None, phone="12345")

    email = await run(assigned(staff, "email"))
    sms = await run(assigned(staff, "sms"))

    assert email.status == "skipped" and "has no e-mail address" in email.detail
    assert sms.status == "skipped" and "not a valid phone number" in sms.detail
    for outcome in (email, sms):
        skipped = await row(outcome.idempotency_key)
        assert (skipped.status, skipped.attempts, skipped.staff_id) == ("skipped", 0, staff.id)
        assert skipped.last_error == outcome.detail
    assert sinks.mail_index() == [] and sinks.sms_log() == []


async def test_an_unknown_recipient_is_a_recorded_skip(world: StoreWorld, sinks: Sinks) -> None:
    request = dataclasses.replace(assigned(world.consultants[0], "email"), staff_id=999_999)
    outcome = await run(request)
    assert outcome.status == "skipped" and "staff #999999 does not exist" in outcome.detail
    assert (await row(outcome.idempotency_key)).staff_id is None


class WorkerDied(BaseException):
    """Stands in for the process being killed: nothing after it runs, no `except` catches it."""


async def test_a_worker_death_after_the_relay_took_the_mail_leaves_one_copy(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_send = notices.send_email

    async def send_then_die(**message: Any) -> None:
        await real_send(**message)  # the relay has the message …
        raise WorkerDied  # … but the worker dies before the outcome is recorded

    request = assigned(world.consultants[0], "email")
    key = notice_key(request)
    monkeypatch.setattr(notices, "send_email", send_then_die)
    with pytest.raises(WorkerDied):
        await run(request, attempt=1)
    stuck = await row(key)
    assert (stuck.status, stuck.attempts) == ("delivering", 1)  # in doubt: DATA had begun

    monkeypatch.setattr(notices, "send_email", real_send)
    outcome = await run(request, attempt=2)  # Temporal's retry after the attempt timed out

    assert outcome.status == "sent"
    assert [m["message_id"] for m in sinks.mail_index()] == [message_id_for(key)]
    # The recovery went out with the same Message-ID and the receiving side dropped it.
    assert [d["message_id"] for d in read_duplicates(sinks.state, "mail")] == [message_id_for(key)]
    done = await row(key)
    assert (done.status, done.attempts, done.in_doubt_recoveries, done.provider_message_id) == (
        "sent",
        2,
        1,
        message_id_for(key),
    )


async def test_a_worker_death_before_data_is_a_plain_retry(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def die_before_data(key: str) -> None:
        raise WorkerDied  # connected, envelope accepted, DATA never sent

    request = assigned(world.consultants[0], "email")
    key = notice_key(request)
    real_mark = notices._mark_delivering
    monkeypatch.setattr(notices, "_mark_delivering", die_before_data)
    with pytest.raises(WorkerDied):
        await run(request, attempt=1)
    assert (await row(key)).status == "sending"
    assert sinks.mail_index() == []  # the relay dropped the unfinished transaction

    monkeypatch.setattr(notices, "_mark_delivering", real_mark)
    assert (await run(request, attempt=2)).status == "sent"
    assert len(sinks.mail_index()) == 1 and read_duplicates(sinks.state, "mail") == []
    done = await row(key)
    assert (done.status, done.attempts, done.in_doubt_recoveries) == ("sent", 2, 0)


async def test_an_sms_in_doubt_is_recovered_by_its_idempotency_key(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = notices.provider_from_settings()
    first_ids: list[str] = []

    class DiesAfterSending:
        async def send(self, **message: Any) -> str:
            first_ids.append(await provider.send(**message))
            raise WorkerDied

    request = assigned(world.consultants[0], "sms")
    key = notice_key(request)
    monkeypatch.setattr(notices, "provider_from_settings", DiesAfterSending)
    with pytest.raises(WorkerDied):
        await run(request, attempt=1)
    assert (await row(key)).status == "delivering"

    monkeypatch.setattr(notices, "provider_from_settings", lambda: provider)
    assert (await run(request, attempt=2)).status == "sent"

    assert [m["idempotency_key"] for m in sinks.sms_log()] == [key]
    assert [d["id"] for d in read_duplicates(sinks.state, "sms")] == first_ids
    done = await row(key)
    assert (done.status, done.in_doubt_recoveries, done.provider_message_id) == (
        "sent",
        1,
        first_ids[0],
    )


async def test_an_answer_lost_to_a_timeout_is_recovered_not_resent(
    world: StoreWorld, sinks: Sinks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider took the SMS but its answer came too late: the retry must not send again."""
    release = asyncio.Event()

    async def slow_proxy(request: web.Request) -> web.Response:
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                sinks.sms.url,
                content=await request.read(),
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": request.headers["Idempotency-Key"],
                },
            )
        if slow:
            await release.wait()
        return web.json_response(answer.json(), status=answer.status_code)

    slow = True
    runner = await sms_endpoint(slow_proxy, monkeypatch)
    monkeypatch.setattr(settings, "SMS_TIMEOUT_SECONDS", 0.5)
    request = assigned(world.consultants[0], "sms")
    key = notice_key(request)
    try:
        with pytest.raises(SmsError):
            await run(request, attempt=1)
        assert (await row(key)).status == "delivering"
        slow = False
        assert (await run(request, attempt=2)).status == "sent"
    finally:
        release.set()
        await runner.cleanup()
    assert len(sinks.sms_log()) == 1 and len(read_duplicates(sinks.state, "sms")) == 1
    assert (await row(key)).in_doubt_recoveries == 1


async def test_english_recipients_get_english(clean_db: str, sinks: Sinks) -> None:
    world = await store_with_order(language="en")
    staff = world.consultants[0]
    assert (await run(assigned(staff, "email", store="Beijing 1"))).status == "sent"
    assert (await run(assigned(staff, "sms", store="Beijing 1"))).status == "sent"
    [mail] = sinks.mail_index()
    assert mail["subject"].startswith(f"New order {ORDER} assigned to you")
    [sms] = sinks.sms_log()
    assert sms["text"].startswith(f"O2O: new order {ORDER}")
    assert (await notification_log(staff_id=staff.id))[0].language == "en"


async def test_a_template_field_missing_fails_without_sending(
    world: StoreWorld, sinks: Sinks
) -> None:
    request = assigned(world.consultants[0], "email")
    context = {k: v for k, v in request.context.items() if k != "deadline"}
    outcome = await run(dataclasses.replace(request, context=context))
    assert outcome.status == "failed" and "deadline" in outcome.detail
    assert sinks.mail_index() == []


async def test_occasions_tell_apart_repeated_notices_of_a_round(
    world: StoreWorld, sinks: Sinks
) -> None:
    manager = world.manager
    assert manager.id is not None

    def waiting(occasion: str) -> NoticeRequest:
        return NoticeRequest(
            kind="waiting",
            channel="email",
            order_id=ORDER,
            round=0,
            staff_id=manager.id or 0,
            context={"customer_name": "李四", "category": "跟团游", "store_name": "北京一店"},
            occasion=occasion,
        )

    first, second = await run(waiting("shift-1")), await run(waiting("shift-2"))
    assert first.idempotency_key == f"{ORDER}:0:{manager.id}:email:waiting:shift-1"
    assert (first.status, second.status) == ("sent", "sent")
    assert len({m["message_id"] for m in sinks.mail_index()}) == 2


async def test_notification_log_filters(world: StoreWorld, sinks: Sinks) -> None:
    first, second = world.consultants
    for staff in (first, second):
        await run(assigned(staff, "email"))
    assert [r.staff_id for r in await notification_log(order_id=ORDER)] == [first.id, second.id]
    assert [r.staff_id for r in await notification_log(staff_id=second.id)] == [second.id]
    assert await notification_log(order_id="nope") == []


async def test_a_malformed_request_is_not_retried(world: StoreWorld, sinks: Sinks) -> None:
    request = dataclasses.replace(assigned(world.consultants[0], "email"), channel="fax")
    with pytest.raises(ApplicationError) as caught:
        await run(request)
    assert caught.value.non_retryable


async def test_a_late_attempt_never_undoes_a_settled_notice(
    world: StoreWorld, sinks: Sinks
) -> None:
    """An attempt that overran its timeout may report after a later attempt sent the notice."""
    request = assigned(world.consultants[0], "email")
    key = notice_key(request)
    assert (await run(request)).status == "sent"

    await notices._mark_delivering(key)  # the stale attempt reaches DATA …
    stale = await notices._finish(key, NoticeStatus.PENDING, error="attempt 1: cut off")

    assert stale.status == "sent" and stale.detail == "already sent"
    done = await row(key)
    assert (done.status, done.last_error) == ("sent", "")
