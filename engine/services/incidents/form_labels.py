"""The diagram's names of the form fields and options an incident's history refers to.

A `task_completed` event stores field ids and enum option ids (`level2_outcome:
escalate_level3`); the history shows them as the form showed them. The page translates
through the catalog by key first and falls back to these names, as the task form does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select

from engine.persistence.models import UserTaskRow
from engine.services.context import Actor, ServiceContext
from engine.services.incidents.visibility import load_visible
from engine.services.process.definitions import spec_source
from engine.workflow.runtime import TaskNotFound

# Reclassifying (PATCH) writes the classification fields of this task's form.
CLASSIFY_TASK = "record_incident"


@dataclass(frozen=True)
class FormLabels:
    """One task's field labels and option names, as written in the BPMN."""

    fields: dict[str, str] = field(default_factory=dict)
    options: dict[str, dict[str, str]] = field(default_factory=dict)

    def field_label(self, field_id: str) -> str | None:
        return self.fields.get(field_id)

    def option_name(self, field_id: str, option_id: str) -> str | None:
        return self.options.get(field_id, {}).get(option_id)


def form_labels(ctx: ServiceContext, actor: Actor, incident_id: int) -> dict[str, FormLabels]:
    """BPMN task id → its form's labels, for every user task the incident has had.

    Read from the incident's current process version; a task that version no longer has
    is left out (its history then shows the catalog's text or the ids)."""
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        names = set(
            session.scalars(
                select(UserTaskRow.name).where(UserTaskRow.incident_id == incident.id).distinct()
            )
        )
        names.add(CLASSIFY_TASK)
        # Inside the transaction: on a cache miss the stored spec is read from the row.
        source = spec_source(incident.definition)
        result: dict[str, FormLabels] = {}
        for name in sorted(names):
            try:
                spec = ctx.runtime.user_task(source, name)
            except TaskNotFound:
                continue
            result[name] = FormLabels(
                fields={f.id: f.label for f in spec.form.fields},
                options={
                    f.id: {o.id: o.name for o in f.options} for f in spec.form.fields if f.options
                },
            )
        return result
