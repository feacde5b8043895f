"""Signing in: phone number → a 6-digit code by SMS → a session."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import DB
from api.geo import visitor_ip
from console import session
from console.auth import Form
from console.codes import CodeRefused, check_code, request_code
from console.web import redirect, render

router = APIRouter(prefix="/console", include_in_schema=False)


def _next(url: str | None) -> str:
    return url if url and url.startswith("/") and not url.startswith("//") else "/console"


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(
        request,
        "sign_in.html",
        next=_next(request.query_params.get("next")),
        why=request.query_params.get("why", ""),
    )


@router.post("/sign-in")
async def ask_for_code(request: Request, db: DB, form: Form) -> Response:
    nxt = _next(form.get("next"))
    try:
        sent = await request_code(
            db, raw_phone=form.get("phone", ""), client_ip=visitor_ip(request)
        )
    except CodeRefused as exc:
        return render(
            request,
            "sign_in.html",
            status=exc.status,
            error=exc.reason,
            next=nxt,
            phone=form.get("phone", ""),
        )
    return render(request, "sign_in_code.html", phone=sent.phone, next=nxt)


@router.post("/sign-in/code")
async def enter_code(request: Request, db: DB, form: Form) -> Response:
    nxt = _next(form.get("next"))
    phone = form.get("phone", "")
    try:
        staff = await check_code(db, raw_phone=phone, code=form.get("code", ""))
    except CodeRefused as exc:
        return render(
            request, "sign_in_code.html", status=exc.status, error=exc.reason, phone=phone, next=nxt
        )
    session.sign_in(request, staff)
    if nxt == "/console":
        nxt = "/console/board" if staff.role == "manager" else "/console/me"
    return redirect(request, nxt)
