"""Process drafts: designers edit a copy of the process, check it, and deploy it.

A draft may be saved with problems (work in progress) but never deployed with
any: deploying runs exactly the checks of `definitions.deploy`.  Saves carry
the revision they were based on, so two designers never overwrite each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from engine.domain.audit import text_digest
from engine.persistence.models import ProcessDraft
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.services.process import definitions
from engine.workflow.safe_xml import UnsafeXmlError, parse_bpmn_xml

DESIGNER = "designer"
READERS = frozenset({"designer", "incident_manager"})
NAME_MAX = 200


def require_designer(actor: Actor) -> None:
    if DESIGNER not in actor.roles:
        raise Forbidden("only process designers edit and deploy drafts")


def require_reader(actor: Actor) -> None:
    if not actor.has_any(READERS):
        raise Forbidden("drafts are for process designers and the incident manager")


def _summary(row: ProcessDraft) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "based_on_version": row.based_on_version,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "updated_by": row.updated_by,
        "updated_at": row.updated_at.isoformat(),
        "deployed_version": row.deployed_version,
        "revision": row.revision,
    }


def _well_formed(xml: bytes) -> str:
    """A draft must be a BPMN document we can parse safely; lint problems are allowed."""
    try:
        parse_bpmn_xml(xml)
    except UnsafeXmlError as exc:
        raise Invalid(
            "the file is not a BPMN document that can be saved",
            [{"element": None, "line": exc.line, "message": str(exc)}],
        ) from exc
    return xml.decode("utf-8")


def _name(raw: object, fallback: str) -> str:
    name = (raw if isinstance(raw, str) else "").strip() or fallback
    if len(name) > NAME_MAX:
        raise Invalid("invalid draft", {"name": f"must be at most {NAME_MAX} characters"})
    return name


def load_draft(session: Session, draft_id: object) -> ProcessDraft:
    """The draft, or 404 for an unknown or malformed id."""
    if isinstance(draft_id, bool) or not isinstance(draft_id, int):
        raise NotFound(f"draft {draft_id!r} not found")
    row = session.get(ProcessDraft, draft_id)
    if row is None:
        raise NotFound(f"draft {draft_id} not found")
    return row


def list_drafts(ctx: ServiceContext, actor: Actor) -> list[dict[str, Any]]:
    require_reader(actor)
    with ctx.db.read() as session:
        rows = session.scalars(select(ProcessDraft).order_by(ProcessDraft.updated_at.desc()))
        return [_summary(r) for r in rows]


def get_draft(ctx: ServiceContext, actor: Actor, draft_id: object) -> dict[str, Any]:
    require_reader(actor)
    with ctx.db.read() as session:
        row = load_draft(session, draft_id)
        return {**_summary(row), "xml": row.bpmn_xml}


def create_draft(
    ctx: ServiceContext, actor: Actor, name: object = None, xml: bytes | None = None
) -> dict[str, Any]:
    """A new draft from an uploaded file, or (no file) a copy of the latest version."""
    require_designer(actor)
    text = _well_formed(xml) if xml else None
    now = ctx.now()
    with ctx.db.write() as session:
        based_on = None
        if text is None:
            latest = definitions.latest_definition(session)
            text, based_on = latest.bpmn_xml, latest.version
        row = ProcessDraft(
            name=_name(name, f"Draft of version {based_on}" if based_on else "Uploaded draft"),
            bpmn_xml=text,
            based_on_version=based_on,
            created_by=actor.username,
            created_at=now,
            updated_by=actor.username,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        _record(session, actor, admin_events.DRAFT_CREATED, row, now)
        return _summary(row)


def save_draft(
    ctx: ServiceContext, actor: Actor, draft_id: object, xml: bytes, revision: object
) -> dict[str, Any]:
    """Replace the draft's diagram; `revision` is the one the editor started from."""
    require_designer(actor)
    text = _well_formed(xml)
    if isinstance(revision, bool) or not isinstance(revision, int):
        raise Invalid("invalid draft", {"revision": "must be the draft's revision number"})
    try:
        with ctx.db.write() as session:
            row = load_draft(session, draft_id)
            if row.revision != revision:
                raise Conflict(
                    f"draft {row.id} was saved by {row.updated_by} meanwhile "
                    f"(revision {row.revision}); reload it"
                )
            row.bpmn_xml = text
            row.updated_by = actor.username
            row.updated_at = ctx.now()
            session.flush()
            _record(session, actor, admin_events.DRAFT_SAVED, row, row.updated_at)
            return _summary(row)
    except StaleDataError as exc:  # a concurrent save won between the check and the write
        raise Conflict(f"draft {draft_id} was saved by someone else meanwhile; reload it") from exc


def validate_draft(ctx: ServiceContext, actor: Actor, draft_id: object) -> list[dict[str, Any]]:
    """Every problem a deployment would refuse, each naming its element and line, or
    else the lint warnings (`level` "warning")."""
    require_reader(actor)
    with ctx.db.read() as session:
        xml = load_draft(session, draft_id).bpmn_xml.encode("utf-8")
    try:
        compiled = definitions.compile_xml(ctx, xml)
    except Invalid as exc:
        return list(exc.details) if isinstance(exc.details, list) else []
    return definitions.problems_as_details(list(compiled.warnings))


def deploy_draft(
    ctx: ServiceContext, actor: Actor, draft_id: object, note: str
) -> definitions.DefinitionInfo:
    require_designer(actor)
    with ctx.db.read() as session:
        row = load_draft(session, draft_id)
        xml, revision = row.bpmn_xml.encode("utf-8"), row.revision
    info = definitions.deploy(ctx, actor, xml, note)
    with ctx.db.write() as session:
        row = load_draft(session, draft_id)
        if row.revision == revision:  # record it unless edited meanwhile
            row.deployed_version = info.version
        admin_events.record(
            session,
            actor.username,
            admin_events.DRAFT_DEPLOYED,
            ctx.now(),
            draft_id=row.id,
            revision=revision,
            key=info.key,
            version=info.version,
        )
    return info


def delete_draft(ctx: ServiceContext, actor: Actor, draft_id: object) -> None:
    require_designer(actor)
    with ctx.db.write() as session:
        row = load_draft(session, draft_id)
        _record(session, actor, admin_events.DRAFT_DELETED, row, ctx.now())
        session.delete(row)


def _record(session: Session, actor: Actor, type_: str, row: ProcessDraft, at: datetime) -> None:
    admin_events.record(
        session,
        actor.username,
        type_,
        at,
        draft_id=row.id,
        name=row.name,
        revision=row.revision,
        bpmn_sha256=text_digest(row.bpmn_xml),
    )
