"""Send one notice e-mail over SMTP (aiosmtplib), as configured by the SMTP_* settings.

The Message-ID is derived from the notice's idempotency key, so the same notice sent twice
(a worker that died after handing the mail to the relay but before recording it) carries the
same Message-ID both times and the receiving side can drop the copy (the embedded mail sink
does; so do mailbox providers that fold duplicate Message-IDs).

`before_data` runs after the relay accepted sender and recipient and just before DATA: up to
there nothing was delivered, so the caller marks the notice "in doubt" only for the short
hand-over that follows, and an error raised before it is a plain "not sent".
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from notify.errors import DeliveryError, PermanentDeliveryError
from settings import SmtpSecurity, settings

MESSAGE_ID_DOMAIN = "o2o-dispatch"


class EmailError(DeliveryError):
    """The relay could not be reached or refused the message for now (4xx): try again.

    `in_doubt`: the connection failed during DATA, after the message may have been taken.
    """

    def __init__(self, message: str, *, in_doubt: bool = False) -> None:
        super().__init__(message)
        self.in_doubt = in_doubt


class PermanentEmailError(EmailError, PermanentDeliveryError):
    """The relay refused the message for good (5xx: unknown recipient, bad login …)."""


def message_id_for(key: str) -> str:
    """A stable Message-ID for an idempotency key: `<sha256-prefix@o2o-dispatch>`."""
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{MESSAGE_ID_DOMAIN}>"


def build_message(*, to: str, subject: str, text: str, html: str, message_id: str) -> EmailMessage:
    """A multipart/alternative message: plain text first, HTML preferred by clients that can."""
    message = EmailMessage()
    message["From"] = settings.SMTP_FROM
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def _permanent(exc: aiosmtplib.SMTPException) -> bool:
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(refused.code >= 500 for refused in exc.recipients)
    code = getattr(exc, "code", None)
    return isinstance(code, int) and code >= 500


class _HandOver(aiosmtplib.SMTP):
    """aiosmtplib's client with a hook before DATA, and a note of whether DATA began."""

    def __init__(self, before_data: Callable[[], Awaitable[None]] | None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.before_data = before_data
        self.data_started = False

    async def data(self, message: str | bytes, /, **kwargs: object) -> aiosmtplib.SMTPResponse:
        if self.before_data is not None:
            await self.before_data()
        self.data_started = True
        return await super().data(message, **kwargs)  # type: ignore[arg-type]


async def send_email(
    *,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    before_data: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Hand one message to the relay; raise EmailError (retry) or PermanentEmailError (don't)."""
    message = build_message(to=to, subject=subject, text=text, html=html, message_id=message_id)
    security = SmtpSecurity(settings.SMTP_SECURITY)
    client = _HandOver(
        before_data,
        hostname=settings.SMTP_HOST,
        port=settings.SMTP_PORT,
        username=settings.SMTP_USER or None,
        password=settings.SMTP_PASSWORD if settings.SMTP_USER else None,
        use_tls=security is SmtpSecurity.TLS,
        # True: STARTTLS is required; False: never (not even if the relay offers it).
        start_tls=security is SmtpSecurity.STARTTLS,
        timeout=settings.SMTP_TIMEOUT_SECONDS,
    )
    where = f"{settings.SMTP_HOST}:{settings.SMTP_PORT}"
    try:
        async with client:
            await client.send_message(message)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as exc:
        # The relay answered no: nothing was taken.
        error = PermanentEmailError if _permanent(exc) else EmailError
        raise error(f"SMTP {where}: {type(exc).__name__}: {exc}") from exc
    except (aiosmtplib.SMTPException, OSError) as exc:  # refused, unreachable, cut off, TLS
        raise EmailError(
            f"SMTP {where}: {type(exc).__name__}: {exc}", in_doubt=client.data_started
        ) from exc
