"""Render a notice from the template files in `notify/templates/<language>/<kind>/`.

Each kind has, per language, `subject.txt`, `text.txt`, `body.html` and `sms.txt`. They are
files (not strings in code) so wording can be changed or translated without touching Python.
Undefined fields are errors (StrictUndefined): a notice with a blank where the order id
should be is worse than a failed render that shows up in the notification log. HTML is
autoescaped, since customer names come from the public web site.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2

from models.notifications import NoticeKind
from settings import settings

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

# The fields each kind's templates use: the contract between the workflow and the wording.
# `order_id`, `round`, `link` and `recipient_name` are filled in by the notice activity.
_COMMON = frozenset({"recipient_name", "order_id", "customer_name", "store_name", "link"})
FIELDS: Mapping[str, frozenset[str]] = {
    NoticeKind.ASSIGNED: _COMMON | {"category", "deadline"},
    NoticeKind.REMINDER: _COMMON | {"deadline"},
    NoticeKind.TIMED_OUT: _COMMON | {"timed_out_staff_name", "round"},
    NoticeKind.ESCALATED: _COMMON | {"round"},
    NoticeKind.WAITING: _COMMON | {"category"},
    NoticeKind.CANCELLED: _COMMON | {"cancel_reason"},
}
PARTS = ("subject.txt", "text.txt", "body.html", "sms.txt")


class RenderError(ValueError):
    """A notice could not be rendered: unknown kind, or a field its templates need is missing."""


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str
    sms: str
    language: str = DEFAULT_LANGUAGE  # the language actually used, after the fallback


def template_language(language: str | None) -> str:
    """The template language for a staff member's setting: `en`, `en-US` → en; unknown → zh."""
    base = re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def order_link(order_id: str) -> str:
    """Where a recipient acts on the order (the API's order resource)."""
    return f"{settings.PUBLIC_BASE_URL.rstrip('/')}/api/v1/orders/{quote(order_id, safe='')}"


@jinja2.pass_context
def _when(ctx: jinja2.runtime.Context, value: object, style: str = "long") -> str:
    """An ISO instant as people read it, in the context's `timezone` (IANA) when one is given.

    Anything that is not an ISO timestamp is shown as it is: a readable notice beats none.
    """
    text = str(value)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    zone = ctx.get("timezone")
    if zone and moment.tzinfo is not None:
        with contextlib.suppress(ZoneInfoNotFoundError, ValueError):  # unknown zone: as given
            moment = moment.astimezone(ZoneInfo(str(zone)))
    if style == "short":
        return moment.strftime("%m-%d %H:%M")
    shown = moment.strftime("%Y-%m-%d %H:%M")
    offset = moment.strftime("%z")  # "" for a naive instant
    if offset:
        shown += f" (UTC{offset[:3]}:{offset[3:]})"
    return shown


def _finalize(value: object) -> object:
    # A field given as None (e.g. no customer name) reads as a dash, not as "None".
    return "—" if value is None else value


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def template_names(kind: str, language: str) -> dict[str, str]:
    """The four template files of one kind and language (relative to TEMPLATE_DIR)."""
    return {part: f"{language}/{kind}/{part}" for part in PARTS}


def render(kind: str, language: str, context: Mapping[str, object]) -> Rendered:
    """Subject, plain text, HTML and SMS text of one notice, in `language` (zh if unknown)."""
    if kind not in FIELDS:
        raise RenderError(f"unknown notice kind {kind!r}; known: {', '.join(FIELDS)}")
    lang = template_language(language)
    names = template_names(kind, lang)
    env = _environment()
    values = dict(context)
    try:
        # One line, whatever the template's whitespace: it is a header.
        subject = " ".join(env.get_template(names["subject.txt"]).render(values).split())
        text = env.get_template(names["text.txt"]).render(values).strip() + "\n"
        html = env.get_template(names["body.html"]).render({**values, "subject": subject})
        sms = " ".join(env.get_template(names["sms.txt"]).render(values).split())
    except jinja2.UndefinedError as exc:
        raise RenderError(f"notice {kind}/{lang}: {exc.message}") from exc
    return Rendered(subject=subject, text=text, html=html, sms=sms, language=lang)
