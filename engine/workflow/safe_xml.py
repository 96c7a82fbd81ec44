"""Parse untrusted BPMN uploads without giving the XML parser anything dangerous to do.

Designers upload diagrams through the API, so the bytes are attacker-controlled. We refuse
every document type declaration outright: without a DTD there are no entities, so no
external-entity disclosure (XXE) and no entity-expansion bombs (billion laughs). The raw
bytes are scanned before lxml sees them, and the parsed tree is checked again afterwards in
case an exotic encoding hid the declaration from the byte scan; the parser itself is
configured so that even then nothing is resolved, loaded or fetched.

Documents are stored and served as UTF-8 text, so `parse_bpmn_xml` accepts only UTF-8 (or
plain ASCII under an ASCII-compatible declaration, which reads the same); any other
encoding is one problem on line 1 naming it. `utf8_document` converts a document in any
encoding lxml reads to UTF-8 (declaration included), for a caller that wants to accept it.
NUL characters and lone surrogates are never accepted.
"""

from __future__ import annotations

import codecs
import io
import re

from lxml import etree

MAX_BPMN_BYTES = 5 * 1024 * 1024

BPMN_MODEL_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
_DEFINITIONS_TAG = f"{{{BPMN_MODEL_NS}}}definitions"

# Markup that only exists inside or because of a DTD. XML keywords are case-sensitive.
_FORBIDDEN_MARKUP = ("<!DOCTYPE", "<!ENTITY")

# Byte-order marks, longest first: the UTF-32 LE mark starts with the UTF-16 LE one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

# How "<?" (or "<" followed by anything) looks in wide encodings written without a BOM
# (XML 1.0, appendix F).
_BOMLESS_WIDE: tuple[tuple[bytes, str], ...] = (
    (b"\x00\x00\x00\x3c", "utf-32-be"),
    (b"\x3c\x00\x00\x00", "utf-32-le"),
    (b"\x00\x3c\x00\x3f", "utf-16-be"),
    (b"\x3c\x00\x3f\x00", "utf-16-le"),
)


# The encoding pseudo-attribute of an XML declaration, to rewrite it when converting.
_DECLARED_ENCODING = re.compile(r"""\A(<\?xml\s[^>]*?\bencoding\s*=\s*)(["'])[^"']*\2""")


class UnsafeXmlError(ValueError):
    """The upload is not a BPMN document we are willing to parse."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _make_parser() -> etree.XMLParser:
    # A fresh parser per call: lxml parsers keep state and are not thread-safe.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        load_dtd=False,
        dtd_validation=False,
    )


def _wide_encoding(data: bytes) -> str | None:
    """Name of the encoding when the document is not ASCII-compatible, else None."""
    for prefix, encoding in _BOMS + _BOMLESS_WIDE:
        if data.startswith(prefix):
            # UTF-8 (with or without BOM) is ASCII-compatible: scan the bytes directly.
            return None if encoding == "utf-8" else encoding
    return None


def _scan_text(data: bytes) -> str:
    """The document as text good enough to search for ASCII markup."""
    encoding = _wide_encoding(data)
    if encoding is None:
        # In every ASCII-compatible encoding the markup is plain ASCII bytes.
        return data.decode("latin-1")
    return data.decode(encoding, errors="replace")


def _line_of(text: str, index: int) -> int:
    return text.count("\n", 0, index) + 1


def _refuse_dtd_markup(data: bytes) -> None:
    text = _scan_text(data)
    for markup in _FORBIDDEN_MARKUP:
        index = text.find(markup)
        if index >= 0:
            raise UnsafeXmlError(
                "document type declarations (DOCTYPE) and entities are not allowed",
                line=_line_of(text, index),
            )


def _refuse_oversized(data: bytes) -> None:
    if len(data) > MAX_BPMN_BYTES:
        raise UnsafeXmlError(
            f"document is {len(data)} bytes; the limit is {MAX_BPMN_BYTES} bytes (5 MiB)"
        )


def _parse(data: bytes) -> etree._ElementTree:
    try:
        return etree.parse(io.BytesIO(data), _make_parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if isinstance(exc.lineno, int) and exc.lineno > 0 else None
        where = f" at line {line}" if line is not None else ""
        # libxml2 messages can span lines; one line reads better in an API error list.
        detail = " ".join(str(exc.msg).split())
        raise UnsafeXmlError(f"malformed XML{where}: {detail}", line=line) from None


def _refuse_parsed_dtd(tree: etree._ElementTree) -> None:
    # Second line of defence for encodings the byte scan cannot read.
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXmlError(
            "document type declarations (DOCTYPE) and entities are not allowed", line=1
        )


def _require_bpmn_root(tree: etree._ElementTree) -> None:
    root = tree.getroot()
    if root.tag != _DEFINITIONS_TAG:
        raise UnsafeXmlError(
            f"root element is {root.tag!r}; expected BPMN 2.0 {_DEFINITIONS_TAG!r}",
            line=root.sourceline,
        )


def _codec(name: str) -> codecs.CodecInfo | None:
    try:
        return codecs.lookup(name)
    except LookupError:
        return None


def _encoding_problem(data: bytes, tree: etree._ElementTree) -> str | None:
    """Why the document is not UTF-8 text that reads the same under its declaration."""
    declared = str(tree.docinfo.encoding or "UTF-8")
    codec = _codec(declared)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    same = codec is not None and (
        codec.name == "utf-8" or (data.isascii() and data.decode(codec.name, "replace") == text)
    )
    if text is None or not same:
        return (
            f"the document is encoded as {declared}; only UTF-8 is accepted: save it as "
            "UTF-8 (with an XML declaration saying UTF-8, or none)"
        )
    if "\x00" in text:  # libxml2 refuses NUL; PostgreSQL could not store it either
        return "the document contains a NUL character"
    return None


def _parse_untrusted(data: bytes) -> etree._ElementTree:
    if not isinstance(data, bytes | bytearray):
        raise TypeError("expected the document as bytes")
    data = bytes(data)
    _refuse_oversized(data)
    if not data.strip():
        raise UnsafeXmlError("document is empty")
    _refuse_dtd_markup(data)
    tree = _parse(data)
    _refuse_parsed_dtd(tree)
    return tree


def parse_bpmn_xml(data: bytes) -> etree._ElementTree:
    """Parse an uploaded BPMN document, or raise UnsafeXmlError saying why not."""
    tree = _parse_untrusted(data)
    problem = _encoding_problem(bytes(data), tree)
    if problem is not None:
        raise UnsafeXmlError(problem, line=1)
    _require_bpmn_root(tree)
    return tree


def utf8_document(data: bytes) -> bytes:
    """The document as UTF-8 bytes that `parse_bpmn_xml` accepts, for storing an upload.

    A UTF-8 document is returned as it is. One in another encoding lxml reads (ISO-8859-1,
    UTF-16, ...) is decoded by its byte-order mark and declaration, its declaration is made
    to say UTF-8, and the result must parse to exactly the same tree (canonical XML), or
    UnsafeXmlError says it cannot be converted. Everything `parse_bpmn_xml` refuses for
    another reason (size, DOCTYPE, malformed, NUL, lone surrogates) is refused here too.
    """
    tree = _parse_untrusted(data)
    data = bytes(data)
    if _encoding_problem(data, tree) is None:
        return data
    declared = str(tree.docinfo.encoding or "UTF-8")
    codec = _codec(declared)
    try:
        if codec is None:
            raise UnicodeError(declared)
        text = data.decode(codec.name).removeprefix("\ufeff")
        converted = _DECLARED_ENCODING.sub(r"\1\2UTF-8\2", text, count=1).encode("utf-8")
    except UnicodeError:
        raise UnsafeXmlError(
            f"the document is encoded as {declared}, which cannot be converted to UTF-8; "
            "save it as UTF-8",
            line=1,
        ) from None
    result = parse_bpmn_xml(converted)
    if etree.tostring(result, method="c14n") != etree.tostring(tree, method="c14n"):
        raise UnsafeXmlError(
            f"the document encoded as {declared} reads differently once converted to UTF-8; "
            "save it as UTF-8",
            line=1,
        )
    return converted
