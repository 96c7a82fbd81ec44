"""Uploads are UTF-8: other encodings are refused with a problem (or converted on request).

A BPMN document declared as ISO-8859-1 or UTF-16 passed the lint and then failed with a 500
where the services store it as text (`bytes.decode("utf-8")`), or stored NUL characters
(BOM-less UTF-16 decodes as "UTF-8" full of NULs, which PostgreSQL refuses). NUL characters
and lone surrogates must be problems too, never a crash.
"""

from __future__ import annotations

import codecs
from typing import Any

import pytest

from engine.domain.script_helpers import HELPER_NAMES
from engine.workflow.definitions import DefinitionInvalid, compile_definition
from engine.workflow.lint import lint_bytes
from engine.workflow.safe_xml import UnsafeXmlError, parse_bpmn_xml, utf8_document
from engine.workflow.serialization import StateSerializer
from tests.test_lint import ROLES, Doc

NAME = "Café – 事件"  # Latin-1, windows-1252 and CJK characters


def _doc_text(encoding: str = "UTF-8", name: str = NAME) -> str:
    doc = Doc()
    doc.node("Task_review").attrs += f' name="{name}"'
    return doc.xml().replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)


def _lint(data: bytes) -> list[Any]:
    return lint_bytes(data, helper_names=HELPER_NAMES, roles=ROLES)


def _compile(data: bytes) -> Any:
    return compile_definition(
        data, helper_names=HELPER_NAMES, roles=ROLES, serializer=StateSerializer()
    )


ENCODED = {
    "iso-8859-1": _doc_text("ISO-8859-1", "Café").encode("latin-1"),
    "windows-1252": _doc_text("windows-1252", "Café – x").encode("cp1252"),
    "utf-16-bom": _doc_text("UTF-16").encode("utf-16"),
    "utf-16-le-no-bom": _doc_text("UTF-16").encode("utf-16-le"),
    "utf-16-be-no-bom": _doc_text("UTF-16").encode("utf-16-be"),
    "shift-jis": _doc_text("Shift_JIS", "事件").encode("shift_jis"),
    "utf-8-declared-latin-1": _doc_text("ISO-8859-1").encode("utf-8"),
}


@pytest.mark.parametrize("data", ENCODED.values(), ids=ENCODED.keys())
def test_a_document_not_in_utf8_is_one_problem_naming_its_encoding(data: bytes):
    (problem,) = _lint(data)
    assert problem.element is None and problem.line == 1
    assert "UTF-8" in problem.message and "encoded as" in problem.message
    with pytest.raises(DefinitionInvalid) as caught:
        _compile(data)
    assert [p.message for p in caught.value.problems] == [problem.message]


def test_the_problem_names_the_declared_encoding():
    (problem,) = _lint(ENCODED["iso-8859-1"])
    assert "ISO-8859-1" in problem.message
    (problem,) = _lint(ENCODED["utf-16-bom"])
    assert "UTF-16" in problem.message


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "US-ASCII", "windows-1252"])
def test_an_ascii_only_document_may_declare_an_ascii_compatible_encoding(encoding: str):
    data = _doc_text(encoding, "Cafe").encode("ascii")
    assert _lint(data) == []


def test_utf8_with_and_without_bom_is_fine():
    text = _doc_text()
    assert _lint(text.encode("utf-8")) == []
    assert _lint(codecs.BOM_UTF8 + text.encode("utf-8")) == []


# --- NUL characters and lone surrogates ----------------------------------------------------------

HOSTILE = {
    "raw-nul": _doc_text(name="a\x00b").encode("utf-8"),
    "nul-reference": _doc_text(name="a&#0;b").encode("utf-8"),
    "surrogate-reference": _doc_text(name="a&#xD800;b").encode("utf-8"),
    "encoded-surrogate": _doc_text(name="a\ud800b").encode("utf-8", "surrogatepass"),
    "utf-16-surrogate": _doc_text("UTF-16", "a\ud800b").encode("utf-16", "surrogatepass"),
    "nul-in-comment": _doc_text().replace("<bpmn:process", "<!--\x00--><bpmn:process", 1).encode(),
    "nul-after-root": _doc_text().encode() + b"\x00",
}


@pytest.mark.parametrize("data", HOSTILE.values(), ids=HOSTILE.keys())
def test_nul_characters_and_lone_surrogates_are_a_problem(data: bytes):
    problems = _lint(data)
    assert len(problems) == 1 and problems[0].element is None and problems[0].line
    with pytest.raises(DefinitionInvalid):
        _compile(data)
    with pytest.raises(UnsafeXmlError):
        parse_bpmn_xml(data)


# --- converting to UTF-8 (for the services, to accept other encodings) --------------------------


@pytest.mark.parametrize(
    "key", ["iso-8859-1", "windows-1252", "utf-16-bom", "utf-16-le-no-bom", "shift-jis"]
)
def test_utf8_document_converts_and_keeps_every_character(key: str):
    data = ENCODED[key]
    converted = utf8_document(data)
    text = converted.decode("utf-8")
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert _lint(converted) == []
    (task,) = parse_bpmn_xml(converted).getroot().xpath("//*[@id='Task_review']")
    expected = {"iso-8859-1": "Café", "windows-1252": "Café – x", "shift-jis": "事件"}
    assert task.get("name") == expected.get(key, NAME)
    assert utf8_document(converted) == converted  # UTF-8 stays as it is, byte for byte


def test_utf8_document_refuses_what_parsing_refuses():
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        utf8_document(b'<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE x><x/>')
    with pytest.raises(UnsafeXmlError):
        utf8_document(HOSTILE["utf-16-surrogate"])


# --- over the API: 422, never a 500 --------------------------------------------------------------


def _post(api: Any, path: str, body: bytes) -> Any:
    return api.client.post(
        "/api/v1" + path, data=body, headers={"Authorization": f"Bearer {api.tokens['designer']}"}
    )


def _bundled(encoding: str) -> bytes:
    from engine.services.process.definitions import BUNDLED_PROCESS

    text = BUNDLED_PROCESS.read_text(encoding="utf-8")
    text = text.replace('name="Record and classify incident"', 'name="Récord incident"', 1)
    text = text.replace('encoding="UTF-8"', f'encoding="{encoding}"', 1)
    return text.encode(encoding, "xmlcharrefreplace")


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16", "UTF-16-LE"])
def test_deploying_a_document_in_another_encoding_is_422(api, encoding: str):
    response = _post(api, "/process-definitions?note=enc", _bundled(encoding))
    assert response.status_code == 422, response.status_code
    (detail,) = response.get_json()["details"]
    assert detail["element"] is None and detail["line"] == 1 and "UTF-8" in detail["message"]


@pytest.mark.parametrize("encoding", ["ISO-8859-1", "UTF-16"])
def test_saving_a_draft_in_another_encoding_is_422(api, encoding: str):
    response = _post(api, "/process-drafts?name=enc", _bundled(encoding))
    assert response.status_code == 422, response.status_code
    assert "UTF-8" in response.get_json()["details"][0]["message"]
