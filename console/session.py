"""The console's session: a signed cookie (itsdangerous), a CSRF token, and the person.

The cookie holds only ids (who, in which role and store, the CSRF token, the language);
it is HttpOnly, SameSite=Lax, and Secure when PUBLIC_BASE_URL is https. Every request
re-checks the person with `standing_lapse` — the check behind API tokens — so a session
lapses the moment its person is deactivated, moved or demoted.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import Principal, standing_lapse
from models import Role, Staff, StaffRole, Store, SubSite, SubSiteAdmin
from settings import settings

COOKIE = "o2o_console"
SALT = "o2o-console-session"
CSRF_FIELD = "csrf"


def _csrf() -> str:
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class ConsoleSession:
    csrf: str = field(default_factory=_csrf)
    staff_id: int | None = None
    role: str | None = None  # Role value: staff or store_manager
    store_id: int | None = None
    lang: str | None = None  # chosen on the page; else the person's setting
    # Signed in by an order link (which can be forwarded): acts only as themself, never
    # with a manager's, sub-site admin's or head office's scope, until they sign in by code.
    limited_to_self: bool = False


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.SECRET_KEY, salt=SALT)


def current(request: Request) -> ConsoleSession:
    """The request's session (a new anonymous one when the cookie is absent or invalid)."""
    cached: ConsoleSession | None = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    raw = request.cookies.get(COOKIE)
    session = ConsoleSession()
    fresh = True
    if raw:
        try:
            data = _serializer().loads(raw, max_age=settings.CONSOLE_SESSION_HOURS * 3600)
            session = ConsoleSession(**data)
            fresh = False
        except (BadSignature, TypeError):
            pass  # tampered, expired or an old shape: start over, signed out
    request.state.console_session = session
    request.state.console_session_dirty = fresh
    return session


def update(request: Request, **changes: Any) -> ConsoleSession:
    session = replace(current(request), **changes)
    request.state.console_session = session
    request.state.console_session_dirty = True
    return session


def sign_in(request: Request, staff: Staff, *, limited_to_self: bool = False) -> ConsoleSession:
    """A new session for `staff` (a new CSRF token too). A manager signing in by code runs
    their store; anyone signed in by an order link acts only as themself."""
    manager = staff.role == StaffRole.MANAGER and not limited_to_self
    role = Role.STORE_MANAGER if manager else Role.STAFF
    lang = current(request).lang
    session = ConsoleSession(
        staff_id=staff.id,
        role=role.value,
        store_id=staff.store_id,
        lang=lang,
        limited_to_self=limited_to_self,
    )
    request.state.console_session = session
    request.state.console_session_dirty = True
    return session


def sign_out(request: Request) -> None:
    update(request, staff_id=None, role=None, store_id=None, limited_to_self=False, csrf=_csrf())


def write_cookie(request: Request, response: Response) -> Response:
    """Set the cookie on `response` when the session is new or changed."""
    if getattr(request.state, "console_session_dirty", False):
        response.set_cookie(
            COOKIE,
            _serializer().dumps(asdict(current(request))),
            max_age=settings.CONSOLE_SESSION_HOURS * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.PUBLIC_BASE_URL.startswith("https://"),
            path="/",
        )
    return response


def csrf_ok(request: Request, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(sent, current(request).csrf)


@dataclass(frozen=True)
class Person:
    """Who is signed in, with the API principal their session stands for."""

    staff: Staff
    store: Store
    principal: Principal
    is_site_admin: bool = False  # listed as an admin of the store's sub-site (routes_site)
    # An admin of the head-office sub-site is head office in the console (routes_hq).
    is_head_office: bool = False

    @property
    def is_manager(self) -> bool:
        return self.principal.role is Role.STORE_MANAGER

    def acting_as(self, role: Role) -> Principal:
        """The principal of a wider role the person holds (their sub-site's admin, head
        office): the same name and staff id, that role's scope."""
        subsite_id = self.store.subsite_id if role is Role.SUBSITE_ADMIN else None
        return Principal(
            name=self.principal.name, role=role, staff_id=self.staff.id, subsite_id=subsite_id
        )

    @property
    def widest(self) -> Principal:
        """The widest principal the person holds: head office, else their sub-site's admin,
        else their session's own. Whether an object lies inside it is the API's one scope
        rule (services.scope.in_scope, through api.access), never decided here."""
        if self.is_head_office:
            return self.acting_as(Role.HEAD_OFFICE)
        if self.is_site_admin:
            return self.acting_as(Role.SUBSITE_ADMIN)
        return self.principal


async def person(db: AsyncSession, request: Request) -> Person | str | None:
    """The signed-in person; None when nobody is signed in; a string saying why the
    session lapsed (and it is signed out)."""
    session = current(request)
    if session.staff_id is None or session.role is None:
        return None
    role = Role(session.role)
    lapsed = await standing_lapse(
        db, staff_id=session.staff_id, role=role, store_id=session.store_id, subsite_id=None
    )
    staff = await db.get(Staff, session.staff_id)
    store = await db.get(Store, session.store_id) if session.store_id is not None else None
    if lapsed is not None or staff is None or store is None:
        sign_out(request)
        return lapsed or "the session's person or store no longer exists"
    principal = Principal(
        name=f"{staff.name} (staff {staff.id}, console)"[:100],
        role=role,
        staff_id=staff.id,
        store_id=staff.store_id,
        subsite_id=store.subsite_id,
    )
    admin = None
    if not session.limited_to_self:  # a link's session never holds a wider role
        admin = await db.get(SubSiteAdmin, (store.subsite_id, staff.id))
    site = await db.get(SubSite, store.subsite_id) if admin is not None else None
    return Person(
        staff=staff,
        store=store,
        principal=principal,
        is_site_admin=admin is not None,
        is_head_office=site is not None and site.is_head_office,
    )
