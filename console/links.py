"""The link in an `assigned` or `reminder` notice: `/o/<token>`, signed with SECRET_KEY.

The token is bound to one order, round, staff member and purpose, and carries the offer's
deadline as the notice stated it. Whether it has expired is decided by the round as the
server records it (its outcome and its accept deadline, which moves later when the
assignee was told late), not by that copy. It is deterministic (no timestamp or nonce
inside), so a notice retried by Temporal renders the very same text. Single use is recorded
on the server (`ConsoleLinkUse`, keyed by the token's digest) when the link acts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from itsdangerous import BadSignature, URLSafeSerializer

from settings import settings

SALT = "o2o-order-link"
# Short codes keep the SMS short; the purpose names the notice the link came in.
PURPOSES = {"assigned": "a", "reminder": "r"}
_PURPOSE_OF = {code: name for name, code in PURPOSES.items()}


@dataclass(frozen=True)
class OrderLink:
    order_id: str
    round: int
    staff_id: int
    purpose: str  # "assigned" | "reminder"
    deadline: datetime | None  # the offer's accept deadline as the notice stated it


class TamperedLink(ValueError):
    """The token was not signed by this server (edited, truncated, or another key)."""


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(settings.SECRET_KEY, salt=SALT)


def make_token(
    *, order_id: str, round: int, staff_id: int, purpose: str, deadline: datetime | None
) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown link purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    expires = int(deadline.timestamp()) if deadline is not None else 0
    return str(_serializer().dumps([order_id, round, staff_id, PURPOSES[purpose], expires]))


def read_token(token: str) -> OrderLink:
    try:
        order_id, round_, staff_id, purpose, expires = _serializer().loads(token)
        return OrderLink(
            order_id=str(order_id),
            round=int(round_),
            staff_id=int(staff_id),
            purpose=_PURPOSE_OF[purpose],
            deadline=datetime.fromtimestamp(expires, UTC) if expires else None,
        )
    except (BadSignature, ValueError, TypeError, KeyError) as exc:
        raise TamperedLink(str(exc)) from exc


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def order_action_link(
    *, order_id: str, round: int, staff_id: int, purpose: str, deadline: str | None
) -> str:
    """The absolute `/o/<token>` URL for a notice; `deadline` as the notice's ISO text."""
    when = None
    if deadline:
        try:
            when = datetime.fromisoformat(deadline)
        except ValueError:
            when = None
    token = make_token(
        order_id=order_id, round=round, staff_id=staff_id, purpose=purpose, deadline=when
    )
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/o/{quote(token, safe='')}"
