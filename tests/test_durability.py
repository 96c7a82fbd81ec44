"""Races between processes, kill -9 before the commit, and restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter

from tests.conftest import PASSWORD
from tests.scenario import Scenario
from tests.servers import ROOT, Server, http


def test_eight_concurrent_completions_from_two_servers_have_one_winner(api, database_url):
    s = Scenario(api)
    s.record()
    task_id = s.task_id("initial_handling")
    servers = [Server(database_url), Server(database_url)]
    try:
        barrier = threading.Barrier(8)
        statuses: list[int] = []

        def attempt(index: int) -> None:
            server = servers[index % 2]
            barrier.wait()
            status, _ = http(
                "POST",
                f"{server.base}/tasks/{task_id}/complete",
                api.tokens["desk"],
                {"resolved_at_desk": False},
            )
            statuses.append(status)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    assert Counter(statuses) == Counter({200: 1, 409: 7})
    assert s.open_tasks() == ["level2_investigation"]
    assert s.event_types().count("task_completed") == 2


KILL_BEFORE_COMMIT = textwrap.dedent(
    """
    import os, signal, sys
    from sqlalchemy.orm import Session
    from engine.persistence.db import Database
    from engine.services.context import ServiceContext
    from engine.services.people import users
    from engine.services.tasks import commands as tasks

    def die(self):  # the engine step has run; the commit never happens
        os.kill(os.getpid(), signal.SIGKILL)

    ctx = ServiceContext(db=Database(sys.argv[1]))
    actor = users.actor_for_token(ctx, sys.argv[3])
    Session.commit = die
    tasks.complete_task(ctx, actor, sys.argv[2], {"resolved_at_desk": False})
    """
)


def test_kill_between_engine_step_and_commit_keeps_last_wait_state(api, database_url):
    s = Scenario(api)
    s.record()
    before = s.refresh()
    task_id = s.task_id("initial_handling")
    result = subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_COMMIT, database_url, task_id, api.tokens["desk"]],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    after = s.refresh()
    assert after["tasks"] == before["tasks"]
    assert after["events"] == before["events"]
    assert after["status"] == "in_progress"
    # The incident carries on normally from where it was.
    s.desk_passes_on()
    assert s.open_tasks() == ["level2_investigation"]


def test_restart_after_kill_continues_every_incident(api, database_url):
    s = Scenario(api)
    s.record(impact="1", urgency="1")
    server = Server(database_url)
    token = api.tokens["desk"]
    task = next(t for t in s.refresh()["tasks"] if t["name"] == "initial_handling")
    status, _ = http(
        "POST", f"{server.base}/tasks/{task['id']}/complete", token, {"resolved_at_desk": False}
    )
    assert status == 200
    server.kill()

    server = Server(database_url)
    try:
        status, body = http("GET", f"{server.base}/incidents/{s.id}", api.tokens["manager"])
        assert status == 200
        assert sorted(t["name"] for t in body["tasks"]) == [
            "level2_investigation",
            "manager_review",
        ]
        status, token_body = http(
            "POST", f"{server.base}/auth/token", "", {"username": "l2", "password": PASSWORD}
        )
        assert status == 200
        l2_task = next(t for t in body["tasks"] if t["name"] == "level2_investigation")
        status, _ = http(
            "POST",
            f"{server.base}/tasks/{l2_task['id']}/complete",
            token_body["token"],
            {"level2_outcome": "solved"},
        )
        assert status == 200
    finally:
        server.stop()
    s.resolve("level2")
    s.confirm(True)
    s.feedback()
    assert s.incident["status"] == "closed"
    assert "cancelled" in s.event_types()  # the open manager review
