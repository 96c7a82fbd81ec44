"""What a slow script costs everyone else's writes.

Run: .venv/bin/python bench/short_writes.py [--rounds 6]

Starts a real `itsm serve` on 127.0.0.1 (a fresh SQLite database, no timer
worker) with a process whose priority script loops until the sandbox stops it
(its 2 s wall clock), then, round by round, times a write by someone else (a
work note on another incident):
- while nothing else runs,
- while a completion runs that script (the note starts 0.3 s into it).
Engine steps run outside the write transaction, so the second should cost
about what the first does, not the rest of the script's 2 s. Prints p50 and
max per condition, the ratio, and how long the script's request took.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.persistence.db import Database  # noqa: E402
from engine.persistence.migrate import migrate  # noqa: E402
from engine.services.context import ServiceContext  # noqa: E402
from engine.services.people import users  # noqa: E402
from engine.services.process import definitions  # noqa: E402
from tests.servers import Server, http  # noqa: E402  (the tests' real-server helpers)

PASSWORD = "benchmark password 1"
SCRIPT = b"priority = itsm_priority(impact, urgency)"
LOOPS = b"priority = 1\nwhile True:\n    priority = priority + 1"
VALUES = {"category": "network", "impact": "1", "urgency": "1"}


def prepare(url: str) -> dict[str, str]:
    db = Database(url)
    migrate(db.engine)
    ctx = ServiceContext(db=db)
    bundled = definitions.BUNDLED_PROCESS.read_bytes()
    definitions.deploy_as(ctx, "bench", bundled.replace(SCRIPT, LOOPS), "a script that loops")
    tokens = {}
    for name, role in (("desk", "service_desk"), ("reporter", "reporter")):
        users.create_user(ctx, name, PASSWORD, [role])
        tokens[name] = users.issue_token(ctx, name, PASSWORD).token
    db.dispose()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='itsm-short-')) / 'bench.db'}"
    tokens = prepare(url)
    server = Server(url, args=("--no-worker",))
    call = http
    try:
        base = server.base
        new = {"title": "bench", "channel": "web"}
        _, other = call("POST", f"{base}/incidents", tokens["reporter"], new)
        note_url = f"{base}/incidents/{other['id']}/notes"  # type: ignore[index]
        note = {"text": "called back", "internal": True}
        idle: list[float] = []
        during: list[float] = []
        script: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            status, _ = call("POST", note_url, tokens["desk"], note)
            idle.append(time.perf_counter() - started)
            assert status == 201, status

            _, slow = call("POST", f"{base}/incidents", tokens["reporter"], new)
            task = slow["tasks"][0]["id"]  # type: ignore[index]
            answers: dict[str, float] = {}

            def complete(task: str = task, answers: dict[str, float] = answers) -> None:
                began = time.perf_counter()
                call("POST", f"{base}/tasks/{task}/complete", tokens["desk"], VALUES)
                answers["script"] = time.perf_counter() - began

            worker = threading.Thread(target=complete)
            worker.start()
            time.sleep(0.3)
            started = time.perf_counter()
            status, _ = call("POST", note_url, tokens["desk"], note)
            during.append(time.perf_counter() - started)
            assert status == 201, status
            worker.join(60)
            script.append(answers["script"])
        ms = 1000.0
        print(f"rounds: {args.rounds}")
        print(
            f"note write, nothing else running: p50 {statistics.median(idle) * ms:.1f} ms, "
            f"max {max(idle) * ms:.1f} ms"
        )
        print(
            f"note write during a 2 s script:   p50 {statistics.median(during) * ms:.1f} ms, "
            f"max {max(during) * ms:.1f} ms"
        )
        ratio = statistics.median(during) / statistics.median(idle)
        print(f"ratio (p50 during / idle): {ratio:.2f}")
        print(f"the script's own request: p50 {statistics.median(script):.2f} s (422, timed out)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
