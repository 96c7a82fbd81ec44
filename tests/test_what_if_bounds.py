"""What-if replays are heavy reads: bounded per user, per process, in time and work.

Security test finding: 8 what-if requests on a slow draft made the server
answer nobody for 280 s.
"""

from __future__ import annotations

import threading

from sqlalchemy import select

from engine.persistence.models import User
from engine.services.context import Actor
from engine.services.heavy import Budget, HeavyReads
from engine.services.people.users import actor_by_id
from engine.services.revision import what_if as replay
from tests.test_drafts import new_draft
from tests.test_what_if import closed, what_if  # noqa: F401  (the fixture)


def test_one_replay_per_user_at_a_time(api, ctx, closed):  # noqa: F811
    draft = new_draft(api)["id"]
    with ctx.heavy.slot("what-if", "designer"):
        busy = what_if(api, draft)
        assert busy.status_code == 429
        assert int(busy.headers["Retry-After"]) > 0
        assert "still running" in busy.get_json()["error"]
        # Someone else may replay meanwhile.
        assert what_if(api, draft, user="manager").status_code == 200
    assert what_if(api, draft).status_code == 200  # the slot is free again


def test_a_few_replays_per_process(api, ctx, closed):  # noqa: F811
    draft = new_draft(api)["id"]
    with ctx.heavy.slot("report", "someone"), ctx.heavy.slot("report", "someone else"):
        assert what_if(api, draft).status_code == 429
    assert what_if(api, draft).status_code == 200


def test_the_slot_is_freed_when_the_replay_fails(api, ctx):
    assert what_if(api, 999_999).status_code == 404
    assert what_if(api, 999_999).status_code == 404  # not 429: nothing is still running


def test_a_replay_stops_at_its_step_budget_and_says_so(api, ctx, closed):  # noqa: F811
    draft = new_draft(api)["id"]
    designer = designer_of(ctx)
    full = replay.replay_draft(ctx, designer, draft, 20)
    assert (full["replayed"], full["stopped"]) == (2, None)
    first_steps = full["incidents"][0]["steps_replayed"]
    budget = Budget(seconds=60, steps=first_steps + 2)
    cut = replay.replay_draft(ctx, designer, draft, 20, budget=budget)
    # Only the incidents replayed to their end are reported.
    assert cut["replayed"] == 1
    assert cut["stopped"] == f"stopped after {first_steps + 2} engine steps"


def test_a_replay_stops_at_its_time_budget(api, ctx, closed):  # noqa: F811
    draft = new_draft(api)["id"]
    designer = designer_of(ctx)
    ticks = iter(range(0, 10_000, 10))  # every look at the clock: 10 s later
    budget = Budget(seconds=15, steps=10_000, clock=lambda: float(next(ticks)))
    report = replay.replay_draft(ctx, designer, draft, 20, budget=budget)
    assert report["stopped"] == "stopped after 15 s"
    assert report["replayed"] < 2


def test_slots_are_counted_across_threads():
    heavy = HeavyReads(per_process=2)
    inside = threading.Barrier(3)
    release = threading.Event()
    refused: list[str] = []

    def hold(name: str) -> None:
        with heavy.slot("what-if", name):
            inside.wait(5)
            release.wait(5)

    holders = [threading.Thread(target=hold, args=(n,)) for n in ("a", "b")]
    for thread in holders:
        thread.start()
    inside.wait(5)
    try:
        with heavy.slot("what-if", "c"):
            pass
    except Exception as exc:  # noqa: BLE001 - the refusal is what is tested
        refused.append(type(exc).__name__)
    release.set()
    for thread in holders:
        thread.join(5)
    assert refused == ["TooBusy"]
    with heavy.slot("what-if", "c"):
        pass


def designer_of(ctx) -> Actor:
    with ctx.db.read() as session:
        user_id = session.scalar(select(User.id).where(User.username == "designer"))
    actor = actor_by_id(ctx, int(user_id))
    assert actor is not None
    return actor
