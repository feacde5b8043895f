"""Page dependencies: the signed-in person (or a redirect to sign in) and checked forms."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from api.deps import DB
from console import session
from console.session import Person


class SignInFirst(Exception):
    """Nobody is signed in (or the session lapsed): the page sends them to sign in."""

    def __init__(self, next_url: str, why: str = "") -> None:
        self.next_url, self.why = next_url, why


class PageRefused(Exception):
    """A signed-in person asked for a page that is not theirs: a page says so (not JSON)."""

    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail


class CsrfRefused(Exception):
    """A form came without this session's CSRF token."""


async def signed_in(request: Request, db: DB) -> Person:
    who = await session.person(db, request)
    if isinstance(who, Person):
        return who
    raise SignInFirst(request.url.path, why=who or "")


async def manager(person: Annotated[Person, Depends(signed_in)]) -> Person:
    if not person.is_manager:
        raise PageRefused(403, "this page is for store managers")
    return person


async def checked_form(request: Request) -> dict[str, str]:
    """The posted form, after its CSRF token is checked against the session's."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not session.csrf_ok(request, values.get(session.CSRF_FIELD)):
        raise CsrfRefused()
    return values


def sign_in_url(next_url: str) -> str:
    return f"/console/sign-in?next={quote(next_url, safe='/')}"


SignedIn = Annotated[Person, Depends(signed_in)]
Manager = Annotated[Person, Depends(manager)]
Form = Annotated[dict[str, str], Depends(checked_form)]
