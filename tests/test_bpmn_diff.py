"""Comparing two versions of a process definition (engine.workflow.diff).

Every test edits a copy of the bundled process, with a string replacement or an lxml edit,
and checks which elements the diff reports and under which aspects: the versions page shows
the details, and the migration policy reads the aspects (layout-only changes never block).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from engine.workflow.diff import (
    LAYOUT_ONLY_ASPECTS,
    ElementChange,
    ProcessDiff,
    diff_definitions,
)
from engine.workflow.safe_xml import UnsafeXmlError

BPMN = (Path(__file__).parents[1] / "bpmn" / "incident_management.bpmn").read_bytes()
NS = {
    "bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL",
    "bpmndi": "http://www.omg.org/spec/BPMN/20100524/DI",
    "dc": "http://www.omg.org/spec/DD/20100524/DC",
    "di": "http://www.omg.org/spec/DD/20100524/DI",
    "camunda": "http://camunda.org/schema/1.0/bpmn",
}
TIMER_EVENT = (
    '<bpmn:boundaryEvent id="level2_overdue" name="Level 2 overdue" '
    'attachedToRef="level2_investigation" cancelActivity="false">'
    '<bpmn:timerEventDefinition id="level2_overdue_timer">'
    '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT4H</bpmn:timeDuration>'
    "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
)
SUBPROCESS_END = "</bpmn:subProcess>"


def edit(old: str, new: str, source: bytes = BPMN) -> bytes:
    """Replace the first occurrence of `old`, which must be there (or the test is void)."""
    text = source.decode("utf-8")
    assert old in text, f"{old!r} is not in the document"
    return text.replace(old, new, 1).encode("utf-8")


def edit_tree(change: Callable[[etree._Element], None], source: bytes = BPMN) -> bytes:
    root = etree.fromstring(source)
    change(root)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def one(root: etree._Element, xpath: str) -> etree._Element:
    found = root.xpath(xpath, namespaces=NS)
    assert len(found) == 1, xpath
    return found[0]


def only_change(diff: ProcessDiff, element_id: str) -> ElementChange:
    assert not diff.added and not diff.removed
    assert [c.element_id for c in diff.changed] == [element_id]
    return diff.changed[0]


# --- nothing that matters changed ---------------------------------------------------------------


def test_identical_documents_have_an_empty_diff() -> None:
    diff = diff_definitions(BPMN, BPMN)
    assert diff.is_empty
    assert diff.to_dict() == {"added": [], "removed": [], "changed": []}
    assert diff.by_id() == {}


def test_moving_shapes_and_edges_is_not_a_change() -> None:
    def move(root: etree._Element) -> None:
        bounds = one(root, "//bpmndi:BPMNShape[@bpmnElement='record_incident']/dc:Bounds")
        bounds.set("x", "260")
        bounds.set("y", "345")
        for point in root.xpath("//bpmndi:BPMNEdge/di:waypoint", namespaces=NS):
            point.set("x", str(float(point.get("x")) + 12.5))

    assert diff_definitions(BPMN, edit_tree(move)).is_empty


def test_attribute_order_comments_and_indentation_are_not_changes() -> None:
    reordered = edit(
        '<bpmn:sequenceFlow id="flow_reported_to_record" sourceRef="incident_reported" '
        'targetRef="record_incident" />',
        '<bpmn:sequenceFlow targetRef="record_incident"\n        id="flow_reported_to_record"'
        ' sourceRef="incident_reported"><!-- why --></bpmn:sequenceFlow>',
    )
    reordered = edit("<!-- phases -->", "", reordered)
    assert diff_definitions(BPMN, reordered).is_empty


def test_whitespace_in_scripts_and_conditions_is_not_a_change() -> None:
    new = edit(
        "<bpmn:script>priority = itsm_priority(impact, urgency)</bpmn:script>",
        "<bpmn:script>\r\n        priority = itsm_priority(impact, urgency)   \r\n      "
        "</bpmn:script>",
    )
    new = edit(
        ">management_escalation</bpmn:conditionExpression>",
        ">\n   management_escalation\n</bpmn:conditionExpression>",
        new,
    )
    assert diff_definitions(BPMN, new).is_empty


# --- labels and layout --------------------------------------------------------------------------


def test_renaming_a_task_is_a_layout_only_name_change() -> None:
    new = edit('name="Record and classify incident"', 'name="Record the incident"')
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.kind == "userTask"
    assert change.name == "Record the incident"
    assert change.aspects == ("name",)
    assert change.details == ("name: 'Record and classify incident' -> 'Record the incident'",)
    assert change.layout_only


def test_renaming_a_flow_and_rewording_documentation_are_layout_only() -> None:
    new = edit('id="flow_escalation_yes" name="yes"', 'id="flow_escalation_yes" name="Yes"')
    new = edit("1.2 Priority from impact and urgency.", "1.2 The priority matrix.", new)
    diff = diff_definitions(BPMN, new)
    changes = diff.by_id()
    assert set(changes) == {"flow_escalation_yes", "determine_priority"}
    assert changes["flow_escalation_yes"].aspects == ("name",)
    assert changes["determine_priority"].aspects == ("documentation",)
    assert changes["determine_priority"].details == ("documentation changed",)
    assert all(c.layout_only for c in diff.changed)


def test_changing_a_field_label_is_form_layout() -> None:
    new = edit('label="Impact"', 'label="Business impact"')
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.aspects == ("form_layout",)
    assert change.details == ("field \"impact\" label: 'Impact' -> 'Business impact'",)
    assert change.layout_only


def test_reordering_fields_is_form_layout() -> None:
    def swap(root: etree._Element) -> None:
        form = one(root, "//bpmn:userTask[@id='record_incident']//camunda:formData")
        form.insert(0, one(form, "camunda:formField[@id='urgency']"))

    change = only_change(diff_definitions(BPMN, edit_tree(swap)), "record_incident")
    assert change.aspects == ("form_layout",)
    assert change.details == ("fields reordered",)
    assert change.layout_only


def test_renaming_or_reordering_enum_values_is_form_layout() -> None:
    new = edit('<camunda:value id="hardware" name="Hardware" />', "")
    new = edit(
        '<camunda:value id="other" name="Other" />',
        '<camunda:value id="other" name="Something else" />'
        '<camunda:value id="hardware" name="Hardware" />',
        new,
    )
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.aspects == ("form_layout",)
    assert change.details == (
        "field \"category\" value \"other\" label: 'Other' -> 'Something else'",
        'field "category" values reordered',
    )


def test_making_a_text_box_multiline_is_form_layout() -> None:
    # The field's properties hold its zh-Hant label (issue 11): add one next to it.
    label = '<camunda:property id="label@zh_Hant_TW" value="轉派給（二線工程師的使用者名稱）" />'
    new = edit(label, label + '<camunda:property id="multiline" value="true" />')
    change = only_change(diff_definitions(BPMN, new), "level2_investigation")
    assert change.aspects == ("form_layout",)


# --- forms --------------------------------------------------------------------------------------


def test_adding_a_form_field_is_a_form_change() -> None:
    new = edit(
        '<camunda:formField id="urgency"',
        '<camunda:formField id="priority_hint" label="Priority hint" type="string" />'
        '<camunda:formField id="urgency"',
    )
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.aspects == ("form",)
    assert change.details == ('field "priority_hint" added',)
    assert not change.layout_only


def test_changing_an_enum_value_is_a_form_change() -> None:
    new = edit('<camunda:value id="network" name="Network" />', '<camunda:value id="net" />')
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.aspects == ("form",)
    assert change.details == (
        'field "category" value "net" added',
        'field "category" value "network" removed',
    )


def test_validation_type_and_default_changes_are_form_changes() -> None:
    new = edit('config="4000"', 'config="2000"')  # initial_handling's resolution
    new = edit('type="enum" defaultValue="fixed"', 'type="enum" defaultValue="workaround"', new)
    new = edit(
        'id="reassign_to" label="Reassign to (level-2 username)" type="string"',
        'id="reassign_to" label="Reassign to (level-2 username)" type="long"',
        new,
    )
    changes = diff_definitions(BPMN, new).by_id()
    assert set(changes) == {"initial_handling", "level2_resolve", "level2_investigation"}
    assert changes["initial_handling"].aspects == ("form",)
    assert changes["initial_handling"].details == (
        'field "resolution" constraint "maxlength=2000" added',
        'field "resolution" constraint "maxlength=4000" removed',
    )
    assert changes["level2_resolve"].details == (
        "field \"resolution_code\" default: 'fixed' -> 'workaround'",
    )
    assert changes["level2_investigation"].details == (
        "field \"reassign_to\" type: 'string' -> 'long'",
    )


def test_forms_inside_the_event_subprocess_are_compared() -> None:
    new = edit('label="Actions taken"', 'label="What you did"')
    new = edit('name="Review SLA escalation"', 'name="Review the SLA escalation"', new)
    change = only_change(diff_definitions(BPMN, new), "sla_review")
    assert change.aspects == ("name", "form_layout")
    assert change.layout_only


# --- behaviour ----------------------------------------------------------------------------------


def test_changing_a_script_is_a_script_change() -> None:
    new = edit(
        "priority = itsm_priority(impact, urgency)", "priority = itsm_priority(urgency, impact)"
    )
    change = only_change(diff_definitions(BPMN, new), "determine_priority")
    assert change.kind == "scriptTask"
    assert change.aspects == ("script",)
    assert change.details == (
        "script: 'priority = itsm_priority(impact, urgency)' -> "
        "'priority = itsm_priority(urgency, impact)'",
    )
    assert not change.layout_only


def test_changing_a_condition_is_a_condition_change() -> None:
    new = edit(">management_escalation</", ">management_escalation or major</")
    change = only_change(diff_definitions(BPMN, new), "flow_escalation_yes")
    assert change.kind == "sequenceFlow"
    assert change.aspects == ("condition",)
    assert change.details == (
        "condition: 'management_escalation' -> 'management_escalation or major'",
    )


def test_changing_the_gateway_default_is_a_default_flow_change() -> None:
    new = edit('default="flow_recovered_no"', 'default="flow_recovered_yes"')
    change = only_change(diff_definitions(BPMN, new), "service_recovered")
    assert change.aspects == ("default_flow",)
    assert change.details == ("default flow: 'flow_recovered_no' -> 'flow_recovered_yes'",)


def test_changing_the_phase_property_is_a_properties_change() -> None:
    new = edit(
        '<camunda:property name="phase" value="identify" />',
        '<camunda:property name="phase" value="investigate" />',
    )
    change = only_change(diff_definitions(BPMN, new), "record_incident")
    assert change.aspects == ("properties",)
    assert change.details == ("property \"phase\": 'identify' -> 'investigate'",)


def test_changing_a_timer_expression_is_a_timer_change() -> None:
    with_timer = edit(SUBPROCESS_END, SUBPROCESS_END + TIMER_EVENT)
    added = diff_definitions(BPMN, with_timer)
    assert [c.element_id for c in added.added] == ["level2_overdue"]
    assert added.added[0].kind == "boundaryEvent"

    longer = edit(">PT4H<", ">PT8H<", with_timer)
    change = only_change(diff_definitions(with_timer, longer), "level2_overdue")
    assert change.aspects == ("timer",)
    assert change.details == ("timer: 'timeDuration PT4H' -> 'timeDuration PT8H'",)

    dated = edit("bpmn:timeDuration", "bpmn:timeDate", with_timer)
    dated = edit("PT4H</bpmn:timeDuration>", "2030-01-01T00:00:00Z</bpmn:timeDate>", dated)
    assert only_change(diff_definitions(with_timer, dated), "level2_overdue").aspects == ("timer",)


def test_moving_a_task_to_another_lane_is_a_lane_change_on_the_task() -> None:
    new = edit("<bpmn:flowNodeRef>level2_resolve</bpmn:flowNodeRef>", "")
    new = edit(
        "<bpmn:flowNodeRef>level3_resolve</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>level3_resolve</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>level2_resolve</bpmn:flowNodeRef>",
        new,
    )
    change = only_change(diff_definitions(BPMN, new), "level2_resolve")
    assert change.aspects == ("lane",)
    assert change.details == ("lane: 'level2' -> 'level3'",)
    assert not change.layout_only


def test_renaming_a_lane_changes_the_role_of_its_tasks() -> None:
    new = edit(
        '<bpmn:lane id="lane_vendor" name="vendor">', '<bpmn:lane id="lane_vendor" name="supplier">'
    )
    changes = diff_definitions(BPMN, new).by_id()
    assert set(changes) == {"lane_vendor", "vendor_investigation", "return_to_escalating_tier"}
    # The lane's name is the role: renaming it is never cosmetic.
    assert changes["lane_vendor"].kind == "lane"
    assert changes["lane_vendor"].aspects == ("lane",)
    assert not changes["lane_vendor"].layout_only
    assert changes["vendor_investigation"].details == ("lane: 'vendor' -> 'supplier'",)


def test_changing_the_element_type_is_a_type_change() -> None:
    def retag(root: etree._Element) -> None:
        one(
            root, "//*[@id='service_request_raised']"
        ).tag = f"{{{NS['bpmn']}}}intermediateCatchEvent"

    change = only_change(diff_definitions(BPMN, edit_tree(retag)), "service_request_raised")
    assert change.kind == "intermediateCatchEvent"
    assert change.aspects == ("type",)
    assert change.details == ("type: 'intermediateThrowEvent' -> 'intermediateCatchEvent'",)


def test_anything_else_is_other() -> None:
    # The engine matches signals by name, so renaming the signal changes the start event.
    new = edit('name="sla_escalation" />', 'name="sla_breach" />')
    new = edit(
        '<bpmn:userTask id="level3_investigation"',
        '<bpmn:userTask camunda:asyncBefore="true" id="level3_investigation"',
        new,
    )
    changes = diff_definitions(BPMN, new).by_id()
    assert set(changes) == {"sla_escalation_received", "level3_investigation"}
    assert changes["sla_escalation_received"].aspects == ("other",)
    assert changes["sla_escalation_received"].details == ("signalEventDefinition changed",)
    assert changes["level3_investigation"].details == (
        "attribute camunda:asyncBefore: none -> 'true'",
    )


# --- added and removed elements ---------------------------------------------------------------


def test_adding_a_task_with_its_flows() -> None:
    new = edit(
        '<bpmn:sequenceFlow id="flow_record_to_priority" sourceRef="record_incident" '
        'targetRef="determine_priority" />',
        '<bpmn:sequenceFlow id="flow_record_to_verify" sourceRef="record_incident" '
        'targetRef="verify_contact" />'
        '<bpmn:userTask id="verify_contact" name="Verify contact" camunda:formKey="verify_contact">'
        "<bpmn:incoming>flow_record_to_verify</bpmn:incoming>"
        "<bpmn:outgoing>flow_verify_to_priority</bpmn:outgoing></bpmn:userTask>"
        '<bpmn:sequenceFlow id="flow_verify_to_priority" sourceRef="verify_contact" '
        'targetRef="determine_priority" />',
    )
    new = edit(
        "<bpmn:outgoing>flow_record_to_priority<", "<bpmn:outgoing>flow_record_to_verify<", new
    )
    new = edit(
        "<bpmn:incoming>flow_record_to_priority<", "<bpmn:incoming>flow_verify_to_priority<", new
    )
    new = edit(
        "<bpmn:flowNodeRef>record_incident</bpmn:flowNodeRef>",
        "<bpmn:flowNodeRef>record_incident</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>verify_contact</bpmn:flowNodeRef>",
        new,
    )
    diff = diff_definitions(BPMN, new)
    assert [c.element_id for c in diff.added] == [
        "flow_record_to_verify",
        "verify_contact",
        "flow_verify_to_priority",
    ]
    changes = diff.by_id()
    assert changes["verify_contact"].kind == "userTask"
    assert changes["verify_contact"].details == ("lane: 'service_desk'",)
    assert changes["flow_record_to_verify"].details == ("record_incident -> verify_contact",)
    assert [c.element_id for c in diff.removed] == ["flow_record_to_priority"]
    assert {c.element_id: c.aspects for c in diff.changed} == {
        "record_incident": ("flow",),
        "determine_priority": ("flow",),
    }
    assert changes["record_incident"].details == (
        'outgoing flow "flow_record_to_verify" added',
        'outgoing flow "flow_record_to_priority" removed',
    )
    assert not any(c.layout_only for c in diff.added + diff.removed)


def test_removing_an_element() -> None:
    def remove(root: etree._Element) -> None:
        for xpath in (
            "//bpmn:process//*[@id='incident_reopened']",
            "//bpmn:process//*[@id='flow_reopened_to_level2']",
            "//bpmn:flowNodeRef[text()='incident_reopened']",
        ):
            element = one(root, xpath)
            element.getparent().remove(element)
        one(root, "//bpmn:sequenceFlow[@id='flow_recovered_no']").set(
            "targetRef", "level2_investigation"
        )

    diff = diff_definitions(BPMN, edit_tree(remove))
    assert not diff.added
    assert [(c.element_id, c.kind) for c in diff.removed] == [
        ("incident_reopened", "intermediateThrowEvent"),
        ("flow_reopened_to_level2", "sequenceFlow"),
    ]
    assert diff.removed[0].name == "Incident reopened"
    changes = diff.by_id()
    assert changes["flow_recovered_no"].aspects == ("flow",)
    assert changes["flow_recovered_no"].details == (
        "target: 'incident_reopened' -> 'level2_investigation'",
    )
    assert changes["level2_investigation"].aspects == ("flow",)
    assert set(changes) == {
        "incident_reopened",
        "flow_reopened_to_level2",
        "flow_recovered_no",
        "level2_investigation",
    }


# --- the API ------------------------------------------------------------------------------------


def test_layout_only_classification() -> None:
    assert {"name", "documentation", "form_layout"} == LAYOUT_ONLY_ASPECTS
    assert ElementChange("a", "userTask", None, ("name", "form_layout")).layout_only
    assert not ElementChange("a", "userTask", None, ("name", "form")).layout_only
    # Added and removed elements carry no aspects and are never layout-only.
    assert not ElementChange("a", "userTask", None).layout_only


def test_to_dict_is_json_friendly() -> None:
    new = edit('label="Impact"', 'label="Business impact"')
    data = json.loads(json.dumps(diff_definitions(BPMN, new).to_dict()))
    assert data["changed"] == [
        {
            "element_id": "record_incident",
            "kind": "userTask",
            "name": "Record and classify incident",
            "aspects": ["form_layout"],
            "details": ["field \"impact\" label: 'Impact' -> 'Business impact'"],
            "layout_only": True,
        }
    ]


@pytest.mark.parametrize(
    "bad",
    [
        b"<not-closed",
        b"",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x/>',
        b"<html/>",
    ],
)
def test_unparseable_documents_raise_unsafe_xml_error(bad: bytes) -> None:
    with pytest.raises(UnsafeXmlError):
        diff_definitions(BPMN, bad)
    with pytest.raises(UnsafeXmlError):
        diff_definitions(bad, BPMN)
