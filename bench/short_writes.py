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
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.persistence.db import Database  # noqa: E402
from engine.persistence.migrate import migrate  # noqa: E402
from engine.services.context import ServiceContext  # noqa: E402
from engine.services.people import users  # noqa: E402
from engine.services.process import definitions  # noqa: E402

PASSWORD = "benchmark password 1"
SCRIPT = b"priority = itsm_priority(impact, urgency)"
LOOPS = b"priority = 1\nwhile True:\n    priority = priority + 1"
VALUES = {"category": "network", "impact": "1", "urgency": "1"}


def call(method: str, url: str, token: str, body: object = None) -> tuple[int, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit("the server exited early")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the server did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='itsm-short-')) / 'bench.db'}"
    tokens = prepare(url)
    port = free_port()
    env = dict(os.environ, ITSM_DATABASE_URL=url, ITSM_SECRET_KEY="bench")
    process = subprocess.Popen(
        [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--no-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port, process)
        base = f"http://127.0.0.1:{port}/api/v1"
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
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    main()
