"""Phone numbers to E.164 and e-mail addresses to their normal form, or a clear ValueError."""

from __future__ import annotations

import pytest

from notify.contacts import normalize_email, normalize_phone


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("13800138000", "CN", "+8613800138000"),
        (" +86 138-0013-8000 ", "CN", "+8613800138000"),
        ("010 1234 5678", "CN", "+861012345678"),  # a Beijing landline
        ("+1 650 253 0000", "CN", "+16502530000"),  # an explicit country wins over the region
        ("(650) 253-0000", "US", "+16502530000"),
    ],
)
def test_phone_numbers_become_e164(raw: str, region: str, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("12345", "not a valid phone number"),
        ("+86 138", "not a valid phone number"),
        ("call me", "not a phone number"),
    ],
)
def test_bad_phone_numbers_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_phone(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Li.Si@Example.COM", "Li.Si@example.com"),  # the domain is case-insensitive
        ("  c1-0@o2o.test ", "c1-0@o2o.test"),  # .test is reserved for testing and accepted
        ("张三@例子.中国", "张三@例子.中国"),
    ],
)
def test_email_addresses_are_normalised(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ("no-at-sign", "not a valid e-mail address"),
        ("two@@o2o.test", "not a valid e-mail address"),
        ("user@host", "not a valid e-mail address"),  # no dot: not deliverable anywhere
        ("user@o2o.localhost", "special-use"),
    ],
)
def test_bad_email_addresses_are_refused_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_email(raw)
