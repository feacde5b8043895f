"""The notice templates: every kind in both languages, the field contract, escaping, fallback."""

from __future__ import annotations

import jinja2
import pytest
from jinja2 import meta

from models.notifications import NoticeKind
from notify.templates import (
    FIELDS,
    LANGUAGES,
    PARTS,
    TEMPLATE_DIR,
    RenderError,
    order_link,
    render,
    template_names,
)
from settings import settings

LINK = "http://127.0.0.1:8000/api/v1/orders/A-1001"
CONTEXT: dict[str, object] = {
    "recipient_name": "张三",
    "order_id": "A-1001",
    "customer_name": "李四",
    "store_name": "北京一店",
    "category": "跟团游",
    "deadline": "2025-11-25T06:30:00+00:00",
    "timezone": "Asia/Shanghai",
    "timed_out_staff_name": "王五",
    "round": 2,
    "cancel_reason": "customer_cancelled",
    "link": LINK,
}


def fields_for(kind: str) -> dict[str, object]:
    """Exactly the documented fields of `kind` (plus the optional timezone)."""
    return {k: v for k, v in CONTEXT.items() if k in FIELDS[kind] or k == "timezone"}


def test_every_kind_has_every_part_in_every_language() -> None:
    assert set(FIELDS) == set(NoticeKind)
    for kind in NoticeKind:
        for language in LANGUAGES:
            for name in template_names(kind, language).values():
                assert (TEMPLATE_DIR / name).is_file(), name


@pytest.mark.parametrize("kind", list(NoticeKind))
def test_templates_use_exactly_the_documented_fields(kind: str) -> None:
    """FIELDS is the contract with the workflow: no template needs more, none is unused."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR))
    env.filters["when"] = str  # parsing checks that filters exist; their code is not run
    for language in LANGUAGES:
        used: set[str] = set()
        for name in template_names(kind, language).values():
            source = (TEMPLATE_DIR / name).read_text(encoding="utf-8")
            used |= meta.find_undeclared_variables(env.parse(source))
        used -= {"details", "button"}  # the shared macros (imported outside the blocks)
        assert used == FIELDS[kind], (kind, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(NoticeKind))
def test_renders_with_the_documented_fields(kind: str, language: str) -> None:
    rendered = render(kind, language, fields_for(kind))
    assert rendered.language == language
    for part in (rendered.subject, rendered.text, rendered.html, rendered.sms):
        assert "A-1001" in part
    assert LINK in rendered.text and LINK in rendered.sms
    assert f'href="{LINK}"' in rendered.html
    assert "\n" not in rendered.subject and "\n" not in rendered.sms
    assert len(rendered.sms) <= 160  # short: one or two segments
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert f"<title>{rendered.subject}</title>" in rendered.html
    assert "None" not in rendered.text


def test_languages_and_fallback() -> None:
    context = fields_for(NoticeKind.ASSIGNED)
    zh = render(NoticeKind.ASSIGNED, "zh", context)
    en = render(NoticeKind.ASSIGNED, "en", context)
    assert zh.subject.startswith("新订单") and '<html lang="zh-CN">' in zh.html
    assert en.subject.startswith("New order") and '<html lang="en">' in en.html
    assert render(NoticeKind.ASSIGNED, "en-US", context) == en
    assert render(NoticeKind.ASSIGNED, "fr", context) == zh
    assert render(NoticeKind.ASSIGNED, "", context) == zh


def test_deadline_is_shown_in_the_given_timezone() -> None:
    rendered = render(NoticeKind.ASSIGNED, "en", fields_for(NoticeKind.ASSIGNED))
    assert "2025-11-25 14:30 (UTC+08:00)" in rendered.subject
    assert "2025-11-25 14:30 (UTC+08:00)" in rendered.text
    assert "11-25 14:30" in rendered.sms
    utc = {k: v for k, v in fields_for(NoticeKind.ASSIGNED).items() if k != "timezone"}
    assert "2025-11-25 06:30 (UTC+00:00)" in render(NoticeKind.ASSIGNED, "en", utc).subject


def test_html_is_escaped_and_text_is_not() -> None:
    context = fields_for(NoticeKind.ASSIGNED) | {"customer_name": "<script>alert(1)</script>"}
    rendered = render(NoticeKind.ASSIGNED, "zh", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


def test_a_missing_field_is_an_error_naming_it() -> None:
    context = fields_for(NoticeKind.TIMED_OUT)
    del context["timed_out_staff_name"]
    with pytest.raises(RenderError, match="timed_out_staff_name"):
        render(NoticeKind.TIMED_OUT, "en", context)


def test_none_reads_as_a_dash_and_unknown_kinds_are_refused() -> None:
    rendered = render(
        NoticeKind.WAITING, "en", fields_for(NoticeKind.WAITING) | {"customer_name": None}
    )
    assert "customer: —" in rendered.text
    with pytest.raises(RenderError, match="unknown notice kind"):
        render("birthday", "en", CONTEXT)


def test_order_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "PUBLIC_BASE_URL", "https://o2o.example.com/")
    assert order_link("A-1001") == "https://o2o.example.com/api/v1/orders/A-1001"
    assert order_link("web 7/8") == "https://o2o.example.com/api/v1/orders/web%207%2F8"


def test_parts_are_the_four_files() -> None:
    assert PARTS == ("subject.txt", "text.txt", "body.html", "sms.txt")
