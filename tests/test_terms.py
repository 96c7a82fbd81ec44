"""One term for the service desk in Traditional Chinese: 服務臺 (the Ministry of Education's
standard form, as the catalog writes it everywhere), never the variant 服務台."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANT = "服務台"
TERM = "服務臺"
# Everything people read: catalogs, templates, pages' code, the processes' names, docs.
PATTERNS = (
    "web/translations/**/*.po",
    "web/templates/**/*.html",
    "web/**/*.py",
    "engine/**/*.py",
    "bpmn/**/*.bpmn",
    "docs/**/*.md",
    "*.md",
)


def texts() -> dict[Path, str]:
    found = {}
    for pattern in PATTERNS:
        for path in ROOT.glob(pattern):
            if path.is_file():
                found[path] = path.read_text(encoding="utf-8")
    return found


def test_the_files_are_found() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in texts()}
    assert "web/translations/zh_Hant_TW/LC_MESSAGES/messages.po" in names
    assert "bpmn/incident_management.bpmn" in names and "README.md" in names
    assert any(name.startswith("web/templates/") for name in names)


def test_only_one_term_for_the_service_desk() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{number}"
        for path, text in texts().items()
        for number, line in enumerate(text.splitlines(), 1)
        if VARIANT in line
    ]
    assert offending == []


def test_the_catalog_uses_the_term() -> None:
    catalog = ROOT / "web/translations/zh_Hant_TW/LC_MESSAGES/messages.po"
    assert catalog.read_text(encoding="utf-8").count(TERM) >= 5
