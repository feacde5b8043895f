"""Rendering: the Jinja2 templates, the language of a page, and the answer for a refusal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from console import session
from console.i18n import LANGUAGES, translator
from console.session import Person
from models.base import utcnow
from services.errors import DomainError, Invalid

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
# Pages about one person's orders must not linger in shared caches or the back button.
PRIVATE = {"Cache-Control": "no-store"}


def language(request: Request, *, staff_language: str | None = None) -> str:
    """The page's language: chosen on the page (session), else the person's setting, else
    the browser's first preference we speak, else Chinese."""
    chosen = session.current(request).lang
    if chosen in LANGUAGES:
        return chosen
    if staff_language in LANGUAGES:
        return staff_language
    accept = request.headers.get("accept-language", "").lower()
    return "en" if accept.startswith("en") else "zh"


def _local(value: datetime | str | None, zone: str = "Asia/Shanghai", style: str = "short") -> str:
    """An instant (or its ISO text, as the JSON API gives it) in the store's local time."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    moment = value.astimezone(ZoneInfo(zone))
    return moment.strftime("%m-%d %H:%M" if style == "short" else "%Y-%m-%d %H:%M")


templates.env.filters["local"] = _local


def render(
    request: Request,
    name: str,
    *,
    person: Person | None = None,
    status: int = 200,
    staff_language: str | None = None,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    lang = language(
        request, staff_language=staff_language or (person.staff.language if person else None)
    )
    _: Callable[..., str] = translator(lang)

    def term(group: str, value: object) -> str:
        """A value of the domain (an event kind, a channel, a reason) in the page's
        language when the catalog names it (`group.value`), else as it is."""
        key = f"{group}.{value}"
        text = _(key)
        return str(value) if text == key else text

    values = {
        "_": _,
        "term": term,
        "lang": lang,
        "csrf": session.current(request).csrf,
        "person": person,
        "now": utcnow(),
        "zone": person.store.timezone if person else "Asia/Shanghai",
        "path": request.url.path,
        **context,
    }
    response = templates.TemplateResponse(
        request, name, values, status_code=status, headers={**PRIVATE, **(headers or {})}
    )
    session.write_cookie(request, response)
    return response


async def attempt(
    request: Request, person: Person, back: str, call: Callable[[], Awaitable[Any]]
) -> Response | None:
    """Run an API function for the person; its refusal becomes the refusal page, never a
    500 or a JSON body: an HTTP refusal, a body that does not validate, or a rule a service
    enforces (services.errors.DomainError, which the JSON API answers through its handler)."""
    try:
        await call()
    except (HTTPException, ValidationError, DomainError) as exc:
        status, detail = refusal_of(exc)
        return refused(request, status, detail, person=person, back=back)
    return None


async def attempt_then(
    request: Request,
    person: Person,
    back: str,
    call: Callable[[], Awaitable[Any]],
    then: str,
) -> Response:
    """`attempt`, and on success a redirect to `then` (a reload repeats nothing)."""
    return await attempt(request, person, back, call) or redirect(request, then)


def refusal_of(exc: HTTPException | ValidationError | DomainError) -> tuple[int, str]:
    """The status and message of a refusal, whichever layer made it."""
    if isinstance(exc, HTTPException):
        return exc.status_code, str(exc.detail)
    if isinstance(exc, DomainError):
        return exc.status, exc.message
    return 422, "; ".join(str(e["msg"]) for e in exc.errors())


def field_errors(
    exc: HTTPException | ValidationError | DomainError, fields: Collection[str]
) -> dict[str, str] | None:
    """A refusal as messages at the form's fields ("" for one about the form as a whole):
    a body that does not validate, a service's `Invalid`, or a refusal whose message begins
    with a field's name ("is_default: ..."), as the API's say. None: not about the form
    (a scope refusal, a missing object), for the refusal page."""
    found: list[tuple[str, str]] = []
    if isinstance(exc, ValidationError):
        for e in exc.errors():
            name = str(e["loc"][0]) if e["loc"] else ""
            found.append((name, str(e["msg"]).removeprefix("Value error, ")))
    elif isinstance(exc, Invalid):
        found = [(str(p.loc[-1]) if p.loc else "", p.msg) for p in exc.problems]
    else:
        status, text = refusal_of(exc)
        if status not in (409, 422):
            return None
        name, colon, rest = text.partition(": ")
        found = [(name, rest) if colon and name in fields else ("", text)]
    out: dict[str, str] = {}
    for name, message in found:
        name = name if name in fields else ""
        out[name] = f"{out[name]}; {message}" if name in out else message
    return out


def at_fields(
    request: Request,
    person: Person,
    exc: HTTPException | ValidationError | DomainError,
    fields: Collection[str],
    back: str,
) -> dict[str, str] | Response:
    """A form's refusal: its messages at the fields, or, when it is not about the form (a
    scope refusal, a missing object), the refusal page."""
    errors = field_errors(exc, fields)
    if errors is None:
        status, detail = refusal_of(exc)
        return refused(request, status, detail, person=person, back=back)
    return errors


async def undo(db: AsyncSession, person: Person, *rows: SQLModel) -> None:
    """Roll a refused change back and read the rows the page shows again as stored (the
    rollback expires them, and a template cannot load them lazily)."""
    await db.rollback()
    for row in (person.staff, person.store, *rows):
        await db.refresh(row)


def refused(
    request: Request, status: int, detail: str, *, person: Person | None = None, back: str = ""
) -> HTMLResponse:
    """A refusal as a page: the status, what was wrong, and where to go back to."""
    return render(request, "refused.html", person=person, status=status, detail=detail, back=back)


def redirect(request: Request, url: str) -> Response:
    return session.write_cookie(request, RedirectResponse(url, status_code=303))
