"""Reject BPMN that SpiffWorkflow 3.2 would parse but then silently mis-execute.

SpiffWorkflow's parser accepts a lot it does not honour: Camunda extensions it never reads,
event definitions it drops, forms it loses, conditions it ignores, Camunda expression syntax
it evaluates as Python. Designers edit the process in a browser, so every such construct
has to be caught here, with the element id and source line, before a version is deployed.

Each rule is a small function over a `LintContext`, listed in `RULES`; add a rule by writing
a function and appending it there.
"""

from __future__ import annotations

import ast
import dataclasses
import keyword
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeAlias

from lxml import etree

from engine.domain.expressions import ExpressionError, compile_condition
from engine.domain.forms import (
    ALLOWED_CONSTRAINTS,
    ALLOWED_FIELD_PROPERTIES,
    FieldOption,
    FieldSpec,
    check_field_spec,
)
from engine.domain.script_helpers import HELPER_NAMES
from engine.workflow.bounds import (
    CYCLES_UNSUPPORTED,
    ELEMENT_ID_CHARS,
    MAX_PROBLEM_CHARS,
    printable,
    shorten,
    text_problems,
    timer_value_problem,
)
from engine.workflow.safe_xml import UnsafeXmlError, parse_bpmn_xml
from engine.workflow.sandbox import SandboxViolation, check_source
from engine.workflow.sandbox.checks import SAFE_BUILTIN_NAMES
from engine.workflow.translations import split_property

# lxml ships no type stubs here, so this is Any to mypy; it documents intent.
Element: TypeAlias = etree._Element

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
BPMNDI_NS = "http://www.omg.org/spec/BPMN/20100524/DI"
DC_NS = "http://www.omg.org/spec/DD/20100524/DC"
DI_NS = "http://www.omg.org/spec/DD/20100524/DI"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"

CONTAINER_TAGS = frozenset({"subProcess", "transaction", "adHocSubProcess"})
ACTIVITY_TAGS = (
    frozenset(
        {
            "task",
            "userTask",
            "manualTask",
            "scriptTask",
            "serviceTask",
            "sendTask",
            "receiveTask",
            "businessRuleTask",
            "callActivity",
        }
    )
    | CONTAINER_TAGS
)
GATEWAY_TAGS = frozenset(
    {
        "exclusiveGateway",
        "inclusiveGateway",
        "parallelGateway",
        "eventBasedGateway",
        "complexGateway",
    }
)
EVENT_TAGS = frozenset(
    {
        "startEvent",
        "endEvent",
        "intermediateCatchEvent",
        "intermediateThrowEvent",
        "boundaryEvent",
    }
)
FLOW_NODE_TAGS = ACTIVITY_TAGS | GATEWAY_TAGS | EVENT_TAGS
# Subprocesses may span lanes; everything else must be done by someone.
LANE_REQUIRED_TAGS = FLOW_NODE_TAGS - CONTAINER_TAGS
CONDITIONAL_GATEWAY_TAGS = frozenset({"exclusiveGateway", "inclusiveGateway"})
PART_TAGS = frozenset(
    {
        "conditionExpression",
        "script",
        "timeDate",
        "timeDuration",
        "timeCycle",
        "multiInstanceLoopCharacteristics",
        "standardLoopCharacteristics",
        "loopCardinality",
        "completionCondition",
        "loopCondition",
        "extensionElements",
        "documentation",
    }
)

# SpiffWorkflow names internal task specs like this; a BPMN id equal to one replaces it.
RESERVED_IDS = frozenset({"Start", "End", "StartEventSplit", "StartEventJoin"})
RESERVED_ID_SUFFIXES = (".BoundaryEventSplit", ".BoundaryEventJoin")

FORBIDDEN_CALLS = frozenset({"exec", "eval", "open", "compile", "getattr", "setattr", "__import__"})
# str.format can reach private attributes through its replacement fields ("{0.__class__}"),
# which the attribute check cannot see; f-strings are parsed, so they stay allowed.
FORBIDDEN_ATTRIBUTES = frozenset({"format", "format_map"})

# Which event definitions SpiffWorkflow 3.2's parser looks for on each kind of event; any
# other definition is dropped and the event silently behaves as a plain (none) event.
SUPPORTED_EVENT_DEFINITIONS: dict[str, frozenset[str]] = {
    "startEvent": frozenset(
        {"messageEventDefinition", "signalEventDefinition", "timerEventDefinition"}
    ),
    "endEvent": frozenset(
        {
            "messageEventDefinition",
            "errorEventDefinition",
            "escalationEventDefinition",
            "terminateEventDefinition",
        }
    ),
    "intermediateCatchEvent": frozenset(
        {"messageEventDefinition", "signalEventDefinition", "timerEventDefinition"}
    ),
    "intermediateThrowEvent": frozenset(
        {
            "messageEventDefinition",
            "signalEventDefinition",
            "escalationEventDefinition",
            "timerEventDefinition",
        }
    ),
    "boundaryEvent": frozenset(
        {
            "messageEventDefinition",
            "signalEventDefinition",
            "timerEventDefinition",
            "errorEventDefinition",
            "escalationEventDefinition",
        }
    ),
}
# Definitions rejected wherever they appear, with the reason.
UNSUPPORTED_EVENT_DEFINITIONS: dict[str, str] = {
    "linkEventDefinition": "link events are not supported by the engine",
    "compensateEventDefinition": "compensation is not supported by the engine",
    "conditionalEventDefinition": "conditional events are not supported",
    "cancelEventDefinition": "cancel events need a transaction, which is not supported",
}
UNSUPPORTED_ELEMENTS: dict[str, str] = {
    "complexGateway": "complex gateways are not supported by the engine",
    "transaction": "transactions are not supported",
    "callActivity": "call activities are out of scope; draw the steps in this process",
    "adHocSubProcess": "ad-hoc subprocesses are out of scope (Camunda 7 cannot run them)",
    "businessRuleTask": "business rule tasks (DMN) are out of scope; use a script task",
    "eventDefinitionRef": "the engine ignores eventDefinitionRef; define the event inline",
    "timeCycle": CYCLES_UNSUPPORTED,
}
UNSUPPORTED_CAMUNDA_ELEMENTS: dict[str, str] = {
    "executionListener": "execution listeners",
    "taskListener": "task listeners",
    "connector": "connectors",
    "inputOutput": "input/output mappings",
    "in": "call activity variable mappings",
    "out": "call activity variable mappings",
    "errorEventDefinition": "external task error definitions",
}
UNSUPPORTED_CAMUNDA_ATTRIBUTES: dict[str, str] = {
    "asyncBefore": "asynchronous continuations",
    "asyncAfter": "asynchronous continuations",
    "candidateUsers": "candidate users (use lanes)",
    "candidateGroups": "candidate groups (use lanes)",
    "assignee": "assignees (use lanes)",
    "type": "external tasks",
    "topic": "external tasks",
    "class": "Java delegates",
    "delegateExpression": "delegate expressions",
    "expression": "expressions",
    "resultVariable": "result variables",
    "initiator": "initiator variables",
    "errorCodeVariable": "error code variables",
    "errorMessageVariable": "error message variables",
}
# SpiffWorkflow's Camunda parser does read these two on a message event definition.
CAMUNDA_MESSAGE_ATTRIBUTES = frozenset({"expression", "resultVariable"})
ASYNC_ATTRIBUTES = frozenset({"asyncBefore", "asyncAfter"})

# Process code is a few helper calls; these caps keep a hostile 5 MiB upload of "script"
# from tying up the deploy request in the Python compiler (cost grows with code size).
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
MAX_TOTAL_CODE_CHARS = 200_000
CODE_TAGS = (
    "script",
    "conditionExpression",
    "timeDate",
    "timeDuration",
    "loopCardinality",
    "completionCondition",
    "loopCondition",
)

# At most this many overlapping-shape problems per diagram plane: a hostile upload could
# otherwise stack thousands of shapes and make the report (and the check) quadratic.
MAX_OVERLAP_PROBLEMS = 50
LANE_TOLERANCE = 1.0


ERROR = "error"
# A warning is shown in the modeler's check but never stops a deployment.
WARNING = "warning"


@dataclass(frozen=True)
class LintProblem:
    element: str | None
    line: int | None
    message: str
    level: str = ERROR


# --- element helpers ---------------------------------------------------------------------------


def _local(element: Element, namespace: str = BPMN_NS) -> str | None:
    """The local tag name if the element is in `namespace`, else None (comments, PIs too)."""
    tag = element.tag
    if not isinstance(tag, str) or not tag.startswith("{"):
        return None
    ns, _, name = tag[1:].partition("}")
    return name if ns == namespace else None


def _is(element: Element, *names: str) -> bool:
    return _local(element) in names


def _camunda_attr(element: Element, name: str) -> str | None:
    value = element.get(f"{{{CAMUNDA_NS}}}{name}")
    return None if value is None else str(value)


def _is_part(element: Element) -> bool:
    """Sub-elements a modeler never lets you select (event definitions, expressions, ...)."""
    name = _local(element)
    return name is not None and (name in PART_TAGS or name.endswith("EventDefinition"))


def _owner_id(element: Element | None) -> str | None:
    """The id of the nearest element a designer can select in the modeler: problems inside
    an event definition or a form field are reported on the event or the task."""
    current = element
    while current is not None:
        in_bpmn = _local(current) is not None and not _is_part(current)
        if in_bpmn or _local(current, BPMNDI_NS) is not None:
            identifier = current.get("id")
            if identifier:
                return str(identifier)
        current = current.getparent()
    return None


def _problem(element: Element | None, message: str, owner: str | None = None) -> LintProblem:
    line = element.sourceline if element is not None else None
    return LintProblem(
        element=owner if owner is not None else _owner_id(element),
        line=line if isinstance(line, int) else None,
        message=message,
    )


def _bpmn_children(element: Element, *names: str) -> list[Element]:
    return [child for child in element if _local(child) in names]


def _descendants(element: Element, names: Iterable[str], namespace: str = BPMN_NS) -> list[Element]:
    # lxml filters by tag in C, which matters for documents near the 5 MiB limit.
    return list(element.iter(*(f"{{{namespace}}}{name}" for name in names)))


def _text(element: Element | None) -> str:
    return "" if element is None or element.text is None else str(element.text)


def _a(word: str | None) -> str:
    word = word or "element"
    # "a userTask" but "an endEvent": BPMN tag names starting with u are read "you".
    return f"an {word}" if word[:1].lower() in "aeio" else f"a {word}"


def _describe(element: Element) -> str:
    return f"{_local(element) or 'element'} {element.get('id')!r}"


# --- the context ---------------------------------------------------------------------------------


@dataclass
class LintContext:
    """The parsed document plus indexes every rule needs; built once per lint run."""

    tree: etree._ElementTree
    helper_names: frozenset[str]
    roles: frozenset[str]
    root: Element = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.tree.getroot()

    @cached_property
    def ids(self) -> dict[str, list[Element]]:
        """BPMN ids (Camunda form field ids live in their own namespace and may repeat)."""
        index: dict[str, list[Element]] = defaultdict(list)
        for element in self.root.iter():
            if not isinstance(element.tag, str) or _local(element, CAMUNDA_NS) is not None:
                continue
            identifier = element.get("id")
            if identifier is not None:
                index[str(identifier)].append(element)
        return index

    def by_id(self, identifier: str | None) -> Element | None:
        found = self.ids.get(identifier or "")
        return found[0] if found else None

    @cached_property
    def processes(self) -> list[Element]:
        return _bpmn_children(self.root, "process")

    @cached_property
    def executable_processes(self) -> list[Element]:
        # SpiffWorkflow treats a missing isExecutable as executable and refuses "false".
        return [p for p in self.processes if p.get("isExecutable", "true") == "true"]

    @cached_property
    def flow_nodes(self) -> list[Element]:
        return _descendants(self.root, FLOW_NODE_TAGS)

    @cached_property
    def lanes_by_node(self) -> dict[str, list[Element]]:
        """Lanes whose flowNodeRef names each node, document-wide as SpiffWorkflow indexes."""
        index: dict[str, list[Element]] = defaultdict(list)
        for ref in _descendants(self.root, ["flowNodeRef"]):
            parent = ref.getparent()
            if parent is not None and _is(parent, "lane"):
                index[_text(ref).strip()].append(parent)
        return index

    @cached_property
    def shapes(self) -> dict[str, list[Element]]:
        return self._di_index("BPMNShape")

    @cached_property
    def edges(self) -> dict[str, list[Element]]:
        return self._di_index("BPMNEdge")

    def _di_index(self, kind: str) -> dict[str, list[Element]]:
        index: dict[str, list[Element]] = defaultdict(list)
        for element in _descendants(self.root, [kind], BPMNDI_NS):
            index[str(element.get("bpmnElement", ""))].append(element)
        return index

    @cached_property
    def form_field_ids(self) -> dict[Element, frozenset[str]]:
        """Form field ids declared anywhere in each executable process."""
        return {
            process: frozenset(
                str(f.get("id"))
                for f in _descendants(process, ["formField"], CAMUNDA_NS)
                if f.get("id")
            )
            for process in self.executable_processes
        }

    @cached_property
    def script_names(self) -> dict[Element, frozenset[str] | None]:
        """Variables assigned by the script tasks of each executable process; None when some
        script cannot be parsed, so its variables are unknowable."""
        return {p: _assigned_names(p) for p in self.executable_processes}

    def known_names(self, process: Element) -> frozenset[str] | None:
        """Names expressions in `process` may read, or None if that cannot be known (a broken
        script is reported once; every name it would assign is not reported again)."""
        assigned = self.script_names.get(process, frozenset())
        if assigned is None:
            return None
        fields = self.form_field_ids.get(process, frozenset())
        return fields | assigned | self.helper_names | SAFE_BUILTIN_NAMES


Rule = Callable[[LintContext], Iterable[LintProblem]]


def _assigned_names(process: Element) -> frozenset[str] | None:
    names: set[str] = set()
    for task in _descendants(process, ["scriptTask"]):
        source = _script_source(task)
        tree = None if len(source) > MAX_SCRIPT_CHARS else _parse_quietly(source, "exec")
        if tree is None:
            return None
        names |= _bound_names(tree)
    return frozenset(names)


# --- rule 1: ids ---------------------------------------------------------------------------------


def rule_reserved_ids(ctx: LintContext) -> Iterator[LintProblem]:
    for identifier, elements in ctx.ids.items():
        if identifier in RESERVED_IDS or identifier.endswith(RESERVED_ID_SUFFIXES):
            for element in elements:
                yield _problem(
                    element,
                    f"id {identifier!r} collides with a SpiffWorkflow internal task; rename it",
                    owner=identifier,
                )


def rule_duplicate_ids(ctx: LintContext) -> Iterator[LintProblem]:
    for identifier, elements in ctx.ids.items():
        if len(elements) < 2:
            continue
        first = elements[0].sourceline
        for element in elements[1:]:
            yield _problem(
                element,
                f"duplicate id {identifier!r} (first used on line {first})",
                owner=identifier,
            )


# --- rule 2: unsupported constructs ------------------------------------------------------------


def rule_unsupported_elements(ctx: LintContext) -> Iterator[LintProblem]:
    for element in ctx.root.iter():
        name = _local(element)
        if name in UNSUPPORTED_ELEMENTS:
            yield _problem(element, UNSUPPORTED_ELEMENTS[name])
        if element.get("isForCompensation", "false") == "true":
            yield _problem(element, "compensation is not supported by the engine")


def _event_definitions(event: Element) -> list[Element]:
    # SpiffWorkflow searches descendants, so nested definitions count too.
    return [el for el in event.iter() if (_local(el) or "").endswith("EventDefinition")]


def _event_definition_problem(event: Element, definition: Element) -> LintProblem | None:
    kind = _local(definition) or ""
    if kind in UNSUPPORTED_EVENT_DEFINITIONS:
        return _problem(definition, UNSUPPORTED_EVENT_DEFINITIONS[kind], owner=_owner_id(event))
    supported = SUPPORTED_EVENT_DEFINITIONS.get(_local(event) or "", frozenset())
    if kind not in supported:
        return _problem(
            definition,
            f"the engine ignores {_a(kind)} on {_a(_local(event))} and would run it as a plain "
            "event",
            owner=_owner_id(event),
        )
    return None


def rule_event_definitions(ctx: LintContext) -> Iterator[LintProblem]:
    for event in _descendants(ctx.root, EVENT_TAGS):
        definitions = _event_definitions(event)
        if _is(event, "boundaryEvent") and not definitions:
            yield _problem(event, "a boundary event needs an event definition")
        for definition in definitions:
            found = _event_definition_problem(event, definition)
            if found is not None:
                yield found


def _camunda_attribute_problem(element: Element, name: str, value: str) -> str | None:
    if name not in UNSUPPORTED_CAMUNDA_ATTRIBUTES:
        return None
    if name in ASYNC_ATTRIBUTES and value != "true":
        return None
    if name in CAMUNDA_MESSAGE_ATTRIBUTES and _is(element, "messageEventDefinition"):
        return None
    feature = UNSUPPORTED_CAMUNDA_ATTRIBUTES[name]
    return f"camunda:{name}: the engine ignores Camunda {feature}, which would change behaviour"


def rule_camunda_extensions(ctx: LintContext) -> Iterator[LintProblem]:
    for element in ctx.root.iter():
        camunda_element = _local(element, CAMUNDA_NS)
        if camunda_element in UNSUPPORTED_CAMUNDA_ELEMENTS:
            feature = UNSUPPORTED_CAMUNDA_ELEMENTS[camunda_element]
            yield _problem(
                element,
                f"camunda:{camunda_element}: the engine ignores Camunda {feature}, "
                "which would change behaviour",
            )
        for attribute, value in element.attrib.items():
            if not str(attribute).startswith(f"{{{CAMUNDA_NS}}}"):
                continue
            name = str(attribute).split("}", 1)[1]
            message = _camunda_attribute_problem(element, name, str(value))
            if message is not None:
                yield _problem(element, message)


# --- rule 3: lanes ------------------------------------------------------------------------------


def _lanes_of(ctx: LintContext, node: Element) -> list[Element]:
    return ctx.lanes_by_node.get(str(node.get("id", "")), [])


def _enclosing_container(node: Element) -> Element | None:
    """The subprocess directly holding `node`, or None at process level."""
    parent = node.getparent()
    while parent is not None and not _is(parent, "process"):
        if _local(parent) in CONTAINER_TAGS:
            return parent
        parent = parent.getparent()
    return None


def _effective_lane(ctx: LintContext, node: Element) -> Element | None:
    """The lane SpiffWorkflow assigns: inside a subprocess that has a lane, the subprocess's
    lane wins over the node's own flowNodeRef (the parser passes it down)."""
    container = _enclosing_container(node)
    if container is not None:
        inherited = _effective_lane(ctx, container)
        if inherited is not None:
            return inherited
    lanes = _lanes_of(ctx, node)
    # SpiffWorkflow's index keeps the last reference in document order.
    return lanes[-1] if lanes else None


def _lane_name_problems(ctx: LintContext, lane: Element) -> Iterator[LintProblem]:
    name = lane.get("name")
    if not name:
        yield _problem(lane, "a lane needs a name: one of the roles")
    elif name not in ctx.roles:
        allowed = ", ".join(sorted(ctx.roles))
        yield _problem(lane, f"lane name {name!r} is not a role; use one of: {allowed}")
    if _bpmn_children(lane, "childLaneSet"):
        yield _problem(lane, "nested lanes (childLaneSet) are not supported; roles are flat")
    for ref in _bpmn_children(lane, "flowNodeRef"):
        target = ctx.by_id(_text(ref).strip())
        if target is None or _local(target) not in FLOW_NODE_TAGS:
            yield _problem(ref, f"flowNodeRef {_text(ref).strip()!r} names no flow node")


def _node_lane_problems(ctx: LintContext, node: Element) -> Iterator[LintProblem]:
    own = _lanes_of(ctx, node)
    if len(own) > 1:
        names = ", ".join(repr(lane.get("id")) for lane in own)
        yield _problem(node, f"is referenced by {len(own)} lanes ({names}); use exactly one")
    effective = _effective_lane(ctx, node)
    if effective is None:
        if _local(node) in LANE_REQUIRED_TAGS:
            yield _problem(node, "is not in any lane (no lane's flowNodeRef names it)")
        return
    if own and own[-1].get("name") != effective.get("name"):
        container = _enclosing_container(node)
        yield _problem(
            node,
            f"is in lane {own[-1].get('name')!r}, but the engine gives everything inside "
            f"subprocess {container.get('id') if container is not None else None!r} "
            f"that subprocess's lane {effective.get('name')!r}",
        )


def rule_lanes(ctx: LintContext) -> Iterator[LintProblem]:
    for process in ctx.executable_processes:
        lanes = _descendants(process, ["lane"])
        if not lanes:
            if _descendants(process, ["userTask"]):
                yield _problem(
                    process, "has user tasks but no lanes (laneSet); add a lane per role"
                )
            continue
        for lane in lanes:
            yield from _lane_name_problems(ctx, lane)
        for node in _descendants(process, FLOW_NODE_TAGS):
            yield from _node_lane_problems(ctx, node)


# --- rule 4: forms ------------------------------------------------------------------------------


def _extension_forms(element: Element) -> list[Element]:
    return _descendants(element, ["formData"], CAMUNDA_NS)


def rule_form_placement(ctx: LintContext) -> Iterator[LintProblem]:
    for form in _descendants(ctx.root, ["formData"], CAMUNDA_NS):
        owner = form.getparent()
        while owner is not None and _local(owner) in (None, "extensionElements"):
            owner = owner.getparent()
        kind = _local(owner) if owner is not None else None
        if kind == "startEvent":
            yield _problem(
                form, "the engine drops forms on start events; put the form on a user task"
            )
        elif kind != "userTask":
            yield _problem(form, f"camunda:formData on {_a(kind)} is ignored by the engine")
    for start in _descendants(ctx.root, ["startEvent"]):
        if _camunda_attr(start, "formKey") is not None and not _extension_forms(start):
            yield _problem(start, "the engine drops forms on start events; remove camunda:formKey")


def rule_form_key(ctx: LintContext) -> Iterator[LintProblem]:
    # CamundaParser's get_form() is written to return an empty form when the key is missing
    # (SpiffWorkflow 3.2.0 happens to keep the fields, as its attribute lookup never raises
    # KeyError); require the key so the form does not depend on that accident.
    for task in _descendants(ctx.root, ["userTask"]):
        if _extension_forms(task) and _camunda_attr(task, "formKey") is None:
            yield _problem(
                task,
                'has camunda:formData but no camunda:formKey; add camunda:formKey="generated"',
            )


@dataclass
class _FieldDraft:
    """What one camunda:formField says, before it becomes a FieldSpec."""

    values: dict[str, object] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _int_or_problem(draft: _FieldDraft, name: str, config: str | None) -> None:
    try:
        draft.values[name] = int(config or "")
    except ValueError:
        draft.problems.append(f"{name} must be a whole number, got {config!r}")


def _read_constraint(draft: _FieldDraft, constraint: Element) -> None:
    name = str(constraint.get("name", ""))
    config = constraint.get("config")
    if name not in ALLOWED_CONSTRAINTS:
        allowed = ", ".join(ALLOWED_CONSTRAINTS)
        draft.problems.append(f"constraint {name!r} is not allowed; use one of: {allowed}")
    elif name in draft.values:
        draft.problems.append(f"constraint {name!r} is given twice")
    elif name in ("required", "readonly"):
        draft.values[name] = True
    elif name in ("minlength", "maxlength"):
        _int_or_problem(draft, name, None if config is None else str(config))
    else:
        draft.values[name] = None if config is None else str(config)


def _read_property(draft: _FieldDraft, prop: Element) -> None:
    name = str(prop.get("id", ""))
    value = prop.get("value")
    translation = split_property(name)
    if translation is not None:
        # The field's label and option names in a language (engine/workflow/translations).
        if translation[0] != "label" and not translation[0].startswith("option:"):
            draft.problems.append(
                f"property {name!r}: a field translates only label@<language> "
                "and option:<option id>@<language>"
            )
    elif name not in ALLOWED_FIELD_PROPERTIES:
        allowed = ", ".join(ALLOWED_FIELD_PROPERTIES)
        draft.problems.append(f"property {name!r} is not allowed; use one of: {allowed}")
    elif name in draft.values:
        draft.problems.append(f"property {name!r} is given twice")
    elif name == "multiline":
        if value not in ("true", "false"):
            draft.problems.append(f"multiline must be 'true' or 'false', got {value!r}")
        else:
            draft.values[name] = value == "true"
    else:
        draft.values[name] = None if value is None else str(value)


def _read_field(xml_field: Element) -> tuple[FieldSpec, list[str]]:
    draft = _FieldDraft()
    for constraint in _descendants(xml_field, ["constraint"], CAMUNDA_NS):
        _read_constraint(draft, constraint)
    for prop in _descendants(xml_field, ["property"], CAMUNDA_NS):
        _read_property(draft, prop)
    options = tuple(
        FieldOption(id=str(value.get("id", "")), name=str(value.get("name", "")))
        for value in _descendants(xml_field, ["value"], CAMUNDA_NS)
    )
    default = xml_field.get("defaultValue")
    spec = FieldSpec(
        id=str(xml_field.get("id", "")),
        label=str(xml_field.get("label", "")),
        type=str(xml_field.get("type", "")),
        default=None if default is None else str(default),
        options=options,
        **draft.values,  # type: ignore[arg-type]
    )
    return spec, draft.problems


def _field_id_problems(field_id: str, helper_names: frozenset[str]) -> list[str]:
    if not field_id:
        return ["a form field needs an id"]
    if keyword.iskeyword(field_id):
        return [f"id {field_id!r} is a Python keyword; gateways read field ids as names"]
    if not field_id.isidentifier():
        return [f"id {field_id!r} is not a Python identifier; gateways read field ids as names"]
    if field_id.startswith("__"):
        return [f"id {field_id!r} must not start with '__'"]
    if field_id in helper_names:
        return [f"id {field_id!r} collides with the script helper {field_id}()"]
    return []


def _spec_problems(spec: FieldSpec, id_ok: bool) -> list[str]:
    # check_field_spec repeats our id check; judge the rest under a stand-in id instead.
    checked = spec if id_ok else dataclasses.replace(spec, id="field")
    return check_field_spec(checked)


def _required_if_problems(spec: FieldSpec, form_ids: frozenset[str]) -> list[str]:
    if spec.required_if is None:
        return []
    try:
        names = compile_condition(spec.required_if).names
    except ExpressionError:
        return []  # check_field_spec already reported it
    unknown = sorted(names - form_ids)
    if unknown:
        return [f"required_if names {', '.join(map(repr, unknown))}, not fields of this form"]
    return []


def _form_problems(ctx: LintContext, task: Element, form: Element) -> Iterator[LintProblem]:
    xml_fields = _bpmn_free_children(form, "formField")
    form_ids = frozenset(str(f.get("id", "")) for f in xml_fields)
    seen: set[str] = set()
    for xml_field in xml_fields:
        spec, problems = _read_field(xml_field)
        id_problems = _field_id_problems(spec.id, ctx.helper_names)
        if spec.id in seen:
            id_problems.append(f"id {spec.id!r} is used twice in this form")
        seen.add(spec.id)
        problems = id_problems + problems + _spec_problems(spec, not id_problems)
        problems += _required_if_problems(spec, form_ids)
        for message in problems:
            yield _problem(xml_field, f"form field {spec.id!r}: {message}", owner=_owner_id(task))


def _bpmn_free_children(element: Element, camunda_name: str) -> list[Element]:
    return [child for child in element if _local(child, CAMUNDA_NS) == camunda_name]


def rule_form_fields(ctx: LintContext) -> Iterator[LintProblem]:
    for task in _descendants(ctx.root, ["userTask"]):
        for form in _extension_forms(task):
            yield from _form_problems(ctx, task, form)


# --- rule 5: expressions ----------------------------------------------------------------------


def _script_source(task: Element) -> str:
    scripts = _bpmn_children(task, "script")
    return _text(scripts[0]) if len(scripts) == 1 else ""


def _eval_source(source: str) -> str:
    # eval() of a string strips leading spaces and tabs (not newlines); do the same.
    return source.lstrip(" \t")


def _parse_quietly(source: str, mode: str) -> ast.AST | None:
    try:
        return ast.parse(source, mode=mode)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _bound_names(tree: ast.AST) -> set[str]:
    """Names a script or expression binds: assignment, loop, with, walrus, comprehension,
    except and match targets."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _compile_problem(source: str, label: str, mode: str) -> tuple[ast.AST | None, str | None]:
    """Compile like the engine does; return the tree, or None and a message."""
    try:
        compile(source, label, mode, dont_inherit=True)
    except SyntaxError as error:
        where = f" (line {error.lineno} of the {'script' if mode == 'exec' else 'expression'})"
        return None, f"is not valid Python: {error.msg}{where if error.lineno else ''}"
    except (ValueError, RecursionError, MemoryError) as error:
        return None, f"is not valid Python: {type(error).__name__}"
    return _parse_quietly(source, mode), None


def _node_problem(node: ast.AST) -> str | None:
    """Why this AST node is not allowed in process code, or None."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return "imports are not allowed"
    if isinstance(node, ast.Global | ast.Nonlocal):
        return "global/nonlocal are not allowed"
    if isinstance(node, ast.Lambda):
        return "lambda is not allowed"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return "function and class definitions are not allowed"
    if isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            return f"private attribute {node.attr!r} is not allowed"
        if node.attr in FORBIDDEN_ATTRIBUTES:
            return f"str.{node.attr} is not allowed; use an f-string"
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            return f"the name {node.id!r} is not allowed"
        if node.id in FORBIDDEN_CALLS and isinstance(node.ctx, ast.Load):
            return f"calling {node.id}() is not allowed"
    return None


def _expression_problems(tree: ast.AST, known: frozenset[str] | None) -> list[str]:
    problems: list[str] = []
    local = _bound_names(tree)
    unknown: list[str] = []
    for node in ast.walk(tree):
        reason = _node_problem(node)
        if reason is not None:
            problems.append(reason)
        elif (
            known is not None
            and isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)
            and node.id not in known
            and node.id not in local
            and node.id not in unknown
        ):
            unknown.append(node.id)
    problems.extend(f"uses unknown name {name!r}" for name in unknown)
    return list(dict.fromkeys(problems))


def _check_code(
    element: Element, what: str, source: str, mode: str, known: frozenset[str] | None
) -> tuple[ast.AST | None, list[LintProblem]]:
    limit = MAX_SCRIPT_CHARS if mode == "exec" else MAX_EXPRESSION_CHARS
    if len(source) > limit:
        return None, [_problem(element, f"{what} is longer than {limit} characters")]
    tree, message = _compile_problem(source, str(_owner_id(element)), mode)
    if tree is None:
        return None, [_problem(element, f"{what} {message or 'cannot be parsed'}")]
    found = [_problem(element, f"{what} {reason}") for reason in _expression_problems(tree, known)]
    # What the sandbox would refuse at run time is refused at deploy time (a script that
    # assigns a helper's name has its own, clearer message from rule_expressions).
    if not found and not _bound_names(tree) & HELPER_NAMES:
        try:
            check_source(source, "exec" if mode == "exec" else "eval", HELPER_NAMES)
        except SandboxViolation as exc:
            found.append(_problem(element, f"{what} is not allowed in the sandbox: {exc}"))
    return tree, found


def _script_task_problems(
    ctx: LintContext, task: Element, known: frozenset[str] | None
) -> Iterator[LintProblem]:
    script_format = task.get("scriptFormat")
    if script_format is not None and script_format.strip().lower() != "python":
        yield _problem(task, f"scriptFormat {script_format!r} is not supported; use python")
    scripts = _bpmn_children(task, "script")
    if len(scripts) != 1 or not _text(scripts[0]).strip():
        yield _problem(task, "a script task needs exactly one non-empty bpmn:script")
        return
    tree, found = _check_code(scripts[0], "script", _text(scripts[0]), "exec", known)
    yield from found
    if tree is not None:
        for name in sorted(_bound_names(tree) & ctx.helper_names):
            yield _problem(
                scripts[0],
                f"script assigns {name!r}, which collides with the script helper {name}()",
            )


def _condition_problems(flow: Element, known: frozenset[str] | None) -> Iterator[LintProblem]:
    for condition in _bpmn_children(flow, "conditionExpression"):
        language = condition.get("language")
        if language is not None and language.strip().lower() != "python":
            yield _problem(
                condition,
                f"condition language {language!r} is not supported; write a Python expression",
            )
            continue
        source = _eval_source(_text(condition))
        if not source.strip():
            yield _problem(condition, "condition is empty")
            continue
        yield from _check_code(condition, "condition", source, "eval", known)[1]


def _reads_data(tree: ast.AST) -> bool:
    """Whether an expression reads a form field, a script variable or a helper."""
    local = _bound_names(tree)
    return any(
        isinstance(node, ast.Name)
        and isinstance(node.ctx, ast.Load)
        and node.id not in SAFE_BUILTIN_NAMES
        and node.id not in local
        for node in ast.walk(tree)
    )


def _timer_problems(timer: Element, known: frozenset[str] | None) -> Iterator[LintProblem]:
    kind = _local(timer) or "timer"
    source = _eval_source(_text(timer))
    if not source.strip():
        yield _problem(timer, f"{kind} is empty")
        return
    tree, found = _check_code(timer, kind, source, "eval", known)
    yield from found
    if not isinstance(tree, ast.Expression):
        return
    # A literal is checked here against the bounds the runtime applies to computed values
    # (engine.workflow.bounds); a value that depends on nothing must be such a literal.
    if isinstance(tree.body, ast.Constant):
        message = timer_value_problem(kind, tree.body.value)
        if message is not None:
            yield _problem(timer, message)
    elif not found and not _reads_data(tree):
        yield _problem(
            timer,
            f"{kind} reads no form field, script variable or helper: write its value as one "
            'quoted literal such as "PT4H", so that it is checked before deployment',
        )


def _loop_expression_problems(
    element: Element, known: frozenset[str] | None
) -> Iterator[LintProblem]:
    # Multi-instance/loop settings are evaluated as Python too; the element variable and
    # data items are names those expressions may use.
    extra = {str(v) for v in (_camunda_attr(element, "elementVariable"),) if v}
    for item in _descendants(element, ["inputDataItem", "outputDataItem"]):
        if item.get("id"):
            extra.add(str(item.get("id")))
    names = None if known is None else known | extra
    for expression in _descendants(
        element, ["loopCardinality", "completionCondition", "loopCondition"]
    ):
        source = _eval_source(_text(expression))
        if source.strip():
            yield from _check_code(
                expression, _local(expression) or "expression", source, "eval", names
            )[1]


def _code_size(ctx: LintContext) -> int:
    return sum(len(_text(element)) for element in _descendants(ctx.root, CODE_TAGS))


def rule_expressions(ctx: LintContext) -> Iterator[LintProblem]:
    if _code_size(ctx) > MAX_TOTAL_CODE_CHARS:
        yield _problem(
            ctx.root,
            f"scripts and expressions total more than {MAX_TOTAL_CODE_CHARS} characters; "
            "move logic into script helpers",
        )
        return
    for process in ctx.executable_processes:
        known = ctx.known_names(process)
        for task in _descendants(process, ["scriptTask"]):
            yield from _script_task_problems(ctx, task, known)
        for flow in _descendants(process, ["sequenceFlow"]):
            yield from _condition_problems(flow, known)
        for timer in _descendants(process, ["timeDate", "timeDuration"]):
            yield from _timer_problems(timer, known)
        for loop in _descendants(
            process, ["multiInstanceLoopCharacteristics", "standardLoopCharacteristics"]
        ):
            yield from _loop_expression_problems(loop, known)


# --- rule 5b: lengths and plain ids --------------------------------------------------------------


def rule_text_bounds(ctx: LintContext) -> Iterator[LintProblem]:
    """Ids, names and texts that do not fit where they are stored (engine.workflow.bounds)."""
    for element, message in text_problems(ctx.root, ctx.executable_processes):
        yield _problem(element, message)


# --- rule 6: gateways and conditions ----------------------------------------------------------


def _outgoing_flows(container: Element) -> dict[str, list[Element]]:
    outgoing: dict[str, list[Element]] = defaultdict(list)
    for flow in _bpmn_children(container, "sequenceFlow"):
        outgoing[str(flow.get("sourceRef", ""))].append(flow)
    return outgoing


def _containers(process: Element) -> list[Element]:
    return [process, *_descendants(process, CONTAINER_TAGS)]


def _has_condition(flow: Element) -> bool:
    return bool(_bpmn_children(flow, "conditionExpression"))


def _gateway_problems(gateway: Element, flows: list[Element]) -> Iterator[LintProblem]:
    default = gateway.get("default")
    flow_ids = {flow.get("id") for flow in flows}
    if default is not None and default not in flow_ids:
        yield _problem(gateway, f"default flow {default!r} is not one of its outgoing flows")
    if not _is(gateway, *CONDITIONAL_GATEWAY_TAGS) or len(flows) < 2:
        return
    for flow in flows:
        is_default = flow.get("id") == default
        if not is_default and not _has_condition(flow):
            yield _problem(
                flow, f"leaves {_describe(gateway)} without a condition and is not its default flow"
            )
        if is_default and _has_condition(flow):
            yield _problem(
                flow,
                f"is the default flow of {_describe(gateway)}; the engine ignores its condition",
            )


def _ignored_condition_problems(source: Element, flows: list[Element]) -> Iterator[LintProblem]:
    if _is(source, *CONDITIONAL_GATEWAY_TAGS):
        return
    for flow in flows:
        if _has_condition(flow):
            yield _problem(
                flow,
                f"has a condition, but the engine ignores conditions on flows "
                f"leaving {_a(_local(source))} ({source.get('id')!r})",
            )


def rule_gateways(ctx: LintContext) -> Iterator[LintProblem]:
    for process in ctx.executable_processes:
        for container in _containers(process):
            outgoing = _outgoing_flows(container)
            for node in _bpmn_children(container, *FLOW_NODE_TAGS):
                flows = outgoing.get(str(node.get("id", "")), [])
                if _local(node) in GATEWAY_TAGS or node.get("default") is not None:
                    yield from _gateway_problems(node, flows)
                yield from _ignored_condition_problems(node, flows)


# --- rule 7: graph -----------------------------------------------------------------------------


@dataclass
class _Graph:
    nodes: dict[str, Element]
    successors: dict[str, list[str]]
    predecessors: dict[str, list[str]]
    boundary: dict[str, list[str]]


def _is_event_subprocess(node: Element) -> bool:
    return _is(node, "subProcess") and node.get("triggeredByEvent") == "true"


def _flow_ref_problems(
    ctx: LintContext, flow: Element, nodes: dict[str, Element]
) -> Iterator[LintProblem]:
    for attribute in ("sourceRef", "targetRef"):
        ref = flow.get(attribute)
        if not ref:
            yield _problem(flow, f"has no {attribute}")
        elif ctx.by_id(ref) is None:
            yield _problem(flow, f"{attribute} {ref!r} does not exist")
        elif ref not in nodes:
            yield _problem(
                flow, f"{attribute} {ref!r} is not a flow node of the same process or subprocess"
            )


def _build_graph(ctx: LintContext, container: Element, problems: list[LintProblem]) -> _Graph:
    nodes = {str(n.get("id")): n for n in _bpmn_children(container, *FLOW_NODE_TAGS) if n.get("id")}
    graph = _Graph(nodes, defaultdict(list), defaultdict(list), defaultdict(list))
    for flow in _bpmn_children(container, "sequenceFlow"):
        found = list(_flow_ref_problems(ctx, flow, nodes))
        problems.extend(found)
        if not found:
            source, target = str(flow.get("sourceRef")), str(flow.get("targetRef"))
            graph.successors[source].append(target)
            graph.predecessors[target].append(source)
    for node_id, node in nodes.items():
        if _is(node, "boundaryEvent"):
            host = node.get("attachedToRef")
            if host not in nodes or _local(nodes[str(host)]) not in ACTIVITY_TAGS:
                problems.append(
                    _problem(
                        node,
                        f"attachedToRef {host!r} is not an activity "
                        "of the same process or subprocess",
                    )
                )
            else:
                graph.boundary[str(host)].append(node_id)
    return graph


def _walk(starts: Iterable[str], step: Callable[[str], Iterable[str]]) -> set[str]:
    seen = set(starts)
    stack = list(seen)
    while stack:
        for following in step(stack.pop()):
            if following not in seen:
                seen.add(following)
                stack.append(following)
    return seen


def _start_problems(container: Element, starts: list[str]) -> Iterator[LintProblem]:
    if _is(container, "process"):
        if not starts:
            yield _problem(container, "has no start event")
    elif len(starts) != 1:
        yield _problem(
            container, f"a subprocess needs exactly one start event, found {len(starts)}"
        )


def _graph_problems(ctx: LintContext, container: Element) -> Iterator[LintProblem]:
    problems: list[LintProblem] = []
    graph = _build_graph(ctx, container, problems)
    yield from problems
    starts = [i for i, n in graph.nodes.items() if _is(n, "startEvent")]
    yield from _start_problems(container, starts)
    triggered = [i for i, n in graph.nodes.items() if _is_event_subprocess(n)]
    reachable = _walk(
        starts + triggered, lambda i: graph.successors.get(i, []) + graph.boundary.get(i, [])
    )
    ends = [i for i, n in graph.nodes.items() if _is(n, "endEvent")]
    finishing = _walk(ends, lambda i: graph.predecessors.get(i, []))
    for node_id, node in graph.nodes.items():
        if starts and node_id not in reachable:
            yield _problem(node, "is not reachable from a start event")
        if node_id in finishing or node_id in triggered:
            continue
        if not graph.successors.get(node_id):
            yield _problem(
                node,
                "has no outgoing sequence flow and is not an end event, so it "
                "has no path to an end event",
            )
        else:
            yield _problem(node, "has no path to an end event")


def rule_graph(ctx: LintContext) -> Iterator[LintProblem]:
    if not ctx.executable_processes:
        yield _problem(ctx.root, "the document has no executable process")
    for process in ctx.executable_processes:
        for container in _containers(process):
            yield from _graph_problems(ctx, container)


# --- rule 8: diagram interchange ----------------------------------------------------------------


@dataclass(frozen=True)
class _Box:
    x: float
    y: float
    width: float
    height: float

    @property
    def right(self) -> float:
        return self.x + self.width

    @property
    def bottom(self) -> float:
        return self.y + self.height

    def contains(self, other: _Box, tolerance: float) -> bool:
        return (
            other.x >= self.x - tolerance
            and other.y >= self.y - tolerance
            and other.right <= self.right + tolerance
            and other.bottom <= self.bottom + tolerance
        )

    def overlaps(self, other: _Box) -> bool:
        return min(self.right, other.right) > max(self.x, other.x) and min(
            self.bottom, other.bottom
        ) > max(self.y, other.y)


def _number(value: str | None) -> float | None:
    try:
        number = float(value or "")
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _bounds(shape: Element) -> _Box | None:
    found = [child for child in shape if _local(child, DC_NS) == "Bounds"]
    if len(found) != 1:
        return None
    values = [_number(found[0].get(k)) for k in ("x", "y", "width", "height")]
    x, y, width, height = values
    if x is None or y is None or width is None or height is None or width <= 0 or height <= 0:
        return None
    return _Box(x, y, width, height)


def _shape_count_problems(ctx: LintContext, element: Element) -> Iterator[LintProblem]:
    shapes = ctx.shapes.get(str(element.get("id", "")), [])
    if not shapes:
        yield _problem(element, "has no shape in the diagram (bpmndi:BPMNShape)")
    elif len(shapes) > 1:
        yield _problem(element, f"has {len(shapes)} shapes in the diagram; expected one")
    for shape in shapes:
        if _bounds(shape) is None:
            yield _problem(
                shape,
                "shape needs one dc:Bounds with numeric x, y and positive width and height",
                owner=_owner_id(element),
            )


def _edge_problems(ctx: LintContext, flow: Element) -> Iterator[LintProblem]:
    edges = ctx.edges.get(str(flow.get("id", "")), [])
    if not edges:
        yield _problem(flow, "has no edge in the diagram (bpmndi:BPMNEdge)")
    elif len(edges) > 1:
        yield _problem(flow, f"has {len(edges)} edges in the diagram; expected one")
    for edge in edges:
        points = [
            p
            for p in edge
            if _local(p, DI_NS) == "waypoint"
            and _number(p.get("x")) is not None
            and _number(p.get("y")) is not None
        ]
        if len(points) < 2:
            yield _problem(
                edge,
                "edge needs at least two di:waypoint with numeric x and y",
                owner=_owner_id(flow),
            )


def _dangling_reference_problems(ctx: LintContext) -> Iterator[LintProblem]:
    for element in ctx.root.iter():
        if _local(element, BPMNDI_NS) is None:
            continue
        ref = element.get("bpmnElement")
        if ref is not None and ctx.by_id(str(ref)) is None:
            yield _problem(element, f"bpmnElement {ref!r} refers to no element")


def _single_shape(ctx: LintContext, element: Element) -> tuple[Element, _Box] | None:
    shapes = ctx.shapes.get(str(element.get("id", "")), [])
    if len(shapes) != 1:
        return None
    box = _bounds(shapes[0])
    return None if box is None else (shapes[0], box)


def _lane_containment_problems(ctx: LintContext) -> Iterator[LintProblem]:
    for node in ctx.flow_nodes:
        if _is(node, "boundaryEvent"):
            continue  # drawn on its host's border, which may be a lane border
        lane = _effective_lane(ctx, node)
        node_shape = _single_shape(ctx, node)
        lane_shape = None if lane is None else _single_shape(ctx, lane)
        if node_shape is None or lane_shape is None or lane is None:
            continue
        if node_shape[0].getparent() is not lane_shape[0].getparent():
            continue  # drawn in another diagram (a drilled-down subprocess)
        if not lane_shape[1].contains(node_shape[1], LANE_TOLERANCE):
            yield _problem(
                node_shape[0],
                f"shape lies outside its lane {lane.get('name')!r} ({lane.get('id')!r})",
                owner=_owner_id(node),
            )


def _may_overlap(a: Element, b: Element) -> bool:
    """Pairs that are drawn on top of each other by design."""
    if _is(a, "boundaryEvent") and a.get("attachedToRef") == b.get("id"):
        return True
    if _is(b, "boundaryEvent") and b.get("attachedToRef") == a.get("id"):
        return True
    # An expanded subprocess is drawn around its contents.
    return any(p is b for p in a.iterancestors()) or any(p is a for p in b.iterancestors())


@dataclass(frozen=True)
class _Drawn:
    node: Element
    shape: Element
    box: _Box


def _plane_overlaps(items: list[_Drawn]) -> Iterator[LintProblem]:
    # Sweep along x: only shapes whose x-ranges intersect are compared.
    items.sort(key=lambda item: item.box.x)
    active: list[_Drawn] = []
    reported = 0
    for item in items:
        active = [other for other in active if other.box.right > item.box.x]
        for other in active:
            if not item.box.overlaps(other.box) or _may_overlap(item.node, other.node):
                continue
            reported += 1
            if reported > MAX_OVERLAP_PROBLEMS:
                yield _problem(
                    item.shape,
                    f"more than {MAX_OVERLAP_PROBLEMS} overlapping shapes in this diagram; "
                    "fix these first",
                    owner=_owner_id(item.node),
                )
                return
            yield _problem(
                item.shape,
                f"shape overlaps the shape of {_describe(other.node)}",
                owner=_owner_id(item.node),
            )
        active.append(item)


def _overlap_problems(ctx: LintContext) -> Iterator[LintProblem]:
    # Keyed by the plane element itself: an id() of a temporary lxml proxy is not stable.
    planes: dict[Element, list[_Drawn]] = defaultdict(list)
    for node in ctx.flow_nodes:
        found = _single_shape(ctx, node)
        if found is not None:
            shape, box = found
            planes[shape.getparent()].append(_Drawn(node, shape, box))
    for items in planes.values():
        yield from _plane_overlaps(items)


def rule_diagram(ctx: LintContext) -> Iterator[LintProblem]:
    if not _descendants(ctx.root, ["BPMNDiagram"], BPMNDI_NS):
        yield _problem(ctx.root, "the document has no diagram (bpmndi:BPMNDiagram)")
        return
    yield from _dangling_reference_problems(ctx)
    for element in ctx.flow_nodes + _descendants(ctx.root, ["lane", "participant"]):
        yield from _shape_count_problems(ctx, element)
    for flow in _descendants(ctx.root, ["sequenceFlow"]):
        yield from _edge_problems(ctx, flow)
    yield from _lane_containment_problems(ctx)
    yield from _overlap_problems(ctx)


# --- entry points ---------------------------------------------------------------------------------


# --- translations ------------------------------------------------------------------------------


_FORM_FIELDS = (
    f"{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}formData/{{{CAMUNDA_NS}}}formField"
)


def rule_translations(ctx: LintContext) -> Iterator[LintProblem]:
    """Warn where a text lacks a language the same kind of text has elsewhere in the
    process (every task is named in zh-Hant but a new one is not): the page would show
    that one in the diagram's own language."""
    for process in ctx.executable_processes:
        named = [process, *_descendants(process, ["lane", "sequenceFlow", *FLOW_NODE_TAGS])]
        groups: dict[str, list[tuple[Element, str, str, frozenset[str]]]] = defaultdict(list)
        for element in named:
            found = _translations(element)
            if element.get("name"):
                groups["name"].append((element, "name", "", found.get("name", frozenset())))
            # Only a user task's instructions are shown (on its page).
            if _is(element, "userTask") and _text(
                element.find(f"{{{BPMN_NS}}}documentation")
            ).strip():
                documentation = found.get("documentation", frozenset())
                groups["documentation"].append((element, "documentation", "", documentation))
            for form_field in element.iterfind(_FORM_FIELDS):
                field_found = _translations(form_field)
                field_id = str(form_field.get("id", ""))
                where = f" (form field {field_id!r})"
                groups["label"].append(
                    (element, "label", where, field_found.get("label", frozenset()))
                )
                for value in _descendants(form_field, ["value"], CAMUNDA_NS):
                    what = f"option:{value.get('id', '')}"
                    groups["option"].append(
                        (element, what, where, field_found.get(what, frozenset()))
                    )
        for entries in groups.values():
            wanted = frozenset().union(*(languages for *_, languages in entries))
            for element, what, where, languages in entries:
                for language in sorted(wanted - languages):
                    yield LintProblem(
                        element.get("id"),
                        element.sourceline,
                        f"{_describe(element)}{where} has no {what}@{language} translation, "
                        "which other elements of the process have",
                        WARNING,
                    )


def _translations(element: Element) -> dict[str, frozenset[str]]:
    """what → languages of the translation properties directly on `element` (an element's
    extensionElements, or a form field's own properties)."""
    holder = element if _local(element, CAMUNDA_NS) else element.find(
        f"{{{BPMN_NS}}}extensionElements"
    )
    found: dict[str, set[str]] = defaultdict(set)
    if holder is not None:
        for prop in holder.iterfind(f"{{{CAMUNDA_NS}}}properties/{{{CAMUNDA_NS}}}property"):
            parts = split_property(str(prop.get("name") or prop.get("id") or ""))
            if parts is not None:
                found[parts[0]].add(parts[1])
    return {what: frozenset(languages) for what, languages in found.items()}


RULES: list[Rule] = [
    rule_text_bounds,
    rule_reserved_ids,
    rule_duplicate_ids,
    rule_unsupported_elements,
    rule_event_definitions,
    rule_camunda_extensions,
    rule_lanes,
    rule_form_placement,
    rule_form_key,
    rule_form_fields,
    rule_expressions,
    rule_gateways,
    rule_graph,
    rule_diagram,
    rule_translations,
]


def lint_bpmn(
    tree: etree._ElementTree, *, helper_names: frozenset[str], roles: frozenset[str]
) -> list[LintProblem]:
    """Every problem in a document parsed by parse_bpmn_xml, in source order."""
    ctx = LintContext(tree=tree, helper_names=frozenset(helper_names), roles=frozenset(roles))
    problems: list[LintProblem] = []
    for rule in RULES:
        problems.extend(rule(ctx))
    unique = list(dict.fromkeys(_bounded(p) for p in problems))
    return sorted(unique, key=lambda p: (p.line is None, p.line or 0))


def _bounded(problem: LintProblem) -> LintProblem:
    """The problem on one line and cut short: its element id and message may quote hostile
    input (an id of megabytes, or with a newline that would break `itsm lint`'s lines)."""
    element = problem.element
    if element is not None:
        element = shorten(printable(element), ELEMENT_ID_CHARS + 1)
    message = shorten(printable(problem.message), MAX_PROBLEM_CHARS)
    return dataclasses.replace(problem, element=element, message=message)


def lint_bytes(
    data: bytes, *, helper_names: frozenset[str], roles: frozenset[str]
) -> list[LintProblem]:
    """Parse safely, then lint; an unparseable document is one problem."""
    try:
        tree = parse_bpmn_xml(data)
    except UnsafeXmlError as error:
        return [LintProblem(element=None, line=error.line, message=str(error))]
    return lint_bpmn(tree, helper_names=helper_names, roles=roles)
