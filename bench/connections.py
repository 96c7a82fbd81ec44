"""What idle and slow connections cost everyone else's requests.

Run: .venv/bin/python bench/connections.py [--connections 1000] [--rounds 10] [--requests 30]

Starts a real `itsm serve` on 127.0.0.1 (a fresh SQLite database, no timer
worker) and measures the latency of a normal request (a new connection, then
GET /login, and GET /api/v1/tasks with a token) while the bench holds
- no other connection,
- N idle connections,
- N slow connections, each sending one more byte of a request head every second,
the three conditions interleaved round by round so that the machine's drift
falls on all alike. Prints p50/p90 per condition and the ratios to the first.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "benchmark password"
SLOW_HEAD = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, connections: int) -> tuple[subprocess.Popen[bytes], str]:
    directory = Path(tempfile.mkdtemp(prefix="itsm-connections-"))
    env = dict(
        os.environ,
        ITSM_DATABASE_URL=f"sqlite:///{directory / 'bench.db'}",
        ITSM_SECRET_KEY="bench",
        ITSM_SERVER_CONNECTION_LIMIT=str(max(4000, connections + 100)),
    )
    itsm = [sys.executable, "-m", "web.cli"]
    subprocess.run(
        [*itsm, "user", "create", "desk", "--role", "service_desk"],
        input=f"{PASSWORD}\n".encode(),
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(
        [*itsm, "serve", "--port", str(port), "--no-worker"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"itsm serve did not start; see {directory / 'serve.log'}"
                ) from None
            time.sleep(0.1)
    status, body = request(
        port, "POST", "/api/v1/auth/token", {"username": "desk", "password": PASSWORD}
    )
    assert status == 200, body
    return process, str(json.loads(body)["token"])


def request(
    port: int, method: str, path: str, body: object = None, token: str = ""
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def server_fds(process: subprocess.Popen[bytes]) -> int:
    try:
        return len(os.listdir(f"/proc/{process.pid}/fd"))
    except OSError:
        return -1


def settle(process: subprocess.Popen[bytes], low: int = 0, high: int = 1 << 30) -> None:
    """Wait (at most 30 s) until the server holds between `low` and `high` descriptors."""
    deadline = time.monotonic() + 30
    while server_fds(process) >= 0 and not low <= server_fds(process) <= high:
        if time.monotonic() > deadline:
            raise SystemExit(f"the server holds {server_fds(process)} descriptors")
        time.sleep(0.05)


class Crowd:
    """N connections held open; `slow` ones send a byte of a request head every second."""

    def __init__(self, port: int, size: int, slow: bool) -> None:
        self.sockets = [socket.create_connection(("127.0.0.1", port)) for _ in range(size)]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if slow and self.sockets:
            for sock in self.sockets:
                sock.sendall(SLOW_HEAD)
            self._thread = threading.Thread(target=self._trickle, daemon=True)
            self._thread.start()

    def _trickle(self) -> None:
        # Spread over the second: a byte from some socket every 1/N s.
        pause = 1.0 / len(self.sockets)
        while not self._stop.is_set():
            for sock in self.sockets:
                if self._stop.wait(pause):
                    return
                with contextlib.suppress(OSError):
                    sock.send(b"a")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for sock in self.sockets:
            sock.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--requests", type=int, default=30, help="per condition and round")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port = free_port()
    process, token = start_server(port, args.connections)
    probes: dict[str, Callable[[], tuple[int, bytes]]] = {
        "GET /login": lambda: request(port, "GET", "/login"),
        "GET /api/v1/tasks": lambda: request(port, "GET", "/api/v1/tasks", token=token),
    }
    conditions = {
        "no other connection": (0, False),
        f"{args.connections} idle": (args.connections, False),
        f"{args.connections} slow (1 byte/s each)": (args.connections, True),
    }
    times: dict[tuple[str, str], list[float]] = {(c, p): [] for c in conditions for p in probes}
    try:
        for probe in probes.values():  # warm up the app
            for _ in range(10):
                probe()
        time.sleep(0.5)
        baseline = server_fds(process)
        for _ in range(args.rounds):
            for condition, (size, slow) in conditions.items():
                settle(process, high=baseline + 2)  # the last crowd is gone
                crowd = Crowd(port, size, slow)
                try:
                    settle(process, low=baseline + size)  # all accepted
                    time.sleep(0.2)
                    for name, probe in probes.items():
                        for _ in range(args.requests):
                            started = time.perf_counter()
                            status, _ = probe()
                            times[(condition, name)].append(time.perf_counter() - started)
                            assert status == 200, (condition, name, status)
                finally:
                    crowd.close()
                time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=10)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    first = next(iter(conditions))
    print(
        f"{args.rounds} rounds x {args.requests} requests per probe and condition, "
        "a new connection each"
    )
    for name in probes:
        print(f"\n{name}")
        base = statistics.median(times[(first, name)])
        for condition in conditions:
            values = times[(condition, name)]
            p50 = statistics.median(values)
            print(
                f"  {condition:<30} p50 {p50 * 1000:6.1f} ms  "
                f"p90 {percentile(values, 0.9) * 1000:6.1f} ms  "
                f"max {max(values) * 1000:6.1f} ms  ({p50 / base:.2f}x)"
            )


if __name__ == "__main__":
    main()
