"""Deploying and reading process definitions (one stored spec per version)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.domain.audit import text_digest
from engine.domain.ids import is_row_id
from engine.persistence.models import ProcessDefinition
from engine.services.audit import admin_events
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Conflict, Forbidden, Invalid, NotFound
from engine.workflow.definitions import CompiledDefinition, DefinitionInvalid, compile_definition
from engine.workflow.diff import diff_definitions
from engine.workflow.lint import WARNING, LintProblem
from engine.workflow.runtime import SpecSource

BUNDLED_PROCESS = Path(__file__).resolve().parents[3] / "bpmn" / "incident_management.bpmn"
DEFAULT_PROCESS_KEY = "incident_management"
DEPLOY_ATTEMPTS = 5


@dataclass(frozen=True)
class DefinitionInfo:
    key: str
    version: int
    deployed_at: datetime
    deployed_by: str
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            "version": self.version,
            "deployed_at": self.deployed_at.isoformat(),
            "deployed_by": self.deployed_by,
            "note": self.note,
        }


def problems_as_details(problems: list[LintProblem]) -> list[dict[str, object]]:
    return [
        {"element": p.element, "line": p.line, "message": p.message, "level": p.level}
        for p in problems
    ]


def deployable(problems: list[dict[str, object]]) -> bool:
    """No problem but warnings (a missing translation) in a `problems_as_details` list."""
    return all(p.get("level") == WARNING for p in problems)


def compile_xml(ctx: ServiceContext, xml: bytes) -> CompiledDefinition:
    try:
        return compile_definition(
            xml,
            helper_names=ctx.helper_names,
            roles=ctx.lane_roles,
            serializer=ctx.runtime.serializer,
        )
    except DefinitionInvalid as exc:
        raise Invalid("the BPMN cannot be deployed", problems_as_details(exc.problems)) from exc


def deploy(ctx: ServiceContext, actor: Actor, xml: bytes, note: str = "") -> DefinitionInfo:
    if "designer" not in actor.roles:
        raise Forbidden("only designers deploy process versions")
    return deploy_as(ctx, actor.username, xml, note)


def deploy_as(ctx: ServiceContext, deployed_by: str, xml: bytes, note: str) -> DefinitionInfo:
    """Validate, lint and store a new version (also used by the CLI)."""
    compiled = compile_xml(ctx, xml)
    text = xml.decode("utf-8")
    for attempt in range(DEPLOY_ATTEMPTS):
        try:
            return _store_version(ctx, compiled, text, deployed_by, note)
        except IntegrityError:
            # Two deploys read the same latest version (PostgreSQL): the unique key
            # refused the later one; it takes the next number.
            if attempt == DEPLOY_ATTEMPTS - 1:
                raise Conflict(
                    "other deployments of this process ran at the same time; retry"
                ) from None
    raise AssertionError("the loop returns or raises")


def _store_version(
    ctx: ServiceContext, compiled: CompiledDefinition, text: str, deployed_by: str, note: str
) -> DefinitionInfo:
    with ctx.db.write() as session:
        latest = session.scalar(
            select(func.max(ProcessDefinition.version)).where(ProcessDefinition.key == compiled.key)
        )
        row = ProcessDefinition(
            key=compiled.key,
            version=(latest or 0) + 1,
            bpmn_xml=text,
            spec_json=compiled.spec_json,
            deployed_by=deployed_by,
            deployed_at=ctx.now(),
            note=note,
        )
        session.add(row)
        session.flush()
        admin_events.record(
            session,
            deployed_by,
            admin_events.PROCESS_DEPLOYED,
            row.deployed_at,
            key=row.key,
            version=row.version,
            note=note,
            bpmn_sha256=text_digest(text),
        )
        return _info(row)


def deploy_bundled_if_empty(ctx: ServiceContext) -> DefinitionInfo | None:
    with ctx.db.read() as session:
        if session.scalar(select(func.count(ProcessDefinition.id))):
            return None
    return deploy_as(ctx, "system", BUNDLED_PROCESS.read_bytes(), "bundled default process")


def list_definitions(ctx: ServiceContext) -> list[DefinitionInfo]:
    with ctx.db.read() as session:
        rows = session.scalars(
            select(ProcessDefinition).order_by(ProcessDefinition.key, ProcessDefinition.version)
        )
        return [_info(r) for r in rows]


def definition_xml(ctx: ServiceContext, key: str, version: int) -> str:
    with ctx.db.read() as session:
        row = session.scalar(
            select(ProcessDefinition).where(
                ProcessDefinition.key == key, ProcessDefinition.version == version
            )
        )
        if row is None:
            raise NotFound(f"no version {version} of process {key!r}")
        return row.bpmn_xml


def version_diff(ctx: ServiceContext, key: str, old: object, new: object) -> dict[str, Any]:
    """What changed from version `old` to version `new` (any two, either order)."""
    versions = []
    for raw in (old, new):
        if not is_row_id(raw):
            raise NotFound(f"no version {raw!r} of process {key!r}")
        versions.append(raw)
    before, after = (definition_xml(ctx, key, v).encode("utf-8") for v in versions)
    diff = diff_definitions(before, after)
    return {"key": key, "from": versions[0], "to": versions[1], **diff.to_dict()}


def latest_definition(session: Session, key: str = DEFAULT_PROCESS_KEY) -> ProcessDefinition:
    row = session.scalar(
        select(ProcessDefinition)
        .where(ProcessDefinition.key == key)
        .order_by(ProcessDefinition.version.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(f"process {key!r} is not deployed")
    return row


def spec_source(row: ProcessDefinition) -> SpecSource:
    """The stored spec is read only when this process has not cached the version."""
    return SpecSource(key=f"{row.key}:{row.version}:{row.id}", load=lambda: row.spec_json)


def _info(row: ProcessDefinition) -> DefinitionInfo:
    return DefinitionInfo(
        key=row.key,
        version=row.version,
        deployed_at=row.deployed_at,
        deployed_by=row.deployed_by,
        note=row.note,
    )
