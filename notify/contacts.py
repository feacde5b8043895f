"""Normalise staff contact details before they are stored or used to send.

Phones are kept in E.164 (what SMS providers require); e-mail addresses in their
normalised form. Both raise `ValueError` with a readable reason, so an API or a CLI can
show it as is and the notice activity can record it as the reason a notice was skipped.
"""

from __future__ import annotations

import email_validator
import phonenumbers


def normalize_phone(raw: str, region: str = "CN") -> str:
    """`raw` as E.164 (`+8613800138000`); numbers without `+` are read as `region`'s."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("phone number is empty")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid phone number (read for region {region})")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    """`raw` as a normalised address; syntax only, no DNS look-up.

    `.test` domains are accepted (RFC 6761 reserves them for testing; the test data and
    demo stores use them); other special-use names such as `.localhost` or `.local` are
    refused, as email-validator does, since no relay can deliver to them.
    """
    text = (raw or "").strip()
    if not text:
        raise ValueError("e-mail address is empty")
    try:
        result = email_validator.validate_email(
            text, check_deliverability=False, test_environment=True
        )
    except email_validator.EmailNotValidError as exc:
        raise ValueError(f"{raw!r} is not a valid e-mail address: {exc}") from exc
    return result.normalized
