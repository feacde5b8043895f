"""Chinese and English for the console. Messages are written in English in the templates
(`_("Accept")`) and looked up in `locales/zh.json` for Chinese — a file, so wording can be
changed without touching Python; placeholders use str.format names (`{id}`)."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

LANGUAGES = ("zh", "en")
LOCALES = Path(__file__).resolve().parent / "locales"


@cache
def catalog(lang: str) -> dict[str, str]:
    path = LOCALES / f"{lang}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def translator(lang: str) -> Callable[..., str]:
    table = catalog(lang)

    def _(message: str, /, **values: object) -> str:
        text = table.get(message, message)
        return text.format(**values) if values else text

    return _
