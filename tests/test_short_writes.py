"""Engine steps run outside the write transaction (security test finding).

A script that times out (2 s, the sandbox's wall clock) used to hold SQLite's
write lock the whole time, so every other write of the server waited for it.
Now the step runs on a read transaction, and the write re-checks the
incident's row version: a write that moved the incident meanwhile makes the
step run again on the fresh state.
"""

from __future__ import annotations

import threading
import time

import pytest

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.servers import Server, http
from tests.test_definitions_api_and_cli import deploy

SCRIPT = b"priority = itsm_priority(impact, urgency)"
LOOPS = b"priority = 1\nwhile True:\n    priority = priority + 1"
VALUES = {"category": "network", "impact": "1", "urgency": "1"}


@pytest.fixture
def server(database_url):
    live = Server(database_url)
    yield live
    live.stop()


def test_a_write_started_during_a_timing_out_script_commits_before_it_ends(api, server):
    assert (
        deploy(api, "designer", BUNDLED_PROCESS.read_bytes().replace(SCRIPT, LOOPS)).status_code
        == 201
    )
    slow = Scenario(api)
    other = Scenario(api)
    task = slow.task_id("record_incident")
    finished: dict[str, float] = {}
    answers: dict[str, int] = {}

    def complete() -> None:
        status, _ = http("POST", f"{server.base}/tasks/{task}/complete", api.tokens["desk"], VALUES)
        answers["script"] = status
        finished["script"] = time.monotonic()

    worker = threading.Thread(target=complete)
    worker.start()
    time.sleep(0.4)  # the script is running in the sandbox now
    started = time.monotonic()
    status, _ = http(
        "POST",
        f"{server.base}/incidents/{other.id}/notes",
        api.tokens["desk"],
        {"text": "called the user back", "internal": True},
    )
    finished["note"] = time.monotonic()
    worker.join(timeout=60)
    assert status == 201
    assert answers["script"] == 422
    # The note did not queue behind the script's step.
    assert finished["note"] < finished["script"], finished
    print(f"note write took {1000 * (finished['note'] - started):.1f} ms during the script")


def test_a_step_whose_incident_moved_meanwhile_runs_again(api, ctx, monkeypatch):
    s = Scenario(api)
    task = s.task_id("record_incident")
    real_complete = ctx.runtime.complete
    calls: list[float] = []
    noted = threading.Event()

    def slow_complete(*args, **kwargs):
        calls.append(time.monotonic())
        if len(calls) == 1:
            noted.wait(10)  # the suspension below commits while this step "runs"
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(ctx.runtime, "complete", slow_complete)
    result: dict[str, object] = {}

    def complete() -> None:
        client_api = type(api)(api.client.application.test_client(), api.tokens)
        response = client_api.post("desk", f"/tasks/{task}/complete", VALUES)
        result["status"] = response.status_code
        result["body"] = response.get_json()

    worker = threading.Thread(target=complete)
    worker.start()
    while not calls:
        time.sleep(0.01)
    # A write that moves the incident (a note alone would not: it leaves the process be).
    api.ok(api.post("desk", f"/incidents/{s.id}/suspend", {"reason": "user at lunch"}))
    noted.set()
    worker.join(30)
    assert result["status"] == 200, result
    assert len(calls) == 2  # the first outcome was stale: the step ran again
    events = [e["type"] for e in s.refresh()["events"]]
    assert events.count("task_completed") == 1
    # The second run saw the suspension: completing resumed it first (contract).
    assert events[-3:] != [] and events.index("resumed") < events.index("task_completed")
    assert s.incident["priority"] == 1


def test_a_script_setting_an_oversized_classification_fails_the_step_cleanly(api):
    """Security test follow-up: a script may set any value; the columns hold only so much."""
    hostile = {
        b"priority = itsm_priority(impact, urgency)": b'priority = 10 ** 30',
    }
    body = BUNDLED_PROCESS.read_bytes()
    for old, new in hostile.items():
        body = body.replace(old, new)
    assert deploy(api, "designer", body).status_code == 201
    s = Scenario(api)
    task = s.task_id("record_incident")
    response = api.post("desk", f"/tasks/{task}/complete", VALUES)
    assert response.status_code == 422, response.get_json()
    assert "priority" in response.get_json()["error"]
    assert s.task_id("record_incident") == task  # nothing changed
