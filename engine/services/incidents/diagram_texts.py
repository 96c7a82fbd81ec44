"""The texts of an incident's own process version, for the pages to show in a language.

Names, labels and instructions come from the version the incident runs on (a rename
deployed later shows on new incidents only); engine/workflow/translations.py reads them.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from engine.persistence.models import Incident, ProcessDefinition
from engine.services.context import Actor, ServiceContext
from engine.services.incidents.visibility import load_visible
from engine.workflow.translations import DIAGRAM_LANGUAGE, DiagramTexts, diagram_texts

__all__ = ["DIAGRAM_LANGUAGE", "DiagramTexts", "incident_texts", "texts_of_incidents"]


def incident_texts(ctx: ServiceContext, actor: Actor, incident_id: int) -> DiagramTexts:
    with ctx.db.read() as session:
        incident = load_visible(session, actor, incident_id)
        xml = session.scalar(
            select(ProcessDefinition.bpmn_xml).where(
                ProcessDefinition.id == incident.definition_id
            )
        )
    # Parsed outside the transaction (cached per version's text).
    return diagram_texts(str(xml))


def texts_of_incidents(ctx: ServiceContext, incident_ids: Iterable[int]) -> dict[int, DiagramTexts]:
    """Incident id → its version's texts, for incidents the caller has already listed
    (an inbox page): the process texts are the same for everyone who sees the task."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    with ctx.db.read() as session:
        rows = session.execute(
            select(Incident.id, Incident.definition_id).where(Incident.id.in_(ids))
        ).all()
        definitions = {definition for _, definition in rows}
        xml_of = dict(
            session.execute(
                select(ProcessDefinition.id, ProcessDefinition.bpmn_xml).where(
                    ProcessDefinition.id.in_(definitions)
                )
            ).all()
        )
    return {incident: diagram_texts(xml_of[definition]) for incident, definition in rows}
