"""The notice activity: send ONE notice over ONE channel to ONE staff member, exactly once.

Exactly-once rests on the `notification` row and its unique idempotency key:

1. the row is inserted (ON CONFLICT DO NOTHING) and locked before anything is sent;
2. a row already `sent`, `failed` or `skipped` is returned as it is, so a retried activity,
   a second call for the same event or a workflow reset never sends twice;
3. otherwise it is claimed (attempts + 1) and committed, the message is sent outside any
   transaction, and the outcome is recorded.

The one moment a retry cannot judge alone is the hand-over itself: a worker that dies (or
loses the answer) after the relay or provider may have taken the message and before the
outcome is committed. The row says when that moment began: it turns `delivering` just before
SMTP DATA (`sending` covers connect, login and envelope, where nothing is delivered yet) and
before the SMS request. A retry that finds `sending` or `pending` simply sends. A retry that
finds `delivering` recovers instead, and counts it in `in_doubt_recoveries`:

- SMS: the provider is asked (see notify.sms: the webhook answers a repeated Idempotency-Key
  with the first message's id; Twilio's message list is searched) and sends only if needed;
- e-mail: SMTP cannot be asked, so the mail goes again with the SAME Message-ID, which the
  receiving side drops as a copy (the embedded sink does; so do mailbox providers that fold
  duplicate Message-IDs). The DATA-to-commit window is a few milliseconds.

A missing or invalid address is not an error: the row is `skipped` with the reason, as a
recorded warning. A failed send is retried by Temporal (the exception is re-raised) until
the last attempt (`NOTICE_MAX_ATTEMPTS`, or the retry policy's maximum if lower) or a
permanent error; then the row is `failed` and the activity returns normally, so the order's
workflow goes on without the notice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col, select, update
from temporalio import activity
from temporalio.exceptions import ApplicationError

from console.links import order_action_link
from models.db import session
from models.notifications import Channel, NoticeKind, NoticeStatus, Notification
from models.sites import Store
from models.staff import Staff
from notify.contacts import normalize_email, normalize_phone
from notify.email import message_id_for, send_email
from notify.errors import PermanentDeliveryError
from notify.log import notification_log
from notify.sms import provider_from_settings
from notify.templates import Rendered, RenderError, order_link, render, template_language
from observability import domain as domain_metrics
from settings import settings

__all__ = ["NoticeOutcome", "NoticeRequest", "notice_key", "notification_log", "send_notice"]

KEY_MAX = 200  # the column's length
FINAL = (NoticeStatus.SENT, NoticeStatus.FAILED, NoticeStatus.SKIPPED)


@dataclass(frozen=True)
class NoticeRequest:
    """One notice to send. `context` holds the template fields (see notify.templates.FIELDS).

    `order_id`, `round`, `link` (the order's API URL) and `recipient_name` are filled in when
    absent; the caller gives the rest: customer_name, category, store_name, deadline (ISO),
    timed_out_staff_name, and optionally `timezone` (IANA) for showing the deadline.
    """

    kind: str  # NoticeKind value
    channel: str  # "sms" | "email"
    order_id: str
    round: int
    staff_id: int  # the recipient
    context: dict[str, str | int | None] = field(default_factory=dict)
    occasion: str = ""  # tells apart the same kind happening twice in a round (a second wait)


@dataclass(frozen=True)
class NoticeOutcome:
    idempotency_key: str
    status: str  # NoticeStatus value
    detail: str = ""


def notice_key(request: NoticeRequest) -> str:
    """`order:round:staff:channel:kind[:occasion]`; hashed at the tail if it would not fit."""
    key = f"{request.order_id}:{request.round}:{request.staff_id}:{request.channel}:{request.kind}"
    if request.occasion:
        key += f":{request.occasion}"
    if len(key) > KEY_MAX:
        digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]
        key = f"{key[: KEY_MAX - 41]}#{digest}"
    return key


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _address(channel: Channel, staff: Staff) -> str:
    """The staff member's usable address for the channel; ValueError says why there is none."""
    if channel is Channel.SMS:
        if not staff.phone:
            raise ValueError(f"staff #{staff.id} ({staff.name}) has no phone number")
        return normalize_phone(staff.phone, settings.DEFAULT_COUNTRY)
    if not staff.email:
        raise ValueError(f"staff #{staff.id} ({staff.name}) has no e-mail address")
    return normalize_email(staff.email)


def _final_attempt(attempt: int) -> bool:
    """True when Temporal will not run this activity again after a failure."""
    if attempt >= settings.NOTICE_MAX_ATTEMPTS:
        return True
    policy = activity.info().retry_policy
    return bool(policy and policy.maximum_attempts and attempt >= policy.maximum_attempts)


async def _mark_delivering(key: str) -> None:
    async with session() as db:
        await db.exec(
            update(Notification)
            .where(
                col(Notification.idempotency_key) == key,
                col(Notification.status) == NoticeStatus.SENDING.value,  # never a settled row
            )
            .values(status=NoticeStatus.DELIVERING.value)
        )
        await db.commit()


async def _deliver(
    channel: Channel, address: str, rendered: Rendered, key: str, *, in_doubt_since: datetime | None
) -> str:
    """Send (or recover, when a previous hand-over is in doubt); return the id to record:
    our Message-ID for e-mail, the provider's for SMS."""
    if channel is Channel.EMAIL:
        message_id = message_id_for(key)

        async def hand_over() -> None:
            await _mark_delivering(key)

        await send_email(
            to=address,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=message_id,
            before_data=None if in_doubt_since else hand_over,  # in doubt: stays `delivering`
        )
        return message_id
    provider = provider_from_settings()
    if in_doubt_since is not None:
        return await provider.recover(
            to=address, text=rendered.sms, idempotency_key=key, since=in_doubt_since
        )
    return await provider.send(to=address, text=rendered.sms, idempotency_key=key)


async def _finish(
    key: str, status: NoticeStatus, *, error: str = "", provider_id: str = ""
) -> NoticeOutcome:
    """Record the outcome of this attempt on the row.

    An attempt that overran its timeout may finish after a later one: it never undoes a
    settled row (a `sent` stays sent; only a `sent` may overwrite a `failed`).
    """
    async with session() as db:
        query = select(Notification).where(Notification.idempotency_key == key).with_for_update()
        row = (await db.exec(query)).one()
        settled = row.status == NoticeStatus.SENT or (
            row.status in FINAL and status is not NoticeStatus.SENT
        )
        if settled:
            await db.commit()
            return NoticeOutcome(key, row.status, f"already {row.status}")
        row.status = status.value
        domain_metrics.count_notice(row.channel, status.value)  # counts settled outcomes only
        if error:
            row.last_error = _clip(error, 1000)
        if status is NoticeStatus.SENT:
            row.sent_at = datetime.now(UTC)
            row.provider_message_id = _clip(provider_id, 200)
        db.add(row)
        await db.commit()
    detail = error or (f"sent, id {provider_id}" if provider_id else "")
    return NoticeOutcome(key, status.value, detail)


def notice_link(kind: NoticeKind, request: NoticeRequest) -> str:
    """An offer's notices link to the console's signed single-use page (`/o/<token>`) where
    the assignee accepts or declines; the others to the order itself."""
    if kind in (NoticeKind.ASSIGNED, NoticeKind.REMINDER):
        deadline = request.context.get("deadline")
        return order_action_link(
            order_id=request.order_id,
            round=request.round,
            staff_id=request.staff_id,
            purpose=kind.value,
            deadline=str(deadline) if deadline else None,
        )
    return order_link(request.order_id)


@activity.defn
async def send_notice(request: NoticeRequest) -> NoticeOutcome:
    """Send one notice once; see the module docstring for the guarantees."""
    try:
        kind = NoticeKind(request.kind)
        channel = Channel(request.channel)
    except ValueError as exc:
        raise ApplicationError(str(exc), type="BadNoticeRequest", non_retryable=True) from exc
    key = notice_key(request)
    attempt = activity.info().attempt
    log = activity.logger

    # Claim the notice: insert-or-find its row and lock it, decide, commit before sending.
    async with session() as db:
        staff = await db.get(Staff, request.staff_id)
        row_values = Notification(
            idempotency_key=key,
            order_id=request.order_id,
            staff_id=staff.id if staff else None,
            kind=kind.value,
            channel=channel.value,
            round=request.round,
            template=kind.value,
            status=NoticeStatus.PENDING.value,
        ).model_dump(exclude={"id"})
        await db.exec(
            pg_insert(Notification)
            .values(**row_values)
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        row = (
            await db.exec(
                select(Notification).where(Notification.idempotency_key == key).with_for_update()
            )
        ).one()

        if row.status in FINAL:
            await db.commit()
            log.info("notice %s already %s: not sent again", key, row.status)
            return NoticeOutcome(key, row.status, f"already {row.status}")

        reason = "" if staff else f"staff #{request.staff_id} does not exist"
        address = ""
        if staff is not None:
            try:
                address = _address(channel, staff)
            except ValueError as exc:
                reason = str(exc)
        if staff is None or reason:
            row.status = NoticeStatus.SKIPPED.value
            row.last_error = _clip(f"not sent by {channel.value}: {reason}", 1000)
            domain_metrics.count_notice(channel.value, NoticeStatus.SKIPPED.value)
            db.add(row)
            await db.commit()
            log.warning("notice %s skipped: %s", key, reason)
            return NoticeOutcome(key, NoticeStatus.SKIPPED.value, row.last_error)

        language = template_language(staff.language)
        store = await db.get(Store, staff.store_id)
        context: dict[str, object] = {
            "order_id": request.order_id,
            "round": request.round,
            "link": notice_link(kind, request),
            "timezone": store.timezone if store else None,
            **request.context,
            "recipient_name": staff.name,
        }
        row.recipient = _clip(address, 254)
        row.language = language
        row.template = f"{kind.value}/{language}"
        try:
            rendered = render(kind, language, context)
        except RenderError as exc:  # a bug in the caller or a template: retrying cannot help
            row.status = NoticeStatus.FAILED.value
            row.last_error = _clip(str(exc), 1000)
            domain_metrics.count_notice(channel.value, NoticeStatus.FAILED.value)
            db.add(row)
            await db.commit()
            log.error("notice %s not rendered: %s", key, exc)
            return NoticeOutcome(key, NoticeStatus.FAILED.value, row.last_error)

        in_doubt_since = row.created_at if row.status == NoticeStatus.DELIVERING else None
        if in_doubt_since is not None:
            # A previous attempt died (or lost the answer) during the hand-over: the message
            # may have left. Recover it (see the module docstring) instead of a plain send.
            row.in_doubt_recoveries += 1
            log.warning("notice %s found 'delivering': recovering, not re-sending blind", key)
        # SMS: the request is the hand-over. E-mail: `delivering` starts just before DATA.
        # Once in doubt, the row stays `delivering` until the outcome is known.
        row.status = (
            NoticeStatus.DELIVERING.value
            if channel is Channel.SMS or in_doubt_since
            else NoticeStatus.SENDING.value
        )
        row.attempts += 1
        # For SMS the "subject" column keeps the text sent, so the log shows it.
        row.subject = _clip(rendered.subject if channel is Channel.EMAIL else rendered.sms, 300)
        db.add(row)
        await db.commit()

    try:
        provider_id = await _deliver(channel, address, rendered, key, in_doubt_since=in_doubt_since)
    except Exception as exc:
        error = f"attempt {attempt}: {type(exc).__name__}: {exc}"
        if isinstance(exc, PermanentDeliveryError) or _final_attempt(attempt):
            log.error("notice %s failed for good: %s", key, error)
            return await _finish(key, NoticeStatus.FAILED, error=error)
        # Not delivered for sure: back to pending, the next attempt is a plain retry.
        # Maybe delivered (cut off mid-hand-over, or in doubt before): the next one recovers.
        doubt = in_doubt_since is not None or getattr(exc, "in_doubt", False)
        await _finish(key, NoticeStatus.DELIVERING if doubt else NoticeStatus.PENDING, error=error)
        log.warning("notice %s not sent, will retry: %s", key, error)
        raise
    log.info("notice %s sent to %s", key, address)
    return await _finish(key, NoticeStatus.SENT, provider_id=provider_id)
