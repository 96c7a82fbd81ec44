"""A received mail, read from its raw bytes: who sent it, what it answers, whether a
program sent it, its text and its attachments.

Parsed with the standard library's `email` package and its default policy.  A
sender controls every byte, so nothing here raises: a header that the modern
header classes cannot parse is read raw, a part that cannot be decoded gives
what could be read (U+FFFD for the rest), and malformed MIME is read as far as
the parser got (its defects are listed).
"""

from __future__ import annotations

import base64
import contextlib
import email.utils
import quopri
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import PurePosixPath, PureWindowsPath

from engine.domain.mail_text import decode_bytes, html_to_text, reply_part
from engine.domain.text import clean_text

# Precedence values of bulk mail and auto-replies (RFC 3834 and common practice).
BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply"})
INCIDENT_TAG = re.compile(r"\[\s*(INC-\d{1,12})\s*\]", re.IGNORECASE)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,900}>")
_ADDRESS = re.compile(r"[^@\s<>(),;:\"\[\]\\]{1,64}@[A-Za-z0-9.\-\[\]:]{1,253}")
MAX_PARTS = 500  # a mail of thousands of tiny parts is an attack, not a report
MAX_DEPTH = 20
FILENAME_LIMIT = 255
ID_LIMIT = 250  # the message-id columns


@dataclass(frozen=True)
class MailAttachment:
    filename: str
    content_type: str  # as declared by the sender
    data: bytes


@dataclass(frozen=True)
class ParsedMail:
    from_address: str | None  # lower case; None: no usable From
    from_name: str
    subject: str
    message_id: str | None  # "<...>"
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    auto_submitted: str | None  # the keyword, lower case; None when absent
    precedence: str | None
    authentication_results: tuple[str, ...]
    text: str  # the text body (HTML turned to text)
    attachments: tuple[MailAttachment, ...] = ()
    defects: tuple[str, ...] = field(default=())

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """The message ids this mail answers, nearest first."""
        seen: dict[str, None] = {}
        for value in (*self.in_reply_to, *reversed(self.references)):
            seen.setdefault(value, None)
        return tuple(seen)

    @property
    def is_automatic(self) -> bool:
        return self.auto_submitted not in (None, "no")

    @property
    def is_bulk(self) -> bool:
        return self.precedence in BULK_PRECEDENCE

    @property
    def incident_number(self) -> str | None:
        """The first `[INC-000123]` in the subject, upper case."""
        match = INCIDENT_TAG.search(self.subject)
        return match.group(1).upper() if match else None

    @property
    def reply_text(self) -> str:
        return reply_part(self.text)

    def dmarc_failed(self, authserv_id: str) -> bool:
        """DMARC failed according to an Authentication-Results header added by
        `authserv_id` (our own receiving server).  Headers from anyone else are
        the sender's to forge, so they count for nothing."""
        wanted = authserv_id.strip().lower()
        if not wanted:
            return False
        for header in self.authentication_results:
            server, results = _authentication_results(header)
            if server == wanted and results.get("dmarc") == "fail":
                return True
        return False


def _authentication_results(value: str) -> tuple[str, dict[str, str]]:
    """RFC 8601: `authserv-id [version] ; method=result ... ; ...` (comments dropped)."""
    text = re.sub(r"\([^()]*\)", " ", value)
    first, *rest = text.split(";")
    words = first.split()
    server = words[0].lower() if words else ""
    results: dict[str, str] = {}
    for item in rest:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)\s*=\s*([A-Za-z0-9_-]+)", item)
        if match:
            results.setdefault(match.group(1).lower(), match.group(2).lower())
    return server, results


def parse_mail(raw: bytes) -> ParsedMail:
    try:
        message = BytesParser(policy=default_policy).parsebytes(raw)
    except Exception:  # the parser is lenient; this is for what it is not
        return _unreadable()
    headers = _Headers(message)
    body = _Body()
    try:
        body.walk(message, 0)
    except Exception:
        body.defects.append("the MIME structure could not be read whole")
    name, address = _sender(headers.text("From"))
    return ParsedMail(
        from_address=address,
        from_name=name,
        subject=" ".join(headers.text("Subject").split()),
        message_id=_first_id(headers.text("Message-ID")),
        in_reply_to=_ids(headers.text("In-Reply-To")),
        references=_ids(" ".join(headers.all_text("References"))),
        auto_submitted=_keyword(headers.text("Auto-Submitted")),
        precedence=_keyword(headers.text("Precedence")),
        authentication_results=tuple(headers.all_text("Authentication-Results")),
        text=body.text(),
        attachments=tuple(body.attachments),
        defects=tuple(_defects(message) + body.defects),
    )


def _unreadable() -> ParsedMail:
    return ParsedMail(None, "", "", None, (), (), None, None, (), "", (), ("unreadable",))


class _Headers:
    """Header values as text: the policy's parsed value when it can be had, else
    the raw value with its encoded words decoded by hand."""

    def __init__(self, message: Message) -> None:
        self.message = message
        try:
            self.raw = [(str(k).lower(), str(v)) for k, v in message.raw_items()]
        except Exception:
            self.raw = []

    def all_text(self, name: str) -> list[str]:
        wanted = name.lower()
        return [_decoded(value) for key, value in self.raw if key == wanted]

    def text(self, name: str) -> str:
        values = self.all_text(name)
        return values[0] if values else ""


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _decoded(raw: str) -> str:
    """A raw header value as text: unfolded, RFC 2047 encoded words decoded in their
    charsets (by the rules above), raw 8-bit bytes read as UTF-8."""
    text = re.sub(r"\r?\n[ \t]", " ", raw).strip()
    with contextlib.suppress(UnicodeError):  # raw 8-bit bytes come as surrogate escapes
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    text = re.sub(r"(\?=)\s+(=\?)", r"\1\2", text)  # space between encoded words goes
    return clean_text(_ENCODED_WORD.sub(_decoded_word, text))


def _decoded_word(match: re.Match[str]) -> str:
    charset, encoding, data = match.groups()
    try:
        if encoding in "bB":
            chunk = base64.b64decode(data + "=" * (-len(data) % 4))
        else:
            chunk = quopri.decodestring(data.encode("ascii", "replace"), header=True)
    except Exception:
        return match.group(0)
    return decode_bytes(chunk, charset.split("*", 1)[0])


def _sender(value: str) -> tuple[str, str | None]:
    try:
        pairs = email.utils.getaddresses([value])
    except Exception:
        pairs = []
    for name, address in pairs:
        address = address.strip().lower()
        if _ADDRESS.fullmatch(address):
            return clean_text(name.strip())[:200], address[:254]
    match = _ADDRESS.search(value)
    if match:
        return "", match.group(0).lower()[:254]
    return "", None


def _ids(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(found[:ID_LIMIT] for found in _MESSAGE_ID.findall(value)))


def _first_id(value: str) -> str | None:
    found = _ids(value)
    if found:
        return found[0]
    token = value.strip()
    return f"<{token[: ID_LIMIT - 2]}>" if token and " " not in token else None


def _keyword(value: str) -> str | None:
    word = value.split(";")[0].strip().lower()
    return word or None


def _defects(message: Message) -> list[str]:
    try:
        return [type(defect).__name__ for defect in message.defects]
    except Exception:
        return []


class _Body:
    """The first text/plain part (else the first text/html, as text) that is not
    an attachment, and every attachment, walking at most MAX_PARTS parts."""

    def __init__(self) -> None:
        self.plain: str | None = None
        self.html: str | None = None
        self.attachments: list[MailAttachment] = []
        self.defects: list[str] = []
        self.parts = 0

    def text(self) -> str:
        if self.plain is not None and self.plain.strip():
            return self.plain.strip()
        if self.html is not None:
            return html_to_text(self.html)
        return (self.plain or "").strip()

    def walk(self, part: Message, depth: int) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS or depth > MAX_DEPTH:
            if "too many MIME parts" not in self.defects:
                self.defects.append("too many MIME parts")
            return
        content_type = _content_type(part)
        filename = _filename(part)
        disposition = _disposition(part)
        if content_type == "message/rfc822" or (
            filename and not content_type.startswith("multipart/")
        ):
            self._attach(part, filename or "message.eml", content_type)
            return
        if part.is_multipart():
            payload = part.get_payload()
            for inner in payload if isinstance(payload, list) else []:
                if isinstance(inner, Message):
                    self.walk(inner, depth + 1)
            return
        if content_type.startswith("multipart/"):
            self._unbounded(part, depth)
            return
        if disposition == "attachment":
            self._attach(part, _default_name(content_type), content_type)
        elif content_type == "text/plain" and self.plain is None:
            self.plain = _part_text(part)
        elif content_type == "text/html" and self.html is None:
            self.html = _part_text(part)
        elif not content_type.startswith("text/"):
            self._attach(part, _default_name(content_type), content_type)

    def _unbounded(self, part: Message, depth: int) -> None:
        """A multipart whose declared boundary never occurs: read it again with the
        boundary its first "--" line uses, else keep its text as it is."""
        raw = _part_bytes(part)
        found = re.search(rb"^--([^\s]{1,200})\s*$", raw, re.MULTILINE)
        if found and depth < MAX_DEPTH:
            head = b'Content-Type: multipart/mixed; boundary="' + found.group(1) + b'"\r\n\r\n'
            again = BytesParser(policy=default_policy).parsebytes(head + raw)
            if again.is_multipart():
                self.walk(again, depth + 1)
                return
        if self.plain is None:
            self.plain = decode_bytes(raw, None).replace("\r\n", "\n")

    def _attach(self, part: Message, filename: str, content_type: str) -> None:
        data = _part_bytes(part)
        if data:
            self.attachments.append(MailAttachment(filename, content_type, data))


def _content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:
        return "application/octet-stream"


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:
        return None


def _filename(part: Message) -> str:
    """The declared name without any folder, cleaned, or "" when none."""
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = _decoded(str(name)) if name else ""
    name = PureWindowsPath(PurePosixPath(name).name).name.strip().strip(".")
    name = re.sub(r"[\x00-\x1f\x7f]", "", name)
    return name[-FILENAME_LIMIT:]


def _default_name(content_type: str) -> str:
    subtype = content_type.split("/", 1)[-1]
    return "attachment." + (re.sub(r"[^a-z0-9]", "", subtype)[:10] or "bin")


def _part_bytes(part: Message) -> bytes:
    try:
        if part.is_multipart() or _content_type(part) == "message/rfc822":
            return part.as_bytes(policy=default_policy.clone(linesep="\r\n"))
        if _content_type(part).startswith("multipart/"):  # its boundary was not found
            payload = part.get_payload()
            text = payload if isinstance(payload, str) else ""
            return text.encode("utf-8", "surrogateescape")
        data = part.get_payload(decode=True)
    except Exception:
        return b""
    return data if isinstance(data, bytes) else b""


def _part_text(part: Message) -> str:
    data = _part_bytes(part)
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return decode_bytes(data, charset).replace("\r\n", "\n").replace("\r", "\n")
