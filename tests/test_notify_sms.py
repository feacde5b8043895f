"""notify.sms against real local HTTP servers: a Twilio look-alike and the SMS sink itself."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from notify.sinks import SmsSink, read_duplicates, read_sms_log
from notify.sms import (
    TWILIO_API_BASE,
    PermanentSmsError,
    SmsError,
    TwilioProvider,
    WebhookProvider,
    provider_from_settings,
)
from settings import Settings, SmsProviderKind, settings

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token"
SENDER = "+15005550006"
SERVICE = "MG" + "fedcba9876543210" * 2
TEXT = "【O2O】新订单A-1已分配给您，请于11-25 14:30前接单：http://127.0.0.1:8000/api/v1/orders/A-1"


@dataclass
class FakeTwilio:
    """Speaks the Messages API as Twilio documents it, and checks every request it gets."""

    requests: list[dict[str, str]] = field(default_factory=list)
    listings: list[dict[str, str]] = field(default_factory=list)  # GET query strings
    sent: list[dict[str, Any]] = field(default_factory=list)  # message resources, oldest first
    fail_with: int | None = None  # answer this status instead (after the checks)
    url: str = ""

    @staticmethod
    def _refusal(request: web.Request) -> web.Response | None:
        if request.match_info["account"] != ACCOUNT:
            return _twilio_error(404, 20404, "The requested resource was not found")
        expected = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return _twilio_error(401, 20003, "Authenticate")
        return None

    async def listing(self, request: web.Request) -> web.Response:
        """GET Messages.json: newest first, filtered by To, PageSize per page (max 1000)."""
        if (refusal := self._refusal(request)) is not None:
            return refusal
        query = dict(request.query)
        self.listings.append(query)
        size = int(query.get("PageSize", "50"))
        found = [m for m in reversed(self.sent) if m["to"] == query.get("To", m["to"])]
        return web.json_response(
            {
                "messages": found[:size],
                "page": 0,
                "page_size": size,
                "next_page_uri": None,
                "uri": str(request.rel_url),
            }
        )

    async def messages(self, request: web.Request) -> web.Response:
        if (refusal := self._refusal(request)) is not None:
            return refusal
        if request.content_type != "application/x-www-form-urlencoded":
            return _twilio_error(400, 21609, "form-encoded body expected")
        form = {key: str(value) for key, value in (await request.post()).items()}
        self.requests.append(form)
        if not form.get("To", "").startswith("+") or not form.get("Body"):
            return _twilio_error(400, 21211, f"The 'To' number {form.get('To')} is not valid.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return _twilio_error(400, 21603, "A 'From' or 'MessagingServiceSid' is required")
        if self.fail_with:
            return _twilio_error(self.fail_with, 20500, "An internal server error has occurred")
        sid = f"SM{len(self.requests):032x}"
        message = {
            "sid": sid,
            "account_sid": ACCOUNT,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "date_created": format_datetime(datetime.now(UTC), usegmt=True),
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{ACCOUNT}/Messages/{sid}.json",
        }
        self.sent.append(message)
        return web.json_response(message, status=201)


def _twilio_error(status: int, code: int, message: str) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status)


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilio]:
    fake = FakeTwilio()
    app = web.Application()
    app.router.add_post("/2010-04-01/Accounts/{account}/Messages.json", fake.messages)
    app.router.add_get("/2010-04-01/Accounts/{account}/Messages.json", fake.listing)
    runner, fake.url = await _serve(app)
    yield fake
    await runner.cleanup()


@pytest.fixture
async def sink(tmp_path: Path) -> AsyncIterator[SmsSink]:
    server = SmsSink(tmp_path, port=0)
    await server.start()
    yield server
    await server.stop()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_twilio_sends_the_documented_request(twilio: FakeTwilio) -> None:
    provider = TwilioProvider(ACCOUNT, TOKEN, SENDER, base_url=twilio.url)
    sid = await provider.send(
        to="+8613800138000", text=TEXT, idempotency_key="A-1:1:7:sms:assigned"
    )
    assert sid == f"SM{1:032x}"
    assert twilio.requests == [{"To": "+8613800138000", "From": SENDER, "Body": TEXT}]


async def test_twilio_messaging_service_sender(twilio: FakeTwilio) -> None:
    provider = TwilioProvider(ACCOUNT, TOKEN, SERVICE, base_url=twilio.url)
    await provider.send(to="+8613800138000", text="hi", idempotency_key="k")
    assert twilio.requests == [
        {"To": "+8613800138000", "MessagingServiceSid": SERVICE, "Body": "hi"}
    ]


@pytest.mark.parametrize(
    ("account", "token", "to", "status"),
    [
        (ACCOUNT, "wrong-token", "+8613800138000", 401),
        ("AC" + "f" * 32, TOKEN, "+8613800138000", 404),
        (ACCOUNT, TOKEN, "13800138000", 400),
    ],
)
async def test_twilio_refusals_are_permanent(
    twilio: FakeTwilio, account: str, token: str, to: str, status: int
) -> None:
    provider = TwilioProvider(account, token, SENDER, base_url=twilio.url)
    with pytest.raises(PermanentSmsError) as caught:
        await provider.send(to=to, text=TEXT, idempotency_key="k")
    assert caught.value.status == status
    assert '"code"' in caught.value.body


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_twilio_overload_and_outages_are_retryable(twilio: FakeTwilio, status: int) -> None:
    twilio.fail_with = status
    provider = TwilioProvider(ACCOUNT, TOKEN, SENDER, base_url=twilio.url)
    with pytest.raises(SmsError) as caught:
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")
    assert not isinstance(caught.value, PermanentSmsError)
    assert caught.value.status == status


async def test_unreachable_provider_is_retryable() -> None:
    provider = WebhookProvider(f"http://127.0.0.1:{closed_port()}/sms", timeout=2.0)
    with pytest.raises(SmsError) as caught:
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")
    assert not isinstance(caught.value, PermanentSmsError)
    assert caught.value.status is None
    assert caught.value.in_doubt is False  # never connected: certainly not sent


async def test_a_provider_that_takes_the_request_but_never_answers_leaves_it_in_doubt() -> None:
    received: list[dict[str, Any]] = []
    release = asyncio.Event()

    async def take_and_stall(request: web.Request) -> web.Response:
        received.append(await request.json())
        await release.wait()  # long past the client's timeout
        return web.json_response({"id": "too late"})

    app = web.Application()
    app.router.add_post("/sms", take_and_stall)
    runner, url = await _serve(app)
    try:
        provider = WebhookProvider(f"{url}/sms", timeout=0.5)
        with pytest.raises(SmsError) as caught:
            await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")
    finally:
        release.set()
        await runner.cleanup()
    assert caught.value.in_doubt is True and "ReadTimeout" in str(caught.value)
    assert [r["idempotency_key"] for r in received] == ["k"]


async def test_twilio_recover_finds_the_message_it_already_has(twilio: FakeTwilio) -> None:
    provider = TwilioProvider(ACCOUNT, TOKEN, SENDER, base_url=twilio.url)
    since = datetime.now(UTC) - timedelta(seconds=1)
    sid = await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")
    await provider.send(to="+8613800138001", text=TEXT, idempotency_key="other phone")

    assert await provider.recover(to="+8613800138000", text=TEXT, idempotency_key="k", since=since)
    assert await provider.find(to="+8613800138000", text=TEXT, since=since) == sid
    twilio.sent.append(  # a date with "-0000" (no zone said) is read as UTC
        {
            "sid": "SM-zone-less",
            "to": "+8613800138002",
            "body": TEXT,
            "date_created": datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S -0000"),
        }
    )
    assert await provider.find(to="+8613800138002", text=TEXT, since=since) == "SM-zone-less"
    assert len(twilio.requests) == 2  # recovering sent nothing
    assert twilio.listings[0] == {"To": "+8613800138000", "PageSize": "200"}


async def test_twilio_recover_sends_what_twilio_does_not_have(twilio: FakeTwilio) -> None:
    provider = TwilioProvider(ACCOUNT, TOKEN, SENDER, base_url=twilio.url)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    await provider.send(to="+8613800138000", text="another notice", idempotency_key="k0")
    twilio.sent.append(  # the same text a day ago: another event, not this send
        {
            "sid": "SM-yesterday",
            "to": "+8613800138000",
            "body": TEXT,
            "date_created": format_datetime(yesterday, usegmt=True),
        }
    )

    sid = await provider.recover(
        to="+8613800138000",
        text=TEXT,
        idempotency_key="k",
        since=datetime.now(UTC) - timedelta(seconds=1),
    )
    assert sid == f"SM{2:032x}"
    assert [r["Body"] for r in twilio.requests] == ["another notice", TEXT]


async def test_webhook_against_the_sink_keeps_one_copy_per_key(
    sink: SmsSink, tmp_path: Path
) -> None:
    provider = WebhookProvider(sink.url, sender="O2O")
    first = await provider.send(
        to="+8613800138000", text=TEXT, idempotency_key="A-1:1:7:sms:assigned"
    )
    again = await provider.recover(
        to="+8613800138000",
        text=TEXT,
        idempotency_key="A-1:1:7:sms:assigned",
        since=datetime.now(UTC),
    )
    other = await provider.send(
        to="+8613800138000", text=TEXT, idempotency_key="A-1:2:7:sms:assigned"
    )

    assert first.startswith("sink-") and again == first and other not in (first, again)
    log = read_sms_log(tmp_path)
    assert [(e["to"], e["text"], e["sender"], e["idempotency_key"], e["id"]) for e in log] == [
        ("+8613800138000", TEXT, "O2O", "A-1:1:7:sms:assigned", first),
        ("+8613800138000", TEXT, "O2O", "A-1:2:7:sms:assigned", other),
    ]
    dropped = read_duplicates(tmp_path, "sms")
    assert [(d["idempotency_key"], d["id"]) for d in dropped] == [("A-1:1:7:sms:assigned", first)]
    async with httpx.AsyncClient() as client:
        listed = (await client.get(sink.url)).json()
        only = (await client.get(sink.url, params={"to": "+10000000000"})).json()
    assert [e["id"] for e in listed] == [first, other]
    assert only == []

    await sink.stop()
    await sink.start()  # a restarted sink still knows the keys it has
    assert (
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="A-1:2:7:sms:assigned")
        == other
    )
    assert len(read_sms_log(tmp_path)) == 2


async def test_sink_page_shows_messages_escaped_and_refuses_bad_posts(
    sink: SmsSink, tmp_path: Path
) -> None:
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "index.jsonl").write_text("{}\n")  # exists, but is not a message
    await WebhookProvider(sink.url).send(
        to="+8613800138000", text="<b>bold</b> 你好", idempotency_key="k1"
    )
    async with httpx.AsyncClient() as client:
        page = await client.get(f"http://127.0.0.1:{sink.port}/")
        missing_to = await client.post(sink.url, json={"text": "x"})
        not_json = await client.post(sink.url, content=b"nope")
        not_a_message = await client.get(f"http://127.0.0.1:{sink.port}/mail/index.jsonl")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&lt;b&gt;bold&lt;/b&gt; 你好" in page.text and "<b>bold</b>" not in page.text
    assert missing_to.status_code == 400 and not_json.status_code == 400
    assert not_a_message.status_code == 404  # only stored .eml files are served


@dataclass
class Webhook:
    """A gateway that keeps each request's headers and body and answers as configured."""

    answer: tuple[int, Any] = (200, {"id": "gw-1"})
    seen: list[tuple[dict[str, str], Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((dict(request.headers), await request.json()))
        status, body = self.answer
        return web.json_response(body, status=status)


@pytest.fixture
async def webhook() -> AsyncIterator[tuple[Webhook, str]]:
    gateway = Webhook()
    app = web.Application()
    app.router.add_post("/send", gateway.handle)
    runner, base = await _serve(app)
    yield gateway, f"{base}/send"
    await runner.cleanup()


async def test_webhook_wire_format_and_auth(webhook: tuple[Webhook, str]) -> None:
    gateway, url = webhook
    provider = WebhookProvider(url, token="gw-token", sender="O2O")
    assert (
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="A-1:1:7:sms:x")
        == "gw-1"
    )
    [(headers, body)] = gateway.seen
    assert body == {
        "to": "+8613800138000",
        "text": TEXT,
        "sender": "O2O",
        "idempotency_key": "A-1:1:7:sms:x",
    }
    assert headers["Authorization"] == "Bearer gw-token"
    assert headers["Idempotency-Key"] == "A-1:1:7:sms:x"


async def test_webhook_answers_it_cannot_use(webhook: tuple[Webhook, str]) -> None:
    gateway, url = webhook
    provider = WebhookProvider(url)
    gateway.answer = (200, {"ok": True})  # 2xx without an id
    with pytest.raises(SmsError, match="without an id"):
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")
    gateway.answer = (403, {"error": "forbidden"})
    with pytest.raises(PermanentSmsError, match="403"):
        await provider.send(to="+8613800138000", text=TEXT, idempotency_key="k")


async def test_provider_from_settings(monkeypatch: pytest.MonkeyPatch, twilio: FakeTwilio) -> None:
    default_url = Settings.model_fields["SMS_URL"].default
    monkeypatch.setattr(settings, "SMS_ACCOUNT", ACCOUNT)
    monkeypatch.setattr(settings, "SMS_TOKEN", TOKEN)
    monkeypatch.setattr(settings, "SMS_SENDER", SENDER)

    monkeypatch.setattr(settings, "SMS_PROVIDER", SmsProviderKind.TWILIO)
    monkeypatch.setattr(settings, "SMS_URL", default_url)
    production = provider_from_settings()
    assert isinstance(production, TwilioProvider)
    assert (
        production.messages_url == f"{TWILIO_API_BASE}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    )

    monkeypatch.setattr(settings, "SMS_URL", twilio.url)  # a test server stands in for Twilio
    assert await provider_from_settings().send(to="+8613800138000", text="hi", idempotency_key="k")
    assert twilio.requests == [{"To": "+8613800138000", "From": SENDER, "Body": "hi"}]

    monkeypatch.setattr(settings, "SMS_PROVIDER", SmsProviderKind.SINK)
    monkeypatch.setattr(settings, "SMS_URL", default_url)
    monkeypatch.setattr(settings, "SMS_SINK_PORT", 9123)
    sink = provider_from_settings()
    assert isinstance(sink, WebhookProvider) and sink.url == "http://127.0.0.1:9123/sms"

    monkeypatch.setattr(settings, "SMS_PROVIDER", SmsProviderKind.WEBHOOK)
    monkeypatch.setattr(settings, "SMS_URL", "https://gateway.example/sms")
    gateway = provider_from_settings()
    assert isinstance(gateway, WebhookProvider)
    assert (gateway.url, gateway.token, gateway.sender) == (
        "https://gateway.example/sms",
        TOKEN,
        SENDER,
    )
