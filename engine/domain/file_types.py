"""What a file is, from its bytes: the content type an attachment is served with.

The client's Content-Type and the file name's extension are never trusted (a PNG
named `.txt` is an image, an `.html` page named `.png` is HTML). The common types
of a service desk are recognised by their magic numbers: pictures and screenshots,
PDF, office documents (OOXML, OpenDocument, the old OLE2 files), archives, mail.
Anything else is `text/plain` when it decodes as UTF-8 (or carries a UTF-16 BOM),
else `application/octet-stream`. Our own table rather than a library: libmagic
needs a system package, and the pure-Python ones either read only a few dozen
signatures we would still have to extend (OOXML, text) or are unmaintained.
"""

from __future__ import annotations

import re
import unicodedata

OCTET_STREAM = "application/octet-stream"
TEXT = "text/plain"
MAX_FILENAME = 200
# How much of the start of a file is looked at for text signatures.
_HEAD = 4096

# (offset, magic, type): the first that matches wins.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"BM", "image/bmp"),
    (0, b"II*\x00", "image/tiff"),
    (0, b"MM\x00*", "image/tiff"),
    (0, b"\x00\x00\x01\x00", "image/vnd.microsoft.icon"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"Rar!\x1a\x07", "application/vnd.rar"),
    (0, b"BZh", "application/x-bzip2"),
    (0, b"\xfd7zXZ\x00", "application/x-xz"),
    (0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"\x7fELF", "application/x-executable"),
    (0, b"MZ", "application/x-msdownload"),
)
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")
# An OOXML or OpenDocument file is a ZIP whose first members name what it is.
_ZIP_KINDS: tuple[tuple[bytes, str], ...] = (
    (b"mimetypeapplication/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text"),
    (
        b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet",
        "application/vnd.oasis.opendocument.spreadsheet",
    ),
    (
        b"mimetypeapplication/vnd.oasis.opendocument.presentation",
        "application/vnd.oasis.opendocument.presentation",
    ),
    (b"word/", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (b"xl/", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"ppt/", "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
)
_HTML = re.compile(
    rb"^\s*(<!doctype\s+html|<html|<head|<body|<script|<iframe|<title|<!--)", re.IGNORECASE
)
_SVG = re.compile(rb"<svg[\s>]", re.IGNORECASE)
_XML = re.compile(rb"^\s*<\?xml", re.IGNORECASE)
_MAIL_HEADER = re.compile(
    rb"^(Return-Path|Received|From|Message-ID|MIME-Version|Delivered-To):", re.IGNORECASE
)
_UTF8_BOM = b"\xef\xbb\xbf"


def sniff_content_type(data: bytes) -> str:
    """The content type of these bytes (see the module's docstring)."""
    for offset, magic, kind in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return kind
    riff = _riff_kind(data)
    if riff:
        return riff
    if data[4:8] == b"ftyp":
        return _iso_media_kind(data[8:12])
    if data[:4] in _ZIP:
        return _zip_kind(data)
    return _text_kind(data)


def _riff_kind(data: bytes) -> str | None:
    if data[:4] != b"RIFF":
        return None
    return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
        data[8:12], OCTET_STREAM
    )


def _iso_media_kind(brand: bytes) -> str:
    if brand in (b"heic", b"heix", b"mif1"):
        return "image/heic"
    if brand == b"avif":
        return "image/avif"
    if brand.startswith(b"qt"):
        return "video/quicktime"
    return "video/mp4"


def _zip_kind(data: bytes) -> str:
    # The first local header's name starts at byte 30; OOXML's first member is
    # `[Content_Types].xml`, so look a little further for the part folders.
    head = data[30:_HEAD]
    for marker, kind in _ZIP_KINDS:
        if head.startswith(marker) or (marker.endswith(b"/") and marker in head):
            return kind
    return "application/zip"


def _text_kind(data: bytes) -> str:
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return TEXT
    head = data[:_HEAD]
    if head.startswith(_UTF8_BOM):
        head = head[len(_UTF8_BOM) :]
    if not _is_utf8(data):
        return OCTET_STREAM
    if _HTML.match(head):
        return "text/html"
    if _XML.match(head):
        return "image/svg+xml" if _SVG.search(head) else "application/xml"
    if _SVG.match(head.lstrip()):
        return "image/svg+xml"
    if _MAIL_HEADER.match(head):
        return "message/rfc822"
    return TEXT


def served_content_type(content_type: str, data: bytes) -> str:
    """The Content-Type header a stored file is downloaded with: text gets the charset
    it was recognised by (types are stored bare, as the API shows them)."""
    if not content_type.startswith("text/"):
        return content_type
    charset = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    return f"{content_type}; charset={charset}"


def _is_utf8(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def safe_filename(raw: str | None) -> str:
    """The name an upload is kept under: the last component of any path (both slash
    kinds: a Windows browser sends `C:\\Users\\...`), without control characters,
    leading dots or surrounding space, at most MAX_FILENAME characters (the
    extension kept). Empty when nothing is left."""
    if not raw:
        return ""
    name = re.split(r"[\\/]", raw)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C")
    name = unicodedata.normalize("NFC", name).strip().lstrip(".").strip()
    if len(name) <= MAX_FILENAME:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and 0 < len(extension) <= 16:
        return stem[: MAX_FILENAME - len(extension) - 1] + "." + extension
    return name[:MAX_FILENAME]
