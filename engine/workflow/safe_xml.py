"""Parse untrusted BPMN uploads without giving the XML parser anything dangerous to do.

Designers upload diagrams through the API, so the bytes are attacker-controlled. We refuse
every document type declaration outright: without a DTD there are no entities, so no
external-entity disclosure (XXE) and no entity-expansion bombs (billion laughs). The raw
bytes are scanned before lxml sees them, and the parsed tree is checked again afterwards in
case an exotic encoding hid the declaration from the byte scan; the parser itself is
configured so that even then nothing is resolved, loaded or fetched.
"""

from __future__ import annotations

import codecs
import io

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


def parse_bpmn_xml(data: bytes) -> etree._ElementTree:
    """Parse an uploaded BPMN document, or raise UnsafeXmlError saying why not."""
    if not isinstance(data, bytes | bytearray):
        raise TypeError("parse_bpmn_xml expects bytes")
    data = bytes(data)
    _refuse_oversized(data)
    if not data.strip():
        raise UnsafeXmlError("document is empty")
    _refuse_dtd_markup(data)
    tree = _parse(data)
    _refuse_parsed_dtd(tree)
    _require_bpmn_root(tree)
    return tree
