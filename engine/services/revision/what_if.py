"""What-if: replay the recorded decisions of closed incidents on a draft before it goes live.

Each closed incident's history (the ordered task completions with their form
values, and the SLA escalations the process received) is fed to an in-memory
instance of the draft. The replay reports the first step where the draft
offers a different route, and how the priority, and with it the SLA outcome
of the incident up to that point, would differ.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.persistence.models import Event, Incident
from engine.services.context import Actor, ServiceContext
from engine.services.errors import Invalid
from engine.services.heavy import Budget
from engine.services.incidents.elements import MANAGEMENT_ESCALATION_SIGNAL
from engine.services.incidents.event_log import EventLog
from engine.services.incidents.progress import helpers_for
from engine.services.process import definitions, drafts
from engine.services.sla.clocks import RESOLUTION, RESPONSE
from engine.services.sla.snapshot import clock_specs
from engine.services.sla.thresholds import ESCALATION_SIGNAL
from engine.workflow.runtime import (
    InMemoryInstance,
    ProcessRuntime,
    ProcessStepFailed,
    SpecSource,
)

DEFAULT_LIMIT = 20
MAX_LIMIT = 200
# A replay's budget: beyond it the report says where it stopped (engine/services/heavy.py).
BUDGET_SECONDS = 20.0
BUDGET_STEPS = 5_000


@dataclass
class _Replay:
    steps: int = 0
    diverged: dict[str, Any] | None = None
    priority: int | None = None
    stopped_at: datetime | None = None
    cut: bool = False  # the budget ran out inside this incident


def parse_limit(raw: object) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    if isinstance(raw, str) and raw.isdigit() and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw)
    raise Invalid(
        "invalid what-if request", {"limit": f"must be a whole number from 1 to {MAX_LIMIT}"}
    )


def replay_draft(
    ctx: ServiceContext,
    actor: Actor,
    draft_id: object,
    limit: int = DEFAULT_LIMIT,
    *,
    budget: Budget | None = None,
) -> dict[str, Any]:
    """Replay the last `limit` closed incidents on the draft (which must have no problems).

    One replay per user at a time, a few per process (429 otherwise), within a
    budget of time and engine steps: `stopped` says why a replay ended early, and
    only the incidents replayed to their end are reported."""
    drafts.require_reader(actor)
    with ctx.heavy.slot("what-if", actor.username):
        budget = budget or Budget(seconds=BUDGET_SECONDS, steps=BUDGET_STEPS)
        with ctx.db.read() as session:
            draft = drafts.load_draft(session, draft_id)
            compiled = definitions.compile_xml(ctx, draft.bpmn_xml.encode("utf-8"))
            source = SpecSource(
                key=f"draft:{draft.id}:{draft.revision}", load=lambda: compiled.spec_json
            )
            closed = session.scalars(
                select(Incident)
                .where(Incident.status == "closed")
                .order_by(Incident.closed_at.desc(), Incident.id.desc())
                .limit(limit)
            ).all()
            results = []
            for incident in closed:
                if not budget.left():
                    break
                result = _replay_incident(ctx, session, incident, source, budget)
                if result is None:
                    break
                results.append(result)
    same = sum(1 for r in results if r["same_route"])
    return {
        "draft_id": draft_id,
        "replayed": len(results),
        "same_route": same,
        "stopped": budget.exhausted,
        "incidents": results,
    }


def _history(session: Session, incident_id: int) -> list[Event]:
    return list(
        session.scalars(
            select(Event)
            .where(
                Event.incident_id == incident_id,
                Event.type.in_(("task_completed", "sla_escalated", "management_escalation")),
            )
            .order_by(Event.id)
        )
    )


def _replay_incident(
    ctx: ServiceContext, session: Session, incident: Incident, source: SpecSource, budget: Budget
) -> dict[str, Any] | None:
    """The replay of one incident, or None when the budget ran out inside it."""
    log = EventLog(session, incident)
    replay = _Replay()
    try:
        instance = ctx.runtime.start_in_memory(source, helpers_for(ctx, incident, log))
        budget.spend()
        _feed(ctx.runtime, source, instance, _history(session, incident.id), replay, budget)
    except ProcessStepFailed as exc:
        replay.diverged = replay.diverged or {
            "step": replay.steps + 1,
            "at": replay.stopped_at.isoformat() if replay.stopped_at else None,
            "recorded": None,
            "draft_offers": [],
            "reason": f"the draft fails at {exc.element or 'an element'}: {exc}",
        }
    if replay.cut:
        return None
    until = replay.stopped_at if replay.diverged else incident.closed_at
    return {
        "incident_id": incident.id,
        "number": incident.number,
        "version": incident.definition.version,
        "steps_replayed": replay.steps,
        "same_route": replay.diverged is None,
        "diverged": replay.diverged,
        "priority": {"recorded": incident.priority, "draft": replay.priority or incident.priority},
        "sla": _sla_outcomes(incident, log, until, replay.priority),
    }


def _feed(
    runtime: ProcessRuntime,
    source: SpecSource,
    instance: InMemoryInstance,
    history: list[Event],
    replay: _Replay,
    budget: Budget,
) -> None:
    for event in history:
        if not budget.left():
            replay.cut = True
            return
        budget.spend()
        replay.stopped_at = event.at
        if event.type == "sla_escalated":
            instance.signal(ESCALATION_SIGNAL)
            continue
        if event.type == "management_escalation":
            # Sent by the app (a later change made the incident P1/P2 or major); one
            # the diagram threw itself happens again in the replay by itself.
            if (event.data or {}).get("signal"):
                instance.signal(MANAGEMENT_ESCALATION_SIGNAL)
            continue
        offered = {t.element_id: t.id for t in instance.ready}
        if event.task not in offered:
            replay.diverged = {
                "step": replay.steps + 1,
                "at": event.at.isoformat(),
                "recorded": event.task,
                "draft_offers": sorted(offered),
                "reason": f"the draft does not offer {event.task} here",
            }
            return
        values = dict(event.data.get("values") or {})
        missing = [
            f.id
            for f in runtime.user_task(source, event.task).form.fields
            if f.required and not f.readonly and values.get(f.id) in (None, "")
        ]
        if missing:
            replay.diverged = {
                "step": replay.steps + 1,
                "at": event.at.isoformat(),
                "recorded": event.task,
                "draft_offers": sorted(offered),
                "reason": f"the draft's form of {event.task} requires {', '.join(missing)}, "
                "which was not recorded",
            }
            return
        outcome = instance.complete(offered[event.task], values)
        replay.steps += 1
        if outcome.data.get("priority") is not None:
            replay.priority = int(outcome.data["priority"])


def _sla_outcomes(
    incident: Incident, log: EventLog, until: datetime | None, draft_priority: int | None
) -> dict[str, Any]:
    """Were response and resolution breached by `until`, at the recorded and the draft's
    priority? (Both count the incident's real history in its policy snapshot.)"""
    if until is None:
        return {}
    out: dict[str, Any] = {}
    for label, priority in (("recorded", incident.priority), ("draft", draft_priority)):
        if priority is None:
            priority = incident.priority
        if priority is None:
            continue
        specs = clock_specs(incident.policy_snapshot, priority)
        states = log.clock_states({n: specs[n] for n in (RESPONSE, RESOLUTION)}, until)
        out[label] = {
            "priority": priority,
            "response_breached": states[RESPONSE].breached,
            "resolution_breached": states[RESOLUTION].breached,
        }
    return out
