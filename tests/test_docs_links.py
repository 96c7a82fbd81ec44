"""The project carries its own documentation: the README and docs/*.md link only inside
the repository (issue 10, item 8: the README pointed at a contract outside it).

A link is what a Markdown reader follows: `[text](target)`, `![alt](target)`,
`[name]: target`, `<scheme://…>` and a bare `http(s)://…` in the prose. Text in code
(fenced blocks and `inline code`) is an example to type, not a link. Web addresses may
only be loopback or the reserved example names; every relative link must name a file of
the repository, and its `#anchor` a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "DEVELOPERS.md", *(ROOT / "docs").glob("*.md")])
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
# RFC 2606 / 6761 names that never belong to anyone.
PLACEHOLDER = re.compile(r"(^|\.)(example\.(com|org|net)|example|test|invalid|localhost)$")

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
INLINE_CODE = re.compile(r"(`+)(?!`).+?(?<!`)\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
AUTOLINK = re.compile(r"<([a-zA-Z][a-zA-Z0-9+.-]*:[^>\s]+)>")
BARE_URL = re.compile(r"(?<![(<\w])(https?://[^\s)<>\]]+)")


def prose(text: str) -> str:
    """The text a reader sees as text: code blocks and code spans left out."""
    return INLINE_CODE.sub(" ", FENCE.sub(" ", text))


def links(text: str) -> list[str]:
    visible = prose(text)
    found = INLINE_LINK.findall(visible) + REFERENCE.findall(visible)
    found += AUTOLINK.findall(visible)
    bare = BARE_URL.findall(INLINE_LINK.sub(" ", AUTOLINK.sub(" ", visible)))
    # A sentence's full stop or comma after an address is not part of it.
    return found + [url.rstrip(".,;:!?'\"") for url in bare]


def slug(heading: str) -> str:
    """The anchor a heading gets on GitHub (and in most Markdown renderers)."""
    text = re.sub(r"[`*_]|<[^>]+>", "", heading.strip().lower())
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    result = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        base = slug(heading.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def problem(document: Path, target: str) -> str | None:
    """Why this link leaves the repository or leads nowhere; None when it is fine."""
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        host = (parts.hostname or "").lower()
        if host in LOOPBACK or PLACEHOLDER.search(host):
            return None
        return "a link outside the repository"
    if parts.scheme or target.startswith("//"):
        return f"a {parts.scheme or 'network'} link"
    if not parts.path:  # "#anchor" in the same file
        if parts.fragment and unquote(parts.fragment) not in anchors(document):
            return "no such heading here"
        return None
    resolved = (document.parent / unquote(parts.path)).resolve()
    if not resolved.is_relative_to(ROOT):
        return "a file outside the repository"
    if not resolved.exists():
        return "no such file"
    fragment = unquote(parts.fragment)
    if fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
        return f"no heading #{parts.fragment} in {resolved.relative_to(ROOT)}"
    return None


def test_the_link_finder_finds_links_and_skips_code() -> None:
    sample = (
        "See [the guide](docs/api.md), ![a picture](docs/process.png), <https://a.org/x>\n"
        "and https://b.org/y, but not `https://c.org/z` nor\n"
        "```sh\ncurl https://d.org/w\n```\n[ref]: ../outside.md\n"
    )
    assert links(sample) == [
        "docs/api.md", "docs/process.png", "../outside.md", "https://a.org/x", "https://b.org/y",
    ]
    readme = ROOT / "README.md"
    assert problem(readme, "https://a.org/x") == "a link outside the repository"
    assert problem(readme, "../shared/process/contract.md") == "a file outside the repository"
    assert problem(readme, "docs/no-such.md") == "no such file"
    assert problem(readme, "docs/process.md#no-such-heading") is not None
    assert problem(readme, "http://127.0.0.1:8000/api/docs") is None
    assert problem(readme, "https://itsm.example.com/login") is None
    assert problem(readme, "mailto:desk@corp.tw") == "a mailto link"
    assert slug("Health, metrics and logs") == "health-metrics-and-logs"
    assert slug("`/healthz`") == "healthz"
    assert slug("Mail: your own SMTP and IMAP servers") == "mail-your-own-smtp-and-imap-servers"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_documents_link_only_inside_the_repository(document: Path) -> None:
    text = document.read_text(encoding="utf-8")
    broken = [
        f"{target}: {why}" for target in links(text) if (why := problem(document, target))
    ]
    assert broken == []


def test_the_readme_leads_to_the_projects_own_documentation() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = set(links(readme))
    # The mail settings lead on to the deployment guide's part on mail.
    assert {"docs/process.md", "docs/api.md", "docs/deployment.md#mail-in"} <= targets
    for name in ("process.md", "api.md"):
        assert (ROOT / "docs" / name).stat().st_size > 4000
    # Nothing refers readers to a document the repository does not hold.
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        assert "shared/process" not in text and "contract.md" not in text, document


def test_the_api_guide_names_every_group_of_endpoints() -> None:
    """Each first path segment of the API's routes is covered by docs/api.md."""
    guide = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    sources = (ROOT / "web" / "api").glob("*.py")
    routes = {
        match
        for source in sources
        for match in re.findall(
            r'api_blueprint\.(?:get|post|put|patch|delete|route)\(\s*"(/[^"]*)"',
            source.read_text(encoding="utf-8"),
        )
    }
    groups = {re.match(r"/([a-z-]+)", route).group(1) for route in routes}  # type: ignore[union-attr]
    assert len(groups) >= 12
    missing = sorted(g for g in groups if f"/{g}" not in guide)
    assert missing == []
