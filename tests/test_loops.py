"""Loops stay correct and flat in cost far past SpiffWorkflow's tree-depth limit."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from engine.persistence.models import Event, InstanceState
from engine.services.context import Actor, ServiceContext
from engine.services.incidents import commands as incidents
from engine.services.people import users
from engine.services.tasks import commands as tasks
from engine.services.tasks import listing
from tests.conftest import PASSWORD


def _actor(ctx: ServiceContext, username: str) -> Actor:
    return users.actor_for_token(ctx, users.issue_token(ctx, username, PASSWORD).token)


def _only_task(ctx: ServiceContext, incident_id: int, name: str) -> str:
    ready = listing.list_tasks(ctx, _EVERY_LANE, {"incident_id": str(incident_id)}).items
    ids = [t["id"] for t in ready if t["incident_id"] == incident_id and t["name"] == name]
    assert len(ids) == 1, ready
    return str(ids[0])


_EVERY_LANE = Actor(id=0, username="observer", roles=frozenset({"service_desk", "level2"}))


def _state_size(ctx: ServiceContext, incident_id: int) -> tuple[int, int]:
    with ctx.db.read() as session:
        state = session.get(InstanceState, incident_id)
        assert state is not None
        tree = json.loads(state.state_json)
        return len(tree["tasks"]), len(state.state_json)


def test_two_thousand_reassignments_then_normal_closure(ctx: ServiceContext):
    reporter, desk, l2 = (_actor(ctx, n) for n in ("reporter", "desk", "l2"))
    incident = incidents.create_incident(
        ctx, reporter, {"title": "Flaky VPN", "channel": "app", "contact": "", "description": ""}
    )
    iid = incident["id"]
    tasks.complete_task(
        ctx,
        desk,
        _only_task(ctx, iid, "record_incident"),
        {"category": "network", "impact": "3", "urgency": "3"},
    )
    tasks.complete_task(
        ctx, desk, _only_task(ctx, iid, "initial_handling"), {"resolved_at_desk": False}
    )
    sizes = []
    task_id = _only_task(ctx, iid, "level2_investigation")
    for n in range(2000):
        result = tasks.complete_task(
            ctx, l2, task_id, {"level2_outcome": "reassign", "reassign_reason": f"pass {n}"}
        )
        open_tasks = result["tasks"]
        assert [t["name"] for t in open_tasks] == ["level2_investigation"], n
        task_id = open_tasks[0]["id"]
        if n in (10, 1999):
            sizes.append(_state_size(ctx, iid))
    # The stored tree does not grow with the number of passes.
    assert sizes[1][0] == sizes[0][0]
    assert sizes[1][1] < sizes[0][1] * 1.2
    tasks.complete_task(ctx, l2, task_id, {"level2_outcome": "solved"})
    tasks.complete_task(ctx, l2, _only_task(ctx, iid, "level2_resolve"), {"resolution": "done"})
    tasks.complete_task(ctx, desk, _only_task(ctx, iid, "confirm_recovery"), {"recovered": True})
    final = tasks.complete_task(
        ctx, desk, _only_task(ctx, iid, "record_feedback"), {"satisfaction": "4"}
    )
    assert final["status"] == "closed"
    assert final["error"] is None
    with ctx.db.read() as session:
        completed = session.scalar(
            select(func.count(Event.id)).where(
                Event.incident_id == iid, Event.type == "task_completed"
            )
        )
    assert completed == 2 + 2000 + 1 + 3


def test_reopen_loop_many_times(ctx: ServiceContext):
    reporter, desk, l2 = (_actor(ctx, n) for n in ("reporter", "desk", "l2"))
    iid = incidents.create_incident(ctx, reporter, {"title": "Printer", "channel": "phone"})["id"]
    tasks.complete_task(
        ctx,
        desk,
        _only_task(ctx, iid, "record_incident"),
        {"category": "hardware", "impact": "3", "urgency": "3"},
    )
    tasks.complete_task(
        ctx,
        desk,
        _only_task(ctx, iid, "initial_handling"),
        {"resolved_at_desk": True, "resolution": "reseated the tray"},
    )
    for _ in range(150):
        tasks.complete_task(
            ctx, desk, _only_task(ctx, iid, "confirm_recovery"), {"recovered": False}
        )
        tasks.complete_task(
            ctx, l2, _only_task(ctx, iid, "level2_investigation"), {"level2_outcome": "solved"}
        )
        tasks.complete_task(
            ctx, l2, _only_task(ctx, iid, "level2_resolve"), {"resolution": "again"}
        )
    tasks.complete_task(ctx, desk, _only_task(ctx, iid, "confirm_recovery"), {"recovered": True})
    final = tasks.complete_task(
        ctx, desk, _only_task(ctx, iid, "record_feedback"), {"satisfaction": "2"}
    )
    assert final["status"] == "closed"
