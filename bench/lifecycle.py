"""What a full incident lifecycle costs through each layer, as ratios from one run.

Run: .venv/bin/python bench/lifecycle.py [--rounds N]

Prints, all measured in this one run (shared machines are noisy; ratios are
what to compare):
1. the median desk-resolved lifecycle (create, then each task fetched and
   completed, token auth) through the WSGI app on a SQLite file, against the
   same path in the bare engine in memory, with its split: engine, instance
   (de)serialization, database, HTTP layer;
2. the same lifecycle against a real `itsm serve` over loopback;
3. SQL statements and commits per task completion;
4. the per-step cost at reassign-loop pass 2,000 against pass 10.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from engine.domain.priority import DEFAULT_PRIORITY_MATRIX  # noqa: E402
from engine.domain.script_helpers import bind_helpers  # noqa: E402
from engine.domain.sla import DEFAULT_SLA_TARGETS  # noqa: E402
from engine.persistence.db import Database  # noqa: E402
from engine.persistence.migrate import migrate  # noqa: E402
from engine.services.context import ServiceContext  # noqa: E402
from engine.services.people import users  # noqa: E402
from engine.services.process import definitions  # noqa: E402
from engine.workflow.runtime import ProcessRuntime, SpecSource  # noqa: E402
from engine.workflow.serialization import StateSerializer  # noqa: E402
from web.app import create_app  # noqa: E402
from web.settings import Settings  # noqa: E402

PASSWORD = "benchmark password"
VALUES = {
    "record_incident": {"category": "software", "impact": "3", "urgency": "3"},
    "initial_handling": {"resolved_at_desk": True, "resolution": "restarted"},
    "confirm_recovery": {"recovered": True},
    "record_feedback": {"satisfaction": "5"},
}
WORKER = {"record_incident": "desk", "initial_handling": "desk", "confirm_recovery": "desk",
          "record_feedback": "desk"}


class Split:
    """Wall time spent inside the runtime facade, the (de)serializer and the database."""

    def __init__(self) -> None:
        self.runtime = 0.0
        self.serialize = 0.0
        self.database = 0.0
        self.statements = 0
        self.commits = 0

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]


SPLIT = Split()


def _timed(target: Any, name: str, bucket: str) -> None:
    original = getattr(target, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            setattr(SPLIT, bucket, getattr(SPLIT, bucket) + time.perf_counter() - start)

    setattr(target, name, wrapper)


def instrument(db: Database) -> None:
    _timed(StateSerializer, "state_to_json", "serialize")
    _timed(StateSerializer, "state_from_json", "serialize")
    # Engine = time inside the facade's start/complete less the (de)serialization in it.
    _timed(ProcessRuntime, "start", "runtime")
    _timed(ProcessRuntime, "complete", "runtime")

    @event.listens_for(db.engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["bench_t0"] = time.perf_counter()
        SPLIT.statements += 1

    @event.listens_for(db.engine, "after_cursor_execute")
    def _after(conn: Any, *args: Any) -> None:
        SPLIT.database += time.perf_counter() - conn.info.pop("bench_t0", time.perf_counter())

    @event.listens_for(db.engine, "commit")
    def _commit(conn: Any) -> None:
        SPLIT.commits += 1


def prepared(url: str) -> tuple[ServiceContext, dict[str, str]]:
    db = Database(url)
    migrate(db.engine)
    ctx = ServiceContext(db=db)
    definitions.deploy_bundled_if_empty(ctx)
    tokens = {}
    for name, role in (("reporter", "reporter"), ("desk", "service_desk"), ("l2", "level2")):
        users.create_user(ctx, name, PASSWORD, [role])
        tokens[name] = users.issue_token(ctx, name, PASSWORD).token
    return ctx, tokens


class Client:
    def __init__(self, call: Callable[[str, str, str, Any], Any], tokens: dict[str, str]) -> None:
        self.call = call
        self.tokens = tokens

    def lifecycle(self) -> None:
        incident = self.call("POST", "/incidents", self.tokens["reporter"],
                             {"title": "bench", "channel": "web"})
        tasks = incident["tasks"]
        while tasks:
            name = tasks[0]["name"]
            token = self.tokens[WORKER[name]]
            self.call("GET", f"/tasks/{tasks[0]['id']}", token, None)
            incident = self.call("POST", f"/tasks/{tasks[0]['id']}/complete", token, VALUES[name])
            tasks = incident["tasks"]
        assert incident["status"] == "closed", incident


def wsgi_client(app: Any, tokens: dict[str, str]) -> Client:
    client = app.test_client()

    def call(method: str, path: str, token: str, body: Any) -> Any:
        response = client.open("/api/v1" + path, method=method, json=body,
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code < 300, response.get_json()
        return response.get_json()

    return Client(call, tokens)


def http_client(base: str, tokens: dict[str, str]) -> Client:
    def call(method: str, path: str, token: str, body: Any) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    return Client(call, tokens)


def bare_engine_lifecycle(runtime: ProcessRuntime, source: SpecSource) -> None:
    helpers = bind_helpers(DEFAULT_PRIORITY_MATRIX, DEFAULT_SLA_TARGETS,
                           lambda p: {"response_due": None, "resolution_due": None})
    instance = runtime.start_in_memory(source, helpers)
    while instance.ready:
        task = instance.ready[0]
        instance.complete(task.id, VALUES[task.element_id])
    assert instance.last is not None and instance.last.reached_end


def median_time(fn: Callable[[], None], rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


@contextmanager
def serving(url: str) -> Iterator[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    from tests.servers import Server

    server = Server(url)
    try:
        yield server.base
    finally:
        server.stop()


def loop_step_costs(ctx: ServiceContext, tokens: dict[str, str], app: Any) -> tuple[float, float]:
    client = wsgi_client(app, tokens)
    incident = client.call("POST", "/incidents", tokens["reporter"], {"title": "loop",
                                                                      "channel": "web"})
    task = incident["tasks"][0]
    incident = client.call("POST", f"/tasks/{task['id']}/complete", tokens["desk"],
                           VALUES["record_incident"])
    task = incident["tasks"][0]
    incident = client.call("POST", f"/tasks/{task['id']}/complete", tokens["desk"],
                           {"resolved_at_desk": False})
    task = incident["tasks"][0]
    window: dict[int, list[float]] = {10: [], 2000: []}
    for n in range(1, 2021):
        start = time.perf_counter()
        incident = client.call("POST", f"/tasks/{task['id']}/complete", tokens["l2"],
                               {"level2_outcome": "reassign", "reassign_reason": "bench"})
        elapsed = time.perf_counter() - start
        for mark, samples in window.items():
            if mark <= n < mark + 20:
                samples.append(elapsed)
        task = incident["tasks"][0]
    return statistics.median(window[10]), statistics.median(window[2000])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--skip-loop", action="store_true")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="itsm-bench-"))
    url = f"sqlite:///{workdir / 'bench.db'}"
    ctx, tokens = prepared(url)
    app = create_app(Settings(database_url=url, secret_key="bench"), ctx)
    instrument(ctx.db)

    with ctx.db.read() as session:
        row = definitions.latest_definition(session)
        spec_json = row.spec_json
    runtime = ProcessRuntime()
    bare_source = SpecSource(key="bare", load=lambda: spec_json)

    client = wsgi_client(app, tokens)
    client.lifecycle()  # warm caches
    bare_engine_lifecycle(runtime, bare_source)

    bare = median_time(lambda: bare_engine_lifecycle(runtime, bare_source), args.rounds)
    splits = []

    def one_wsgi() -> None:
        SPLIT.reset()
        client.lifecycle()
        splits.append((SPLIT.runtime - SPLIT.serialize, SPLIT.serialize, SPLIT.database))

    wsgi = median_time(one_wsgi, args.rounds)
    engine_t = statistics.median(s[0] for s in splits)
    serialize_t = statistics.median(s[1] for s in splits)
    database_t = statistics.median(s[2] for s in splits)
    http_t = max(wsgi - engine_t - serialize_t - database_t, 0.0)

    # SQL per completion: each completion of one lifecycle, counted alone.
    per_completion: list[tuple[str, int, int]] = []
    incident = client.call("POST", "/incidents", tokens["reporter"], {"title": "sql",
                                                                      "channel": "web"})
    while incident["tasks"]:
        task = incident["tasks"][0]
        SPLIT.reset()
        incident = client.call("POST", f"/tasks/{task['id']}/complete",
                               tokens[WORKER[task["name"]]], VALUES[task["name"]])
        per_completion.append((task["name"], SPLIT.statements, SPLIT.commits))

    with serving(url) as base:
        remote = http_client(base, tokens)
        remote.lifecycle()
        served = median_time(remote.lifecycle, max(5, args.rounds // 3))

    print(f"machine: {platform_line()}")
    print(f"bare engine lifecycle (in memory):  {bare * 1000:8.2f} ms")
    print(f"WSGI app lifecycle (SQLite file):    {wsgi * 1000:8.2f} ms  "
          f"ratio {wsgi / bare:5.2f}x (target <= 8x)")
    print(f"  engine                             {engine_t * 1000:8.2f} ms")
    print(f"  serialize/deserialize              {serialize_t * 1000:8.2f} ms  "
          f"= {serialize_t / engine_t:4.2f}x engine (target <= 1.5x)")
    print(f"  database                           {database_t * 1000:8.2f} ms")
    print(f"  HTTP layer and the rest            {http_t * 1000:8.2f} ms")
    print(f"itsm serve over loopback lifecycle:  {served * 1000:8.2f} ms  "
          f"ratio {served / bare:5.2f}x")
    print("SQL statements and commits per task completion (target <= 12 and 1):")
    for name, statements, commits in per_completion:
        print(f"  {name:<33} {statements:3d} statements, {commits} commit(s)")
    if not args.skip_loop:
        early, late = loop_step_costs(ctx, tokens, app)
        print(f"reassign step at pass 10:            {early * 1000:8.2f} ms")
        print(f"reassign step at pass 2,000:         {late * 1000:8.2f} ms  "
              f"ratio {late / early:4.2f}x (target <= 1.5x)")


def platform_line() -> str:
    import os
    import platform

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
