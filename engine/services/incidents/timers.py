"""The incident's timed reactions, fired by the worker: SLA thresholds reached,
resume-by times of suspensions and the process's own BPMN timers.

Each threshold fires exactly once (the announcement row's primary key), in the
same transaction as its event and the next check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from engine.domain.sla import TWENTY_FOUR_SEVEN, ClockState, has_reached
from engine.persistence.models import Incident, SlaAnnouncement
from engine.services.context import ServiceContext
from engine.services.incidents.answer_timers import postpone_for
from engine.services.incidents.commands import resume_when_due
from engine.services.incidents.event_log import EventLog, clock_events_of_many
from engine.services.incidents.progress import apply_outcome, step_outside_lock
from engine.services.sla.clocks import STAGES, LoggedEvent
from engine.services.sla.thresholds import (
    EARLY_ESCALATION,
    ESCALATED_CLOCKS,
    ESCALATION_SIGNAL,
    MARKS,
    SYSTEM,
    announced,
    announced_many,
    current_specs,
    schedule,
)
from engine.services.telemetry import metrics
from engine.workflow.runtime import StepOutcome

log = logging.getLogger("itsm.worker")

RETRY_AFTER = timedelta(minutes=1)
CHUNK = 50


@dataclass
class Followup:
    """An engine step the worker runs after the announcements' chunk has committed."""

    incident_id: int
    kind: str  # "signal" (an SLA escalation) or "timers" (the process's own)
    clock: str = ""
    mark: int = 0


def fire_incident(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    now: datetime,
    followups: list[Followup],
    *,
    stored: list[LoggedEvent] | None = None,
    done: set[tuple[str, int]] | None = None,
) -> int:
    """Announce every threshold this incident's clocks have reached; return how many.

    Escalations due are appended to `followups`: the signal is an engine step
    and runs after this transaction, holding no lock while scripts run.
    `stored` (its clock events) and `done` (its announcements) when read already."""
    events = EventLog(session, incident, stored=stored)
    resumed = resume_when_due(ctx, incident, events, now)
    specs = current_specs(incident)
    states = events.clock_states(specs, now)
    done = announced(session, incident.id) if done is None else done
    fired = 0
    for clock, state in states.items():
        for mark in MARKS:
            if (clock, mark) in done or not has_reached(state, mark):
                continue
            counts_every_second = specs[clock].calendar is TWENTY_FOUR_SEVEN
            reached_at = _reached_at(state, mark, now) if counts_every_second else None
            delay = (now - reached_at).total_seconds() if reached_at else None
            session.add(SlaAnnouncement(incident_id=incident.id, clock=clock, percent=mark, at=now))
            kind = "sla_breached" if mark == 100 else "sla_warning"
            # A stage clock's breach is the lane's: KPIs per tier read it from `lane`.
            lane = {"lane": clock} if clock in STAGES else {}
            events.add(kind, SYSTEM, now, clock=clock, percent=mark, delay_seconds=delay, **lane)
            metrics.count_sla_firing(session, kind, delay)
            done.add((clock, mark))
            fired += 1
            if mark == 100 and clock not in STAGES:
                # `breached` is the incident's SLA (contract); a tier's overrun is internal.
                incident.breached = True
            log.info(
                "incident %s: %s %s %s%% (delay %s s)",
                incident.number,
                kind,
                clock,
                mark,
                f"{delay:.3f}" if delay is not None else "?",
            )
    schedule(session, incident, states, now, done, specs)
    for clock in ESCALATED_CLOCKS:
        escalating = _escalation_mark(incident, clock, done)
        if escalating is not None:
            followups.append(Followup(incident.id, "signal", clock, escalating))
            # Looked at again at once if the worker stops before the signal is in.
            incident.sla_next_check_at = now
    return fired + int(resumed)


def _escalation_mark(incident: Incident, clock: str, done: set[tuple[str, int]]) -> int | None:
    """The announced mark that escalates `clock`, while its signal is not delivered:
    one escalation per clock, at 75 % for P1/P2, else at the breach."""
    if (f"{clock}:signal", 0) in done:
        return None
    threshold = EARLY_ESCALATION.get(incident.priority or 0, 100)
    reached = [mark for mark in MARKS if mark >= threshold and (clock, mark) in done]
    return min(reached) if reached else None


def _run_followup(ctx: ServiceContext, followup: Followup, now: datetime) -> int:
    if followup.kind == "timers":
        with ctx.db.read() as session:  # suspended time must not count (answer timers)
            incident = session.get(Incident, followup.incident_id)
            postpone = postpone_for(session, incident, now) if incident is not None else None
        return step_outside_lock(
            ctx,
            followup.incident_id,
            lambda state_json: lambda source, helpers: ctx.runtime.refresh_timers(
                source, state_json, helpers, now, postpone
            ),
            lambda session, incident, events, outcome: _keep_timers(
                ctx, session, incident, events, outcome, now
            ),
            wanted=lambda incident: incident.next_timer_at is not None
            and incident.next_timer_at <= now,
        )
    return step_outside_lock(
        ctx,
        followup.incident_id,
        lambda state_json: lambda source, helpers: ctx.runtime.signal(
            source, state_json, ESCALATION_SIGNAL, helpers
        ),
        lambda session, incident, events, outcome: _keep_signal(
            ctx, session, incident, events, outcome, followup, now
        ),
        wanted=lambda incident: incident.status != "closed",
    )


def _keep_signal(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    events: EventLog,
    outcome: StepOutcome | None,
    followup: Followup,
    now: datetime,
) -> int:
    """Record the escalation once (the announcement row's key), with what the process did."""
    key = f"{followup.clock}:signal"
    if session.get(SlaAnnouncement, (incident.id, key, 0)) is not None:
        return 0  # another worker delivered it
    session.add(SlaAnnouncement(incident_id=incident.id, clock=key, percent=0, at=now))
    if outcome is None:
        log.info(
            "incident %s: the process has no catcher for %s", incident.number, ESCALATION_SIGNAL
        )
    else:
        events.add(
            "sla_escalated", SYSTEM, ctx.now(), clock=followup.clock, percent=followup.mark
        )
        apply_outcome(ctx, session, incident, events, outcome, SYSTEM)
    session.flush()
    schedule(session, incident, events.clock_states(current_specs(incident), now), now)
    return 0  # the announcement was counted when it fired


def _keep_timers(
    ctx: ServiceContext,
    session: Session,
    incident: Incident,
    events: EventLog,
    outcome: StepOutcome | None,
    now: datetime,
) -> int:
    if outcome is None:
        incident.next_timer_at = None  # no running process any more
        return 0
    apply_outcome(ctx, session, incident, events, outcome, SYSTEM)
    log.info("incident %s: BPMN timers refreshed", incident.number)
    return 1


def _reached_at(state: ClockState, mark: int, now: datetime) -> datetime | None:
    if mark == 100 and state.breached_at is not None:
        return state.breached_at
    if state.state != "running":
        return None
    # Counted time past the mark, walked back from now (24×7 clocks).
    past = state.elapsed_seconds - state.target_seconds * mark / 100
    return now - timedelta(seconds=max(past, 0.0))


def fire_due(ctx: ServiceContext, batch: int = 200) -> int:
    """One pass of the worker: SLA thresholds and BPMN timers that have come due."""
    now = ctx.now()
    with ctx.db.read() as session:
        due = list(
            session.scalars(
                select(Incident.id)
                .where(or_(Incident.sla_next_check_at <= now, Incident.next_timer_at <= now))
                .order_by(func.coalesce(Incident.sla_next_check_at, Incident.next_timer_at))
                .limit(batch)
            )
        )
    fired = 0
    for chunk_start in range(0, len(due), CHUNK):
        chunk = due[chunk_start : chunk_start + CHUNK]
        followups: list[Followup] = []
        try:
            # Many incidents per transaction keeps up with bursts; all-or-nothing.
            fired += _fire_many(ctx, chunk, now, followups)
        except Exception:
            followups = []
            fired += _fire_each(ctx, chunk, now, followups)
        for followup in followups:
            try:
                fired += _run_followup(ctx, followup, now)
            except Exception:
                _give_up_for_now(ctx, followup.incident_id, now)
    return fired


def _fire_each(
    ctx: ServiceContext, incident_ids: list[int], now: datetime, followups: list[Followup]
) -> int:
    """The slow path after a failed chunk: each incident on its own."""
    fired = 0
    for incident_id in incident_ids:
        mine: list[Followup] = []
        try:
            fired += _fire_many(ctx, [incident_id], now, mine)
            followups.extend(mine)
        except Exception:
            _give_up_for_now(ctx, incident_id, now)
    return fired


def _give_up_for_now(ctx: ServiceContext, incident_id: int, now: datetime) -> None:
    # One broken incident (e.g. a failing script in its process) must not hold up
    # the others: log it and look again a minute later.
    log.exception("incident %s: firing failed; retrying in %s", incident_id, RETRY_AFTER)
    _defer(ctx, incident_id, now + RETRY_AFTER)


def _defer(ctx: ServiceContext, incident_id: int, until: datetime) -> None:
    with ctx.db.write() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return
        if incident.sla_next_check_at is not None:
            incident.sla_next_check_at = max(incident.sla_next_check_at, until)
        if incident.next_timer_at is not None:
            incident.next_timer_at = max(incident.next_timer_at, until)


def _fire_many(
    ctx: ServiceContext, incident_ids: list[int], now: datetime, followups: list[Followup]
) -> int:
    with ctx.db.write() as session:
        # Rows another worker holds (PostgreSQL) are skipped; on SQLite writers
        # queue, so re-check that the work is still due once we hold the lock.
        incidents = session.scalars(
            select(Incident)
            .where(Incident.id.in_(incident_ids))
            .with_for_update(of=Incident, skip_locked=True)
        ).all()
        sla_due = [
            i.id
            for i in incidents
            if i.sla_next_check_at is not None and i.sla_next_check_at <= now
        ]
        # Two queries for the whole chunk instead of two per incident.
        stored = clock_events_of_many(session, sla_due) if sla_due else {}
        done = announced_many(session, sla_due) if sla_due else {}
        fired = 0
        for incident in incidents:
            if incident.id in stored:
                with session.no_autoflush:
                    fired += fire_incident(
                        ctx,
                        session,
                        incident,
                        now,
                        followups,
                        stored=stored[incident.id],
                        done=done[incident.id],
                    )
            if incident.next_timer_at is not None and incident.next_timer_at <= now:
                followups.append(Followup(incident.id, "timers"))
        return fired


def next_due(ctx: ServiceContext) -> datetime | None:
    with ctx.db.read() as session:
        moments = session.execute(
            select(func.min(Incident.sla_next_check_at), func.min(Incident.next_timer_at))
        ).one()
    present = [m for m in moments if m is not None]
    return min(present) if present else None
