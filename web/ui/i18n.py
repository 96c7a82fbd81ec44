"""Traditional Chinese (default) and English, chosen per user.

Catalogs are kept as .po files; the binary .mo files are compiled from them
when the app starts (and whenever a .po is newer), never committed.
"""

from __future__ import annotations

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from flask import Flask, request
from flask_babel import Babel, get_locale
from flask_login import current_user

from engine.persistence.models import DEFAULT_LOCALE, DEFAULT_TIMEZONE
from engine.services.people.users import LOCALES

TRANSLATIONS = Path(__file__).resolve().parents[1] / "translations"


def compile_catalogs(directory: Path = TRANSLATIONS) -> None:
    for po_path in directory.glob("*/LC_MESSAGES/messages.po"):
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file, locale=po_path.parts[-3])
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)


def select_locale() -> str:
    if current_user and current_user.is_authenticated:
        return str(current_user.actor.locale)
    return request.accept_languages.best_match(LOCALES) or DEFAULT_LOCALE


def select_timezone() -> str:
    if current_user and current_user.is_authenticated:
        return str(current_user.actor.timezone)
    return DEFAULT_TIMEZONE


def init_i18n(app: Flask) -> None:
    compile_catalogs()
    app.config.setdefault("BABEL_DEFAULT_LOCALE", DEFAULT_LOCALE)
    app.config.setdefault("BABEL_DEFAULT_TIMEZONE", DEFAULT_TIMEZONE)
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.add_template_global(get_locale, "current_locale")
