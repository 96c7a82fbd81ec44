"""May an open incident move to a new process version? (engine.workflow.migration_policy)

Every test edits a copy of the bundled process, with a string replacement or an lxml edit,
and asks the policy about incidents at realistic positions holding realistic data. The rules
are numbered as in docs/migration.md.
"""

from __future__ import annotations

import dataclasses
import random
import time
from pathlib import Path

import pytest
from lxml import etree

from engine.workflow.migration_policy import MoveAssessment, MovePolicy, assess_move
from engine.workflow.safe_xml import UnsafeXmlError
from tests.test_bpmn_diff import edit, edit_tree, one

BPMN = (Path(__file__).parents[1] / "bpmn" / "incident_management.bpmn").read_bytes()
BPMN_URI = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_URI = "http://camunda.org/schema/1.0/bpmn"
XSI_URI = "http://www.w3.org/2001/XMLSchema-instance"
NS = {"bpmn": BPMN_URI, "camunda": CAMUNDA_URI}

# What an incident holds at each stage of the bundled process.
RECORDED = {"category", "impact", "urgency", "priority", "major", "management_escalation"}
RECORDED |= {"sla_due"}
AT_DESK = {"resolved_at_desk", "resolution", "create_problem", "create_knowledge_article"}
LEVEL2 = {"level2_outcome", "reassign_reason", "reassign_to", "change_required"}
LEVEL2 |= {"service_request_required"}
LEVEL3 = {"level3_outcome", "change_required"}
# (position, produced) of typical open incidents.
INCIDENTS: list[tuple[set[str], set[str]]] = [
    ({"record_incident"}, set()),
    ({"initial_handling"}, RECORDED),
    ({"initial_handling", "manager_review"}, RECORDED),
    ({"level2_investigation"}, RECORDED | AT_DESK),
    ({"level3_investigation"}, RECORDED | AT_DESK | LEVEL2),
    ({"vendor_investigation"}, RECORDED | AT_DESK | LEVEL2 | {"escalated_from"}),
    ({"level2_resolve"}, RECORDED | AT_DESK | LEVEL2),
    ({"level3_resolve"}, RECORDED | AT_DESK | LEVEL2 | LEVEL3),
    ({"confirm_recovery"}, RECORDED | AT_DESK),
    ({"record_feedback"}, RECORDED | AT_DESK | {"recovered"}),
    ({"sla_review", "level2_investigation"}, RECORDED | AT_DESK),
]


# --- editing copies of the bundled process -------------------------------------------------------


def add(root: etree._Element, xml: str, parent: str = "//bpmn:process") -> None:
    """Append BPMN elements (written with the bpmn:, camunda: and xsi: prefixes) to `parent`."""
    wrapper = etree.fromstring(
        f'<bpmn:wrapper xmlns:bpmn="{BPMN_URI}" xmlns:camunda="{CAMUNDA_URI}" '
        f'xmlns:xsi="{XSI_URI}">{xml}</bpmn:wrapper>'
    )
    one(root, parent).extend(list(wrapper))


def reroute(root: etree._Element, flow_id: str, target: str) -> None:
    one(root, f"//bpmn:sequenceFlow[@id='{flow_id}']").set("targetRef", target)


def condition(flow_id: str, source: str, target: str, expression: str) -> str:
    return (
        f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}">'
        f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{expression}'
        "</bpmn:conditionExpression></bpmn:sequenceFlow>"
    )


def flow(flow_id: str, source: str, target: str) -> str:
    return f'<bpmn:sequenceFlow id="{flow_id}" sourceRef="{source}" targetRef="{target}" />'


def assess(new: bytes, position: set[str], produced: set[str]) -> MoveAssessment:
    return assess_move(BPMN, new, position, produced)


def assert_moves(new: bytes, position: set[str], produced: set[str]) -> None:
    assert assess(new, position, produced) == MoveAssessment(True, ())


# Frequently used edits.
PRIORITY_SCRIPT = "priority = itsm_priority(impact, urgency)</bpmn:script>"
CAPPED_PRIORITY = edit(
    PRIORITY_SCRIPT, "priority = min(itsm_priority(impact, urgency), 3)</bpmn:script>"
)
# The field's opening tag (its translations follow inside it).
LEVEL2_CHANGE_FIELD = (
    '<camunda:formField id="change_required" label="A change is required" type="boolean" '
    'defaultValue="false">'
)
LEVEL2_NEW_FIELD = edit(
    LEVEL2_CHANGE_FIELD,
    '<camunda:formField id="workaround_given" label="A workaround was given" type="boolean" />'
    + LEVEL2_CHANGE_FIELD,
)


def tier_codes(source: bytes = BPMN) -> bytes:
    """The vendor escalation scripts record "tier2"/"tier3" instead of "level2"/"level3", and
    the gateway that sends the vendor's solution back asks for the new code."""
    source = edit(
        'escalated_from = "level2"</bpmn:script>', 'escalated_from = "tier2"</bpmn:script>', source
    )
    source = edit(
        'escalated_from = "level3"</bpmn:script>', 'escalated_from = "tier3"</bpmn:script>', source
    )
    return edit('escalated_from == "level3"', 'escalated_from == "tier3"', source)


# --- the API -------------------------------------------------------------------------------------


def test_assessment_is_a_frozen_dataclass() -> None:
    result = assess(BPMN, {"initial_handling"}, RECORDED)
    assert result == MoveAssessment(can_move=True, reasons=())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.can_move = False  # type: ignore[misc]


def test_policy_and_convenience_function_agree() -> None:
    new = tier_codes(LEVEL2_NEW_FIELD)
    policy = MovePolicy(BPMN, new)
    for position, produced in INCIDENTS:
        assert policy.assess(position, produced) == assess(new, position, produced)
        # Any collection will do, and asking twice gives the same answer.
        assert policy.assess(list(position), tuple(produced)) == policy.assess(position, produced)
    assert [c.element_id for c in policy.diff.changed][:1] == ["level2_investigation"]


def test_unparseable_documents_are_refused() -> None:
    with pytest.raises(UnsafeXmlError):
        MovePolicy(BPMN, b"<not-bpmn/>")
    with pytest.raises(UnsafeXmlError):
        assess_move(b"", BPMN, {"initial_handling"}, set())


# --- rule 1: layout never blocks -----------------------------------------------------------------


@pytest.mark.parametrize("position, produced", INCIDENTS)
def test_identical_versions_let_every_incident_move(position: set[str], produced: set[str]) -> None:
    assert_moves(BPMN, position, produced)


def test_renaming_the_waiting_task_does_not_block() -> None:
    new = edit('name="Level-2 investigation"', 'name="Investigate (level 2)"')
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)


def test_relabelling_and_reordering_fields_of_the_waiting_task_does_not_block() -> None:
    new = edit('label="Outcome" type="enum"', 'label="Result of the investigation" type="enum"')
    new = edit('name="Reassign within level 2"', 'name="Hand over within level 2"', new)

    def reorder(root: etree._Element) -> None:
        form = one(root, "//bpmn:userTask[@id='level2_investigation']//camunda:formData")
        form.append(form[0])  # the outcome field moves to the end

    new = edit_tree(reorder, new)
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)


def test_moving_shapes_and_changing_documentation_does_not_block() -> None:
    new = edit('<dc:Bounds x="', '<dc:Bounds x="1', edit("2.3 Accept the incident", "Accept it"))
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)


# --- rule 2: where the incident waits ------------------------------------------------------------


def test_a_new_form_field_on_the_waiting_task_blocks() -> None:
    result = assess(LEVEL2_NEW_FIELD, {"level2_investigation"}, RECORDED | AT_DESK)
    assert result == MoveAssessment(
        False, ("the incident waits at level2_investigation, which changed (form)",)
    )


def test_a_changed_form_behind_the_incident_does_not_block_when_it_is_filled_in_again() -> None:
    # The reopened incident goes back through level2_investigation, which records
    # level2_outcome again before level2_solution_found reads it.
    new = edit('<camunda:value id="reassign" name="Reassign within level 2" />', "")
    for position in ({"level2_resolve"}, {"confirm_recovery"}, {"vendor_investigation"}):
        assert_moves(new, position, RECORDED | AT_DESK | LEVEL2 | {"escalated_from"})
    assert not assess(new, {"level2_investigation"}, RECORDED).can_move


def test_removing_the_waiting_task_blocks_only_incidents_waiting_there() -> None:
    new = BPMN.replace(b"level2_resolve", b"level2_fix")  # removed, and another added instead
    result = assess(new, {"level2_resolve"}, RECORDED | AT_DESK | LEVEL2)
    assert result == MoveAssessment(
        False, ("the incident waits at level2_resolve, which the new version no longer has",)
    )
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)
    assert_moves(new, {"confirm_recovery"}, RECORDED | AT_DESK | LEVEL2 | {"resolution_code"})


def test_an_unknown_position_blocks() -> None:
    result = assess(BPMN, {"no_such_task"}, set())
    assert result.reasons == (
        "the incident waits at no_such_task, which the new version no longer has",
    )


def test_moving_the_waiting_task_to_another_lane_blocks_only_there() -> None:
    lane_ref = "<bpmn:flowNodeRef>level2_resolve</bpmn:flowNodeRef>"
    new = edit(lane_ref, "")
    new = edit(
        "<bpmn:flowNodeRef>level3_resolve</bpmn:flowNodeRef>",
        f"<bpmn:flowNodeRef>level3_resolve</bpmn:flowNodeRef>{lane_ref}",
        new,
    )
    result = assess(new, {"level2_resolve"}, RECORDED | AT_DESK | LEVEL2)
    assert result.reasons == ("the incident waits at level2_resolve, which changed (lane)",)
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)


def test_a_new_route_out_of_the_unchanged_waiting_task_does_not_block() -> None:
    def insert_check(root: etree._Element) -> None:
        # initial_handling now leaves by a new flow to a new step before the gateway.
        old = one(root, "//bpmn:sequenceFlow[@id='flow_initial_handling_to_desk_gateway']")
        old.getparent().remove(old)
        add(
            root,
            flow("flow_initial_handling_to_check", "initial_handling", "check_with_reporter")
            + '<bpmn:userTask id="check_with_reporter" name="Check with the reporter" '
            'camunda:formKey="check_with_reporter"><bpmn:extensionElements><camunda:formData>'
            '<camunda:formField id="reporter_reached" label="Reporter reached" type="boolean" />'
            "</camunda:formData></bpmn:extensionElements></bpmn:userTask>"
            + flow("flow_check_to_desk_gateway", "check_with_reporter", "resolvable_at_desk"),
        )

    new = edit_tree(insert_check)
    policy = MovePolicy(BPMN, new)
    assert policy.diff.by_id()["initial_handling"].aspects == ("flow",)
    assert policy.assess({"initial_handling"}, RECORDED) == MoveAssessment(True, ())


def test_a_changed_timer_the_incident_waits_for_blocks() -> None:
    timer = (
        '<bpmn:boundaryEvent id="level2_overdue" name="Level 2 overdue" '
        'attachedToRef="level2_investigation" cancelActivity="false">'
        '<bpmn:timerEventDefinition id="level2_overdue_timer">'
        '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">PT4H</bpmn:timeDuration>'
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
    )
    old = edit_tree(lambda root: add(root, timer))
    new = edit_tree(lambda root: add(root, timer.replace("PT4H", "PT8H")))
    position = {"level2_investigation", "level2_overdue"}
    result = MovePolicy(old, new).assess(position, RECORDED | AT_DESK)
    assert result.reasons == ("the incident waits at level2_overdue, which changed (timer)",)
    assert MovePolicy(old, old).assess(position, RECORDED | AT_DESK).can_move


def test_a_changed_subprocess_around_the_incident_blocks() -> None:
    new = edit(' triggeredByEvent="true"', ' triggeredByEvent="false"')
    result = assess(new, {"sla_review"}, RECORDED)
    assert result.reasons == (
        "the incident waits at sla_review inside sla_escalation_handler, which changed (other)",
    )


# --- rule 3: a route ahead decided on data recorded under the old meaning ------------------------


def test_a_gateway_ahead_reading_data_a_changed_script_recorded_blocks() -> None:
    # An incident escalated by level 3 holds escalated_from == "level3"; under the new version
    # the gateway would send the vendor's solution to level 2.
    result = assess(tier_codes(), {"vendor_investigation"}, RECORDED | LEVEL2 | {"escalated_from"})
    assert result == MoveAssessment(
        False,
        (
            "gateway return_to_escalating_tier ahead reads escalated_from, which "
            "vendor_escalated_by_level2 (changed: script) and vendor_escalated_by_level3 "
            "(changed: script) recorded under the old version",
        ),
    )


def test_the_same_change_passes_once_the_incident_is_past_every_reader() -> None:
    produced = RECORDED | AT_DESK | LEVEL2 | LEVEL3 | {"escalated_from", "solution"}
    for position in ({"level2_resolve"}, {"level3_resolve"}, {"confirm_recovery"}):
        assert_moves(tier_codes(), position, produced)
    # An incident that never reached the vendor holds no escalated_from: nothing to misjudge.
    assert_moves(tier_codes(), {"level3_investigation"}, RECORDED | AT_DESK | LEVEL2)


def with_change_gateway(root: etree._Element) -> None:
    """After level2_resolve, a new gateway raises a change when level 2 said one is needed."""
    reroute(root, "flow_level2_resolve_to_resolved", "change_needed")
    add(
        root,
        '<bpmn:exclusiveGateway id="change_needed" name="Change needed?" '
        'default="flow_no_change" />'
        + condition("flow_change", "change_needed", "change_raised", "change_required")
        + flow("flow_no_change", "change_needed", "incident_resolved")
        + '<bpmn:intermediateThrowEvent id="change_raised" name="Change raised" />'
        + flow("flow_change_raised_to_resolved", "change_raised", "incident_resolved"),
    )


def test_a_new_gateway_ahead_reading_a_field_whose_form_changed_blocks() -> None:
    # "A change is required" is now ticked by default: an incident that left level 2 under the
    # old version holds change_required with the old meaning.
    new = edit_tree(
        with_change_gateway,
        edit(LEVEL2_CHANGE_FIELD, LEVEL2_CHANGE_FIELD.replace('"false"', '"true"')),
    )
    result = assess(new, {"level2_resolve"}, RECORDED | AT_DESK | LEVEL2)
    assert result == MoveAssessment(
        False,
        (
            "gateway change_needed ahead reads change_required, which level2_investigation "
            "(changed: form) recorded under the old version",
        ),
    )
    # Reopened incidents pass level2_investigation again before the new gateway.
    assert_moves(new, {"confirm_recovery"}, RECORDED | AT_DESK | LEVEL2)
    assert_moves(new, {"level3_resolve"}, RECORDED | AT_DESK | LEVEL2 | LEVEL3)


def test_a_new_gateway_ahead_reading_unchanged_data_passes() -> None:
    new = edit_tree(with_change_gateway)
    for position, produced in INCIDENTS:
        assert_moves(new, position, produced)


def test_a_changed_condition_ahead_reading_unchanged_data_passes() -> None:
    new = edit(
        ">resolved_at_desk</bpmn:conditionExpression>",
        ">resolved_at_desk and not create_problem</bpmn:conditionExpression>",
    )
    assert_moves(new, {"initial_handling"}, RECORDED)
    assert_moves(new, {"initial_handling", "manager_review"}, RECORDED)


def test_a_changed_form_read_only_by_a_script_ahead_passes() -> None:
    # Rule 4 is about scripts' outputs; a user task's data is only judged by gateways.
    new = edit(
        '<camunda:value id="3" name="Low" />',
        '<camunda:value id="3" name="Low" /><camunda:value id="4" name="Very low" />',
    )
    new = edit(
        'escalated_from = "level2"</bpmn:script>',
        'escalated_from = "level2"\nvendor_impact = impact</bpmn:script>',
        new,
    )
    assert_moves(new, {"initial_handling"}, RECORDED)


# --- rule 4: the output of a changed script that already ran ------------------------------------


def test_a_changed_script_behind_that_nobody_ahead_reads_passes() -> None:
    # Priority is read by determine_major, decide_management_escalation and compute_sla_due,
    # all behind an incident at initial handling.
    for position, produced in INCIDENTS:
        assert_moves(CAPPED_PRIORITY, position, produced)


@pytest.mark.parametrize(
    "old, new, reason",
    [
        (
            'escalated_from = "level2"</bpmn:script>',
            'escalated_from = "level2"\nvendor_priority = priority</bpmn:script>',
            "script task vendor_escalated_by_level2 ahead reads priority",
        ),
        (
            ">service_request_required</bpmn:conditionExpression>",
            ">service_request_required or priority == 1</bpmn:conditionExpression>",
            "gateway service_request_needed ahead reads priority",
        ),
        (
            '<camunda:formField id="level3_outcome"',
            '<camunda:formField id="priority" label="Priority" type="long"><camunda:validation>'
            '<camunda:constraint name="readonly" /></camunda:validation></camunda:formField>'
            '<camunda:formField id="level3_outcome"',
            "user task level3_investigation ahead prefills its form field priority",
        ),
    ],
    ids=["script", "condition", "form"],
)
def test_reading_the_output_of_a_changed_script_ahead_blocks(
    old: str, new: str, reason: str
) -> None:
    changed = edit(old, new, CAPPED_PRIORITY)
    result = assess(changed, {"initial_handling"}, RECORDED)
    assert result == MoveAssessment(
        False,
        (f"{reason}, which determine_priority (changed: script) recorded under the old version",),
    )
    # Without the script change, the new reader reads data recorded with the same meaning.
    assert_moves(edit(old, new), {"initial_handling"}, RECORDED)
    # The script has not run yet for an incident still being recorded.
    assert_moves(changed, {"record_incident"}, set())


def test_a_removed_script_whose_output_a_gateway_ahead_reads_blocks() -> None:
    def inline_escalation(root: etree._Element) -> None:
        script = one(root, "//bpmn:scriptTask[@id='vendor_escalated_by_level2']")
        script.getparent().remove(script)
        reroute(root, "flow_level2_to_vendor", "vendor_investigation")

    new = edit_tree(inline_escalation)
    produced = RECORDED | LEVEL2 | {"escalated_from"}
    assert assess(new, {"vendor_investigation"}, produced).reasons == (
        "gateway return_to_escalating_tier ahead reads escalated_from, which "
        "vendor_escalated_by_level2 (removed) recorded under the old version",
    )


# --- rule 5: everything else passes --------------------------------------------------------------


def test_a_task_added_elsewhere_passes() -> None:
    def add_debrief(root: etree._Element) -> None:
        reroute(root, "flow_director_to_reviews_completed", "director_debrief")
        add(
            root,
            '<bpmn:userTask id="director_debrief" name="Debrief" '
            'camunda:formKey="director_debrief">'
            "<bpmn:extensionElements><camunda:formData>"
            '<camunda:formField id="debrief_notes" label="Notes" type="string" />'
            "</camunda:formData></bpmn:extensionElements></bpmn:userTask>"
            + flow("flow_debrief_to_reviews_completed", "director_debrief", "reviews_completed"),
        )

    new = edit_tree(add_debrief)
    for position, produced in INCIDENTS:
        assert_moves(new, position, produced)


# --- the event subprocess ------------------------------------------------------------------------


def test_an_incident_in_the_event_subprocess_ignores_main_flow_changes_it_cannot_reach() -> None:
    new = tier_codes(LEVEL2_NEW_FIELD)
    produced = RECORDED | AT_DESK | LEVEL2 | {"escalated_from"}
    assert_moves(new, {"sla_review"}, produced)
    # ... but the main flow of the same incident is judged as usual.
    result = assess(new, {"sla_review", "level2_investigation"}, produced)
    assert result.reasons == ("the incident waits at level2_investigation, which changed (form)",)


def test_the_event_subprocess_is_not_ahead_of_the_main_flow() -> None:
    new = edit(
        '<camunda:formField id="sla_review_actions"',
        '<camunda:formField id="sla_review_cause" label="Cause" type="string" />'
        '<camunda:formField id="sla_review_actions"',
    )
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)
    result = assess(new, {"sla_review", "level2_investigation"}, RECORDED | AT_DESK)
    assert result.reasons == ("the incident waits at sla_review, which changed (form)",)


def test_a_reader_ahead_inside_the_event_subprocess_blocks_only_incidents_there() -> None:
    def director_check(root: etree._Element) -> None:
        reroute(root, "flow_sla_review_to_done", "sla_priority_one")
        add(
            root,
            '<bpmn:exclusiveGateway id="sla_priority_one" name="P1?" default="flow_sla_not_p1" />'
            + condition("flow_sla_p1", "sla_priority_one", "sla_director_told", "priority == 1")
            + flow("flow_sla_not_p1", "sla_priority_one", "sla_review_done")
            + '<bpmn:endEvent id="sla_director_told" name="Director told" />',
            parent="//bpmn:subProcess[@id='sla_escalation_handler']",
        )

    new = edit_tree(director_check, CAPPED_PRIORITY)
    result = assess(new, {"sla_review", "level2_investigation"}, RECORDED | AT_DESK)
    assert result.reasons == (
        "gateway sla_priority_one ahead reads priority, which determine_priority "
        "(changed: script) recorded under the old version",
    )
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)


# --- rule 6: data the new version needs and the incident lacks -----------------------------------


def with_service_class(root: etree._Element) -> None:
    """A new script after recording classifies the service; the desk gateway reads it."""
    reroute(root, "flow_record_to_priority", "classify_service")
    add(
        root,
        '<bpmn:scriptTask id="classify_service" name="Classify service" scriptFormat="python">'
        '<bpmn:script>service_class = "network" if category == "network" else "other"'
        "</bpmn:script></bpmn:scriptTask>"
        + flow("flow_classify_to_priority", "classify_service", "determine_priority"),
    )
    one(
        root, "//bpmn:sequenceFlow[@id='flow_desk_resolved']/bpmn:conditionExpression"
    ).text = 'resolved_at_desk and service_class != "network"'


def test_data_the_new_version_records_behind_the_incident_blocks_when_read_ahead() -> None:
    new = edit_tree(with_service_class)
    assert assess(new, {"initial_handling"}, RECORDED).reasons == (
        "gateway resolvable_at_desk ahead reads service_class, which the incident does not hold "
        "and no step on the way records (the new version records it at classify_service)",
    )
    assert_moves(new, {"record_incident"}, set())  # classify_service is still ahead
    assert_moves(new, {"level2_investigation"}, RECORDED | AT_DESK)  # past the reader


# --- speed ---------------------------------------------------------------------------------------


def test_assessing_hundreds_of_incidents_is_fast() -> None:
    new = edit_tree(with_service_class, tier_codes(CAPPED_PRIORITY))
    started = time.perf_counter()
    policy = MovePolicy(BPMN, new)
    built = time.perf_counter() - started
    names = sorted(RECORDED | AT_DESK | LEVEL2 | LEVEL3 | {"escalated_from", "recovered"})
    positions = sorted({p for position, _ in INCIDENTS for p in position})
    rng = random.Random(7)
    cases = [
        (set(rng.sample(positions, rng.randint(1, 2))), set(rng.sample(names, rng.randint(0, 12))))
        for _ in range(500)
    ]
    started = time.perf_counter()
    results = [policy.assess(position, produced) for position, produced in cases]
    elapsed = time.perf_counter() - started
    assert any(r.can_move for r in results) and not all(r.can_move for r in results)
    assert built < 2.0, f"building the policy took {built:.2f} s"
    assert elapsed < 2.0, f"500 assessments took {elapsed:.2f} s"


# --- subprocesses --------------------------------------------------------------------------------


def with_vendor_review(root: etree._Element) -> None:
    """The vendor's solution goes through a subprocess before it is sent back."""
    reroute(root, "flow_vendor_investigation_to_gateway", "vendor_review")
    add(
        root,
        '<bpmn:subProcess id="vendor_review" name="Review the solution">'
        '<bpmn:startEvent id="vendor_review_start" />'
        + flow("flow_vendor_review_start", "vendor_review_start", "vendor_review_check")
        + '<bpmn:userTask id="vendor_review_check" name="Check the solution" '
        'camunda:formKey="vendor_review_check"><bpmn:extensionElements><camunda:formData>'
        '<camunda:formField id="solution_ok" label="The solution works" type="boolean" />'
        "</camunda:formData></bpmn:extensionElements></bpmn:userTask>"
        + flow("flow_vendor_review_done", "vendor_review_check", "vendor_review_end")
        + '<bpmn:endEvent id="vendor_review_end" /></bpmn:subProcess>'
        + flow("flow_vendor_review_to_gateway", "vendor_review", "return_to_escalating_tier"),
    )


def test_readers_are_found_through_and_out_of_subprocesses() -> None:
    old = edit_tree(with_vendor_review)
    policy = MovePolicy(old, tier_codes(old))
    produced = RECORDED | LEVEL2 | {"escalated_from", "solution"}
    reason = (
        "gateway return_to_escalating_tier ahead reads escalated_from, which "
        "vendor_escalated_by_level2 (changed: script) and vendor_escalated_by_level3 "
        "(changed: script) recorded under the old version"
    )
    assert policy.assess({"vendor_investigation"}, produced).reasons == (reason,)
    assert policy.assess({"vendor_review_check"}, produced).reasons == (reason,)
    assert policy.assess({"level2_resolve"}, produced).can_move


def test_a_name_a_script_records_only_sometimes_is_not_taken_as_recorded_again() -> None:
    # Level 2's escalation script now records the tier only for a non-major incident: a
    # major one reaching the gateway would still hold the code recorded under the old version.
    new = tier_codes(
        edit(
            'escalated_from = "level2"</bpmn:script>',
            'if not major:\n    escalated_from = "level2"</bpmn:script>',
        )
    )
    produced = RECORDED | AT_DESK | LEVEL2 | {"escalated_from"}
    assert assess(new, {"level2_investigation"}, produced).reasons == (
        "gateway return_to_escalating_tier ahead reads escalated_from, which "
        "vendor_escalated_by_level2 (changed: script) and vendor_escalated_by_level3 "
        "(changed: script) recorded under the old version",
    )
    assert_moves(tier_codes(), {"level2_investigation"}, produced)


def test_a_waiting_task_moved_out_of_its_subprocess_blocks() -> None:
    def move_out(root: etree._Element) -> None:
        one(root, "//bpmn:process").append(one(root, "//bpmn:userTask[@id='sla_review']"))

    result = assess(edit_tree(move_out), {"sla_review", "level2_investigation"}, RECORDED)
    assert result.reasons == (
        # It was in the lane of its subprocess, and now is in none.
        "the incident waits at sla_review, which changed (lane)",
        "the incident waits at sla_review, which moved from subprocess sla_escalation_handler "
        "to the top level of the process",
    )
