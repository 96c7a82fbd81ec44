"""One client's idle and slow connections do not starve everyone else (security finding:
100 idle sockets used to make `itsm serve` answer nobody).

A real `itsm serve` keeps answering a normal client while one client holds 1,000 idle
sockets, slowloris heads and slow bodies (more than 1,024 descriptors, so its event loop
must not be select()), with only two worker threads: slow clients hold sockets, never
threads. And it closes idle connections, and requests that drag on, after its timeouts.
"""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from tests.conftest import PASSWORD, missing
from tests.servers import Server

IDLE = 1000
SLOW_HEADS = 60
SLOW_BODIES = 60
SLOW_HEAD = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
SLOW_BODY_HEAD = (
    b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
)


@pytest.fixture
def open_files() -> Iterator[None]:
    """Let this process hold the flood's sockets (and put the limit back after)."""
    needed = IDLE + SLOW_HEADS + SLOW_BODIES + 200
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            missing(f"the open-files hard limit ({hard}) is below {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def get_login(server: Server) -> tuple[int, float]:
    started = time.monotonic()
    with urllib.request.urlopen(f"{server.root}/login", timeout=5) as response:
        response.read()
        return response.status, time.monotonic() - started


def sign_in(server: Server) -> tuple[int, float, str]:
    started = time.monotonic()
    request = urllib.request.Request(
        f"{server.base}/auth/token",
        data=json.dumps({"username": "desk", "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        body = json.loads(response.read())
        return response.status, time.monotonic() - started, str(body.get("token", ""))


class Trickle:
    """Sends one more byte on each slow socket every `every` seconds, from a thread."""

    def __init__(self, sockets: list[socket.socket], every: float) -> None:
        self.sockets = sockets
        self.every = every
        self.rounds = 0
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for sock in list(self.sockets):
                try:
                    sock.send(b"a")
                except OSError:
                    self.sockets.remove(sock)
                    self.closed_by_server += 1
            self.rounds += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def test_a_normal_client_is_served_beside_a_thousand_idle_and_slow_connections(
    database_url, open_files
):
    server = Server(database_url, env={"ITSM_SERVER_THREADS": "2"}, args=("--no-worker",))
    started = time.monotonic()  # (starting the server is bounded by tests.servers)
    sockets: list[socket.socket] = []
    trickle = None
    try:
        baseline_fds = server.open_fds()
        sockets += [connect(server.port) for _ in range(IDLE)]
        heads = [connect(server.port) for _ in range(SLOW_HEADS)]
        bodies = [connect(server.port) for _ in range(SLOW_BODIES)]
        sockets += heads + bodies
        for sock in heads:
            sock.sendall(SLOW_HEAD[:10])  # part of the request line
        for sock in bodies:
            sock.sendall(SLOW_BODY_HEAD + b'{"use')  # the head, then a few body bytes
        trickle = Trickle(heads + bodies, every=0.2)

        # The server has accepted them all: it holds more than 1,024 descriptors. (The
        # baseline may count the readiness probe's connection, hence the slack.)
        accepted_all = None if baseline_fds is None else baseline_fds - 2 + len(sockets)
        if accepted_all is not None:
            deadline = time.monotonic() + 15
            while (server.open_fds() or 0) < accepted_all:
                assert time.monotonic() < deadline, (server.open_fds(), accepted_all)
                time.sleep(0.1)
            assert (server.open_fds() or 0) > 1024

        for _ in range(3):
            status, elapsed = get_login(server)
            assert (status, elapsed < 3) == (200, True), elapsed
            status, elapsed, token = sign_in(server)
            assert (status, elapsed < 3) == (200, True), elapsed
            assert token
            time.sleep(0.5)

        # The slow clients were still connected and trickling all along.
        assert trickle.rounds >= 5
        assert trickle.closed_by_server == 0
        if accepted_all is not None:
            assert (server.open_fds() or 0) >= accepted_all
    finally:
        if trickle is not None:
            trickle.stop()
        for sock in sockets:
            sock.close()
        server.stop()
    assert time.monotonic() - started < 30


class Watch:
    """Records, from a thread, when the server closes a socket (discarding what it sends)."""

    def __init__(self, sock: socket.socket, since: float) -> None:
        self.sock = sock
        self.since = since
        self.closed_after: float | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while self.sock.fileno() != -1:
            try:
                if self.sock.recv(65536) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:  # reset, or closed by the test
                break
        self.closed_after = time.monotonic() - self.since

    def wait(self, limit: float) -> float | None:
        self._thread.join(timeout=limit)
        return self.closed_after


def keep_alive_get(sock: socket.socket) -> bytes:
    """One GET /login on a kept-alive connection; the status line."""
    sock.sendall(b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0]


def test_idle_and_dragging_connections_are_closed_after_the_timeouts(database_url):
    server = Server(
        database_url,
        env={"ITSM_SERVER_CHANNEL_TIMEOUT": "2", "ITSM_SERVER_REQUEST_TIMEOUT": "3"},
        args=("--no-worker",),
    )
    started = time.monotonic()
    sockets: list[socket.socket] = []
    trickle = None
    try:
        # Each watch counts from the socket's last traffic (or its request's first byte).
        watches = {}
        idle = connect(server.port)
        watches["idle"] = Watch(idle, time.monotonic())
        used = connect(server.port)
        assert keep_alive_get(used) == b"HTTP/1.1 200 OK"
        watches["used"] = Watch(used, time.monotonic())
        head = connect(server.port)
        head.sendall(SLOW_HEAD)
        watches["head"] = Watch(head, time.monotonic())
        body = connect(server.port)
        body.sendall(SLOW_BODY_HEAD)
        watches["body"] = Watch(body, time.monotonic())
        busy = connect(server.port)
        sockets += [idle, used, head, body, busy]
        # The slow ones send a byte every 0.3 s, well within the idle timeout.
        trickle = Trickle([head, body], every=0.3)

        # A keep-alive connection in steady use outlives both timeouts.
        for _ in range(12):
            assert keep_alive_get(busy) == b"HTTP/1.1 200 OK"
            time.sleep(0.5)

        closed = {name: watch.wait(5) for name, watch in watches.items()}
        # Idle, after a request or none: 2 s, checked every second.
        for name in ("idle", "used"):
            assert closed[name] is not None and 1.5 < closed[name] < 4.5, closed
        # Trickling keeps them active, but a request has 3 s to arrive whole.
        for name in ("head", "body"):
            assert closed[name] is not None and 2.5 < closed[name] < 5.5, closed
        assert keep_alive_get(busy) == b"HTTP/1.1 200 OK"
    finally:
        if trickle is not None:
            trickle.stop()
        for sock in sockets:
            sock.close()
        server.stop()
    assert time.monotonic() - started < 30


def test_oversize_heads_and_bodies_are_refused_at_once(database_url):
    server = Server(database_url, args=("--no-worker",))
    try:
        with connect(server.port) as sock:
            sock.sendall(
                b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: 1000000000\r\n\r\n"
            )
            status = sock.recv(65536).split(b"\r\n", 1)[0]
            assert status == b"HTTP/1.1 413 Request Entity Too Large"
        with connect(server.port) as sock:
            # 64 KiB of head with no end: exactly what the server reads before it
            # answers (anything left unread would turn its close into a reset).
            head = b"GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
            sock.sendall(head + b"a" * (64 * 1024 - len(head)))
            status = sock.recv(65536).split(b"\r\n", 1)[0]
            assert status.endswith(b" 431 Request Header Fields Too Large")
    finally:
        server.stop()
