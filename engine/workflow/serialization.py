"""Instance state (de)serialization that leaves the process spec out.

The spec is stored once per deployed version; an instance row only holds its
task tree and data.  We register our own workflow converter on a registry built
from a copy of the Camunda config, so the library's own config stays untouched.
"""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer
from SpiffWorkflow.bpmn.serializer.default.workflow import BpmnWorkflowConverter
from SpiffWorkflow.camunda.serializer.config import CAMUNDA_CONFIG

STATE_FORMAT = "itsm-state-1"


class _StateOnlyWorkflowConverter(BpmnWorkflowConverter):
    """Converts a top-level workflow without its specs; restores onto given specs."""

    def to_dict(self, workflow: Any) -> dict[str, Any]:
        dct = super(BpmnWorkflowConverter, self).to_dict(workflow)
        dct["subprocesses"] = self.mapping_to_dict(workflow.subprocesses)
        dct["bpmn_events"] = self.registry.convert(workflow.bpmn_events)
        return dct

    def from_dict(self, dct: dict[str, Any], **kwargs: Any) -> Any:
        workflow = self.target_class(kwargs["spec"], kwargs["subprocess_specs"], deserializing=True)
        workflow.tasks = self.mapping_from_dict(dct["tasks"], UUID, workflow=workflow)
        workflow.task_tree = workflow.tasks.get(UUID(dct["root"]))
        self.set_default_attributes(workflow, dct)
        self.subprocesses_from_dict(dct["subprocesses"], workflow)
        workflow.bpmn_events = self.registry.restore(dct.pop("bpmn_events", []))
        return workflow


class StateSerializer:
    """Spec ↔ JSON once per version; instance ↔ JSON on every step."""

    def __init__(self) -> None:
        spec_config = dict(CAMUNDA_CONFIG)
        self._spec_registry = BpmnWorkflowSerializer.configure(spec_config)
        state_config = dict(CAMUNDA_CONFIG)
        state_config[BpmnWorkflow] = _StateOnlyWorkflowConverter
        self._state_registry = BpmnWorkflowSerializer.configure(state_config)

    @property
    def spec_registry(self) -> Any:
        """The converter registry for specs (the version diff compares specs with it)."""
        return self._spec_registry

    def spec_to_json(self, spec: Any, subprocess_specs: dict[str, Any]) -> str:
        return json.dumps(
            {
                "spec": self._spec_registry.convert(spec),
                "subprocess_specs": {
                    name: self._spec_registry.convert(sub) for name, sub in subprocess_specs.items()
                },
            }
        )

    def spec_from_json(self, text: str) -> tuple[Any, dict[str, Any]]:
        dct = json.loads(text)
        spec = self._spec_registry.restore(dct["spec"])
        subprocess_specs = {
            name: self._spec_registry.restore(sub) for name, sub in dct["subprocess_specs"].items()
        }
        return spec, subprocess_specs

    def state_to_json(self, workflow: Any) -> str:
        dct = self._state_registry.convert(workflow)
        dct["format"] = STATE_FORMAT
        return json.dumps(dct, separators=(",", ":"))

    def state_from_json(self, text: str, spec: Any, subprocess_specs: dict[str, Any]) -> Any:
        dct = json.loads(text)
        if dct.pop("format", None) != STATE_FORMAT:
            raise ValueError("instance state was written in an unknown format")
        return self._state_registry.restore(dct, spec=spec, subprocess_specs=subprocess_specs)
