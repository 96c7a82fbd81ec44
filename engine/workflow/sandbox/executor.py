"""Layer 2: the parent side, a small pool of child processes with timeouts."""

from __future__ import annotations

import atexit
import contextlib
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import Any

from engine.workflow.sandbox.checks import checked_analysis
from engine.workflow.sandbox.child import CHILD_BOOT, CHILD_ENVIRONMENT, dumps, encode_data
from engine.workflow.sandbox.helpers import HelperTable
from engine.workflow.sandbox.limits import (
    DEFAULT_ACQUIRE_TIMEOUT_SECONDS,
    DEFAULT_MEMORY_BYTES,
    DEFAULT_STARTUP_TIMEOUT_SECONDS,
    DEFAULT_TIMEOUT_SECONDS,
    DEFAULT_WORKERS,
    MAX_REPLY_BYTES,
    Mode,
    SandboxError,
    SandboxScriptError,
    SandboxTimeout,
    SandboxViolation,
)

# --- the parent -----------------------------------------------------------------------------


class _WorkerDied(Exception):
    def __init__(self, status: str, *, sent: bool) -> None:
        super().__init__(status)
        self.sent = sent  # False: the request never reached the child, so nothing ran


class _Worker:
    """One child process and its two pipes; used by one thread at a time."""

    def __init__(self, memory_bytes: int) -> None:
        self._memory_bytes = memory_bytes
        self._process: subprocess.Popen[bytes] | None = None
        self._to_child: Connection | None = None
        self._from_child: Connection | None = None
        self.pid: int | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, startup_timeout: float) -> None:
        child_read, parent_write = os.pipe()
        parent_read, child_write = os.pipe()
        config = {
            "read_fd": child_read,
            "write_fd": child_write,
            "memory_bytes": self._memory_bytes,
            "path": [os.path.abspath(entry) for entry in sys.path],
        }
        environment = {key: os.environ[key] for key in CHILD_ENVIRONMENT if key in os.environ}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", CHILD_BOOT, json.dumps(config)],
                pass_fds=(child_read, child_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=environment,
                cwd="/",
                start_new_session=True,
            )
        except BaseException as error:
            for fd in (child_read, parent_write, parent_read, child_write):
                os.close(fd)
            if isinstance(error, OSError):
                raise SandboxError(f"the sandbox could not start: {error}") from error
            raise
        os.close(child_read)
        os.close(child_write)
        self.pid = self._process.pid
        self._to_child = Connection(parent_write, readable=False)
        self._from_child = Connection(parent_read, writable=False)
        try:
            if not self._from_child.poll(startup_timeout):
                raise SandboxError(f"the sandbox did not start within {startup_timeout} s")
            self._from_child.recv_bytes(64)
        except (EOFError, OSError) as error:
            self.kill()
            raise SandboxError(f"the sandbox could not start: {self.describe_exit()}") from error
        except BaseException:
            self.kill()
            raise

    def call(self, request: bytes, timeout: float) -> bytes | None:
        """The reply, or None when the timeout passed (the child is then killed)."""
        to_child, from_child = self._to_child, self._from_child
        if to_child is None or from_child is None:
            raise _WorkerDied("not started", sent=False)
        try:
            to_child.send_bytes(request)
        except OSError as error:
            self.kill()
            raise _WorkerDied(self.describe_exit(), sent=False) from error
        try:
            if not from_child.poll(timeout):
                self.kill()
                return None
            return from_child.recv_bytes(MAX_REPLY_BYTES + 1024)
        except (EOFError, OSError) as error:
            self.kill()
            raise _WorkerDied(self.describe_exit(), sent=True) from error

    def describe_exit(self) -> str:
        if self._process is None:
            return "not started"
        code = self._process.returncode
        if code is None:
            return "still running"
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exited with status {code}"

    def exit_signal(self) -> int | None:
        code = None if self._process is None else self._process.returncode
        return -code if code is not None and code < 0 else None

    def kill(self) -> None:
        for connection in (self._to_child, self._from_child):
            if connection is not None:
                connection.close()
        self._to_child = self._from_child = None
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


class SandboxExecutor:
    """Runs checked scripts and expressions in a small pool of child processes.

    Thread-safe: each call borrows one worker (a child process) for its duration.  Workers
    start on first use.  On timeout the worker is killed and replaced on its next use.
    """

    def __init__(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        cpu_seconds: int | None = None,
        workers: int = DEFAULT_WORKERS,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT_SECONDS,
        acquire_timeout: float = DEFAULT_ACQUIRE_TIMEOUT_SECONDS,
    ) -> None:
        if timeout <= 0 or workers < 1 or memory_bytes < 64 * 1024 * 1024:
            raise ValueError("timeout > 0, workers >= 1 and memory_bytes >= 64 MiB please")
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        # Backstop only: the parent's wall-clock timeout normally ends a runaway first.
        self.cpu_seconds = cpu_seconds if cpu_seconds is not None else math.ceil(timeout) + 1
        self.startup_timeout = startup_timeout
        self.acquire_timeout = acquire_timeout
        self._all = [_Worker(memory_bytes) for _ in range(workers)]
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        for worker in self._all:
            self._idle.put(worker)
        self._closed = False

    def __enter__(self) -> SandboxExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running children (for tests and monitoring)."""
        return [worker.pid for worker in self._all if worker.running and worker.pid is not None]

    def close(self) -> None:
        """Stop every child; calls after this raise SandboxError."""
        self._closed = True
        for worker in self._all:
            worker.kill()

    def run(
        self,
        source: str,
        data: Mapping[str, Any],
        helpers: HelperTable,
        mode: Mode = "exec",
    ) -> tuple[Any, dict[str, Any]]:
        """Run code in the sandbox: (value of an eval or None, the task data after it).

        The returned dict is new; `data` is not modified.  Values the script did not change
        keep their identity; values it set that are not JSON-like, and helper names, are
        dropped.  Raises SandboxViolation, SandboxTimeout, SandboxScriptError or SandboxError.
        """
        analysis = checked_analysis(source, mode, helpers.names)
        header = {
            "mode": mode,
            "source": source,
            "helpers": helpers.payload(analysis.names),
            "cpu_seconds": self.cpu_seconds,
        }
        request = (dumps(header) + "\n" + encode_data(data, helpers.names)).encode()
        reply = self._call(request)
        return _apply_reply(reply, data, helpers.names)

    def _call(self, request: bytes) -> dict[str, Any]:
        if self._closed:
            raise SandboxError("the sandbox executor is closed")
        try:
            worker = self._idle.get(timeout=self.acquire_timeout)
        except queue.Empty:
            raise SandboxTimeout(
                f"no sandbox worker was free within {self.acquire_timeout} s"
            ) from None
        try:
            if self._closed:
                raise SandboxError("the sandbox executor is closed")
            raw: bytes | None = None
            for attempt in (1, 2):
                if not worker.running:
                    worker.kill()  # reap what is left of a dead one
                    worker.start(self.startup_timeout)
                started = time.monotonic()
                try:
                    raw = worker.call(request, self.timeout)
                    break
                except _WorkerDied as died:
                    if not died.sent and attempt == 1:
                        continue  # died while idle: nothing ran, so once more on a new one
                    if worker.exit_signal() == signal.SIGXCPU:
                        raise SandboxTimeout(
                            f"the script used more than {self.cpu_seconds} s of CPU"
                        ) from None
                    raise SandboxError(f"the sandbox process died ({died})") from None
            if raw is None:
                elapsed = time.monotonic() - started
                raise SandboxTimeout(
                    f"the script did not finish within {self.timeout:g} s "
                    f"(stopped after {elapsed:.1f} s)"
                )
        finally:
            if self._closed:
                worker.kill()
            self._idle.put(worker)
        try:
            reply = json.loads(raw)
        except ValueError as error:
            raise SandboxError("the sandbox sent an unreadable reply") from error
        if not isinstance(reply, dict):
            raise SandboxError("the sandbox sent an unreadable reply")
        return reply


def _apply_reply(
    reply: Mapping[str, Any], data: Mapping[str, Any], helper_names: frozenset[str]
) -> tuple[Any, dict[str, Any]]:
    if reply.get("ok") is True:
        new_data = dict(data)
        deleted = reply.get("deleted") or []
        changed = reply.get("set") or {}
        for key in deleted:
            if isinstance(key, str) and key not in helper_names:
                new_data.pop(key, None)
        for key, value in changed.items():
            if key not in helper_names:
                new_data[key] = value
        return reply.get("result"), new_data
    kind = reply.get("kind")
    message = str(reply.get("message", ""))
    if kind == "memory":
        raise SandboxError("the script ran out of memory")
    if kind == "violation":
        raise SandboxViolation(message)
    if kind == "script":
        line = reply.get("line")
        raise SandboxScriptError(
            str(reply.get("type", "Exception")), message, line if isinstance(line, int) else None
        )
    raise SandboxError(message or "the sandbox failed")


_default_lock = threading.Lock()
_default: SandboxExecutor | None = None


def default_executor() -> SandboxExecutor:
    """The process-wide executor (default limits), created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = SandboxExecutor()
            atexit.register(_default.close)
        return _default
