"""Timer values are bounded: at deploy time (literals) and at run time (computed values).

SpiffWorkflow expands a duration month by month ("P99999999Y" loops ~10^9 times in the
request thread) and overflows on "P100000Y", on "PT99999999999999H" and on dates whose UTC
conversion leaves the datetime range; a number such as 10**100 crashes its parser. Each of
these used to pass the lint and then make every new incident a 500.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException

from engine.domain.priority import DEFAULT_PRIORITY_MATRIX
from engine.domain.script_helpers import HELPER_NAMES, bind_helpers
from engine.workflow import bounds
from engine.workflow.definitions import compile_definition
from engine.workflow.runtime import ProcessRuntime, ProcessStepFailed, SpecSource
from engine.workflow.sandbox import SandboxExecutor
from engine.workflow.serialization import StateSerializer
from tests.test_lint import ROLES, _doc_with_boundary, line_of, only, timer
from tests.test_sandbox import TARGETS, due_times, start_workflow

# --- deploy time: literal values ----------------------------------------------------------------

OUT_OF_RANGE_LITERALS = [
    ("timeDuration", '"P99999999Y"', "at most"),
    ("timeDuration", '"P100000Y"', "at most"),
    ("timeDuration", '"PT99999999999999H"', "at most"),
    ("timeDuration", '"P11Y"', "at most"),
    ("timeDuration", '"P121M"', "at most"),
    ("timeDuration", '"P3721D"', "at most"),
    ("timeDuration", '"P532W"', "at most"),
    ("timeDuration", '"PT999999999S"', "at most"),
    ("timeDuration", '"P' + "9" * 5000 + 'D"', "characters"),
    ("timeDate", '"0001-01-01T00:00:00+08:00"', "between 1970"),
    ("timeDate", '"9999-12-31T23:59:59-05:00"', "between 1970"),
    ("timeDate", '"1969-12-31T23:59:59+00:00"', "between 1970"),
    ("timeDate", '"2200-01-01T00:00:01+00:00"', "between 1970"),
]


@pytest.mark.parametrize(("kind", "expression", "fragment"), OUT_OF_RANGE_LITERALS)
def test_lint_refuses_out_of_range_literal_timers(kind: str, expression: str, fragment: str):
    doc = _doc_with_boundary(timer(kind, expression))
    text = doc.xml()
    problem = only(doc.lint(), "Boundary_1", fragment)
    assert problem.line == line_of(text, f"<bpmn:{kind}")
    assert kind in problem.message


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeDuration", '"P10Y"'),
        ("timeDuration", '"P120M"'),
        ("timeDuration", '"P3720D"'),
        ("timeDuration", '"PT89280H"'),
        ("timeDuration", '"PT0S"'),
        ("timeDuration", '"P1Y2M3DT4H5M6.5S"'),
        ("timeDate", '"1970-01-01T00:00:00+00:00"'),
        ("timeDate", '"2200-01-01T00:00:00Z"'),
        ("timeDate", '"2199-12-31T18:00:00-05:00"'),
    ],
)
def test_lint_accepts_timers_in_range(kind: str, expression: str):
    assert _doc_with_boundary(timer(kind, expression)).lint() == []


@pytest.mark.parametrize(
    "expression", ["10**100", '"P" + "99999999Y"', '"P1" * 3 + "Y"', "len('PT4H')", "-1"]
)
def test_lint_refuses_timer_expressions_that_read_no_data(expression: str):
    """A value that depends on nothing must be written as a literal, so it is checked here."""
    problem = only(
        _doc_with_boundary(timer("timeDuration", expression)).lint(), "Boundary_1", "literal"
    )
    assert "timeDuration" in problem.message


def test_a_4_mib_timer_literal_is_refused_quickly():
    started = time.monotonic()
    problems = _doc_with_boundary(timer("timeDuration", '"P' + "9" * 1_000_000 + 'Y"')).lint()
    assert time.monotonic() - started < 5
    assert problems and all(len(p.message) < 2_000 for p in problems)


def test_bounds_are_the_documented_ones():
    assert timedelta(days=3720) == bounds.MAX_TIMER_DURATION
    assert datetime(1970, 1, 1, tzinfo=UTC) == bounds.EARLIEST_TIMER_DATE
    assert datetime(2200, 1, 1, tzinfo=UTC) == bounds.LATEST_TIMER_DATE
    assert bounds.timer_value_problem("timeDuration", "P10Y") is None
    assert "at most" in (bounds.timer_value_problem("timeDuration", "P10Y1D") or "")
    assert "string" in (bounds.timer_value_problem("timeDate", 10**100) or "")
    assert "out of scope" in (bounds.timer_value_problem("timeCycle", "R3/PT1H") or "")


# --- run time: computed values ------------------------------------------------------------------


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    with SandboxExecutor(timeout=2.0, workers=1) as shared:
        yield shared


COMPUTED_OUT_OF_RANGE = [
    "'P99999999Y'",
    "'P100000Y'",
    "'PT99999999999999H'",
    "10**100",
    "'P' + '9' * 5000 + 'D'",
    "'P1.5Y'",
    "'4 hours'",
]


@pytest.mark.parametrize("value", COMPUTED_OUT_OF_RANGE)
def test_an_out_of_range_computed_duration_fails_its_timer_quickly(
    executor: SandboxExecutor, value: str
):
    workflow = start_workflow(executor, script=f"priority = 1\nwait_for = {value}")
    started = time.monotonic()
    with pytest.raises(WorkflowTaskException) as caught:
        workflow.do_engine_steps()
    assert time.monotonic() - started < 3
    assert caught.value.task_spec.bpmn_id == "wait"
    assert "timeDuration" in str(caught.value)


def test_a_computed_duration_in_range_still_waits(executor: SandboxExecutor):
    workflow = start_workflow(executor, script="priority = 1\nwait_for = 'P' + str(9) + 'Y'")
    workflow.do_engine_steps()
    (waiting,) = [t for t in workflow.get_tasks() if t.task_spec.bpmn_id == "wait"]
    fires = datetime.fromisoformat(waiting._get_internal_data("event_value"))
    assert timedelta(days=9 * 365) < fires - datetime.now(UTC) < timedelta(days=9 * 366 + 1)


def _compiled_boundary(kind: str, expression: str) -> Any:
    xml = _doc_with_boundary(timer(kind, expression)).xml().encode()
    return compile_definition(
        xml, helper_names=HELPER_NAMES, roles=ROLES, serializer=StateSerializer()
    )


HELPERS = bind_helpers(DEFAULT_PRIORITY_MATRIX, TARGETS, due_times)


@pytest.mark.parametrize(
    ("kind", "expression"),
    [
        ("timeDuration", '"P99999999Y" if itsm_priority(1, 1) else "PT4H"'),
        ("timeDuration", '"P100000Y" if itsm_priority(1, 1) else "PT4H"'),
        ("timeDuration", '"PT99999999999999H" if itsm_priority(1, 1) else "PT4H"'),
        ("timeDuration", "10**100 if itsm_priority(1, 1) else 'PT4H'"),
        ("timeDate", '"0001-01-01T00:00:00+08:00" if itsm_priority(1, 1) else ""'),
        ("timeDate", '"9999-12-31T23:59:59-05:00" if itsm_priority(1, 1) else ""'),
        ("timeDate", '"2025-01-31T17:00:00" if itsm_priority(1, 1) else ""'),
        ("timeDate", "10**100 if itsm_priority(1, 1) else ''"),
    ],
)
def test_the_runtime_fails_the_step_naming_the_timer(kind: str, expression: str):
    """What the services turn into a 422 naming the element, instead of a 500 or a hang."""
    compiled = _compiled_boundary(kind, expression)
    runtime = ProcessRuntime()
    source = SpecSource(key=f"bounds-{kind}-{expression}", load=lambda: compiled.spec_json)
    started = time.monotonic()
    with pytest.raises(ProcessStepFailed) as caught:
        runtime.start(source, HELPERS, {})
    assert time.monotonic() - started < 5
    assert caught.value.element == "Boundary_1"
    assert kind in str(caught.value)


def test_the_runtime_accepts_a_computed_timer_in_range():
    compiled = _compiled_boundary("timeDuration", '"P2D" if itsm_priority(1, 1) else "PT4H"')
    runtime = ProcessRuntime()
    source = SpecSource(key="bounds-ok", load=lambda: compiled.spec_json)
    outcome = runtime.start(source, HELPERS, {})
    assert outcome.next_timer_at is not None
    assert timedelta(days=1) < outcome.next_timer_at - datetime.now(UTC) < timedelta(days=3)


# --- over the API: a new incident is a 422 naming the element, never a 500 ------------------------

BOUNDARY = (
    '<bpmn:boundaryEvent id="record_overdue" attachedToRef="record_incident" '
    'cancelActivity="false"><bpmn:outgoing>flow_overdue</bpmn:outgoing>'
    '<bpmn:timerEventDefinition id="record_overdue_timer">'
    '<bpmn:timeDuration xsi:type="bpmn:tFormalExpression">{expression}</bpmn:timeDuration>'
    "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
    '<bpmn:sequenceFlow id="flow_overdue" sourceRef="record_overdue" targetRef="overdue_end" />'
    '<bpmn:endEvent id="overdue_end"><bpmn:incoming>flow_overdue</bpmn:incoming></bpmn:endEvent>'
)
BOUNDARY_DI = (
    '<bpmndi:BPMNShape id="record_overdue_di" bpmnElement="record_overdue">'
    '<dc:Bounds x="262" y="392" width="36" height="36" /></bpmndi:BPMNShape>'
    '<bpmndi:BPMNShape id="overdue_end_di" bpmnElement="overdue_end">'
    '<dc:Bounds x="186" y="240" width="36" height="36" /></bpmndi:BPMNShape>'
    '<bpmndi:BPMNEdge id="flow_overdue_di" bpmnElement="flow_overdue">'
    '<di:waypoint x="280" y="428" /><di:waypoint x="204" y="276" /></bpmndi:BPMNEdge>'
)


def bundled_with_record_timer(expression: str) -> bytes:
    from xml.sax.saxutils import escape

    from engine.services.process.definitions import BUNDLED_PROCESS

    text = BUNDLED_PROCESS.read_text(encoding="utf-8")
    lane_ref = "<bpmn:flowNodeRef>record_incident</bpmn:flowNodeRef>"
    text = text.replace(
        lane_ref,
        lane_ref + "<bpmn:flowNodeRef>record_overdue</bpmn:flowNodeRef>"
        "<bpmn:flowNodeRef>overdue_end</bpmn:flowNodeRef>",
        1,
    )
    text = text.replace(
        "</bpmn:process>", BOUNDARY.format(expression=escape(expression)) + "</bpmn:process>", 1
    )
    plane_end = text.index("</bpmndi:BPMNPlane>")
    text = text[:plane_end] + BOUNDARY_DI + text[plane_end:]
    return text.encode("utf-8")


def _deploy(api: Any, body: bytes) -> Any:
    return api.client.post(
        "/api/v1/process-definitions?note=timer",
        data=body,
        headers={"Authorization": f"Bearer {api.tokens['designer']}"},
    )


def test_the_api_test_document_is_valid_with_a_sane_timer(api):
    assert _deploy(api, bundled_with_record_timer('"PT4H"')).status_code == 201


@pytest.mark.parametrize("literal", ["P99999999Y", "P100000Y", "PT99999999999999H"])
def test_an_out_of_range_literal_timer_is_not_deployed(api, literal: str):
    response = _deploy(api, bundled_with_record_timer(f'"{literal}"'))
    assert response.status_code == 422, response.get_json()
    (detail,) = response.get_json()["details"]
    assert detail["element"] == "record_overdue" and detail["line"]


@pytest.mark.parametrize("computed", ["P99999999Y", "P100000Y", "PT99999999999999H"])
def test_a_new_incident_with_an_out_of_range_computed_timer_is_422(api, computed: str):
    expression = f'"{computed}" if itsm_priority(1, 1) else "PT4H"'
    deployed = _deploy(api, bundled_with_record_timer(expression))
    assert deployed.status_code == 201, deployed.get_json()
    started = time.monotonic()
    body = {"title": "Mail down", "description": "x", "contact": "ext 1", "channel": "web"}
    response = api.post("reporter", "/incidents", body)
    assert time.monotonic() - started < 10
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["element"] == "record_overdue"
