"""The BPMN linter and the safe XML loader.

Most tests build a small valid process with `Doc` (lanes, forms, a script, a gateway and a
diagram), break exactly one thing, and check the problem's element id and message. A few
tests ask SpiffWorkflow itself, to show that what a rule rejects is really mis-executed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from engine.domain.roles import LANE_ROLES
from engine.domain.script_helpers import HELPER_NAMES
from engine.workflow import safe_xml
from engine.workflow.lint import LintProblem, lint_bpmn, lint_bytes
from engine.workflow.safe_xml import MAX_BPMN_BYTES, UnsafeXmlError, parse_bpmn_xml

BPMN_DIR = Path(__file__).parents[1] / "bpmn"
ROLES = frozenset(LANE_ROLES)
HELPERS = frozenset(HELPER_NAMES)

HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"'
    ' xmlns:bpmndi="http://www.omg.org/spec/BPMN/20100524/DI"'
    ' xmlns:dc="http://www.omg.org/spec/DD/20100524/DC"'
    ' xmlns:di="http://www.omg.org/spec/DD/20100524/DI"'
    ' xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' id="Definitions_1" targetNamespace="http://bpmn.io/schema/bpmn">\n'
)
LANE_HEIGHT = 200.0
STEP = 150.0
SIZES = {"Event": (36.0, 36.0), "Gateway": (50.0, 50.0)}


# --- building documents --------------------------------------------------------------------------


def form(*fields: str) -> str:
    return (
        "<bpmn:extensionElements><camunda:formData>"
        + "".join(fields)
        + "</camunda:formData></bpmn:extensionElements>"
    )


def form_field(
    field_id: str,
    field_type: str = "string",
    *,
    default: str | None = None,
    constraints: dict[str, str | None] | None = None,
    properties: dict[str, str] | None = None,
    options: dict[str, str] | None = None,
) -> str:
    attrs = (
        f"id={quoteattr(field_id)} label={quoteattr(field_id.title())} type={quoteattr(field_type)}"
    )
    if default is not None:
        attrs += f" defaultValue={quoteattr(default)}"
    body = ""
    if constraints:
        body += "<camunda:validation>"
        for name, config in constraints.items():
            config_attr = "" if config is None else f" config={quoteattr(config)}"
            body += f"<camunda:constraint name={quoteattr(name)}{config_attr} />"
        body += "</camunda:validation>"
    if properties:
        body += "<camunda:properties>"
        for prop_id, value in properties.items():
            body += f"<camunda:property id={quoteattr(prop_id)} value={quoteattr(value)} />"
        body += "</camunda:properties>"
    for option_id, name in (options or {}).items():
        body += f"<camunda:value id={quoteattr(option_id)} name={quoteattr(name)} />"
    return f"<camunda:formField {attrs}>{body}</camunda:formField>"


def script(source: str) -> str:
    return f"<bpmn:script>{escape(source)}</bpmn:script>"


def timer(kind: str, expression: str) -> str:
    return (
        f'<bpmn:timerEventDefinition id="TimerDef_{kind}">'
        f'<bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(expression)}</bpmn:{kind}>'
        "</bpmn:timerEventDefinition>"
    )


@dataclass
class Node:
    id: str
    tag: str
    lane: str | None = "service_desk"
    inner: str = ""
    attrs: str = ""
    parent: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    shape: bool = True
    plane: str | None = None  # drawn in a drill-down diagram of this subprocess


@dataclass
class Flow:
    id: str
    source: str
    target: str
    condition: str | None = None
    attrs: str = ""
    parent: str | None = None
    edge: bool = True


IMPACT = form_field(
    "impact",
    "enum",
    constraints={"required": None},
    options={"1": "High", "2": "Medium", "3": "Low"},
)
ACKNOWLEDGED = form_field("manager_acknowledged", "boolean", constraints={"required": None})


def _default_nodes() -> list[Node]:
    return [
        Node("StartEvent_1", "startEvent"),
        Node("Task_record", "userTask", attrs='camunda:formKey="generated"', inner=form(IMPACT)),
        Node(
            "Script_priority",
            "scriptTask",
            attrs='scriptFormat="python"',
            inner=script(
                "priority = itsm_priority(impact, impact)\nmajor = itsm_major(impact, priority)"
            ),
        ),
        Node("Gateway_major", "exclusiveGateway", attrs='default="Flow_normal"'),
        Node(
            "Task_review",
            "userTask",
            lane="incident_manager",
            attrs='camunda:formKey="generated"',
            inner=form(ACKNOWLEDGED),
        ),
        Node("EndEvent_1", "endEvent"),
    ]


def _default_flows() -> list[Flow]:
    return [
        Flow("Flow_1", "StartEvent_1", "Task_record"),
        Flow("Flow_2", "Task_record", "Script_priority"),
        Flow("Flow_3", "Script_priority", "Gateway_major"),
        Flow("Flow_major", "Gateway_major", "Task_review", condition="major or priority <= 2"),
        Flow("Flow_normal", "Gateway_major", "EndEvent_1"),
        Flow("Flow_5", "Task_review", "EndEvent_1"),
    ]


@dataclass
class Doc:
    """A small valid process: start, a user task with a form, a script, a gateway, a review
    in another lane, an end; one pool, two lanes, and a diagram."""

    nodes: list[Node] = field(default_factory=_default_nodes)
    flows: list[Flow] = field(default_factory=_default_flows)
    lanes: list[str] = field(default_factory=lambda: ["service_desk", "incident_manager"])
    process_attrs: str = 'isExecutable="true"'
    extra_process_xml: str = ""
    extra_definitions_xml: str = ""
    diagram: bool = True

    # -- editing --

    def node(self, node_id: str) -> Node:
        return next(n for n in self.nodes if n.id == node_id)

    def flow(self, flow_id: str) -> Flow:
        return next(f for f in self.flows if f.id == flow_id)

    def insert_after(self, before: str, node: Node) -> Node:
        """Splice `node` into the single flow leaving `before`."""
        (outgoing,) = [f for f in self.flows if f.source == before]
        self.nodes.insert(self.nodes.index(self.node(before)) + 1, node)
        self.flows.append(Flow(f"Flow_to_{node.id}", node.id, outgoing.target, parent=node.parent))
        outgoing.target = node.id
        return node

    # -- layout --

    def _top_level(self) -> list[Node]:
        return [n for n in self.nodes if n.parent is None]

    def _index_of(self, node: Node) -> int:
        return next(i for i, n in enumerate(self._top_level()) if n is node)

    def _width(self) -> float:
        right = max((x + w for x, _, w, _ in map(self.box, self._top_level())), default=0.0)
        return right + 100

    def box(self, node: Node) -> tuple[float, float, float, float]:
        if node.bounds is not None:
            return node.bounds
        index = self._index_of(node)
        lane_index = self.lanes.index(node.lane) if node.lane in self.lanes else 0
        width, height = next(
            (size for suffix, size in SIZES.items() if node.tag.endswith(suffix)), (100.0, 80.0)
        )
        center_x = 130 + index * STEP
        center_y = lane_index * LANE_HEIGHT + LANE_HEIGHT / 2
        return center_x - width / 2, center_y - height / 2, width, height

    def _center(self, node_id: str) -> tuple[float, float]:
        x, y, w, h = self.box(self.node(node_id))
        return x + w / 2, y + h / 2

    # -- XML --

    def _node_xml(self, node: Node) -> str:
        children = "".join(self._node_xml(n) for n in self.nodes if n.parent == node.id)
        flows = "".join(self._flow_xml(f) for f in self.flows if f.parent == node.id)
        return (
            f'<bpmn:{node.tag} id="{node.id}" {node.attrs}>{node.inner}{children}{flows}'
            f"</bpmn:{node.tag}>\n"
        )

    @staticmethod
    def _flow_xml(flow: Flow) -> str:
        condition = ""
        if flow.condition is not None:
            condition = (
                '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">'
                f"{escape(flow.condition)}</bpmn:conditionExpression>"
            )
        return (
            f'<bpmn:sequenceFlow id="{flow.id}" sourceRef="{flow.source}" '
            f'targetRef="{flow.target}" {flow.attrs}>{condition}</bpmn:sequenceFlow>\n'
        )

    def _lanes_xml(self) -> str:
        lanes = ""
        for name in self.lanes:
            refs = "".join(
                f"<bpmn:flowNodeRef>{n.id}</bpmn:flowNodeRef>" for n in self.nodes if n.lane == name
            )
            lanes += f'<bpmn:lane id="Lane_{name}" name="{name}">{refs}</bpmn:lane>\n'
        return f'<bpmn:laneSet id="LaneSet_1">{lanes}</bpmn:laneSet>\n' if self.lanes else ""

    def _diagram_xml(self) -> str:
        shapes = [self._shape("Participant_1", (0, 0, self._width() + 30, self._lanes_height()))]
        for index, name in enumerate(self.lanes):
            box = (30, index * LANE_HEIGHT, self._width(), LANE_HEIGHT)
            shapes.append(self._shape(f"Lane_{name}", box))
        diagrams: dict[str | None, list[str]] = {None: shapes}
        for node in self.nodes:
            if node.shape:
                diagrams.setdefault(node.plane, []).append(self._shape(node.id, self.box(node)))
        for flow in self.flows:
            if flow.edge:
                plane = next((n.plane for n in self.nodes if n.id == flow.source), None)
                diagrams.setdefault(plane, []).append(self._edge(flow))
        return "".join(
            f'<bpmndi:BPMNDiagram id="Diagram_{plane or 1}">'
            f'<bpmndi:BPMNPlane id="Plane_{plane or 1}" '
            f'bpmnElement="{plane or "Collaboration_1"}">\n'
            + "".join(items)
            + "</bpmndi:BPMNPlane></bpmndi:BPMNDiagram>\n"
            for plane, items in diagrams.items()
        )

    def _lanes_height(self) -> float:
        return LANE_HEIGHT * max(1, len(self.lanes))

    @staticmethod
    def _shape(element: str, box: tuple[float, float, float, float]) -> str:
        x, y, w, h = box
        return (
            f'<bpmndi:BPMNShape id="{element}_di" bpmnElement="{element}">'
            f'<dc:Bounds x="{x}" y="{y}" width="{w}" height="{h}" /></bpmndi:BPMNShape>\n'
        )

    def _edge(self, flow: Flow) -> str:
        points = ""
        for node_id in (flow.source, flow.target):
            if any(n.id == node_id for n in self.nodes):
                x, y = self._center(node_id)
                points += f'<di:waypoint x="{x}" y="{y}" />'
        return (
            f'<bpmndi:BPMNEdge id="{flow.id}_di" bpmnElement="{flow.id}">{points}'
            "</bpmndi:BPMNEdge>\n"
        )

    def xml(self) -> str:
        body = "".join(self._node_xml(n) for n in self._top_level())
        body += "".join(self._flow_xml(f) for f in self.flows if f.parent is None)
        return (
            HEADER
            + '<bpmn:collaboration id="Collaboration_1">'
            + '<bpmn:participant id="Participant_1" name="Incident" processRef="Process_1" />'
            + "</bpmn:collaboration>\n"
            + f'<bpmn:process id="Process_1" {self.process_attrs}>\n'
            + self._lanes_xml()
            + body
            + self.extra_process_xml
            + "</bpmn:process>\n"
            + self.extra_definitions_xml
            + (self._diagram_xml() if self.diagram else "")
            + "</bpmn:definitions>\n"
        )

    def lint(self) -> list[LintProblem]:
        return lint_xml(self.xml())


def lint_xml(text: str) -> list[LintProblem]:
    return lint_bytes(text.encode(), helper_names=HELPERS, roles=ROLES)


def replaced(text: str, old: str, new: str) -> str:
    assert old in text, f"test bug: {old!r} not in document"
    return text.replace(old, new)


def matching(problems: list[LintProblem], element: str | None, fragment: str) -> LintProblem:
    """The one problem on `element` whose message contains `fragment`."""
    found = [p for p in problems if p.element == element and fragment in p.message]
    assert len(found) == 1, f"expected one {element!r} problem with {fragment!r}, got {problems}"
    return found[0]


def only(problems: list[LintProblem], element: str | None, fragment: str) -> LintProblem:
    assert len(problems) == 1, problems
    return matching(problems, element, fragment)


def line_of(text: str, needle: str) -> int:
    return text[: text.index(needle)].count("\n") + 1


# --- the valid document --------------------------------------------------------------------------


def test_minimal_valid_document_has_no_problems() -> None:
    assert Doc().lint() == []


def test_minimal_valid_document_is_accepted_by_spiffworkflow() -> None:
    from SpiffWorkflow.camunda.parser import CamundaParser

    parser = CamundaParser()
    parser.add_bpmn_xml(parse_bpmn_xml(Doc().xml().encode()))
    spec = parser.get_spec("Process_1")
    assert spec.task_specs["Task_review"].lane == "incident_manager"
    assert [f.id for f in spec.task_specs["Task_record"].form.fields] == ["impact"]


def test_problem_carries_element_id_and_source_line() -> None:
    doc = Doc()
    doc.node("Task_record").attrs += ' camunda:assignee="bob"'
    text = doc.xml()
    problem = only(lint_xml(text), "Task_record", "camunda:assignee")
    assert problem.line == line_of(text, '<bpmn:userTask id="Task_record"')


def test_problems_are_sorted_by_line() -> None:
    doc = Doc()
    doc.node("EndEvent_1").attrs += ' camunda:asyncBefore="true"'
    doc.node("StartEvent_1").attrs += ' camunda:asyncAfter="true"'
    lines = [p.line or 0 for p in doc.lint()]
    assert len(lines) == 2 and lines == sorted(lines)


# --- safe_xml ------------------------------------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol9;</bpmn:definitions>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE definitions [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D">
<bpmn:documentation>&xxe;</bpmn:documentation></bpmn:definitions>
"""

MINIMAL_DEFINITIONS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D"/>\n'
)


def _passwd_fragments() -> list[str]:
    try:
        lines = Path("/etc/passwd").read_text().splitlines()
    except OSError:
        return ["root:x:0:0"]
    return [line for line in lines[:3] if line]


def test_parse_accepts_bpmn_definitions() -> None:
    tree = parse_bpmn_xml(MINIMAL_DEFINITIONS)
    assert tree.getroot().get("id") == "D"


def test_parse_refuses_billion_laughs_quickly() -> None:
    started = time.perf_counter()
    with pytest.raises(UnsafeXmlError, match="DOCTYPE") as caught:
        parse_bpmn_xml(BILLION_LAUGHS)
    assert time.perf_counter() - started < 1.0
    assert caught.value.line == 2


def test_parse_refuses_xxe_and_leaks_nothing_from_the_file() -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE") as caught:
        parse_bpmn_xml(XXE)
    problems = lint_bytes(XXE, helper_names=HELPERS, roles=ROLES)
    reported = str(caught.value) + repr(caught.value.args) + repr(problems)
    for fragment in _passwd_fragments():
        assert fragment not in reported
    assert problems == [LintProblem(None, 2, str(caught.value))]


def test_parse_refuses_doctype_even_if_the_byte_scan_missed_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Defence in depth: with the raw-byte scan disabled, the parser must still neither
    # expand nor fetch the entity, and the parsed DOCTYPE must still be refused.
    monkeypatch.setattr(safe_xml, "_refuse_dtd_markup", lambda data: None)
    with pytest.raises(UnsafeXmlError, match="DOCTYPE") as caught:
        parse_bpmn_xml(XXE)
    for fragment in _passwd_fragments():
        assert fragment not in str(caught.value)
    tree = safe_xml._parse(XXE)
    text = etree.tostring(tree).decode()
    assert all(fragment not in text for fragment in _passwd_fragments())
    # libxml2 refuses the expansion by itself; either way nothing is expanded.
    with pytest.raises(UnsafeXmlError):
        parse_bpmn_xml(BILLION_LAUGHS)


@pytest.mark.parametrize(
    "data",
    [
        b'<!DOCTYPE bpmn:definitions SYSTEM "http://example.invalid/x.dtd">'
        b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
        b"<!DOCTYPE html><html/>",
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode(
            "utf-16"
        ),
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a><a/>'.encode("utf-16-le"),
    ],
    ids=["external-dtd", "html", "utf16-with-bom", "utf16-without-bom"],
)
def test_parse_refuses_any_doctype(data: bytes) -> None:
    with pytest.raises(UnsafeXmlError, match="DOCTYPE"):
        parse_bpmn_xml(data)


def test_parse_refuses_utf16_bpmn_which_utf8_document_converts() -> None:
    # Documents are stored and served as UTF-8 (tests/test_bounds_encoding.py).
    text = MINIMAL_DEFINITIONS.decode().replace("UTF-8", "UTF-16")
    with pytest.raises(UnsafeXmlError, match="encoded as UTF-16") as caught:
        parse_bpmn_xml(text.encode("utf-16"))
    assert caught.value.line == 1
    converted = safe_xml.utf8_document(text.encode("utf-16"))
    assert parse_bpmn_xml(converted).getroot().get("id") == "D"


def test_parse_refuses_document_over_5_mib() -> None:
    data = MINIMAL_DEFINITIONS + b" " * (MAX_BPMN_BYTES + 1 - len(MINIMAL_DEFINITIONS))
    assert len(data) == 5 * 1024 * 1024 + 1
    with pytest.raises(UnsafeXmlError, match=str(MAX_BPMN_BYTES)) as caught:
        parse_bpmn_xml(data)
    assert "5 MiB" in str(caught.value)


def test_parse_accepts_document_of_exactly_5_mib() -> None:
    data = MINIMAL_DEFINITIONS + b" " * (MAX_BPMN_BYTES - len(MINIMAL_DEFINITIONS))
    assert parse_bpmn_xml(data).getroot().get("id") == "D"


def test_parse_refuses_truncated_xml_with_line() -> None:
    data = Doc().xml().encode()
    truncated = data[: len(data) // 2]
    with pytest.raises(UnsafeXmlError, match="malformed XML at line") as caught:
        parse_bpmn_xml(truncated)
    assert caught.value.line == truncated.count(b"\n") + 1


def test_parse_refuses_malformed_xml_with_line() -> None:
    data = b'<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">\n<a>\n</b>'
    with pytest.raises(UnsafeXmlError, match="malformed XML at line 3") as caught:
        parse_bpmn_xml(data)
    assert caught.value.line == 3
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"   \n"])
def test_parse_refuses_empty_document(data: bytes) -> None:
    with pytest.raises(UnsafeXmlError, match="empty"):
        parse_bpmn_xml(data)


@pytest.mark.parametrize(
    "data",
    [
        b"<html><body/></html>",
        b'<definitions xmlns="http://example.com/not-bpmn"/>',
        b'<bpmn:process xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"/>',
    ],
)
def test_parse_refuses_non_bpmn_root(data: bytes) -> None:
    with pytest.raises(UnsafeXmlError, match="root element") as caught:
        parse_bpmn_xml(data)
    assert caught.value.line == 1


def test_parse_requires_bytes() -> None:
    with pytest.raises(TypeError):
        parse_bpmn_xml(MINIMAL_DEFINITIONS.decode())  # type: ignore[arg-type]


def test_lint_bytes_turns_unsafe_xml_into_one_problem() -> None:
    (problem,) = lint_bytes(b"<a>\n<b>", helper_names=HELPERS, roles=ROLES)
    assert problem.element is None and problem.line == 2
    assert problem.message.startswith("malformed XML at line 2: ")


def test_lint_bpmn_accepts_a_parsed_tree() -> None:
    tree = parse_bpmn_xml(Doc().xml().encode())
    assert lint_bpmn(tree, helper_names=HELPERS, roles=ROLES) == []


# --- rule 1: ids ---------------------------------------------------------------------------------


@pytest.mark.parametrize("reserved", ["Start", "End", "StartEventSplit", "X.BoundaryEventJoin"])
def test_reserved_ids_are_rejected(reserved: str) -> None:
    text = Doc().xml().replace("Task_review", reserved)
    problems = lint_xml(text)
    problem = only(problems, reserved, "collides with a SpiffWorkflow internal task")
    assert problem.line == line_of(text, f'<bpmn:userTask id="{reserved}"')


def test_reserved_id_on_a_non_flow_element_is_rejected() -> None:
    text = replaced(Doc().xml(), 'id="Collaboration_1"', 'id="End"')
    text = text.replace('bpmnElement="Collaboration_1"', 'bpmnElement="End"')
    only(lint_xml(text), "End", "collides with a SpiffWorkflow internal task")


def test_duplicate_ids_are_rejected() -> None:
    doc = Doc()
    doc.extra_process_xml = '<bpmn:textAnnotation id="Task_record" />'
    text = doc.xml()
    problem = only(lint_xml(text), "Task_record", "duplicate id 'Task_record'")
    assert problem.line == line_of(text, '<bpmn:textAnnotation id="Task_record"')
    first_line = line_of(text, '<bpmn:userTask id="Task_record"')
    assert f"first used on line {first_line}" in problem.message


def test_form_field_ids_may_repeat_across_forms() -> None:
    doc = Doc()
    doc.node("Task_review").inner = form(ACKNOWLEDGED, IMPACT)
    assert doc.lint() == []


# --- rule 2: unsupported constructs --------------------------------------------------------------


def _with_event(tag: str, inner: str, node_id: str = "Event_x") -> Doc:
    doc = Doc()
    doc.insert_after("Task_record", Node(node_id, tag, inner=inner))
    return doc


@pytest.mark.parametrize(
    ("tag", "inner", "fragment"),
    [
        (
            "intermediateThrowEvent",
            '<bpmn:linkEventDefinition id="L" name="jump" />',
            "link events",
        ),
        (
            "intermediateCatchEvent",
            '<bpmn:conditionalEventDefinition id="C"><bpmn:condition>major</bpmn:condition>'
            "</bpmn:conditionalEventDefinition>",
            "conditional events",
        ),
        (
            "intermediateThrowEvent",
            '<bpmn:compensateEventDefinition id="C" />',
            "compensation",
        ),
        (
            "intermediateCatchEvent",
            '<bpmn:timerEventDefinition id="T"><bpmn:timeCycle>"R3/PT1H"</bpmn:timeCycle>'
            "</bpmn:timerEventDefinition>",
            "timer cycles are out of scope",
        ),
        (
            "intermediateThrowEvent",
            "<bpmn:eventDefinitionRef>Signal_1</bpmn:eventDefinitionRef>",
            "eventDefinitionRef",
        ),
    ],
    ids=["link", "conditional", "compensate", "time-cycle", "definition-ref"],
)
def test_unsupported_event_kinds_are_rejected(tag: str, inner: str, fragment: str) -> None:
    only(_with_event(tag, inner).lint(), "Event_x", fragment)


def test_signal_end_event_is_rejected() -> None:
    doc = Doc()
    doc.node("EndEvent_1").inner = '<bpmn:signalEventDefinition id="S" />'
    only(doc.lint(), "EndEvent_1", "ignores a signalEventDefinition on an endEvent")


def test_spiffworkflow_really_drops_a_signal_end_event() -> None:
    from SpiffWorkflow.bpmn.specs.event_definitions.simple import NoneEventDefinition
    from SpiffWorkflow.camunda.parser import CamundaParser

    doc = Doc()
    doc.node("EndEvent_1").inner = '<bpmn:signalEventDefinition id="S" />'
    parser = CamundaParser()
    parser.add_bpmn_xml(parse_bpmn_xml(doc.xml().encode()))
    end = parser.get_spec("Process_1").task_specs["EndEvent_1"]
    assert isinstance(end.event_definition, NoneEventDefinition)


def test_message_end_event_is_fine() -> None:
    doc = Doc()
    doc.node("EndEvent_1").inner = '<bpmn:messageEventDefinition id="M" />'
    assert doc.lint() == []


def test_error_start_event_in_event_subprocess_is_rejected() -> None:
    # The engine's start-event parser ignores error definitions: the subprocess would start
    # with the process instead of on the error.
    doc = Doc()
    doc.nodes += [
        Node(
            "Sub_err",
            "subProcess",
            attrs='triggeredByEvent="true"',
            lane=None,
            bounds=(180, 420, 300, 120),
        ),
        Node(
            "Start_err",
            "startEvent",
            parent="Sub_err",
            lane="service_desk",
            inner='<bpmn:errorEventDefinition id="E" />',
            bounds=(200, 460, 36, 36),
        ),
        Node(
            "End_err", "endEvent", parent="Sub_err", lane="service_desk", bounds=(400, 460, 36, 36)
        ),
    ]
    doc.flows.append(Flow("Flow_err", "Start_err", "End_err", parent="Sub_err"))
    doc.lanes = ["service_desk", "incident_manager", "level2"]
    problems = doc.lint()
    matching(problems, "Start_err", "ignores an errorEventDefinition on a startEvent")


def test_boundary_event_without_definition_is_rejected() -> None:
    doc = _doc_with_boundary("")
    only(doc.lint(), "Boundary_1", "needs an event definition")


def test_compensation_boundary_and_handler_are_rejected() -> None:
    doc = _doc_with_boundary('<bpmn:compensateEventDefinition id="C" />')
    doc.node("Task_escalate").attrs += ' isForCompensation="true"'
    problems = doc.lint()
    matching(problems, "Boundary_1", "compensation")
    matching(problems, "Task_escalate", "compensation")


@pytest.mark.parametrize(
    ("tag", "fragment"),
    [
        ("complexGateway", "complex gateways"),
        ("callActivity", "call activities are out of scope"),
        ("businessRuleTask", "business rule tasks"),
    ],
)
def test_unsupported_node_types_are_rejected(tag: str, fragment: str) -> None:
    doc = Doc()
    doc.insert_after("Script_priority", Node("Node_x", tag))
    only(doc.lint(), "Node_x", fragment)


def test_transaction_is_rejected() -> None:
    doc = _doc_with_subprocess(tag="transaction")
    only(doc.lint(), "Sub_1", "transactions are not supported")


def test_expanded_subprocess_drawn_around_its_children_is_fine() -> None:
    assert _doc_with_subprocess().lint() == []


@pytest.mark.parametrize(
    ("attribute", "fragment"),
    [
        ('camunda:asyncBefore="true"', "asynchronous continuations"),
        ('camunda:asyncAfter="true"', "asynchronous continuations"),
        ('camunda:candidateUsers="bob"', "candidate users"),
        ('camunda:candidateGroups="desk"', "candidate groups"),
        ('camunda:assignee="bob"', "assignees"),
        ('camunda:resultVariable="x"', "result variables"),
    ],
)
def test_ignored_camunda_attributes_are_rejected(attribute: str, fragment: str) -> None:
    doc = Doc()
    doc.node("Task_record").attrs += f" {attribute}"
    problem = only(doc.lint(), "Task_record", fragment)
    assert "the engine ignores" in problem.message


def test_async_false_is_harmless() -> None:
    doc = Doc()
    doc.node("Task_record").attrs += ' camunda:asyncBefore="false"'
    assert doc.lint() == []


@pytest.mark.parametrize(
    ("attribute", "fragment"),
    [
        ('camunda:type="external" camunda:topic="t"', "external tasks"),
        ('camunda:class="org.example.Delegate"', "Java delegates"),
        ('camunda:delegateExpression="${d}"', "delegate expressions"),
        ('camunda:expression="${d.run()}"', "expressions"),
    ],
)
def test_service_task_implementations_are_rejected(attribute: str, fragment: str) -> None:
    doc = Doc()
    doc.insert_after("Script_priority", Node("Service_1", "serviceTask", attrs=attribute))
    problems = doc.lint()
    assert problems and all(p.element == "Service_1" for p in problems), problems
    assert all(fragment in p.message for p in problems), problems


def test_plain_service_task_is_fine() -> None:
    doc = Doc()
    doc.insert_after("Script_priority", Node("Service_1", "serviceTask"))
    assert doc.lint() == []


@pytest.mark.parametrize(
    ("extension", "fragment"),
    [
        ('<camunda:executionListener event="start" class="X" />', "execution listeners"),
        ('<camunda:taskListener event="create" class="X" />', "task listeners"),
        (
            "<camunda:connector><camunda:connectorId>http</camunda:connectorId></camunda:connector>",
            "connectors",
        ),
        (
            '<camunda:inputOutput><camunda:inputParameter name="a">1</camunda:inputParameter>'
            "</camunda:inputOutput>",
            "input/output mappings",
        ),
    ],
)
def test_ignored_camunda_extension_elements_are_rejected(extension: str, fragment: str) -> None:
    doc = Doc()
    doc.node("Task_review").inner = replaced(
        form(ACKNOWLEDGED), "<bpmn:extensionElements>", f"<bpmn:extensionElements>{extension}"
    )
    text = doc.xml()
    problem = only(lint_xml(text), "Task_review", fragment)
    assert problem.line == line_of(text, extension[:20])


def test_camunda_expression_on_a_message_definition_is_read_by_the_engine() -> None:
    doc = Doc()
    doc.node(
        "EndEvent_1"
    ).inner = '<bpmn:messageEventDefinition id="M" camunda:expression="priority" />'
    assert doc.lint() == []


# --- rule 3: lanes -------------------------------------------------------------------------------


def test_lane_name_must_be_a_role() -> None:
    doc = Doc()
    doc.lanes[1] = "janitor"
    doc.node("Task_review").lane = "janitor"
    only(doc.lint(), "Lane_janitor", "lane name 'janitor' is not a role")


def test_lane_needs_a_name() -> None:
    text = replaced(Doc().xml(), 'name="incident_manager"', "")
    only(lint_xml(text), "Lane_incident_manager", "needs a name")


def test_every_lane_role_is_accepted() -> None:
    doc = Doc()
    doc.lanes = sorted(ROLES)
    doc.node("Task_review").lane = "director"
    assert doc.lint() == []


def test_node_outside_every_lane_is_rejected() -> None:
    doc = Doc()
    doc.node("Script_priority").lane = None
    only(doc.lint(), "Script_priority", "is not in any lane")


def test_node_in_two_lanes_is_rejected() -> None:
    text = replaced(
        Doc().xml(),
        "<bpmn:flowNodeRef>Task_review</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>Task_review</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>Task_record</bpmn:flowNodeRef>",
    )
    problems = lint_xml(text)
    matching(problems, "Task_record", "is referenced by 2 lanes")


def test_flow_node_ref_to_nothing_is_rejected() -> None:
    text = replaced(
        Doc().xml(),
        "<bpmn:flowNodeRef>Task_review</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>Task_review</bpmn:flowNodeRef><bpmn:flowNodeRef>Ghost</bpmn:flowNodeRef>",
    )
    only(lint_xml(text), "Lane_incident_manager", "flowNodeRef 'Ghost' names no flow node")


def test_process_with_user_tasks_needs_lanes() -> None:
    doc = Doc()
    doc.lanes = []
    doc.diagram = False
    text = doc.xml()
    problems = [p for p in lint_xml(text) if "diagram" not in p.message]
    only(problems, "Process_1", "has user tasks but no lanes")


def test_process_without_user_tasks_needs_no_lanes() -> None:
    doc = Doc()
    doc.nodes = [n for n in doc.nodes if n.tag != "userTask"]
    doc.node("Script_priority").inner = script("priority = 1\nmajor = False")
    doc.flows = [
        Flow("Flow_1", "StartEvent_1", "Script_priority"),
        Flow("Flow_3", "Script_priority", "Gateway_major"),
        Flow("Flow_major", "Gateway_major", "EndEvent_1", condition="major"),
        Flow("Flow_normal", "Gateway_major", "EndEvent_1"),
    ]
    for node in doc.nodes:
        node.lane = None
    doc.lanes = []
    assert doc.lint() == []


def test_childlaneset_is_rejected() -> None:
    text = replaced(
        Doc().xml(),
        '<bpmn:lane id="Lane_incident_manager" name="incident_manager">',
        '<bpmn:lane id="Lane_incident_manager" name="incident_manager">'
        '<bpmn:childLaneSet id="Child_1" />',
    )
    only(lint_xml(text), "Lane_incident_manager", "nested lanes")


def _doc_with_subprocess(
    tag: str = "subProcess", sub_lane: str | None = None, tall: bool = True
) -> Doc:
    """Script_priority → Sub_1 [Sub_start → Sub_task → Sub_end] → Gateway_major. A tall
    subprocess spans both lanes with Sub_task in the incident_manager lane; a short one sits
    in the service_desk lane with everything inside it."""
    doc = Doc()
    sub = Node("Sub_1", tag, lane=sub_lane, attrs='isExpanded="true"')
    doc.insert_after("Script_priority", sub)
    # Lay out the nodes after the subprocess further right, leaving room for it.
    after = False
    for node in doc._top_level():
        if node is sub:
            after = True
        elif after:
            x, y, w, h = doc.box(node)
            node.bounds = (x + 350, y, w, h)
    x = doc.box(doc.node("Script_priority"))[0] + 150
    sub.bounds = (x, 20, 420, 360) if tall else (x, 10, 420, 180)
    task_y = 260 if tall else 60
    doc.nodes += [
        Node("Sub_start", "startEvent", parent="Sub_1", bounds=(x + 30, 82, 36, 36)),
        Node(
            "Sub_task",
            "userTask",
            parent="Sub_1",
            lane="incident_manager" if tall else "service_desk",
            attrs='camunda:formKey="generated"',
            inner=form(form_field("sub_note")),
            bounds=(x + 150, task_y, 100, 80),
        ),
        Node("Sub_end", "endEvent", parent="Sub_1", bounds=(x + 350, 82, 36, 36)),
    ]
    doc.flows += [
        Flow("Flow_s1", "Sub_start", "Sub_task", parent="Sub_1"),
        Flow("Flow_s2", "Sub_task", "Sub_end", parent="Sub_1"),
    ]
    return doc


def test_subprocess_without_lane_lets_children_keep_their_lanes() -> None:
    assert _doc_with_subprocess().lint() == []


def test_subprocess_lane_overrides_childrens_lanes() -> None:
    problems = _doc_with_subprocess(sub_lane="service_desk").lint()
    problem = matching(problems, "Sub_task", "is in lane 'incident_manager'")
    assert "subprocess 'Sub_1' that subprocess's lane 'service_desk'" in problem.message


def test_spiffworkflow_really_gives_children_the_subprocess_lane() -> None:
    from SpiffWorkflow.camunda.parser import CamundaParser

    for sub_lane, expected in ((None, "incident_manager"), ("service_desk", "service_desk")):
        parser = CamundaParser()
        parser.add_bpmn_xml(parse_bpmn_xml(_doc_with_subprocess(sub_lane=sub_lane).xml().encode()))
        specs = parser.get_subprocess_specs("Process_1")
        assert specs["Sub_1"].task_specs["Sub_task"].lane == expected


def test_children_may_inherit_the_subprocess_lane() -> None:
    doc = _doc_with_subprocess(sub_lane="service_desk", tall=False)
    for node_id in ("Sub_start", "Sub_task", "Sub_end"):
        doc.node(node_id).lane = None
    assert doc.lint() == []


def test_children_drawn_outside_the_inherited_lane_are_rejected() -> None:
    doc = _doc_with_subprocess(sub_lane="service_desk", tall=False)
    doc.node("Sub_task").lane = None
    x, _, w, h = doc.box(doc.node("Sub_task"))
    doc.node("Sub_task").bounds = (x, 150, w, h)
    problems = doc.lint()
    only(problems, "Sub_task", "shape lies outside its lane 'service_desk'")


# --- rule 4: forms -------------------------------------------------------------------------------


def test_start_event_form_is_rejected() -> None:
    doc = Doc()
    doc.node("StartEvent_1").inner = form(form_field("title"))
    only(doc.lint(), "StartEvent_1", "drops forms on start events")


def test_start_event_form_key_is_rejected() -> None:
    doc = Doc()
    doc.node("StartEvent_1").attrs = 'camunda:formKey="embedded:app:start.html"'
    only(doc.lint(), "StartEvent_1", "drops forms on start events")


def test_form_data_without_form_key_is_rejected() -> None:
    doc = Doc()
    doc.node("Task_review").attrs = ""
    only(doc.lint(), "Task_review", "no camunda:formKey")


def test_form_data_on_a_manual_task_is_rejected() -> None:
    doc = Doc()
    doc.insert_after("Task_record", Node("Manual_1", "manualTask", inner=form(form_field("x"))))
    only(doc.lint(), "Manual_1", "formData on a manualTask is ignored")


def _with_fields(*fields: str) -> list[LintProblem]:
    doc = Doc()
    doc.node("Task_review").inner = form(ACKNOWLEDGED, *fields)
    return doc.lint()


def test_rich_valid_form_has_no_problems() -> None:
    assert (
        _with_fields(
            form_field("resolved_at_desk", "boolean", constraints={"required": None}),
            form_field(
                "resolution",
                "string",
                constraints={"minlength": "3", "maxlength": "2000"},
                properties={"required_if": "resolved_at_desk", "multiline": "true"},
            ),
            form_field(
                "code",
                "enum",
                default="fixed",
                options={"fixed": "Fixed", "workaround": "Workaround"},
            ),
            form_field("count", "long", default="2", constraints={"min": "1", "max": "9"}),
            form_field("due", "date", constraints={"min": "2024-01-01", "readonly": None}),
        )
        == []
    )


def test_unknown_constraint_is_rejected() -> None:
    problem = only(
        _with_fields(form_field("note", constraints={"pattern": "[a-z]+"})),
        "Task_review",
        "form field 'note': constraint 'pattern' is not allowed",
    )
    assert "required, minlength" in problem.message


def test_unknown_property_is_rejected() -> None:
    only(
        _with_fields(form_field("note", properties={"placeholder": "Type here"})),
        "Task_review",
        "form field 'note': property 'placeholder' is not allowed",
    )


@pytest.mark.parametrize(
    ("xml_field", "fragment"),
    [
        (form_field("note", "text"), "type 'text' is not allowed"),
        (form_field("choice", "enum"), "at least one option"),
        (form_field("count", "long", default="many"), "default 'many'"),
        (form_field("count", "long", constraints={"min": "9", "max": "1"}), "min is greater"),
        (form_field("note", constraints={"minlength": "x"}), "minlength must be a whole number"),
        (form_field("note", properties={"multiline": "yes"}), "multiline must be 'true'"),
        (form_field("note", properties={"required_if": "import os"}), "required_if"),
    ],
)
def test_bad_field_definitions_are_rejected(xml_field: str, fragment: str) -> None:
    problems = _with_fields(xml_field)
    assert problems and all(p.element == "Task_review" for p in problems), problems
    assert any(fragment in p.message for p in problems), problems


def test_required_if_must_name_fields_of_the_same_form() -> None:
    only(
        _with_fields(form_field("note", properties={"required_if": "impact == '1'"})),
        "Task_review",
        "form field 'note': required_if names 'impact', not fields of this form",
    )


def test_duplicate_field_ids_in_one_form_are_rejected() -> None:
    doc = Doc()
    doc.node("Task_review").inner = form(ACKNOWLEDGED, ACKNOWLEDGED)
    text = doc.xml()
    problem = only(lint_xml(text), "Task_review", "is used twice in this form")
    assert problem.line == line_of(text, 'id="manager_acknowledged"')


def test_field_id_colliding_with_a_helper_is_rejected() -> None:
    only(
        _with_fields(form_field("itsm_priority", "long")),
        "Task_review",
        "collides with the script helper itsm_priority()",
    )


@pytest.mark.parametrize(
    ("field_id", "fragment"),
    [
        ("class", "is a Python keyword"),
        ("due-date", "not a Python identifier"),
        ("", "needs an id"),
        ("__dict__", "must not start with '__'"),
    ],
)
def test_field_ids_must_be_python_names(field_id: str, fragment: str) -> None:
    problems = _with_fields(form_field(field_id))
    problem = only(problems, "Task_review", fragment)
    assert problem.message.startswith(f"form field {field_id!r}")


# --- rule 5: expressions -------------------------------------------------------------------------


def _with_script(source: str, **attrs: str) -> list[LintProblem]:
    doc = Doc()
    doc.node("Script_priority").inner = script(source)
    doc.node("Script_priority").attrs = " ".join(f'{k}="{v}"' for k, v in attrs.items())
    return doc.lint()


def _with_condition(condition: str) -> list[LintProblem]:
    doc = Doc()
    doc.flow("Flow_major").condition = condition
    return doc.lint()


def test_script_syntax_error_is_rejected_with_script_line() -> None:
    problems = _with_script("priority = itsm_priority(impact, impact)\nmajor = = 1")
    problem = only(problems, "Script_priority", "script is not valid Python")
    assert "line 2 of the script" in problem.message


def test_indented_script_is_rejected_because_the_engine_does_not_dedent() -> None:
    problems = _with_script("\n    priority = 1\n    major = False\n")
    only(problems, "Script_priority", "unexpected indent")


def test_script_format_must_be_python() -> None:
    problems = _with_script("priority = 1\nmajor = False", scriptFormat="javascript")
    only(problems, "Script_priority", "scriptFormat 'javascript' is not supported")


def test_script_task_needs_a_script() -> None:
    doc = Doc()
    doc.node("Script_priority").inner = ""
    doc.flow("Flow_major").condition = "impact == '1'"
    only(doc.lint(), "Script_priority", "needs exactly one non-empty bpmn:script")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("import os\npriority = 1\nmajor = False", "imports are not allowed"),
        ("from os import path\npriority = 1\nmajor = False", "imports are not allowed"),
        ("global g\npriority = 1\nmajor = False", "global/nonlocal"),
        ("priority = impact.__class__\nmajor = False", "private attribute '__class__'"),
        ("priority = impact._x\nmajor = False", "private attribute '_x'"),
        ("priority = __builtins__\nmajor = False", "the name '__builtins__'"),
        ("priority = (lambda: 1)()\nmajor = False", "lambda is not allowed"),
        ("def f():\n    return 1\npriority = 1\nmajor = False", "function and class"),
        ("class C:\n    pass\npriority = 1\nmajor = False", "function and class"),
        ("priority = eval('1')\nmajor = False", "calling eval() is not allowed"),
        ("priority = open('/etc/passwd')\nmajor = False", "calling open() is not allowed"),
        ("priority = getattr(impact, 'x')\nmajor = False", "calling getattr() is not allowed"),
        ("priority = '{0.__class__}'.format(impact)\nmajor = False", "str.format"),
        ("priority = itsm_priority(impact, urgency)\nmajor = False", "unknown name 'urgency'"),
    ],
)
def test_forbidden_script_constructs_are_rejected(source: str, fragment: str) -> None:
    problems = _with_script(source)
    matching(problems, "Script_priority", fragment)
    assert all(p.element == "Script_priority" for p in problems), problems


def test_script_may_use_fields_helpers_builtins_and_its_own_variables() -> None:
    source = (
        "codes = [c for c in str(impact)]\n"
        "low, high = min(1, 2), max(3, len(codes))\n"
        "priority = itsm_priority(impact, impact) if low else abs(round(high))\n"
        "major = bool(itsm_major(impact, priority)) and int(priority) < high\n"
        "due = itsm_sla_due(priority)\n"
    )
    assert _with_script(source) == []


def test_script_assigning_a_helper_name_is_rejected() -> None:
    problems = _with_script("itsm_priority = 1\npriority = 1\nmajor = False")
    only(problems, "Script_priority", "assigns 'itsm_priority', which collides")


def test_condition_in_camunda_syntax_is_rejected() -> None:
    only(_with_condition("${major}"), "Flow_major", "condition is not valid Python")


def test_condition_with_unknown_name_is_rejected() -> None:
    only(_with_condition("severity == 1"), "Flow_major", "uses unknown name 'severity'")


def test_condition_over_variables_of_later_scripts_and_fields_is_fine() -> None:
    assert _with_condition("manager_acknowledged or (major and priority in (1, 2))") == []


def test_condition_leading_spaces_are_fine_like_eval() -> None:
    assert _with_condition("   major") == []


def test_condition_spread_over_indented_lines_is_rejected_like_eval() -> None:
    only(_with_condition("\n      major\n    "), "Flow_major", "unexpected indent")


def test_condition_with_forbidden_construct_is_rejected() -> None:
    only(_with_condition("major.__class__"), "Flow_major", "private attribute '__class__'")


def test_empty_condition_is_rejected() -> None:
    only(_with_condition(""), "Flow_major", "condition is empty")


def test_condition_in_another_language_is_rejected() -> None:
    text = replaced(
        Doc().xml(),
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">',
        '<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" language="javascript">',
    )
    only(lint_xml(text), "Flow_major", "condition language 'javascript'")


def _doc_with_boundary(definition: str) -> Doc:
    """A boundary event on Task_record leading to an escalation task and an end event."""
    doc = Doc()
    x, y, w, h = doc.box(doc.node("Task_record"))
    doc.nodes += [
        Node(
            "Boundary_1",
            "boundaryEvent",
            attrs='attachedToRef="Task_record" cancelActivity="false"',
            inner=definition,
            bounds=(x + 32, y + h - 18, 36, 36),
        ),
        Node(
            "Task_escalate",
            "manualTask",
            lane="incident_manager",
            bounds=(x, LANE_HEIGHT + 20, 100, 80),
        ),
        Node(
            "End_escalated",
            "endEvent",
            lane="incident_manager",
            bounds=(x + 32, LANE_HEIGHT + 140, 36, 36),
        ),
    ]
    doc.flows += [
        Flow("Flow_b1", "Boundary_1", "Task_escalate"),
        Flow("Flow_b2", "Task_escalate", "End_escalated"),
    ]
    return doc


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeDuration", '"PT4H"'),
        ("timeDuration", "'P1D'"),
        ("timeDuration", "'P1Y2M3DT4H5M6.5S'"),
        ("timeDate", "'2025-01-31T17:00:00+01:00'"),
        ("timeDate", "'2025-01-31T17:00:00Z'"),
        ("timeDate", "itsm_sla_due(priority)['resolution']"),
    ],
)
def test_valid_timers_are_fine(kind: str, expression: str) -> None:
    assert _doc_with_boundary(timer(kind, expression)).lint() == []


@pytest.mark.parametrize(
    ("kind", "expression", "fragment"),
    [
        ("timeDuration", "PT4H", "uses unknown name 'PT4H'"),
        ("timeDuration", "${due}", "timeDuration is not valid Python"),
        ("timeDuration", "'4 hours'", "is not an ISO 8601 duration"),
        ("timeDuration", "'P1DT'", "is not an ISO 8601 duration"),
        ("timeDuration", "'P1W2D'", "is not an ISO 8601 duration"),
        ("timeDuration", "4", "must evaluate to a string"),
        ("timeDate", "'2025-01-31T17:00:00'", "with a time zone"),
        ("timeDate", "'tomorrow'", "with a time zone"),
        ("timeDate", "", "timeDate is empty"),
    ],
)
def test_bad_timers_are_rejected(kind: str, expression: str, fragment: str) -> None:
    only(_doc_with_boundary(timer(kind, expression)).lint(), "Boundary_1", fragment)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(["1Y", "2M", "3W", "4D", "T", "5H", "6M", "7S", "8.5S", "P", "x"]),
        max_size=6,
    )
)
def test_every_duration_the_linter_accepts_is_accepted_by_spiffworkflow(parts: list[str]) -> None:
    from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

    from engine.workflow.bounds import is_iso_duration

    value = "P" + "".join(parts)
    if is_iso_duration(value):
        TimerEventDefinition.parse_iso_duration(value)


def test_loop_cardinality_is_checked_as_python() -> None:
    doc = Doc()
    doc.node("Task_review").inner += (
        '<bpmn:multiInstanceLoopCharacteristics camunda:elementVariable="item">'
        "<bpmn:loopCardinality>${count}</bpmn:loopCardinality>"
        "<bpmn:completionCondition>item and done</bpmn:completionCondition>"
        "</bpmn:multiInstanceLoopCharacteristics>"
    )
    problems = doc.lint()
    matching(problems, "Task_review", "loopCardinality is not valid Python")
    matching(problems, "Task_review", "completionCondition uses unknown name 'done'")
    assert len(problems) == 2


# --- rule 6: gateways ----------------------------------------------------------------------------


def test_gateway_flow_without_condition_or_default_is_rejected() -> None:
    doc = Doc()
    doc.node("Gateway_major").attrs = ""
    only(doc.lint(), "Flow_normal", "leaves exclusiveGateway 'Gateway_major' without a condition")


def test_gateway_default_must_be_an_outgoing_flow() -> None:
    doc = Doc()
    doc.node("Gateway_major").attrs = 'default="Flow_1"'
    problems = doc.lint()
    matching(problems, "Gateway_major", "default flow 'Flow_1' is not one of its outgoing flows")
    matching(problems, "Flow_normal", "without a condition")


def test_default_flow_condition_is_ignored_so_rejected() -> None:
    doc = Doc()
    doc.flow("Flow_normal").condition = "not major"
    only(doc.lint(), "Flow_normal", "the engine ignores its condition")


def test_inclusive_gateway_needs_conditions_too() -> None:
    doc = Doc()
    doc.node("Gateway_major").tag = "inclusiveGateway"
    doc.node("Gateway_major").attrs = ""
    only(doc.lint(), "Flow_normal", "leaves inclusiveGateway 'Gateway_major' without")


def test_single_unconditional_gateway_flow_is_fine() -> None:
    doc = Doc()
    doc.insert_after("Task_record", Node("Gateway_merge", "exclusiveGateway"))
    assert doc.lint() == []


def test_parallel_gateway_conditions_are_rejected() -> None:
    doc = Doc()
    doc.node("Gateway_major").tag = "parallelGateway"
    doc.node("Gateway_major").attrs = ""
    only(doc.lint(), "Flow_major", "ignores conditions on flows leaving a parallelGateway")


def test_parallel_gateway_without_conditions_is_fine() -> None:
    doc = Doc()
    doc.node("Gateway_major").tag = "parallelGateway"
    doc.node("Gateway_major").attrs = ""
    doc.flow("Flow_major").condition = None
    # Both branches end at the same end event: fine for the linter.
    assert doc.lint() == []


def test_condition_on_a_task_flow_is_rejected() -> None:
    doc = Doc()
    doc.flow("Flow_2").condition = "impact == '1'"
    only(doc.lint(), "Flow_2", "ignores conditions on flows leaving a userTask ('Task_record')")


# --- rule 7: graph -------------------------------------------------------------------------------


def test_unreachable_node_is_rejected() -> None:
    doc = Doc()
    doc.flows.remove(doc.flow("Flow_major"))
    problems = doc.lint()
    only(problems, "Task_review", "is not reachable from a start event")


def test_dead_end_node_is_rejected() -> None:
    doc = Doc()
    doc.flows.remove(doc.flow("Flow_5"))
    problems = doc.lint()
    only(problems, "Task_review", "has no path to an end event")


def test_loop_without_exit_is_rejected() -> None:
    doc = Doc()
    doc.flow("Flow_5").target = "Task_review"
    problems = doc.lint()
    only(problems, "Task_review", "has no path to an end event")


def test_loop_with_exit_is_fine() -> None:
    doc = Doc()
    doc.flow("Flow_5").target = "Task_record"
    doc.flow("Flow_2").target = "Script_priority"
    doc.insert_after(
        "Task_review",
        Node(
            "Gateway_back", "exclusiveGateway", lane="incident_manager", attrs='default="Flow_out"'
        ),
    )
    doc.flow("Flow_to_Gateway_back").condition = "not manager_acknowledged"
    doc.flows.append(Flow("Flow_out", "Gateway_back", "EndEvent_1"))
    assert doc.lint() == []


@pytest.mark.parametrize(
    ("attribute", "fragment"),
    [
        ("targetRef", "targetRef 'Ghost' does not exist"),
        ("sourceRef", "sourceRef 'Ghost' does not exist"),
    ],
)
def test_flow_to_a_missing_node_is_rejected(attribute: str, fragment: str) -> None:
    doc = Doc()
    doc.flows.append(
        Flow("Flow_ghost", "Ghost", "EndEvent_1")
        if attribute == "sourceRef"
        else Flow("Flow_ghost", "Task_review", "Ghost")
    )
    doc.node("Task_review").lane = "incident_manager"
    problems = [p for p in doc.lint() if p.element == "Flow_ghost"]
    matching(problems, "Flow_ghost", fragment)


def test_process_without_start_event_is_rejected() -> None:
    doc = Doc()
    doc.nodes.remove(doc.node("StartEvent_1"))
    doc.flows.remove(doc.flow("Flow_1"))
    only(doc.lint(), "Process_1", "has no start event")


def test_boundary_events_are_reachable_through_their_host() -> None:
    assert _doc_with_boundary(timer("timeDuration", '"PT4H"')).lint() == []


def test_subprocess_is_checked_from_its_own_start_event() -> None:
    doc = _doc_with_subprocess()
    doc.flows.remove(doc.flow("Flow_s1"))
    problems = doc.lint()
    matching(problems, "Sub_start", "has no path to an end event")
    matching(problems, "Sub_task", "is not reachable from a start event")
    matching(problems, "Sub_end", "is not reachable from a start event")
    assert len(problems) == 3, problems


def test_subprocess_needs_exactly_one_start_event() -> None:
    doc = _doc_with_subprocess()
    doc.node("Sub_start").tag = "intermediateThrowEvent"
    problems = doc.lint()
    matching(problems, "Sub_1", "exactly one start event, found 0")
    # Without a start, nothing inside is reported as unreachable: one cause, one problem.
    assert len(problems) == 1, problems


def test_flow_crossing_a_subprocess_border_is_rejected() -> None:
    doc = _doc_with_subprocess()
    doc.flows.append(Flow("Flow_cross", "Sub_task", "Task_review", parent="Sub_1"))
    problems = doc.lint()
    matching(problems, "Flow_cross", "targetRef 'Task_review' is not a flow node of the same")


def test_event_subprocess_start_counts_as_a_start() -> None:
    doc = Doc()
    doc.lanes.append("level2")
    y = 2 * LANE_HEIGHT
    doc.nodes += [
        Node(
            "Sub_evt",
            "subProcess",
            lane=None,
            attrs='triggeredByEvent="true"',
            bounds=(200, y + 20, 300, 150),
        ),
        Node(
            "Sub_evt_start",
            "startEvent",
            lane="level2",
            parent="Sub_evt",
            inner='<bpmn:messageEventDefinition id="M" />',
            bounds=(230, y + 80, 36, 36),
        ),
        Node(
            "Sub_evt_end", "endEvent", lane="level2", parent="Sub_evt", bounds=(420, y + 80, 36, 36)
        ),
    ]
    doc.flows.append(Flow("Flow_evt", "Sub_evt_start", "Sub_evt_end", parent="Sub_evt"))
    assert doc.lint() == []


def test_no_executable_process_is_rejected() -> None:
    doc = Doc()
    doc.process_attrs = 'isExecutable="false"'
    only(doc.lint(), "Definitions_1", "no executable process")


# --- rule 8: diagram -----------------------------------------------------------------------------


def test_missing_diagram_is_rejected() -> None:
    doc = Doc()
    doc.diagram = False
    problem = only(doc.lint(), "Definitions_1", "has no diagram")
    assert problem.line == 2


def test_node_without_shape_is_rejected() -> None:
    doc = Doc()
    doc.node("Task_review").shape = False
    only(doc.lint(), "Task_review", "has no shape in the diagram")


def test_lane_and_participant_need_shapes() -> None:
    text = Doc().xml()
    text = replaced(text, 'bpmnElement="Lane_incident_manager"', 'bpmnElement="Participant_1"')
    problems = lint_xml(text)
    matching(problems, "Lane_incident_manager", "has no shape")
    matching(problems, "Participant_1", "has 2 shapes")


def test_shape_with_zero_width_is_rejected() -> None:
    doc = Doc()
    doc.node("Task_review").bounds = (630, 260, 0, 80)
    only(doc.lint(), "Task_review", "positive width and height")


def test_flow_without_edge_is_rejected() -> None:
    doc = Doc()
    doc.flow("Flow_5").edge = False
    only(doc.lint(), "Flow_5", "has no edge in the diagram")


def test_edge_with_one_waypoint_is_rejected() -> None:
    text = Doc().xml()
    start = text.index('<bpmndi:BPMNEdge id="Flow_5_di"')
    point = text.index("<di:waypoint", start)
    end = text.index("/>", point) + 2
    only(lint_xml(text[:point] + text[end:]), "Flow_5", "at least two di:waypoint")


def test_dangling_bpmn_element_is_rejected() -> None:
    text = replaced(Doc().xml(), 'bpmnElement="Flow_5"', 'bpmnElement="Flow_gone"')
    problems = lint_xml(text)
    matching(problems, "Flow_5_di", "bpmnElement 'Flow_gone' refers to no element")
    matching(problems, "Flow_5", "has no edge")


def test_node_drawn_outside_its_lane_is_rejected() -> None:
    doc = Doc()
    x, _, w, h = doc.box(doc.node("Task_review"))
    doc.node("Task_review").bounds = (x, 20, w, h)  # drawn in the service_desk lane
    only(doc.lint(), "Task_review", "shape lies outside its lane 'incident_manager'")


def test_one_pixel_outside_the_lane_is_tolerated() -> None:
    doc = Doc()
    x, _, w, h = doc.box(doc.node("Task_review"))
    doc.node("Task_review").bounds = (x, LANE_HEIGHT - 1, w, h)
    assert doc.lint() == []


def test_boundary_event_may_straddle_its_host_and_lane_border() -> None:
    doc = _doc_with_boundary(timer("timeDuration", '"PT4H"'))
    x, y, w, h = doc.box(doc.node("Task_record"))
    doc.node("Task_record").bounds = (x, LANE_HEIGHT - h - 2, w, h)
    doc.node("Boundary_1").bounds = (x + 32, LANE_HEIGHT - 20, 36, 36)
    assert doc.lint() == []


def test_overlapping_shapes_are_rejected() -> None:
    doc = Doc()
    x, y, w, h = doc.box(doc.node("Task_record"))
    doc.node("Script_priority").bounds = (x + 50, y, w, h)
    text = doc.xml()
    problem = only(
        lint_xml(text), "Script_priority", "shape overlaps the shape of userTask 'Task_record'"
    )
    assert problem.line == line_of(text, 'bpmnElement="Script_priority"')


def test_touching_shapes_do_not_overlap() -> None:
    doc = Doc()
    x, y, w, h = doc.box(doc.node("Task_record"))
    doc.node("Script_priority").bounds = (x + w, y, w, h)
    assert doc.lint() == []


def _doc_with_collapsed_subprocess() -> Doc:
    """A collapsed subprocess whose contents are drawn in their own diagram, at coordinates
    that coincide with shapes of the main diagram and lie outside every lane."""
    doc = Doc()
    doc.insert_after("Script_priority", Node("Sub_1", "subProcess"))
    doc.nodes += [
        Node("Sub_start", "startEvent", parent="Sub_1", plane="Sub_1", bounds=(262, 102, 36, 36)),
        Node("Sub_work", "manualTask", parent="Sub_1", plane="Sub_1", bounds=(380, 80, 100, 80)),
        Node("Sub_end", "endEvent", parent="Sub_1", plane="Sub_1", bounds=(600, 900, 36, 36)),
    ]
    doc.flows += [
        Flow("Flow_s1", "Sub_start", "Sub_work", parent="Sub_1"),
        Flow("Flow_s2", "Sub_work", "Sub_end", parent="Sub_1"),
    ]
    return doc


def test_shapes_in_different_diagrams_do_not_overlap() -> None:
    text = _doc_with_collapsed_subprocess().xml()
    assert text.count("<bpmndi:BPMNDiagram") == 2
    assert lint_xml(text) == []


def test_overlap_is_checked_within_a_drill_down_diagram() -> None:
    doc = _doc_with_collapsed_subprocess()
    doc.node("Sub_end").bounds = (400, 100, 36, 36)
    only(doc.lint(), "Sub_end", "shape overlaps the shape of manualTask 'Sub_work'")


def test_overlap_reports_are_capped() -> None:
    doc = Doc()
    for index in range(15):
        doc.insert_after(
            "Task_record", Node(f"Stack_{index}", "manualTask", bounds=(400, 60, 100, 80))
        )
    problems = doc.lint()
    assert len(problems) == 51, problems
    assert all("overlap" in p.message for p in problems)
    assert len([p for p in problems if "more than 50 overlapping shapes" in p.message]) == 1


def test_overly_long_script_is_rejected() -> None:
    source = "priority = 1\nmajor = False\n" + "# padding\n" * 2_000
    only(_with_script(source), "Script_priority", "script is longer than 20000 characters")


def test_overly_long_condition_is_rejected() -> None:
    only(
        _with_condition(" or ".join(["major"] * 500)),
        "Flow_major",
        "condition is longer than 2000 characters",
    )


def test_too_much_code_in_one_document_is_rejected_once() -> None:
    doc = Doc()
    previous = "Script_priority"
    for index in range(12):
        source = f"x{index} = 1\n" + "# padding\n" * 1_800
        node = Node(f"Script_{index}", "scriptTask", inner=script(source))
        previous = doc.insert_after(previous, node).id
    only(doc.lint(), "Definitions_1", "scripts and expressions total more than 200000")


# --- robustness ----------------------------------------------------------------------------------


def test_large_process_lints_quickly() -> None:
    doc = Doc()
    previous = "Task_record"
    for index in range(1500):
        previous = doc.insert_after(previous, Node(f"Task_{index}", "manualTask")).id
    text = doc.xml()
    started = time.perf_counter()
    assert lint_xml(text) == []
    assert time.perf_counter() - started < 10.0


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=400))
def test_lint_bytes_never_raises_on_garbage(data: bytes) -> None:
    assert isinstance(lint_bytes(data, helper_names=HELPERS, roles=ROLES), list)


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=60))
def test_lint_never_raises_on_arbitrary_code(source: str) -> None:
    doc = Doc()
    doc.node("Script_priority").inner = script(source)
    doc.flow("Flow_major").condition = source
    try:
        text = doc.xml()
        etree.fromstring(text.encode())
    except (ValueError, etree.XMLSyntaxError):
        return  # characters XML cannot carry at all
    assert isinstance(lint_xml(text), list)


# --- the shipped process -------------------------------------------------------------------------


def test_every_shipped_bpmn_file_lints_clean() -> None:
    files = sorted(BPMN_DIR.glob("*.bpmn"))
    assert files, f"no .bpmn files in {BPMN_DIR}: the default process is missing"
    report = {}
    for path in files:
        problems = lint_bytes(path.read_bytes(), helper_names=HELPERS, roles=ROLES)
        if problems:
            report[path.name] = [f"line {p.line} {p.element}: {p.message}" for p in problems]
    assert report == {}


@pytest.mark.parametrize(
    "script",
    [
        'priority = 1\nmajor = False\nnote = "{0}".format(priority)',
        "priority = 1\nmajor = False\ntry:\n    priority = 2\nexcept Exception:\n    pass",
        "priority = len.__self__\nmajor = False",
    ],
)
def test_script_the_sandbox_would_refuse_is_rejected_at_deploy(script: str) -> None:
    problems = _with_script(script)
    assert problems, "the sandbox refuses this script, so the lint must too"
    assert all(p.element == "Script_priority" for p in problems)
