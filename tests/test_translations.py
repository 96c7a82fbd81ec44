"""Every text the pages show has a zh-Hant translation (the default language)."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_python
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

WEB = Path(__file__).resolve().parents[1] / "web"
KEYWORDS = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None}


def msgids() -> set[str]:
    found: set[object] = set()
    for module in (WEB / "ui").glob("*.py"):
        with module.open("rb") as source:
            found |= {m for _, _, m, _ in extract_python(source, KEYWORDS, [], {})}
    for template in (WEB / "templates").rglob("*.html"):
        with template.open("rb") as source:
            found |= {m for _, _, m, _ in babel_extract(source, KEYWORDS, [], {})}
    # A call with arguments besides the text comes as a tuple: the text is first.
    texts = {m[0] if isinstance(m, tuple) else m for m in found}
    return {m for m in texts if isinstance(m, str) and m}


def test_every_text_has_a_zh_hant_translation():
    with (WEB / "translations" / "zh_Hant_TW" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    texts = msgids()
    assert len(texts) > 300
    missing = sorted(m for m in texts if not (catalog.get(m) and catalog.get(m).string))
    assert missing == []
