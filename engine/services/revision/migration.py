"""Moving open incidents to a newer process version: preview, then move the chosen ones.

Whether a move is safe is decided by `engine.workflow.migration_policy` (rules in
docs/migration.md). Each move is its own transaction: a refused or failed move
leaves the incident exactly as it was, on its old version.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.domain.ids import is_row_id
from engine.persistence.models import Incident, InstanceState, ProcessDefinition
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Forbidden, Invalid, NotFound
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import apply_outcome, helpers_for
from engine.services.process.definitions import spec_source
from engine.workflow.migration_policy import MovePolicy
from engine.workflow.runtime import MigrationFailed, ProcessStepFailed

MIGRATORS = frozenset({"designer", "incident_manager"})
MAX_PER_REQUEST = 1000


def require_migrator(actor: Actor) -> None:
    if not actor.has_any(MIGRATORS):
        raise Forbidden("only designers and the incident manager move incidents between versions")


def _target(session: Session, key: str, version: object) -> ProcessDefinition:
    if isinstance(version, bool) or not isinstance(version, int):
        raise NotFound(f"no version {version!r} of process {key!r}")
    row = session.scalar(
        select(ProcessDefinition).where(
            ProcessDefinition.key == key, ProcessDefinition.version == version
        )
    )
    if row is None:
        raise NotFound(f"no version {version} of process {key!r}")
    return row


class _Policies:
    """One MovePolicy per (old version → target) pair, built on first use."""

    def __init__(self, target: ProcessDefinition) -> None:
        # Plain values: the policies outlive the session the target was read in.
        self.key, self.version = target.key, target.version
        self._xml = target.bpmn_xml.encode("utf-8")
        self._built: dict[int, MovePolicy] = {}

    def of(self, old: ProcessDefinition) -> MovePolicy:
        if old.id not in self._built:
            self._built[old.id] = MovePolicy(old.bpmn_xml.encode("utf-8"), self._xml)
        return self._built[old.id]


def _assess(
    ctx: ServiceContext, session: Session, incident: Incident, policies: _Policies
) -> tuple[list[str], bool, str]:
    """(position, can move, why not) for one incident."""
    old = incident.definition
    if incident.status == "closed":
        return [], False, "the incident is closed"
    if old.key != policies.key:
        return [], False, f"the incident runs process {old.key!r}, not {policies.key!r}"
    if old.version >= policies.version:
        return [], False, f"the incident is on version {old.version}; it only moves to a newer one"
    state = session.get(InstanceState, incident.id)
    if state is None:
        return [], False, "the incident has no running process"
    position = ctx.runtime.position(spec_source(old), state.state_json)
    verdict = policies.of(old).assess(position.waiting, position.data_keys)
    return position.waiting, verdict.can_move, "; ".join(verdict.reasons)


def migration_preview(
    ctx: ServiceContext, actor: Actor, key: str, version: object
) -> list[dict[str, Any]]:
    """Every open incident of an older version: where it stands, whether it can move."""
    require_migrator(actor)
    with ctx.db.read() as session:
        target = _target(session, key, version)
        policies = _Policies(target)
        incidents = session.scalars(
            select(Incident)
            .join(ProcessDefinition, Incident.definition_id == ProcessDefinition.id)
            .where(
                ProcessDefinition.key == key,
                ProcessDefinition.version < target.version,
                Incident.status != "closed",
            )
            .order_by(Incident.id)
        ).all()
        result = []
        for incident in incidents:
            position, can_move, reason = _assess(ctx, session, incident, policies)
            result.append(
                {
                    "incident_id": incident.id,
                    "number": incident.number,
                    "version": incident.definition.version,
                    "position": position,
                    "can_move": can_move,
                    "reason": reason,
                }
            )
        return result


def _incident_ids(payload: Any) -> list[int]:
    if not isinstance(payload, dict) or set(payload) != {"incident_ids"}:
        raise Invalid('give {"incident_ids": [...]}', {"incident_ids": "is required"})
    ids = payload["incident_ids"]
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > MAX_PER_REQUEST
        or not all(is_row_id(i) for i in ids)
    ):
        raise Invalid(
            "invalid incident ids",
            {"incident_ids": f"must be a list of 1 to {MAX_PER_REQUEST} incident ids"},
        )
    return list(dict.fromkeys(ids))


class _Refused(Exception):
    """Raised inside the transaction so that it rolls back."""


def migrate(
    ctx: ServiceContext, actor: Actor, key: str, version: object, payload: Any
) -> list[dict[str, Any]]:
    """Move each chosen incident in its own transaction; report each outcome."""
    require_migrator(actor)
    ids = _incident_ids(payload)
    with ctx.db.read() as session:
        target = _target(session, key, version)
        target_id = target.id
        # Built once for all the incidents: each policy parses and diffs two versions.
        policies = _Policies(target)
    results = []
    for incident_id in ids:
        try:
            _move_one(ctx, actor, incident_id, target_id, policies)
        except (_Refused, MigrationFailed, ProcessStepFailed) as exc:
            results.append({"incident_id": incident_id, "ok": False, "reason": str(exc)})
        else:
            results.append({"incident_id": incident_id, "ok": True, "reason": ""})
    return results


def _move_one(
    ctx: ServiceContext, actor: Actor, incident_id: int, target_id: int, policies: _Policies
) -> None:
    with ctx.db.write() as session:
        incident = session.get(Incident, incident_id, with_for_update={"of": Incident})
        if incident is None:
            raise _Refused(f"incident {incident_id} not found")
        target = session.get(ProcessDefinition, target_id)
        assert target is not None
        _, can_move, reason = _assess(ctx, session, incident, policies)
        if not can_move:
            raise _Refused(reason)
        old = incident.definition
        state = session.get(InstanceState, incident.id)
        assert state is not None
        log = EventLog(session, incident)
        outcome = ctx.runtime.migrate(
            spec_source(old), spec_source(target), state.state_json, helpers_for(ctx, incident, log)
        )
        incident.definition_id = target.id
        incident.definition = target
        log.add(
            "migrated",
            actor.username,
            ctx.now(),
            from_version=old.version,
            to_version=target.version,
        )
        apply_outcome(ctx, session, incident, log, outcome, actor.username)
