"""Chinese and English for the console: messages are written in English in the templates
(`_("Accept")`) and looked up here for Chinese; placeholders use str.format names."""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("zh", "en")

ZH: dict[str, str] = {}  # filled below, by page


def translator(lang: str) -> Callable[..., str]:
    table = ZH if lang == "zh" else {}

    def _(message: str, /, **values: object) -> str:
        text = table.get(message, message)
        return text.format(**values) if values else text

    return _
