"""The child process: JSON in, JSON out, resource limits set on itself."""

from __future__ import annotations

import json
import math
import resource
import signal
from collections.abc import Mapping
from datetime import date, datetime
from datetime import time as clock_time
from multiprocessing.connection import Connection
from typing import Any

from engine.workflow.sandbox.checks import SAFE_BUILTINS, check_source, eval_source
from engine.workflow.sandbox.helpers import build_helpers
from engine.workflow.sandbox.limits import (
    MAX_ERROR_CHARS,
    MAX_REPLY_BYTES,
    SCRIPT_FILENAME,
    Mode,
    SandboxViolation,
)

# --- JSON across the boundary ---------------------------------------------------------------


def _encode_default(value: object) -> object:
    if isinstance(value, datetime | date | clock_time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-like")


def dumps(value: object) -> str:
    return json.dumps(value, default=_encode_default, separators=(",", ":"))


def encode_data(data: Mapping[Any, Any], helper_names: frozenset[str]) -> str:
    """The task data the script sees, as JSON.

    Keys that are no identifier a script could name (non-strings, dunders), helper names
    and values that are not JSON-like are withheld: the script cannot see them, and `run`
    hands them back unchanged.
    """
    visible = {
        key: value
        for key, value in data.items()
        if isinstance(key, str) and not key.startswith("__") and key not in helper_names
    }
    try:
        return dumps(visible)
    except (TypeError, ValueError, RecursionError):
        pass
    parts = []
    for key, value in visible.items():
        try:
            parts.append(f"{dumps(key)}:{dumps(value)}")
        except (TypeError, ValueError, RecursionError):
            continue
    return "{" + ",".join(parts) + "}"


# --- the child ------------------------------------------------------------------------------

_MEMORY_REPLY = b'{"ok":false,"kind":"memory"}'


def _same(a: object, b: object) -> bool:
    """Equal and of the same JSON type all the way down (True is not 1, 1 is not 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        assert isinstance(b, dict)
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        assert isinstance(b, list)
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _unchanged(value: object, before: object) -> bool:
    try:
        return _same(value, before)
    except RecursionError:
        return False


def _script_line(error: BaseException) -> int | None:
    line = None
    trace = error.__traceback__
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == SCRIPT_FILENAME:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


class _ChildState:
    def __init__(self) -> None:
        self.code: dict[tuple[str, str, frozenset[str]], Any] = {}

    def compiled(self, source: str, mode: Mode, names: frozenset[str]) -> Any:
        key = (mode, source, names)
        code = self.code.get(key)
        if code is None:
            check_source(source, mode, names)  # again: never trust the parent's word alone
            code = compile(source, SCRIPT_FILENAME, mode, dont_inherit=True)
            if len(self.code) >= 512:
                self.code.clear()
            self.code[key] = code
        return code


def _set_cpu_backstop(seconds: int) -> None:
    """Let the process use `seconds` more CPU from now; past that the kernel ends it."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = math.ceil(usage.ru_utime + usage.ru_stime)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _handle(state: _ChildState, request: bytes) -> bytes:
    header_raw, _, data_raw = request.partition(b"\n")
    header = json.loads(header_raw)
    mode: Mode = "eval" if header["mode"] == "eval" else "exec"
    source: str = header["source"]
    if mode == "eval":
        source = eval_source(source)
    helpers = build_helpers(header["helpers"])
    names = frozenset(helpers)
    _set_cpu_backstop(int(header["cpu_seconds"]))
    try:
        code = state.compiled(source, mode, names)
    except SandboxViolation as violation:
        return _reply({"ok": False, "kind": "violation", "message": str(violation)})
    namespace: dict[str, Any] = json.loads(data_raw)
    namespace.update(helpers)
    namespace["__builtins__"] = dict(SAFE_BUILTINS)
    try:
        if mode == "eval":
            result = eval(code, namespace)  # checked code, restricted builtins
        else:
            exec(code, namespace)  # checked code, restricted builtins
            result = None
    except MemoryError:
        return _MEMORY_REPLY
    except Exception as error:  # the script's own failure, reported to the parent
        message = str(error)[:MAX_ERROR_CHARS]
        return _reply(
            {
                "ok": False,
                "kind": "script",
                "type": type(error).__name__,
                "message": message,
                "line": _script_line(error),
            }
        )
    if mode == "eval":
        try:
            dumps(result)
        except (TypeError, ValueError, RecursionError):
            return _reply(
                {
                    "ok": False,
                    "kind": "result",
                    "message": f"the expression's value ({type(result).__name__}) is not JSON-like",
                }
            )
        return _reply({"ok": True, "result": result})
    original: dict[str, Any] = json.loads(data_raw)
    changed: dict[str, Any] = {}
    deleted = [key for key in original if key not in namespace]
    for key, value in namespace.items():
        if key == "__builtins__" or key in names:
            continue
        if key in original and _unchanged(value, original[key]):
            continue
        try:
            dumps(value)
        except (TypeError, ValueError, RecursionError):
            deleted.append(key)  # not JSON-serialisable: dropped
            continue
        changed[key] = value
    return _reply({"ok": True, "result": None, "set": changed, "deleted": deleted})


def _reply(message: Mapping[str, Any]) -> bytes:
    encoded = dumps(message).encode()
    if len(encoded) > MAX_REPLY_BYTES:
        return dumps(
            {
                "ok": False,
                "kind": "result",
                "message": f"the script's data is larger than {MAX_REPLY_BYTES} bytes",
            }
        ).encode()
    return encoded


def _apply_limits(memory_bytes: int) -> None:
    def lower(kind: int, value: int) -> None:
        soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(kind, (value, value))

    lower(resource.RLIMIT_AS, memory_bytes)
    lower(resource.RLIMIT_CORE, 0)  # SIGXCPU would otherwise dump core
    lower(resource.RLIMIT_NOFILE, 64)
    if hasattr(resource, "RLIMIT_NPROC"):
        lower(resource.RLIMIT_NPROC, 0)  # no fork (ignored for root)


def child_main(config: Mapping[str, Any]) -> None:
    """The child's loop: one request in, one reply out, until the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    incoming = Connection(int(config["read_fd"]), writable=False)
    outgoing = Connection(int(config["write_fd"]), readable=False)
    _apply_limits(int(config["memory_bytes"]))
    state = _ChildState()
    outgoing.send_bytes(b'{"ready":true}')
    while True:
        try:
            request = incoming.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            reply = _handle(state, request)
        except MemoryError:
            reply = _MEMORY_REPLY
        except Exception as error:  # a bug or a bad request: report, keep serving
            try:
                reply = _reply({"ok": False, "kind": "internal", "message": repr(error)})
            except MemoryError:
                reply = _MEMORY_REPLY
        try:
            outgoing.send_bytes(reply)
        except (BrokenPipeError, OSError):
            return


CHILD_BOOT = (
    "import json, sys; config = json.loads(sys.argv[1]); sys.path[:] = config['path']; "
    "from engine.workflow.sandbox.child import child_main; child_main(config)"
)
CHILD_ENVIRONMENT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "TMPDIR")
