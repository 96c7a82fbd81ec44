"""The management escalation of the bundled process (seed step 1.3, contract Part 2).

`manager_review` then `director_review` live in the non-interrupting event subprocess
`management_escalation_handler`, started by the signal `management_escalation`: thrown by
the process itself at classification (P1/P2 or major), or sent by the app later (a change
that makes the incident P1/P2 or major). Each escalation is one manager review and one
`management_escalation` event; the incident closes whether a review is open or done.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.persistence.models import UserTaskRow
from engine.services.context import ServiceContext
from engine.services.incidents.elements import (
    DIRECTOR_REVIEW_TASK,
    MANAGEMENT_ESCALATION_SIGNAL,
    MANAGER_REVIEW_TASK,
)
from engine.services.incidents.progress import apply_outcome, step_outside_lock
from tests.scenario import Scenario


def send_escalation(ctx: ServiceContext, incident_id: int) -> bool:
    """What the app does after a change that escalates: signal, then keep what happened."""
    caught: list[bool] = []

    def keep(session: Any, incident: Any, log: Any, outcome: Any) -> int:
        caught.append(outcome is not None)
        if outcome is not None:
            apply_outcome(ctx, session, incident, log, outcome, "manager")
        return 0

    step_outside_lock(
        ctx,
        incident_id,
        lambda state: (
            lambda source, helpers: ctx.runtime.signal(
                source, state, MANAGEMENT_ESCALATION_SIGNAL, helpers
            )
        ),
        keep,
        wanted=lambda incident: incident.status != "closed",
    )
    return caught == [True]


def escalations(s: Scenario) -> list[dict[str, Any]]:
    return [e for e in s.refresh()["events"] if e["type"] == "management_escalation"]


def lanes(ctx: ServiceContext, incident_id: int) -> dict[str, str]:
    with ctx.db.read() as session:
        rows = session.scalars(select(UserTaskRow).where(UserTaskRow.incident_id == incident_id))
        return {row.name: row.lane for row in rows}


def test_p1_at_classification_gives_one_manager_then_director_review(api, ctx):
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    assert s.open_tasks() == ["initial_handling", MANAGER_REVIEW_TASK]
    assert [e["task"] for e in escalations(s)] == [MANAGER_REVIEW_TASK]
    s.complete(MANAGER_REVIEW_TASK, {"manager_acknowledged": True})
    assert s.open_tasks() == [DIRECTOR_REVIEW_TASK, "initial_handling"]
    # The director's lane, not the manager's, completes the director's review.
    director_task = s.task_id(DIRECTOR_REVIEW_TASK)
    refused = api.post(
        "manager", f"/tasks/{director_task}/complete", {"director_acknowledged": True}
    )
    assert refused.status_code in (403, 404)
    s.complete(DIRECTOR_REVIEW_TASK, {"director_acknowledged": True})
    assert s.open_tasks() == ["initial_handling"]
    assert len(escalations(s)) == 1
    assert lanes(ctx, s.id) == {
        "record_incident": "service_desk",
        MANAGER_REVIEW_TASK: "incident_manager",
        DIRECTOR_REVIEW_TASK: "director",
        "initial_handling": "service_desk",
    }


def test_p3_not_major_has_no_review(api):
    s = Scenario(api)
    s.record(impact="2", urgency="2")  # P3, not major
    assert s.open_tasks() == ["initial_handling"]
    assert escalations(s) == []


def test_a_later_signal_starts_one_review_beside_the_handling(api, ctx):
    s = Scenario(api)
    s.record()  # P5
    s.desk_passes_on()
    assert s.open_tasks() == ["level2_investigation"]
    assert send_escalation(ctx, s.id)
    assert s.open_tasks() == ["level2_investigation", MANAGER_REVIEW_TASK]
    assert [(e["task"], e["actor"]) for e in escalations(s)] == [(MANAGER_REVIEW_TASK, "manager")]
    s.complete(MANAGER_REVIEW_TASK, {"manager_acknowledged": True})
    assert s.open_tasks() == [DIRECTOR_REVIEW_TASK, "level2_investigation"]
    s.complete(DIRECTOR_REVIEW_TASK, {"director_acknowledged": True})
    s.level2("solved")
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert len(escalations(s)) == 1


def test_a_signal_before_classification_is_caught_too(api, ctx):
    s = Scenario(api)
    assert send_escalation(ctx, s.id)
    assert s.open_tasks() == [MANAGER_REVIEW_TASK, "record_incident"]


def test_closure_cancels_an_open_review(api):
    s = Scenario(api)
    s.record(impact="1", urgency="2")  # P2
    s.complete(MANAGER_REVIEW_TASK, {"manager_acknowledged": True})
    s.desk_resolves()
    s.confirm(True)
    assert s.open_tasks() == [DIRECTOR_REVIEW_TASK, "record_feedback"]
    s.feedback()
    assert s.incident["status"] == "closed"
    assert s.refresh()["tasks"] == []
    events = s.refresh()["events"]
    assert [e["task"] for e in events if e["type"] == "cancelled"] == [DIRECTOR_REVIEW_TASK]
    assert events[-1]["type"] == "closed"


def test_closure_after_the_reviews_are_done(api):
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    s.complete(MANAGER_REVIEW_TASK, {"manager_acknowledged": True})
    s.complete(DIRECTOR_REVIEW_TASK, {"director_acknowledged": True})
    s.desk_resolves()
    s.confirm(True)
    assert s.open_tasks() == ["record_feedback"]
    s.feedback()
    assert s.incident["status"] == "closed"
    types = s.event_types()
    assert "cancelled" not in types
    assert types.count("closed") == 1 and types[-1] == "closed"


def test_a_closed_incident_takes_no_signal(api, ctx):
    s = Scenario(api)
    s.record()
    s.desk_resolves()
    s.confirm(True)
    s.feedback()
    assert not send_escalation(ctx, s.id)
    assert escalations(s) == []
