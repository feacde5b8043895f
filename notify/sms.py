"""SMS providers: an SMS is one HTTP call to a provider's API.

`SmsProvider` is what the notice activity needs; `provider_from_settings()` picks one from
SMS_PROVIDER:

- `sink`: the embedded SMS sink (notify.sinks.SmsSink), spoken to with the webhook format;
- `webhook`: any gateway that accepts the generic JSON webhook below;
- `twilio`: Twilio Programmable Messaging, the Messages API.

Errors carry the HTTP status and body. Statuses that retrying cannot fix (bad request,
bad credentials, no such account) raise `PermanentSmsError`, so the activity records the
notice as failed at once; everything else (5xx, 429, network) raises `SmsError` and is
retried with backoff. An error after the request may have reached the provider (a timeout
waiting for the answer, a cut connection) is `in_doubt`.

`recover()` delivers a message that may already have gone out (a worker died, or the answer
was lost, mid-request): the webhook sends it again with the same Idempotency-Key, which the
gateway (and the embedded sink) answers with the first message's id instead of sending
again; Twilio, which has no idempotency key, is asked for the messages it has to that phone
and the text is sent only if none of them is it.

One HTTP client (connection pool) per event loop is shared by every send.
"""

from __future__ import annotations

import asyncio
import weakref
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import httpx

from notify.errors import DeliveryError, PermanentDeliveryError
from settings import Settings, SmsProviderKind, settings

TWILIO_API_BASE = "https://api.twilio.com"
PERMANENT_STATUSES = frozenset({400, 401, 403, 404, 405, 410, 422})
RECOVER_PAGE_SIZE = 200  # newest first; a busy manager's phone gets many
CLOCK_SKEW = timedelta(minutes=5)  # our clock against the provider's date_created


class SmsError(DeliveryError):
    """The provider did not take the message (this time); `status` is None for network errors,
    `in_doubt` when the request may have reached the provider before it failed."""

    def __init__(
        self, message: str, *, status: int | None = None, body: str = "", in_doubt: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body
        self.in_doubt = in_doubt


class PermanentSmsError(SmsError, PermanentDeliveryError):
    """The provider refused the request in a way that retrying will not change."""


class SmsProvider(Protocol):
    async def send(self, *, to: str, text: str, idempotency_key: str) -> str:
        """Send `text` to `to` (E.164); return the provider's message id."""
        ...

    async def recover(self, *, to: str, text: str, idempotency_key: str, since: datetime) -> str:
        """Make sure a message that may have gone out since `since` is there once; its id."""
        ...


def _check(response: httpx.Response, provider: str) -> Any:
    """The JSON body of a 2xx answer; otherwise raise with the status and body."""
    body = response.text
    if not response.is_success:
        error = PermanentSmsError if response.status_code in PERMANENT_STATUSES else SmsError
        raise error(
            f"{provider} answered HTTP {response.status_code}: {body[:300]}",
            status=response.status_code,
            body=body,
        )
    try:
        return response.json()
    except ValueError as exc:
        raise SmsError(
            f"{provider} answered HTTP {response.status_code} without JSON: {body[:300]}",
            status=response.status_code,
            body=body,
        ) from exc


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
    weakref.WeakKeyDictionary()
)


async def close_clients() -> None:
    """Close this loop's pooled client (on worker shutdown)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _client() -> httpx.AsyncClient:
    """This loop's pooled client: a new connection per SMS cost ~18 % of the worker's CPU."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = _clients[loop] = httpx.AsyncClient()
    return client


async def _request(
    provider: str, method: str, seconds: float, url: str, **kwargs: Any
) -> httpx.Response:
    try:
        return await _client().request(method, url, timeout=seconds, **kwargs)
    except httpx.HTTPError as exc:  # refused, timeout, DNS, cut off: worth another try
        # Not connected means not sent; past that, the provider may have the message.
        sent_maybe = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
        raise SmsError(
            f"{provider} at {url}: {type(exc).__name__}: {exc}", in_doubt=sent_maybe
        ) from exc


class WebhookProvider:
    """A generic JSON webhook: POST {"to","text","sender","idempotency_key"}, answer {"id"}.

    The idempotency key also travels as the `Idempotency-Key` header, so a gateway that
    honours it drops the second copy of a message re-sent after a worker died mid-send.
    """

    name = "webhook"

    def __init__(
        self, url: str, *, token: str = "", sender: str = "", timeout: float = 10.0
    ) -> None:
        self.url = url
        self.token = token
        self.sender = sender
        self.timeout = timeout

    async def send(self, *, to: str, text: str, idempotency_key: str) -> str:
        headers = {"Idempotency-Key": idempotency_key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        payload = {
            "to": to,
            "text": text,
            "sender": self.sender,
            "idempotency_key": idempotency_key,
        }
        response = await _request(
            self.name, "POST", self.timeout, self.url, json=payload, headers=headers
        )
        body = _check(response, self.name)
        if not isinstance(body, dict) or not body.get("id"):
            raise SmsError(
                f"{self.name} answered HTTP {response.status_code} without an id: "
                f"{response.text[:300]}",
                status=response.status_code,
                body=response.text,
            )
        return str(body["id"])

    async def recover(self, *, to: str, text: str, idempotency_key: str, since: datetime) -> str:
        return await self.send(to=to, text=text, idempotency_key=idempotency_key)


class TwilioProvider:
    """Twilio's Messages API: POST /2010-04-01/Accounts/{AccountSid}/Messages.json.

    Form fields To, From (or MessagingServiceSid when the sender is an `MG…` service id)
    and Body; HTTP Basic auth with AccountSid:AuthToken; a 201 answer carries the `sid`.
    Twilio's Messages API has no idempotency key: `recover` lists the messages to the phone
    (GET on the same resource, newest first) and re-sends only if none has the same Body.
    """

    name = "twilio"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        sender: str,
        *,
        base_url: str = TWILIO_API_BASE,
        timeout: float = 10.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.sender = sender
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    @property
    def messages_url(self) -> str:
        return f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    async def send(self, *, to: str, text: str, idempotency_key: str) -> str:
        form = {"To": to, "Body": text}
        if self.sender.startswith("MG") and len(self.sender) == 34:
            form["MessagingServiceSid"] = self.sender
        else:
            form["From"] = self.sender
        response = await _request(
            self.name,
            "POST",
            self.timeout,
            self.messages_url,
            data=form,
            auth=(self.account_sid, self.auth_token),
        )
        body = _check(response, self.name)
        if not isinstance(body, dict) or not body.get("sid"):
            raise SmsError(
                f"{self.name} answered HTTP {response.status_code} without a sid: "
                f"{response.text[:300]}",
                status=response.status_code,
                body=response.text,
            )
        return str(body["sid"])

    async def recover(self, *, to: str, text: str, idempotency_key: str, since: datetime) -> str:
        found = await self.find(to=to, text=text, since=since)
        return found or await self.send(to=to, text=text, idempotency_key=idempotency_key)

    async def find(self, *, to: str, text: str, since: datetime) -> str | None:
        """The sid of a message to `to` with this Body created since `since`, if Twilio has one.

        The texts carry the order and round, so the same Body to the same phone is the same
        notice. One page of the newest messages is enough: the send in doubt is minutes old.
        """
        response = await _request(
            self.name,
            "GET",
            self.timeout,
            self.messages_url,
            params={"To": to, "PageSize": RECOVER_PAGE_SIZE},
            auth=(self.account_sid, self.auth_token),
        )
        body = _check(response, self.name)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            raise SmsError(
                f"{self.name} listed messages without a 'messages' list: {response.text[:300]}",
                status=response.status_code,
                body=response.text,
            )
        earliest = since - CLOCK_SKEW
        for message in messages:
            if not isinstance(message, dict) or message.get("body") != text:
                continue
            try:
                created = parsedate_to_datetime(str(message.get("date_created")))
            except (TypeError, ValueError):
                continue
            if created.tzinfo is None:  # "-0000": UTC with no zone said
                created = created.replace(tzinfo=UTC)
            if created >= earliest and message.get("sid"):
                return str(message["sid"])
        return None


def provider_from_settings() -> SmsProvider:
    """The provider SMS_PROVIDER names, configured from the other SMS_* settings.

    SMS_URL's default points at the embedded sink; while it keeps that default, `sink` follows
    SMS_SINK_PORT and `twilio` uses Twilio's public API, so only a deliberate SMS_URL (a
    gateway, or a test server) overrides them.
    """
    kind = SmsProviderKind(settings.SMS_PROVIDER)
    default_url = Settings.model_fields["SMS_URL"].default
    url_given = default_url != settings.SMS_URL
    timeout = settings.SMS_TIMEOUT_SECONDS
    if kind is SmsProviderKind.TWILIO:
        return TwilioProvider(
            settings.SMS_ACCOUNT,
            settings.SMS_TOKEN,
            settings.SMS_SENDER,
            base_url=settings.SMS_URL if url_given else TWILIO_API_BASE,
            timeout=timeout,
        )
    if kind is SmsProviderKind.SINK and not url_given:
        url = f"http://127.0.0.1:{settings.SMS_SINK_PORT}/sms"
    else:
        url = settings.SMS_URL
    return WebhookProvider(
        url, token=settings.SMS_TOKEN, sender=settings.SMS_SENDER, timeout=timeout
    )
