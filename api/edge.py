"""Rules every request meets before any route: one place, not a check per field.

- A body larger than `MAX_REQUEST_BODY_BYTES` answers 413 (by its Content-Length, or while
  it streams in), before anything is parsed.
- A string anywhere in the request (path, query, JSON body keys and values, form fields)
  that is not valid Unicode, or holds a NUL, answers 422 naming where. PostgreSQL cannot
  store NUL in text and a lone surrogate cannot be encoded: whatever passes here can be
  stored and served by the rest of the pipeline (an order accepted with a NUL in its
  category used to fail its first activity for ever).
- A 422 echoes at most a short prefix of the offending input (`short_errors`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.errors import DomainError, Invalid
from settings import settings

ECHO_PREFIX = 40  # characters of an input value a 422 repeats back

Loc = tuple[str | int, ...]


def _flaw(text: str) -> str | None:
    """Why `text` cannot be stored as PostgreSQL text, or None."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode (an unpaired surrogate)"
    return None


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    """Every string of a parsed JSON document (keys too), with where it stands."""
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield (*loc, key), key
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))


def unstorable(
    *, path: bytes, query: bytes, body: bytes, content_type: str
) -> list[dict[str, Any]]:
    """The request's strings that cannot be stored, as FastAPI-shaped errors (empty: fine)."""
    errors: list[dict[str, Any]] = []

    def check(loc: Loc, raw: bytes | str) -> None:
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            errors.append(_error(loc, "is not valid UTF-8"))
            return
        flaw = _flaw(text)
        if flaw:
            errors.append(_error(loc, flaw))

    check(("path",), unquote_to_bytes(path))
    for name, value in _form_pairs(query):
        check(("query", name.decode("utf-8", "replace")), name)
        check(("query", name.decode("utf-8", "replace")), value)
    if not body:
        return errors
    if content_type.startswith("application/x-www-form-urlencoded"):
        for name, value in _form_pairs(body):
            check(("body", name.decode("utf-8", "replace")), name)
            check(("body", name.decode("utf-8", "replace")), value)
        return errors
    if content_type.startswith("multipart/"):
        return errors  # files are bytes; their text fields are checked where they are read
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return [*errors, _error(("body",), "is not valid UTF-8")]
    try:
        document = json.loads(text)
    except ValueError:
        check(("body",), text)  # not JSON: FastAPI answers that; a NUL is refused here
        return errors
    for loc, string in _strings(document, ("body",)):
        check(loc, string)
    return errors


def _form_pairs(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """`a=1&b=%00` as undecoded byte pairs: the check decides about UTF-8, not the parser."""
    for part in raw.split(b"&"):
        if part:
            name, _, value = part.partition(b"=")
            yield (
                unquote_to_bytes(name.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )


def _error(loc: Loc, msg: str) -> dict[str, Any]:
    return {"loc": list(loc), "msg": f"this text {msg}", "type": "string_unstorable"}


class EdgeRules:
    """ASGI middleware: the body limit and the Unicode/NUL rule, for every route."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = settings.MAX_REQUEST_BODY_BYTES
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(limit)(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        errors = unstorable(
            path=raw_path,
            query=scope.get("query_string", b""),
            body=body,
            content_type=headers.get("content-type", "").lower(),
        )
        if errors:
            await JSONResponse({"detail": errors}, status_code=422)(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {
            "detail": f"the request body is larger than the limit of {limit} bytes"
            " (MAX_REQUEST_BODY_BYTES)"
        },
        status_code=413,
    )


def _short(value: Any) -> Any:
    """An input value cut to a short prefix: a 422 names what is wrong, it does not echo."""
    if isinstance(value, str):
        return value if len(value) <= ECHO_PREFIX else value[:ECHO_PREFIX] + "…"
    if isinstance(value, dict | list):
        text = json.dumps(jsonable_encoder(value), ensure_ascii=False)
        return value if len(text) <= ECHO_PREFIX else text[:ECHO_PREFIX] + "…"
    return value


def short_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors with every `input` cut to its prefix."""
    return [
        {**error, "input": _short(error["input"])} if "input" in error else error
        for error in jsonable_encoder(errors)
    ]


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": short_errors(exc.errors())}, status_code=422)


async def domain_refused(request: Request, exc: Exception) -> JSONResponse:
    """A service's refusal (`services.errors`) as its 4xx: 422s name each field like
    FastAPI's own validation errors, the others say why in one sentence."""
    assert isinstance(exc, DomainError)
    if isinstance(exc, Invalid):
        detail: Any = [
            {"loc": list(p.loc), "msg": p.msg, "type": "value_error"} for p in exc.problems
        ]
    else:
        detail = exc.message
    return JSONResponse({"detail": detail}, status_code=exc.status)


def install(app: FastAPI) -> None:
    """Put the edge rules and the error answers on `app`."""
    app.add_middleware(EdgeRules)
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_exception_handler(DomainError, domain_refused)


_KNOWN_QUERY: dict[int, frozenset[str]] = {}


def _query_names(route: APIRoute) -> frozenset[str]:
    names = _KNOWN_QUERY.get(id(route))
    if names is None:
        names = _KNOWN_QUERY[id(route)] = frozenset(_walk(route.dependant))
    return names


def _walk(dependant: Dependant) -> list[str]:
    """The query parameter names a route and all its dependencies read."""
    names = [p.alias for p in dependant.query_params]
    for sub in dependant.dependencies:
        names.extend(_walk(sub))
    return names


async def known_query_only(request: Request) -> None:
    """A dependency for every API route: a query parameter the route does not take is a
    422 naming it (`?statuss=escalated` used to list everything, unfiltered)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    known = _query_names(route)
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        takes = ", ".join(sorted(known)) or "no query parameters"
        raise RequestValidationError(
            [
                {
                    "loc": ("query", name),
                    "msg": f"unknown query parameter {name!r}; this endpoint takes {takes}",
                    "type": "extra_forbidden",
                    "input": _short(request.query_params[name]),
                }
                for name in unknown
            ]
        )
