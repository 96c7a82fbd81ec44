"""The text of a mail: bytes in a declared charset, HTML turned to text, and a
reply without the quoted mail and the signature under it.

HTML is turned to text with the standard library's `html.parser` rather than
html2text or BeautifulSoup: a description needs the words and the line breaks,
not Markdown or a document tree, and a few dozen lines keep engine/domain free
of another dependency.  Nothing here raises on what a sender can put in a mail.
"""

from __future__ import annotations

import codecs
import contextlib
import re
from html.parser import HTMLParser

from engine.domain.text import clean_text

# Charsets senders declare that Python knows under a wider name: GB2312 mail is in
# practice GBK, a subset of GB18030; Taiwanese "big5" is usually Microsoft's cp950.
CHARSET_ALIASES = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "euc-cn": "gb18030",
    "big5": "cp950",
    "x-big5": "cp950",
    "ks_c_5601-1987": "cp949",
}
# Bytes declared as ASCII (or not declared) are often UTF-8 anyway.
_ASCII_NAMES = frozenset({"", "us-ascii", "ascii", "ansi_x3.4-1968"})


def decode_bytes(data: bytes, charset: str | None) -> str:
    """`data` as text: the declared charset (widened as above), UTF-8 for an
    unknown one; undecodable bytes become U+FFFD.  NUL and lone surrogates go."""
    name = (charset or "").strip().strip('"').lower()
    if name in _ASCII_NAMES:
        try:
            return clean_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            return clean_text(data.decode("cp1252", errors="replace"))
    name = CHARSET_ALIASES.get(name, name)
    try:
        codecs.lookup(name)
    except (LookupError, ValueError):
        name = "utf-8"
    try:
        return clean_text(data.decode(name, errors="replace"))
    except (LookupError, ValueError, TypeError):  # a codec that is no text codec
        return clean_text(data.decode("utf-8", errors="replace"))


# -- HTML to text --------------------------------------------------------------

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)
_HIDDEN = frozenset({"head", "script", "style", "title", "template", "noscript"})


class _TextOf(HTMLParser):
    """Collects the visible text; lines inside <blockquote> get a "> " per level
    so that the reply rules below leave them out like a plain-text quote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.line: list[str] = []
        self.line_depth = 0
        self.quote_depth = 0
        self.hidden = 0
        self.pre = 0

    def _break(self) -> None:
        text = "".join(self.line)
        text = text if self.pre else re.sub(r"[ \t\r\n\f]+", " ", text).strip()
        self.lines.append("> " * self.line_depth + text if text else "")
        self.line = []
        self.line_depth = self.quote_depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self.quote_depth += 1
                self.line_depth = self.quote_depth
            elif tag == "pre":
                self.pre += 1
            elif tag == "li":
                self.line.append("- ")
        elif tag in ("td", "th"):
            self.line.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._break()
            if tag == "blockquote":
                self.quote_depth = max(0, self.quote_depth - 1)
                self.line_depth = self.quote_depth
            elif tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            head, *rest = data.split("\n")
            self.line.append(head)
            for part in rest:
                self._break()
                self.line.append(part)
        else:
            self.line.append(data)


def html_to_text(html: str) -> str:
    parser = _TextOf()
    # html.parser copes with nearly anything; a mail never fails on what it does not.
    with contextlib.suppress(Exception):
        parser.feed(html)
        parser.close()
    parser._break()
    return clean_text(_squeeze_blank_lines("\n".join(parser.lines)))


def _squeeze_blank_lines(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# -- replies ---------------------------------------------------------------------

# A line that starts what the mail program quoted or appended under the reply.
_QUOTE_HEADERS = (
    re.compile(r"^-{2,}\s*(original message|forwarded message)\s*-{2,}", re.IGNORECASE),
    re.compile(r"^-{2,}\s*(原始郵件|原始邮件|原始訊息|轉寄的郵件)\s*-{2,}"),
    re.compile(r"^_{10,}\s*$"),  # Outlook's rule above "From: ... Sent: ..."
    re.compile(r"^在.{0,200}(寫道|写道)\s*[:：]?\s*$"),
    re.compile(r"^於.{0,200}(寫道|写道)\s*[:：]?\s*$"),
    re.compile(r"^Le .{0,200}a écrit\s*:\s*$"),
    re.compile(r"^Am .{0,200}schrieb.{0,200}:\s*$"),
)
_ON_WROTE_START = re.compile(r"^On\s.{0,300}$")
_WROTE_END = re.compile(r"wrote:\s*$")
_HEADER_BLOCK = re.compile(r"^(From|寄件者|发件人|寄件人)\s*[:：]", re.IGNORECASE)
_HEADER_NEXT = re.compile(
    r"^(Sent|Date|To|Subject|寄件日期|傳送時間|发送时间|日期|收件者|收件人|主旨|主题)\s*[:：]",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^-- ?$")


def reply_part(text: str) -> str:
    """What the sender wrote: up to the first quote header ("On ... wrote:",
    "-----Original Message-----", "在 ... 寫道：", an Outlook header block) or the
    signature separator "-- ", without lines quoted with ">".  The whole text when
    nothing is left."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if _SIGNATURE.match(line.rstrip("\r")) or _starts_quoted_part(lines, index, stripped):
            break
        if stripped.startswith(">"):
            continue
        kept.append(line.rstrip())
    reply = _squeeze_blank_lines("\n".join(kept))
    return clean_text(reply or text.strip())


def _starts_quoted_part(lines: list[str], index: int, stripped: str) -> bool:
    if any(pattern.match(stripped) for pattern in _QUOTE_HEADERS):
        return True
    if _ON_WROTE_START.match(stripped):
        # "On Mon, 1 Dec 2026 at 10:00, Someone <a@b.example> wrote:" may be wrapped
        # over up to three lines; the last one ends with "wrote:".
        return any(_WROTE_END.search(line) for line in lines[index : index + 3])
    if _HEADER_BLOCK.match(stripped):
        following = [line.strip() for line in lines[index + 1 : index + 4]]
        return any(_HEADER_NEXT.match(line) for line in following)
    return False
