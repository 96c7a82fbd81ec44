"""The translations a process file carries for its own names, labels and instructions.

A designer writes them as Camunda extension properties, one per language (the app's
locale codes, e.g. `zh_Hant_TW`), next to the text they translate (docs/process.md,
"Translations in the diagram"):

- on an element (process, lane, flow node, sequence flow):
  `<camunda:property name="name@zh_Hant_TW" value="..."/>` and `documentation@<lang>`;
- on a form field, in the field's own `camunda:properties`:
  `<camunda:property id="label@zh_Hant_TW" value="..."/>`, and for an enum option (a
  `camunda:value` cannot hold properties) `option:<option id>@<lang>`.

The BPMN `name`, `label`, documentation and option `name` themselves are the diagram's
own language, English. `diagram_texts` reads a stored version once (cached by its text:
a deployed version never changes) into plain mappings the pages look texts up in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from lxml import etree

from engine.workflow.safe_xml import BPMN_MODEL_NS, parse_bpmn_xml

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
# The language the BPMN attributes themselves are written in.
DIAGRAM_LANGUAGE = "en"
ELEMENT_TEXTS = ("name", "documentation")

TextKey = tuple[str, str]  # (element id, what): "name", "documentation", "label:<field>",
# "option:<field>:<option>"


@dataclass(frozen=True)
class DiagramTexts:
    """One process version's texts: its own (English) ones and their translations."""

    own: dict[TextKey, str] = field(default_factory=dict)
    translated: dict[TextKey, dict[str, str]] = field(default_factory=dict)

    def text(self, element_id: str, what: str, language: str) -> str | None:
        """The text to show in `language`, or None when the diagram has nothing to say
        (no translation of this text in any language, and `language` is not the
        diagram's own): the caller then falls back to its catalog."""
        translations = self.translated.get((element_id, what), {})
        if language in translations:
            return translations[language]
        if translations or language == DIAGRAM_LANGUAGE:
            return self.own.get((element_id, what))
        return None

    def languages(self, element_id: str, what: str) -> frozenset[str]:
        return frozenset(self.translated.get((element_id, what), {}))


def split_property(name: str) -> tuple[str, str] | None:
    """`name@zh_Hant_TW` → ("name", "zh_Hant_TW"); None for any other property."""
    what, at, language = name.rpartition("@")
    if not at or not what or not language:
        return None
    return what, language


@lru_cache(maxsize=64)
def diagram_texts(xml: str) -> DiagramTexts:
    return texts_of_tree(parse_bpmn_xml(xml.encode("utf-8")))


def texts_of_tree(tree: etree._ElementTree) -> DiagramTexts:
    own: dict[TextKey, str] = {}
    translated: dict[TextKey, dict[str, str]] = {}
    for element in tree.getroot().iter(f"{{{BPMN_MODEL_NS}}}*"):
        element_id = element.get("id")
        if not element_id:
            continue
        # A category value (a group's label) is named by its `value`.
        own_name = element.get("value" if _is(element, "categoryValue") else "name")
        if own_name is not None:
            own[(element_id, "name")] = str(own_name)
        documentation = element.find(f"{{{BPMN_MODEL_NS}}}documentation")
        if documentation is not None and documentation.text:
            own[(element_id, "documentation")] = documentation.text.strip()
        extensions = element.find(f"{{{BPMN_MODEL_NS}}}extensionElements")
        if extensions is None:
            continue
        for what, language, value in _own_properties(extensions):
            if what in ELEMENT_TEXTS:
                translated.setdefault((element_id, what), {})[language] = value
        form_fields = f"{{{CAMUNDA_NS}}}formData/{{{CAMUNDA_NS}}}formField"
        for form_field in extensions.iterfind(form_fields):
            _read_field(element_id, form_field, own, translated)
    return DiagramTexts(own=own, translated=translated)


def _is(element: etree._Element, localname: str) -> bool:
    return element.tag == f"{{{BPMN_MODEL_NS}}}{localname}"


def _own_properties(parent: etree._Element) -> list[tuple[str, str, str]]:
    """(what, language, text) of the translation properties directly under `parent`."""
    found = []
    for prop in parent.iterfind(f"{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"):
        # Camunda names element properties with `name` and form field ones with `id`.
        parts = split_property(str(prop.get("name") or prop.get("id") or ""))
        if parts is not None:
            found.append((*parts, str(prop.get("value") or "")))
    return found


def _read_field(
    task_id: str,
    form_field: etree._Element,
    own: dict[TextKey, str],
    translated: dict[TextKey, dict[str, str]],
) -> None:
    field_id = str(form_field.get("id") or "")
    own[(task_id, f"label:{field_id}")] = str(form_field.get("label") or field_id)
    for value in form_field.iterfind(f"{{{CAMUNDA_NS}}}value"):
        option_id = str(value.get("id") or "")
        own[(task_id, f"option:{field_id}:{option_id}")] = str(value.get("name") or option_id)
    for what, language, text in _own_properties(form_field):
        if what == "label":
            translated.setdefault((task_id, f"label:{field_id}"), {})[language] = text
        elif what.startswith("option:"):
            key = (task_id, f"option:{field_id}:{what.removeprefix('option:')}")
            translated.setdefault(key, {})[language] = text
