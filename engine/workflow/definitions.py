"""Turn BPMN XML into an executable, storable process definition.

Deploying runs, in order: safe XML parsing (size, DOCTYPE, root), our lint
rules, SpiffWorkflow's own parser.  Any problem stops the deployment and is
reported as a list of `LintProblem`s naming the element and line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.camunda.specs.user_task import UserTask as CamundaUserTask
from SpiffWorkflow.exceptions import SpiffWorkflowException

from engine.domain.forms import FieldOption, FieldSpec, FormSpec
from engine.workflow.lint import ERROR, LintProblem, lint_bpmn
from engine.workflow.safe_xml import UnsafeXmlError, parse_bpmn_xml
from engine.workflow.serialization import StateSerializer


class DefinitionInvalid(ValueError):
    """The BPMN cannot be deployed; `problems` says where and why."""

    def __init__(self, problems: list[LintProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class UserTaskSpec:
    element_id: str
    label: str
    lane: str | None
    phase: str | None
    documentation: str
    form: FormSpec


@dataclass(frozen=True)
class CompiledDefinition:
    key: str
    spec_json: str
    user_tasks: dict[str, UserTaskSpec]
    # Lint warnings: shown in the modeler's check, never a reason to refuse the version.
    warnings: tuple[LintProblem, ...] = ()


def compile_definition(
    xml: bytes,
    *,
    helper_names: frozenset[str],
    roles: frozenset[str],
    serializer: StateSerializer,
) -> CompiledDefinition:
    try:
        tree = parse_bpmn_xml(xml)
    except UnsafeXmlError as exc:
        raise DefinitionInvalid([LintProblem(None, exc.line, str(exc))]) from exc
    problems = lint_bpmn(tree, helper_names=helper_names, roles=roles)
    errors = [p for p in problems if p.level == ERROR]
    if errors:
        raise DefinitionInvalid(errors)
    parser = CamundaParser()
    try:
        parser.add_bpmn_xml(tree, filename="definition.bpmn")
        process_ids = _executable_process_ids(parser)
        if len(process_ids) != 1:
            raise DefinitionInvalid(
                [LintProblem(None, None, "the file must hold exactly one executable process")]
            )
        key = process_ids[0]
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
    except ValidationException as exc:
        element = getattr(exc, "id", None)
        line = getattr(exc, "line_number", None)
        raise DefinitionInvalid([LintProblem(element, line or None, str(exc))]) from exc
    except SpiffWorkflowException as exc:
        raise DefinitionInvalid([LintProblem(None, None, str(exc))]) from exc
    return CompiledDefinition(
        key=key,
        spec_json=serializer.spec_to_json(spec, subprocess_specs),
        user_tasks={
            element_id: task
            for candidate in (spec, *subprocess_specs.values())
            for element_id, task in user_task_specs(candidate).items()
        },
        warnings=tuple(p for p in problems if p.level != ERROR),
    )


def _executable_process_ids(parser: CamundaParser) -> list[str]:
    return [
        pid
        for pid in parser.get_process_ids()
        if parser.get_process_parser(pid).node.get("isExecutable", "true") != "false"
    ]


def user_task_specs(spec: Any) -> dict[str, UserTaskSpec]:
    result: dict[str, UserTaskSpec] = {}
    for task_spec in spec.task_specs.values():
        if isinstance(task_spec, CamundaUserTask):
            result[task_spec.bpmn_id] = user_task_spec(task_spec)
    return result


def user_task_spec(task_spec: Any) -> UserTaskSpec:
    extensions = getattr(task_spec, "extensions", {}) or {}
    return UserTaskSpec(
        element_id=task_spec.bpmn_id,
        label=task_spec.bpmn_name or task_spec.bpmn_id,
        lane=task_spec.lane,
        phase=extensions.get("phase"),
        documentation=(task_spec.documentation or "").strip(),
        form=form_spec(task_spec.form),
    )


def form_spec(form: Any) -> FormSpec:
    return FormSpec(fields=tuple(_field_spec(field) for field in form.fields))


def _field_spec(field: Any) -> FieldSpec:
    properties = {prop.id: prop.value for prop in field.properties}
    constraints = {v.name: v.config for v in field.validation}
    options = tuple(FieldOption(id=o.id, name=o.name) for o in getattr(field, "options", []))
    return FieldSpec(
        id=field.id,
        label=field.label or field.id,
        type=field.type,
        default=field.default_value,
        required="required" in constraints,
        readonly="readonly" in constraints,
        minlength=_int_or_none(constraints.get("minlength")),
        maxlength=_int_or_none(constraints.get("maxlength")),
        min=constraints.get("min"),
        max=constraints.get("max"),
        required_if=properties.get("required_if"),
        multiline=str(properties.get("multiline", "")).lower() == "true",
        options=options,
    )


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None
