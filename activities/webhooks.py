"""Status webhooks: every status change of an order is POSTed to the web backend, so it need
not poll.

The body is JSON (`StatusEvent`); the request carries

    O2O-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with WEBHOOK_SECRET>
    Idempotency-Key: <event id>

— the well-known "timestamp + HMAC over timestamp and body" scheme: the receiver recomputes
the HMAC, compares in constant time, and refuses a timestamp too far from its clock (a
replayed request). Every attempt is signed afresh; the body and the key stay the same, so a
receiver that saw the event id already just answers 2xx.

Temporal retries a failed delivery with backoff (the workflow never waits for it). The
last attempt (`WEBHOOK_MAX_ATTEMPTS`), or a refusal no retry can change (a 4xx other than
408/429), records a `webhook_failed` event on the order (GET /api/v1/orders/{id}) instead of
raising: a delivery that failed for good is visible, and never fails the order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict, dataclass
from datetime import datetime

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.projection import _event
from models.db import session
from settings import settings

SIGNATURE_HEADER = "O2O-Signature"
EVENT_TYPE = "order.status_changed"


@dataclass(frozen=True)
class StatusEvent:
    """One status change of an order, as the web backend receives it."""

    id: str  # "<order id>:<n>": unique per order and change, the idempotency key
    order_id: str
    status: str  # models.OrderStatus value
    phase: str  # dispatch.phases.Phase value
    assignee_id: int | None
    round: int
    at: datetime
    type: str = EVENT_TYPE


def body_of(event: StatusEvent) -> bytes:
    fields = asdict(event) | {"at": event.at.isoformat()}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `O2O-Signature` header value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def _permanent(status: int) -> bool:
    return 400 <= status < 500 and status not in (408, 429)


async def _record_failure(event: StatusEvent, error: str, attempt: int) -> None:
    async with session() as db:
        await _event(
            db,
            event.order_id,
            f"webhook_failed:{event.id}",
            "webhook_failed",
            {"event_id": event.id, "status": event.status, "error": error, "attempts": attempt},
        )
        await db.commit()


@activity.defn
async def send_status_webhook(event: StatusEvent) -> str:
    """POST one status event; "delivered", "skipped" (no URL) or "failed" (recorded)."""
    if not settings.WEBHOOK_URL:
        return "skipped"
    attempt = activity.info().attempt
    body = body_of(event)
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": event.id,
        SIGNATURE_HEADER: signature(settings.WEBHOOK_SECRET, int(time.time()), body),
    }
    try:
        async with httpx.AsyncClient(timeout=settings.WEBHOOK_TIMEOUT_SECONDS) as http:
            response = await http.post(settings.WEBHOOK_URL, content=body, headers=headers)
    except httpx.HTTPError as exc:
        error = f"attempt {attempt}: {type(exc).__name__}: {exc}"
        permanent = False
    else:
        if response.is_success:
            return "delivered"
        error = f"attempt {attempt}: HTTP {response.status_code}: {response.text[:200]}"
        permanent = _permanent(response.status_code)
    if permanent or attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        await _record_failure(event, error, attempt)
        return "failed"
    raise ApplicationError(error)  # retried by Temporal with backoff


WEBHOOK_ACTIVITIES = [send_status_webhook]
