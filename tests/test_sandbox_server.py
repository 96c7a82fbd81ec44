"""The sandbox holds in the real server: waitress runs requests on worker threads, and a
diagram whose script loops forever or eats memory fails that step, not the server."""

from __future__ import annotations

import threading
import time

import pytest

from engine.services.process.definitions import BUNDLED_PROCESS
from tests.scenario import Scenario
from tests.servers import Server, http
from tests.test_definitions_api_and_cli import deploy

SCRIPT = b"priority = itsm_priority(impact, urgency)"
HOSTILE = {
    "loops forever": b"priority = 1\nwhile True:\n    priority = priority + 1",
    "eats memory": b"priority = 1\nwaste = [0] * (10 ** 10)",
}


@pytest.fixture
def server(database_url):
    live = Server(database_url)
    yield live
    live.stop()


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_script_fails_its_step_while_the_server_serves_others(api, server, kind):
    assert (
        deploy(
            api, "designer", BUNDLED_PROCESS.read_bytes().replace(SCRIPT, HOSTILE[kind])
        ).status_code
        == 201
    )
    s = Scenario(api)
    task = s.task_id("record_incident")
    values = {"category": "network", "impact": "1", "urgency": "1"}
    answers: dict[str, tuple[int, object]] = {}

    def complete() -> None:
        answers["complete"] = http(
            "POST", f"{server.base}/tasks/{task}/complete", api.tokens["desk"], values
        )

    worker = threading.Thread(target=complete)
    started = time.monotonic()
    worker.start()
    time.sleep(0.3)
    # Meanwhile another thread of the server answers at once.
    status, _ = http("GET", f"{server.base}/incidents/{s.id}", api.tokens["manager"])
    assert status == 200
    worker.join(timeout=60)
    elapsed = time.monotonic() - started
    status, body = answers["complete"]
    assert status == 422, body
    assert body["details"][0]["element"] == "determine_priority"  # type: ignore[index]
    assert elapsed < 20
    # Nothing changed: the step can be tried again, and the server is still up.
    assert [t["name"] for t in s.refresh()["tasks"]] == ["record_incident"]
    status, _ = http("GET", f"{server.base}/tasks", api.tokens["desk"])
    assert status == 200
