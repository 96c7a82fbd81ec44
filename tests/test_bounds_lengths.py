"""Ids, names and texts of a diagram fit where they are stored, and ids are plain.

A user task named with 301 characters deployed and then made every new incident a 500 on
PostgreSQL (user_tasks.label is 300 characters); a 4 MiB name deployed; a process id with
a newline broke its download, one with quotes injected into Content-Disposition.
"""

from __future__ import annotations

import time
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest

from engine.persistence.models import Event, Incident, ProcessDefinition, UserRole, UserTaskRow
from engine.workflow import bounds
from tests.test_lint import (
    IMPACT,
    Doc,
    form,
    form_field,
    line_of,
    lint_xml,
    matching,
    only,
    replaced,
)

# --- the limits are the columns' ------------------------------------------------------------------


def _length(model: Any, column: str) -> int:
    return int(model.__table__.c[column].type.length)


def test_the_limits_are_the_lengths_of_the_columns_that_store_the_values():
    assert min(_length(UserTaskRow, "name"), _length(Event, "task")) == bounds.ELEMENT_ID_CHARS
    assert _length(UserTaskRow, "label") == bounds.TASK_NAME_CHARS
    assert _length(UserTaskRow, "lane") == bounds.LANE_NAME_CHARS
    assert _length(UserRole, "role") >= bounds.LANE_NAME_CHARS
    assert _length(ProcessDefinition, "key") == bounds.PROCESS_KEY_CHARS
    assert bounds.MAX_PROCESS_KEY_CHARS <= bounds.PROCESS_KEY_CHARS
    assert _length(Incident, "category") == bounds.CATEGORY_CHARS


# --- names --------------------------------------------------------------------------------------


def _named_task_doc(name: str) -> Doc:
    doc = Doc()
    task = doc.node("Task_record")
    task.attrs += f" name={quoteattr(name)}"
    return doc


def test_a_user_task_name_longer_than_its_column_is_refused():
    doc = _named_task_doc("n" * (bounds.TASK_NAME_CHARS + 1))
    problem = only(doc.lint(), "Task_record", "at most 300")
    assert problem.line == line_of(doc.xml(), '<bpmn:userTask id="Task_record"')
    assert "301 characters" in problem.message
    assert _named_task_doc("n" * bounds.TASK_NAME_CHARS).lint() == []


def test_other_names_are_capped():
    doc = Doc()
    doc.node("Gateway_major").attrs += f" name={quoteattr('g' * 301)}"
    doc.flow("Flow_major").attrs += f" name={quoteattr('f' * 301)}"
    problems = doc.lint()
    matching(problems, "Gateway_major", "at most 300")
    matching(problems, "Flow_major", "at most 300")
    assert len(problems) == 2


def test_a_4_mib_name_is_refused_quickly_with_a_short_problem():
    doc = _named_task_doc("x" * (4 * 1024 * 1024))
    started = time.monotonic()
    problems = doc.lint()
    assert time.monotonic() - started < 10
    problem = only(problems, "Task_record", "at most 300")
    assert len(problem.message) < 200


def test_a_lane_name_longer_than_its_column_is_refused():
    long_name = "l" * (bounds.LANE_NAME_CHARS + 1)
    text = replaced(Doc().xml(), 'name="incident_manager"', f'name="{long_name}"')
    problems = lint_xml(text)
    problem = matching(problems, "Lane_incident_manager", "at most 40")
    assert problem.line == line_of(text, '<bpmn:lane id="Lane_incident_manager"')
    # It is no role either; that problem quotes the name, cut short.
    assert all(len(p.message) <= bounds.MAX_PROBLEM_CHARS for p in problems)


# --- forms --------------------------------------------------------------------------------------


def _form_doc(*fields: str) -> Doc:
    doc = Doc()
    doc.node("Task_record").inner = form(IMPACT, *fields)
    return doc


def test_form_field_ids_labels_and_options_are_capped():
    long_id = "f" * (bounds.ELEMENT_ID_CHARS + 1)
    labelled = form_field("severity", "enum", options={"1": "o" * 301, "o" * 201: "Two"})
    labelled = labelled.replace('label="Severity"', f'label="{"L" * 301}"')
    doc = _form_doc(labelled, form_field(long_id))
    text = doc.xml()
    problems = doc.lint()
    for fragment in ("form field id", "form field label", "option name", "option id"):
        problem = matching(problems, "Task_record", fragment)
        assert problem.line == line_of(text, "<camunda:formField")
    long_field = matching(problems, "Task_record", "form field id")
    assert problem.line is not None and long_field.line == line_of(text, f'id="{long_id}"')


def test_a_category_option_must_fit_the_incident_column():
    options = {"c" * (bounds.CATEGORY_CHARS + 1): "Long", "network": "Network"}
    doc = _form_doc(form_field("category", "enum", options=options))
    only(doc.lint(), "Task_record", "option id")
    fitting = {"c" * bounds.CATEGORY_CHARS: "Long", "network": "Network"}
    assert _form_doc(form_field("category", "enum", options=fitting)).lint() == []


def test_a_free_text_category_needs_a_maxlength_that_fits():
    only(_form_doc(form_field("category")).lint(), "Task_record", "maxlength of at most 40")
    too_long = form_field("category", constraints={"maxlength": "41"})
    only(_form_doc(too_long).lint(), "Task_record", "maxlength of at most 40")
    fitting = form_field("category", constraints={"maxlength": "40"})
    assert _form_doc(fitting).lint() == []


# --- documentation ------------------------------------------------------------------------------


def test_documentation_is_capped():
    def with_doc(length: int) -> Doc:
        doc = Doc()
        task = doc.node("Task_review")
        task.inner = f"<bpmn:documentation>{'d' * length}</bpmn:documentation>" + task.inner
        return doc

    assert with_doc(bounds.MAX_DOCUMENTATION_CHARS).lint() == []
    doc = with_doc(bounds.MAX_DOCUMENTATION_CHARS + 1)
    problem = only(doc.lint(), "Task_review", "at most 20000")
    assert problem.line == line_of(doc.xml(), "<bpmn:documentation>")


# --- ids ----------------------------------------------------------------------------------------


def test_an_element_id_longer_than_its_column_is_refused_and_reported_short():
    long_id = "T" * 500_000  # 6 uses: 3 MB of the 5 MiB an upload may hold
    text = Doc().xml().replace("Task_review", long_id)
    problems = lint_xml(text)
    assert problems
    assert any(f"at most {bounds.ELEMENT_ID_CHARS}" in p.message for p in problems)
    for problem in problems:
        assert len(problem.message) <= bounds.MAX_PROBLEM_CHARS
        assert problem.element is None or len(problem.element) <= bounds.ELEMENT_ID_CHARS + 1


def test_an_element_id_of_exactly_200_characters_is_fine_and_so_is_its_shape_id():
    text = Doc().xml().replace("Task_review", "T" * bounds.ELEMENT_ID_CHARS)
    assert f'id="{"T" * bounds.ELEMENT_ID_CHARS}_di"' in text
    assert lint_xml(text) == []


@pytest.mark.parametrize(
    ("reference", "code"),
    [("&#10;", "U+000A"), ("&#9;", "U+0009"), ("&#x85;", "U+0085"), ("&#x2028;", "U+2028")],
)
def test_ids_with_control_characters_are_refused(reference: str, code: str):
    text = replaced(Doc().xml(), 'id="Gateway_major"', f'id="Gateway{reference}major"')
    problems = [p for p in lint_xml(text) if code in p.message]
    assert len(problems) == 1, problems
    assert "control character" in problems[0].message
    assert problems[0].line == line_of(text, "<bpmn:exclusiveGateway")
    # The id is reported with the character escaped, so every report stays on one line.
    escaped = {"U+000A": "\\n", "U+0009": "\\t", "U+0085": "\\x85", "U+2028": "\\u2028"}
    assert problems[0].element == f"Gateway{escaped[code]}major"


# --- the process key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "process_id",
    [
        "Process&#10;1",
        "Process&quot;; filename=&quot;evil.sh",
        "Process 1",
        "1process",
        "p" * 65,
        "Prozeß",
        "",
    ],
)
def test_the_executable_process_id_must_be_a_plain_identifier(process_id: str):
    text = Doc().xml()
    text = text.replace('processRef="Process_1"', f'processRef="{process_id}"')
    text = replaced(text, '<bpmn:process id="Process_1"', f'<bpmn:process id="{process_id}"')
    problems = [p for p in lint_xml(text) if "process key" in p.message]
    assert len(problems) == 1, lint_xml(text)
    assert problems[0].line == line_of(text, "<bpmn:process ")
    assert "plain identifier" in problems[0].message


@pytest.mark.parametrize("process_id", ["incident_management", "change-management", "_p", "p" * 64])
def test_plain_process_ids_are_fine(process_id: str):
    text = Doc().xml().replace("Process_1", process_id)
    assert lint_xml(text) == []


# --- over the API -------------------------------------------------------------------------------


def _deploy(api: Any, body: bytes) -> Any:
    return api.client.post(
        "/api/v1/process-definitions?note=bounds",
        data=body,
        headers={"Authorization": f"Bearer {api.tokens['designer']}"},
    )


def _bundled() -> str:
    from engine.services.process.definitions import BUNDLED_PROCESS

    return BUNDLED_PROCESS.read_text(encoding="utf-8")


def test_a_user_task_name_over_300_characters_is_not_deployed(api):
    text = replaced(_bundled(), 'name="Record and classify incident"', f'name="{"R" * 301}"')
    response = _deploy(api, text.encode())
    assert response.status_code == 422, response.get_json()
    (detail,) = response.get_json()["details"]
    assert detail["element"] == "record_incident" and detail["line"]
    # The bundled version still serves new incidents.
    body = {"title": "Mail down", "description": "x", "contact": "ext 1", "channel": "web"}
    assert api.post("reporter", "/incidents", body).status_code == 201


def test_a_process_id_with_a_newline_or_quotes_is_not_deployed(api):
    for bad in ("incident_management&#10;x", "incident_management&quot;; filename=&quot;x"):
        text = replaced(_bundled(), 'process id="incident_management"', f'process id="{bad}"')
        text = text.replace('processRef="incident_management"', f'processRef="{bad}"')
        response = _deploy(api, text.encode())
        assert response.status_code == 422, response.get_json()
        assert any("process key" in d["message"] for d in response.get_json()["details"])
