"""What changed between two versions of a BPMN process definition, element by element.

The versions page shows these changes, and the migration policy for open incidents reads
their `aspects`: a relabelled task or a reworded field never blocks moving an incident to a
new version, a changed condition or a removed field may. The module is pure (bytes in,
frozen dataclasses out) and does not use SpiffWorkflow: it reads the same XML the linter
reads, so it also works on versions the engine would refuse.

Elements are matched by id: every flow node of every process (including the contents of
subprocesses and event subprocesses), every sequence flow and every lane. The diagram
(bpmndi: shapes, edges, positions) is ignored, as are attribute order, namespace prefixes,
comments and surrounding whitespace. Both documents go through `parse_bpmn_xml`, so bad
input raises `engine.workflow.safe_xml.UnsafeXmlError` (a ValueError), unchanged.
"""

from __future__ import annotations

import textwrap
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from typing import Any, TypeAlias

from lxml import etree

from engine.workflow.lint import BPMN_NS, CAMUNDA_NS, FLOW_NODE_TAGS
from engine.workflow.safe_xml import parse_bpmn_xml

# lxml ships no type stubs here, so this is Any to mypy; it documents intent.
Element: TypeAlias = etree._Element

# Every aspect a change can have, in the order they are reported.
ASPECTS: tuple[str, ...] = ("type", "name", "documentation", "lane", "flow", "default_flow")
ASPECTS += ("condition", "script", "timer", "form", "form_layout", "properties", "other")
# What readers see but the engine does not act on: such changes never block a migration.
LAYOUT_ONLY_ASPECTS = frozenset({"name", "documentation", "form_layout"})
# Field properties that only change the widget (a taller text box), not what is accepted.
LAYOUT_FIELD_PROPERTIES = frozenset({"multiline"})
TIMER_TAGS = frozenset({"timeDate", "timeDuration", "timeCycle"})

_B, _C = f"{{{BPMN_NS}}}", f"{{{CAMUNDA_NS}}}"
_COMPARED_TAGS = tuple(_B + tag for tag in sorted(FLOW_NODE_TAGS | {"sequenceFlow", "lane"}))
# Attributes and children that a named aspect covers; everything else is "other".
_HANDLED_ATTRIBUTES = frozenset(
    {"id", "name", "default", "sourceRef", "targetRef", "attachedToRef", "scriptFormat"}
    | {_C + "formKey"}
)
_HANDLED_CHILDREN = FLOW_NODE_TAGS | {
    "documentation",
    "incoming",  # derived from the sequence flows instead, which the engine follows
    "outgoing",
    "script",
    "conditionExpression",
    "sequenceFlow",  # nested elements are compared on their own
    "laneSet",
    "flowNodeRef",  # lane membership is reported on the node
}
_HANDLED_EXTENSIONS = frozenset({_C + "formData", _C + "properties"})


@dataclass(frozen=True)
class ElementChange:
    element_id: str
    kind: str  # BPMN tag local name: userTask, sequenceFlow, lane, ...
    name: str | None
    aspects: tuple[str, ...] = ()  # in ASPECTS order; empty for added and removed elements
    details: tuple[str, ...] = ()

    @property
    def layout_only(self) -> bool:
        # An added or removed element has no aspects and is never layout-only.
        return bool(self.aspects) and all(a in LAYOUT_ONLY_ASPECTS for a in self.aspects)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layout_only": self.layout_only}


@dataclass(frozen=True)
class ProcessDiff:
    added: list[ElementChange]  # in the new document's order
    removed: list[ElementChange]  # in the old document's order
    changed: list[ElementChange]  # in the new document's order

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def by_id(self) -> dict[str, ElementChange]:
        return {c.element_id: c for c in [*self.added, *self.removed, *self.changed]}

    def to_dict(self) -> dict[str, Any]:
        keys = ("added", "removed", "changed")
        return {key: [c.to_dict() for c in getattr(self, key)] for key in keys}


# --- reading one document ------------------------------------------------------------------------


def _local(element: Element, namespace: str = BPMN_NS) -> str | None:
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None  # comments and processing instructions
    ns, _, name = tag[1:].partition("}")
    return name if ns == namespace else None


def _children(element: Element, name: str, namespace: str = BPMN_NS) -> list[Element]:
    return [child for child in element if _local(child, namespace) == name]


def _extensions(element: Element, name: str) -> list[Element]:
    extensions = _children(element, "extensionElements")
    return [c for ext in extensions for c in _children(ext, name, CAMUNDA_NS)]


def _qname(tag: str) -> str:
    """A readable name for details: BPMN names bare, Camunda ones prefixed."""
    return tag.replace(_B, "").replace(_C, "camunda:")


def _norm(text: str | None) -> str:
    # Editors re-indent and re-wrap code; dedent keeps Python's relative indentation.
    lines = (text or "").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return textwrap.dedent("\n".join(line.rstrip() for line in lines)).strip()


@dataclass(frozen=True)
class _Field:
    id: str
    type: str
    label: str
    default: str | None
    options: tuple[tuple[str, str], ...]  # (id, display name), in order
    constraints: frozenset[str]  # "required", "maxlength=4000"
    properties: frozenset[str]  # "multiline=true"


def _read_field(xml: Element) -> _Field:
    def pairs(tag: str, key: str, value: str) -> frozenset[str]:
        found = [(e.get(key, ""), e.get(value)) for e in xml.iter(_C + tag)]
        return frozenset(k if v is None else f"{k}={v}" for k, v in found)

    return _Field(
        id=str(xml.get("id", "")),
        type=str(xml.get("type", "")),
        label=str(xml.get("label", "")),
        default=xml.get("defaultValue"),
        options=tuple(
            (str(v.get("id", "")), str(v.get("name", ""))) for v in xml.iter(_C + "value")
        ),
        constraints=pairs("constraint", "name", "config"),
        properties=pairs("property", "id", "value"),
    )


@dataclass(frozen=True)
class _Snapshot:
    """What one element says, split by aspect."""

    kind: str
    name: str | None
    lane: str | None
    scalars: dict[str, tuple[str, object]]  # detail label -> (aspect, value)
    incoming: frozenset[str]
    outgoing: frozenset[str]
    fields: tuple[_Field, ...]
    properties: dict[str, str | None]
    other: tuple[tuple[str, Any], ...]


class _Document:
    """One parsed version plus the indexes its snapshots need."""

    def __init__(self, data: bytes) -> None:
        root = parse_bpmn_xml(data).getroot()
        self.elements: dict[str, Element] = {}
        self.incoming: dict[str, set[str]] = defaultdict(set)
        self.outgoing: dict[str, set[str]] = defaultdict(set)
        self.lane_of: dict[str, str] = {}
        for process in _children(root, "process"):
            for element in process.iter(*_COMPARED_TAGS):
                element_id = str(element.get("id", ""))
                # Duplicate ids are a lint error; the first one wins here.
                self.elements.setdefault(element_id, element)
                if _local(element) == "sequenceFlow":
                    self.outgoing[str(element.get("sourceRef"))].add(element_id)
                    self.incoming[str(element.get("targetRef"))].add(element_id)
                for ref in _children(element, "flowNodeRef"):
                    # The lane name is the role; SpiffWorkflow keeps the last reference.
                    self.lane_of[_norm(ref.text)] = str(element.get("name", element_id))
        self.elements.pop("", None)
        # Events name signals and messages by id, but the engine matches them by name.
        self.ref_names = {str(e.get("id")): str(e.get("name")) for e in root if e.get("name")}

    def lane(self, element: Element) -> str | None:
        # As in the engine: the outermost subprocess with a lane gives it to its contents.
        for node in [*reversed(list(element.iterancestors(*_COMPARED_TAGS))), element]:
            if str(node.get("id")) in self.lane_of:
                return self.lane_of[str(node.get("id"))]
        return None

    def _value(self, attribute: str, value: str) -> str:
        if attribute.endswith("Ref") and value in self.ref_names:
            return f"{value} ({self.ref_names[value]})"
        return value

    def _canonical(self, element: Element) -> tuple[Any, ...]:
        """An element as nested tuples: attribute and child order, comments, timers ignored."""
        attributes = sorted((_qname(k), self._value(k, v)) for k, v in element.items())
        kept = [c for c in element.iterchildren("*") if _local(c) not in TIMER_TAGS]
        children = [self._canonical(c) for c in kept]
        text = _norm(element.text)
        return (_qname(element.tag), tuple(attributes), text, tuple(sorted(children, key=repr)))

    def _other(self, element: Element) -> tuple[tuple[str, Any], ...]:
        parts: list[tuple[str, Any]] = [
            (f"@{_qname(k)}", self._value(k, v))
            for k, v in element.items()
            if k not in _HANDLED_ATTRIBUTES
        ]
        for child in element.iterchildren("*"):  # "*": elements only, no comments
            if _local(child) == "extensionElements":
                kept = [c for c in child.iterchildren("*") if c.tag not in _HANDLED_EXTENSIONS]
                parts += [(_qname(c.tag), self._canonical(c)) for c in kept]
            elif _local(child) not in _HANDLED_CHILDREN:
                parts.append((_qname(child.tag), self._canonical(child)))
        return tuple(sorted(parts, key=repr))

    def snapshot(self, element: Element) -> _Snapshot:
        element_id, kind = str(element.get("id")), _local(element) or ""
        conditions = _children(element, "conditionExpression")
        language = conditions[0].get("language") if conditions else None
        scripts = _children(element, "script")
        timers = _children(element, "timerEventDefinition")
        timer = "; ".join(
            f"{_local(t)} {_norm(t.text)}" for d in timers for t in d if _local(t) in TIMER_TAGS
        )
        name_aspect = "lane" if kind == "lane" else "name"  # a lane's name is its role
        lane = self.lane(element) if kind in FLOW_NODE_TAGS else None
        scalars: dict[str, tuple[str, object]] = {
            "type": ("type", kind),
            "name": (name_aspect, element.get("name")),
            "lane": ("lane", lane),
            "source": ("flow", element.get("sourceRef")),
            "target": ("flow", element.get("targetRef")),
            "attached to": ("flow", element.get("attachedToRef")),
            "default flow": ("default_flow", element.get("default")),
            "condition": ("condition", _norm(conditions[0].text) if conditions else None),
            "condition language": ("condition", language),
            "script format": ("script", element.get("scriptFormat")),
            "script": ("script", _norm(scripts[0].text) if scripts else None),
            "timer": ("timer", timer or None),
            "form key": ("form", element.get(_C + "formKey")),
        }
        docs = [_norm(d.text) for d in _children(element, "documentation")]
        forms = _extensions(element, "formData")
        properties = [p for e in _extensions(element, "properties") for p in e.iterchildren("*")]
        return _Snapshot(
            kind=kind,
            name=element.get("name"),
            lane=lane,
            scalars=scalars | {"documentation": ("documentation", "\n".join(docs))},
            incoming=frozenset(self.incoming.get(element_id, ())),
            outgoing=frozenset(self.outgoing.get(element_id, ())),
            fields=tuple(_read_field(f) for form in forms for f in form.iter(_C + "formField")),
            # The engine reads the process phase from name=; be lenient about id= too.
            properties={str(p.get("name", p.get("id"))): p.get("value") for p in properties},
            other=self._other(element),
        )


# --- comparing two snapshots ---------------------------------------------------------------------


def _show(value: object) -> str:
    if value is None:
        return "none"
    text = repr(value)
    return text if len(text) <= 80 else text[:76] + "...'"


def _changed(label: str, old: object, new: object) -> list[str]:
    return [] if old == new else [f"{label}: {_show(old)} -> {_show(new)}"]


def _set_changes(
    what: str, old: set[Any] | frozenset[Any], new: set[Any] | frozenset[Any]
) -> list[str]:
    added = [f'{what} "{x}" added' for x in sorted(new - old)]
    return added + [f'{what} "{x}" removed' for x in sorted(old - new)]


def _order_changed(old: list[str], new: list[str]) -> bool:
    """Whether the items both lists have come in another order."""
    return [x for x in old if x in new] != [x for x in new if x in old]


def _field_changes(old: _Field, new: _Field) -> list[tuple[str, str]]:
    where = f'field "{new.id}"'
    found = [f"{where} {d}" for d in _changed("type", old.type, new.type)]
    found += [f"{where} {d}" for d in _changed("default", old.default, new.default)]
    found += [f"{where} {d}" for d in _set_changes("constraint", old.constraints, new.constraints)]
    behaviour = [
        {p for p in f.properties if p.split("=")[0] not in LAYOUT_FIELD_PROPERTIES}
        for f in (old, new)
    ]
    found += [f"{where} {d}" for d in _set_changes("property", *behaviour)]
    old_options, new_options = dict(old.options), dict(new.options)
    found += [f"{where} {d}" for d in _set_changes("value", set(old_options), set(new_options))]
    # Labels, option names, display properties and order change what people see, not
    # which submissions are valid.
    layout = [f"{where} {d}" for d in _changed("label", old.label, new.label)]
    for option in new_options.keys() & old_options.keys():
        label = f'value "{option}" label'
        layout += [
            f"{where} {d}" for d in _changed(label, old_options[option], new_options[option])
        ]
    if old.properties - behaviour[0] != new.properties - behaviour[1]:
        layout.append(f"{where} display properties changed")
    if _order_changed(list(old_options), list(new_options)):
        layout.append(f"{where} values reordered")
    return [("form", d) for d in found] + [("form_layout", d) for d in layout]


def _form_changes(old: _Snapshot, new: _Snapshot) -> list[tuple[str, str]]:
    old_fields, new_fields = {f.id: f for f in old.fields}, {f.id: f for f in new.fields}
    found = [("form", d) for d in _set_changes("field", set(old_fields), set(new_fields))]
    for field_id, field in new_fields.items():
        if field_id in old_fields and old_fields[field_id] != field:
            found += _field_changes(old_fields[field_id], field)
    if _order_changed(list(old_fields), list(new_fields)):
        found.append(("form_layout", "fields reordered"))
    return found


def _other_changes(old: _Snapshot, new: _Snapshot) -> list[str]:
    gone, came = Counter(old.other) - Counter(new.other), Counter(new.other) - Counter(old.other)
    old_attrs, new_attrs = dict(old.other), dict(new.other)
    keys = sorted({key for key, _ in (gone + came)})
    attributes = [k for k in keys if k.startswith("@")]
    found = [
        f"attribute {k[1:]}: {_show(old_attrs.get(k))} -> {_show(new_attrs.get(k))}"
        for k in attributes
    ]
    return found + [f"{key} changed" for key in keys if key not in attributes]


def _compare(old: _Snapshot, new: _Snapshot) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for label, (aspect, value) in new.scalars.items():
        before = old.scalars[label][1]
        if label == "documentation":
            found += [(aspect, "documentation changed")] if before != value else []
        else:
            found += [(aspect, d) for d in _changed(label, before, value)]
    found += [("flow", d) for d in _set_changes("incoming flow", old.incoming, new.incoming)]
    found += [("flow", d) for d in _set_changes("outgoing flow", old.outgoing, new.outgoing)]
    found += _form_changes(old, new)
    for key in sorted(old.properties.keys() | new.properties.keys()):
        props = (old.properties.get(key), new.properties.get(key))
        found += [("properties", d) for d in _changed(f'property "{key}"', *props)]
    return found + [("other", d) for d in _other_changes(old, new)]


# --- the entry point -----------------------------------------------------------------------------


def _summary(snapshot: _Snapshot) -> tuple[str, ...]:
    """One line saying where an added or removed element sits."""
    if snapshot.kind == "sequenceFlow":
        ends = [snapshot.scalars[end][1] for end in ("source", "target")]
        return (f"{ends[0]} -> {ends[1]}",)
    return (f"lane: {_show(snapshot.lane)}",) if snapshot.lane else ()


def _change(snapshot: _Snapshot, element_id: str, found: list[tuple[str, str]]) -> ElementChange:
    aspects = tuple(a for a in ASPECTS if any(aspect == a for aspect, _ in found))
    details = tuple(dict.fromkeys(d for _, d in found)) or _summary(snapshot)
    return ElementChange(element_id, snapshot.kind, snapshot.name, aspects, details)


def diff_definitions(old: bytes, new: bytes) -> ProcessDiff:
    """Compare two BPMN documents; raises safe_xml.UnsafeXmlError if either will not parse."""
    before, after = _Document(old), _Document(new)
    added, removed, changed = [], [], []
    for element_id, element in after.elements.items():
        snapshot = after.snapshot(element)
        if element_id not in before.elements:
            added.append(_change(snapshot, element_id, []))
        elif found := _compare(before.snapshot(before.elements[element_id]), snapshot):
            changed.append(_change(snapshot, element_id, found))
    for element_id, element in before.elements.items():
        if element_id not in after.elements:
            removed.append(_change(before.snapshot(element), element_id, []))
    return ProcessDiff(added=added, removed=removed, changed=changed)
