"""Send one notice e-mail over SMTP (aiosmtplib), as configured by the SMTP_* settings.

The Message-ID is derived from the notice's idempotency key, so the same notice sent twice
(a worker that died after handing the mail to the relay but before recording it) carries the
same Message-ID both times and mail clients and archives can fold the duplicate.
"""

from __future__ import annotations

import hashlib
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from notify.errors import DeliveryError, PermanentDeliveryError
from settings import SmtpSecurity, settings

MESSAGE_ID_DOMAIN = "o2o-dispatch"


class EmailError(DeliveryError):
    """The relay could not be reached or refused the message for now (4xx): try again."""


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


async def send_email(*, to: str, subject: str, text: str, html: str, message_id: str) -> None:
    """Hand one message to the relay; raise EmailError (retry) or PermanentEmailError (don't)."""
    message = build_message(to=to, subject=subject, text=text, html=html, message_id=message_id)
    security = SmtpSecurity(settings.SMTP_SECURITY)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.SMTP_HOST,
            port=settings.SMTP_PORT,
            username=settings.SMTP_USER or None,
            password=settings.SMTP_PASSWORD if settings.SMTP_USER else None,
            use_tls=security is SmtpSecurity.TLS,
            # True: STARTTLS is required; False: never (not even if the relay offers it).
            start_tls=security is SmtpSecurity.STARTTLS,
            timeout=settings.SMTP_TIMEOUT_SECONDS,
        )
    except aiosmtplib.SMTPException as exc:
        where = f"{settings.SMTP_HOST}:{settings.SMTP_PORT}"
        error = PermanentEmailError if _permanent(exc) else EmailError
        raise error(f"SMTP {where}: {type(exc).__name__}: {exc}") from exc
    except OSError as exc:  # refused, unreachable, TLS handshake failures
        where = f"{settings.SMTP_HOST}:{settings.SMTP_PORT}"
        raise EmailError(f"SMTP {where}: {type(exc).__name__}: {exc}") from exc
