"""A sandbox for BPMN scripts, gateway conditions and timer expressions.

Two layers, both needed:

1. `check_source` is an AST whitelist run before anything executes: no imports, no
   private or dunder access, attributes only from a small method allowlist, calls only to
   the script helpers and a few safe builtins, and only simple statements.
2. `SandboxExecutor` runs the checked code in separate, long-lived child processes
   (started with fork+exec, never a bare fork of the threaded server) with an address-space
   limit, a CPU-time backstop and a wall-clock timeout enforced by the parent: a script that
   loops forever or allocates without end costs at most the timeout or the memory limit,
   and the calling thread gets an exception.  Nothing relies on signals in the parent, so
   it works on waitress worker threads.

Only JSON crosses the process boundary (never pickle), so even an escaped child cannot
make the parent run code.  Helpers cannot cross as closures either: `HelperTable` is plain
data from which the child rebuilds the helpers with the same pure domain functions.

`SandboxedScriptEngine` plugs all of this into SpiffWorkflow in place of
`PythonScriptEngine`.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import functools
import json
import math
import os
import queue
import resource
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as clock_time
from multiprocessing.connection import Connection
from types import MappingProxyType
from typing import Any, Literal

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import (
    BasePythonScriptEngineEnvironment,
)

from engine.domain.priority import (
    LEVELS,
    PRIORITIES,
    PriorityMatrix,
)
from engine.domain.script_helpers import HELPER_NAMES, bind_helpers
from engine.domain.sla import SlaTarget

Mode = Literal["exec", "eval"]
DueRow = Mapping[str, str | None]

# --- limits ---------------------------------------------------------------------------------

DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024
DEFAULT_WORKERS = 2
DEFAULT_STARTUP_TIMEOUT_SECONDS = 20.0
DEFAULT_ACQUIRE_TIMEOUT_SECONDS = 30.0
# Mirrors the deployment lint: a script or an expression longer than this is refused.
MAX_SCRIPT_CHARS = 20_000
MAX_EXPRESSION_CHARS = 2_000
# Largest reply (result and changed data) a child may send back.
MAX_REPLY_BYTES = 8 * 1024 * 1024
MAX_ERROR_CHARS = 1_000
SCRIPT_FILENAME = "<script>"

# --- errors ---------------------------------------------------------------------------------


class SandboxError(Exception):
    """A script could not run to the end in the sandbox (base of all sandbox errors)."""


class SandboxViolation(SandboxError):
    """The source uses something the sandbox does not allow; nothing was run."""

    def __init__(self, message: str, line_number: int | None = None) -> None:
        super().__init__(message)
        self.line_number = line_number


class SandboxTimeout(SandboxError):
    """The script ran out of time (wall clock or CPU); its worker was killed and replaced."""


class SandboxScriptError(SandboxError):
    """The script itself raised, e.g. a NameError or a helper's ValueError."""

    def __init__(self, error_type: str, message: str, line_number: int | None) -> None:
        super().__init__(f"{error_type}: {message}" if message else error_type)
        self.error_type = error_type
        self.detail = message
        self.line_number = line_number


# --- layer 1: the AST whitelist -------------------------------------------------------------

SAFE_BUILTINS: Mapping[str, Any] = MappingProxyType(
    {
        "abs": abs,
        "all": all,
        "any": any,
        "bool": bool,
        "dict": dict,
        "divmod": divmod,
        "enumerate": enumerate,
        "float": float,
        "int": int,
        "isinstance": isinstance,
        "len": len,
        "list": list,
        "max": max,
        "min": min,
        "range": range,
        "reversed": reversed,
        "round": round,
        "set": set,
        "sorted": sorted,
        "str": str,
        "sum": sum,
        "tuple": tuple,
        "zip": zip,
    }
)
SAFE_BUILTIN_NAMES: frozenset[str] = frozenset(SAFE_BUILTINS)

# Every attribute a script may read, whatever the object: methods of str, list and dict
# that neither reach other objects nor format (str.format can walk attributes through its
# replacement fields: "{0.__class__}").  An allowlist, because harmless-looking public
# attributes lead out too: generator.gi_frame.f_back.f_globals, int.mro(), dict_keys.mapping.
ALLOWED_ATTRIBUTES: frozenset[str] = frozenset(
    {
        # str
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "startswith",
        "endswith",
        "replace",
        "split",
        "rsplit",
        "join",
        "title",
        "capitalize",
        "casefold",
        "isdigit",
        "isalpha",
        "isalnum",
        "isspace",
        "zfill",
        "find",
        # list
        "append",
        "extend",
        "insert",
        "remove",
        "reverse",
        "sort",
        # list and str
        "count",
        "index",
        # list and dict
        "pop",
        "copy",
        "clear",
        # dict
        "get",
        "keys",
        "values",
        "items",
        "update",
        "setdefault",
    }
)

# Names refused even as plain values, so they are never one rebinding away from a call;
# none of them is in the child's builtins anyway (defence in depth).
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "breakpoint",
        "compile",
        "delattr",
        "dir",
        "eval",
        "exec",
        "getattr",
        "globals",
        "hasattr",
        "help",
        "input",
        "locals",
        "memoryview",
        "object",
        "open",
        "setattr",
        "super",
        "type",
        "vars",
    }
)

# Syntax a script may use.  Anything else (import, def, lambda, class, global, nonlocal,
# try, raise, with, match, async, await, yield, annotations, ...) is refused: a
# whitelist, so syntax added by a future Python is refused until someone allows it.
#
# `while` is allowed: the guarantee that a script ends is the executor's timeout, not the
# syntax.  `for i in range(10**18)` or a nested comprehension runs just as long as
# `while True`, so refusing `while` would only break honest scripts.
_ALLOWED_NODES: tuple[type[ast.AST], ...] = (
    ast.Module,
    ast.Expression,
    # statements
    ast.Assign,
    ast.AugAssign,
    ast.Delete,
    ast.For,
    ast.While,
    ast.If,
    ast.Expr,
    ast.Pass,
    ast.Break,
    ast.Continue,
    ast.Assert,
    # expressions
    ast.BoolOp,
    ast.NamedExpr,
    ast.BinOp,
    ast.UnaryOp,
    ast.IfExp,
    ast.Dict,
    ast.Set,
    ast.List,
    ast.Tuple,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.GeneratorExp,
    ast.comprehension,
    ast.Compare,
    ast.Call,
    ast.keyword,
    ast.FormattedValue,
    ast.JoinedStr,
    ast.Constant,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.Starred,
    ast.Name,
    # contexts and operators
    ast.expr_context,
    ast.boolop,
    ast.operator,
    ast.unaryop,
    ast.cmpop,
)

_REFUSED: dict[type[ast.AST], str] = {
    ast.Import: "imports are not allowed",
    ast.ImportFrom: "imports are not allowed",
    ast.Global: "global/nonlocal are not allowed",
    ast.Nonlocal: "global/nonlocal are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.FunctionDef: "function and class definitions are not allowed",
    ast.AsyncFunctionDef: "function and class definitions are not allowed",
    ast.ClassDef: "function and class definitions are not allowed",
    ast.Try: "try/except is not allowed",
    ast.Raise: "raise is not allowed",
    ast.With: "with is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
    ast.Await: "async/await is not allowed",
    ast.AsyncFor: "async/await is not allowed",
    ast.AsyncWith: "async/await is not allowed",
    ast.Match: "match is not allowed",
    ast.AnnAssign: "annotations are not allowed",
    ast.TryStar: "try/except is not allowed",
}


def eval_source(source: str) -> str:
    """What `eval` of a string compiles: it drops leading spaces and tabs (the lint does too)."""
    return source.lstrip(" \t")


def _node_problem(node: ast.AST, callables: frozenset[str], helpers: frozenset[str]) -> str | None:
    if not isinstance(node, _ALLOWED_NODES):
        return _REFUSED.get(type(node), f"{type(node).__name__} is not allowed")
    if isinstance(node, ast.Name):
        if node.id.startswith("__"):
            return f"the name {node.id!r} is not allowed"
        if node.id in FORBIDDEN_NAMES:  # worded like the deployment lint
            if isinstance(node.ctx, ast.Load):
                return f"calling {node.id}() is not allowed"
            return f"the name {node.id!r} is not allowed"
        if node.id in helpers and not isinstance(node.ctx, ast.Load):
            return f"assigns {node.id!r}, which is the script helper {node.id}()"
    elif isinstance(node, ast.Attribute):
        if node.attr.startswith("_"):
            return f"private attribute {node.attr!r} is not allowed"
        if node.attr in {"format", "format_map"}:
            return f"str.{node.attr} is not allowed; use an f-string"
        if not isinstance(node.ctx, ast.Load):
            return "assigning or deleting attributes is not allowed"
        if node.attr not in ALLOWED_ATTRIBUTES:
            return f"attribute {node.attr!r} is not allowed"
    elif isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name):
            # Forbidden and dunder names are reported as names.
            if func.id not in callables | FORBIDDEN_NAMES and not func.id.startswith("__"):
                return f"calling {func.id}() is not allowed"
        elif not isinstance(func, ast.Attribute):
            return "only helpers, safe builtins and allowed methods may be called"
    return None


@dataclass(frozen=True)
class _Analysis:
    problems: tuple[tuple[str, int | None], ...]
    names: frozenset[str]


@functools.lru_cache(maxsize=1024)
def _analyse(source: str, mode: Mode, allowed_names: frozenset[str]) -> _Analysis:
    limit = MAX_SCRIPT_CHARS if mode == "exec" else MAX_EXPRESSION_CHARS
    if len(source) > limit:
        kind = "script" if mode == "exec" else "expression"
        return _Analysis(((f"{kind} is longer than {limit} characters", None),), frozenset())
    try:
        tree = ast.parse(source, filename=SCRIPT_FILENAME, mode=mode)
    except SyntaxError as error:
        return _Analysis(((f"is not valid Python: {error.msg}", error.lineno),), frozenset())
    except (ValueError, RecursionError, MemoryError) as error:
        return _Analysis(((f"is not valid Python: {type(error).__name__}", None),), frozenset())
    callables = allowed_names | SAFE_BUILTIN_NAMES
    problems: dict[str, int | None] = {}
    names: set[str] = set()
    pending: deque[ast.AST] = deque([tree])
    while pending:  # ast.walk, but not into refused syntax (one problem per construct)
        node = pending.popleft()
        reason = _node_problem(node, callables, allowed_names)
        if reason is not None:
            problems.setdefault(reason, getattr(node, "lineno", None))
        if isinstance(node, ast.Name):
            names.add(node.id)
        if isinstance(node, _ALLOWED_NODES):
            pending.extend(ast.iter_child_nodes(node))
    return _Analysis(tuple(problems.items()), frozenset(names))


def _checked(source: str, mode: Mode, allowed_names: frozenset[str]) -> _Analysis:
    if mode not in ("exec", "eval"):
        raise ValueError(f"mode must be 'exec' or 'eval', got {mode!r}")
    if mode == "eval":
        source = eval_source(source)
    analysis = _analyse(source, mode, frozenset(allowed_names))
    if analysis.problems:
        message = "; ".join(reason for reason, _ in analysis.problems)
        raise SandboxViolation(message, analysis.problems[0][1])
    return analysis


def check_source(source: str, mode: Mode, allowed_names: frozenset[str]) -> None:
    """Raise `SandboxViolation` unless the source only uses what the sandbox allows.

    `allowed_names` are the helpers the code may call besides `SAFE_BUILTINS`.  For `eval`
    the source is checked as `eval` compiles it (leading spaces and tabs dropped).
    """
    _checked(source, mode, allowed_names)


# --- helper tables --------------------------------------------------------------------------


class _LazyDueTable(Mapping[int, DueRow]):
    """Due times per priority, computed on first use (they read the incident's clock events).

    A priority whose computation raises ValueError (no SLA policy) is absent.
    """

    def __init__(self, compute: Callable[[int], DueRow]) -> None:
        self._compute = compute
        self._rows: dict[int, DueRow | None] = {}

    def _row(self, priority: int) -> DueRow | None:
        if priority not in PRIORITIES:
            return None
        if priority not in self._rows:
            try:
                self._rows[priority] = dict(self._compute(priority))
            except ValueError:
                self._rows[priority] = None
        return self._rows[priority]

    def __getitem__(self, priority: int) -> DueRow:
        row = self._row(priority)
        if row is None:
            raise KeyError(priority)
        return row

    def __iter__(self) -> Iterator[int]:
        return (priority for priority in PRIORITIES if self._row(priority) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class HelperTable:
    """The script helpers as plain data, from which the child rebuilds the functions.

    `matrix` is the priority matrix `itsm_priority` looks up; `sla_due` maps each priority
    that has an SLA policy to `{"response_due": iso|None, "resolution_due": iso|None}`;
    `names` are the helpers that exist (an empty table has none).
    """

    matrix: Mapping[tuple[int, int], int] = field(default_factory=dict)
    sla_due: Mapping[int, DueRow] = field(default_factory=dict)
    names: frozenset[str] = HELPER_NAMES

    def __post_init__(self) -> None:
        unknown = self.names - HELPER_NAMES
        if unknown:
            raise ValueError(f"unknown script helpers {sorted(unknown)}")

    @classmethod
    def empty(cls) -> HelperTable:
        return cls(names=frozenset())

    @classmethod
    def from_policy(
        cls,
        matrix: PriorityMatrix,
        targets: Mapping[int, SlaTarget],
        due_times: Callable[[int], Mapping[str, datetime | None]],
    ) -> HelperTable:
        """The table for what `bind_helpers(matrix, targets, due_times)` binds."""

        def row(priority: int) -> DueRow:
            if priority not in targets:
                raise ValueError(f"no SLA policy for priority {priority}")
            return {name: _iso(value) for name, value in due_times(priority).items()}

        return cls(matrix=dict(matrix), sla_due=_LazyDueTable(row))

    @classmethod
    def from_helpers(cls, helpers: Mapping[str, Callable[..., Any]]) -> HelperTable:
        """Tabulate bound helpers (as `bind_helpers` returns them) for the sandbox.

        The matrix is read by calling `itsm_priority` on the nine cells; due times are
        computed only when a script calls `itsm_sla_due`.
        """
        names = HELPER_NAMES & frozenset(helpers)
        matrix: dict[tuple[int, int], int] = {}
        lookup = helpers.get("itsm_priority")
        if lookup is not None:
            for impact in LEVELS:
                for urgency in LEVELS:
                    try:
                        matrix[(impact, urgency)] = int(lookup(impact, urgency))
                    except ValueError:
                        continue
        due = helpers.get("itsm_sla_due")
        sla_due: Mapping[int, DueRow] = _LazyDueTable(due) if due is not None else {}
        return cls(matrix=matrix, sla_due=sla_due, names=names)

    def payload(self, used: Iterable[str] = HELPER_NAMES) -> dict[str, Any]:
        """The JSON form sent to the child: only the tables the code actually uses."""
        needed = self.names & frozenset(used)
        result: dict[str, Any] = {"names": sorted(self.names)}
        if "itsm_priority" in needed:
            result["matrix"] = [[i, u, p] for (i, u), p in sorted(self.matrix.items())]
        if "itsm_sla_due" in needed:
            result["sla_due"] = {
                str(priority): dict(self.sla_due[priority])
                for priority in PRIORITIES
                if priority in self.sla_due
            }
        return result


def build_helpers(payload: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """The helper functions a `HelperTable.payload` describes (run in the child): the same
    `bind_helpers` the runtime uses, over the tabulated matrix and due times."""
    matrix = {(int(i), int(u)): p for i, u, p in payload.get("matrix", [])}
    dues = {int(key): row for key, row in payload.get("sla_due", {}).items()}

    def due_times(priority: int) -> dict[str, datetime | None]:
        return {
            name: datetime.fromisoformat(value) if value else None
            for name, value in dues[priority].items()
        }

    names = frozenset(payload.get("names", ()))
    bound = bind_helpers(matrix, dues.keys(), due_times)
    return {name: function for name, function in bound.items() if name in names}


# --- JSON across the boundary ---------------------------------------------------------------


def _encode_default(value: object) -> object:
    if isinstance(value, datetime | date | clock_time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON-like")


def _dumps(value: object) -> str:
    return json.dumps(value, default=_encode_default, separators=(",", ":"))


def _encode_data(data: Mapping[Any, Any], helper_names: frozenset[str]) -> str:
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
        return _dumps(visible)
    except (TypeError, ValueError, RecursionError):
        pass
    parts = []
    for key, value in visible.items():
        try:
            parts.append(f"{_dumps(key)}:{_dumps(value)}")
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
            _dumps(result)
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
            _dumps(value)
        except (TypeError, ValueError, RecursionError):
            deleted.append(key)  # not JSON-serialisable: dropped
            continue
        changed[key] = value
    return _reply({"ok": True, "result": None, "set": changed, "deleted": deleted})


def _reply(message: Mapping[str, Any]) -> bytes:
    encoded = _dumps(message).encode()
    if len(encoded) > MAX_REPLY_BYTES:
        return _dumps(
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


_BOOT = (
    "import json, sys; config = json.loads(sys.argv[1]); sys.path[:] = config['path']; "
    "from engine.workflow.sandbox import child_main; child_main(config)"
)
_ENVIRONMENT_KEPT = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "LD_LIBRARY_PATH", "TMPDIR")


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
        environment = {key: os.environ[key] for key in _ENVIRONMENT_KEPT if key in os.environ}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, json.dumps(config)],
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
        analysis = _checked(source, mode, helpers.names)
        header = {
            "mode": mode,
            "source": source,
            "helpers": helpers.payload(analysis.names),
            "cpu_seconds": self.cpu_seconds,
        }
        request = (_dumps(header) + "\n" + _encode_data(data, helpers.names)).encode()
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


# --- SpiffWorkflow --------------------------------------------------------------------------


class SandboxEnvironment(BasePythonScriptEngineEnvironment):
    """A SpiffWorkflow script environment that runs everything in the sandbox."""

    def __init__(self, executor: SandboxExecutor, helpers: HelperTable) -> None:
        super().__init__({})
        self.executor = executor
        self.helpers = helpers

    def evaluate(
        self,
        expression: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> Any:
        data = {**(external_context or {}), **context}
        result, _ = self.executor.run(expression, data, self.helpers, "eval")
        return result

    def execute(
        self,
        script: str,
        context: dict[str, Any],
        external_context: Mapping[str, Any] | None = None,
    ) -> bool:
        external = dict(external_context or {})
        data = {**external, **context}
        _, new_data = self.executor.run(script, data, self.helpers, "exec")
        for key, value in external.items():
            # External context (data objects) is readable, not task data.
            if key not in context and new_data.get(key) is value:
                del new_data[key]
        context.clear()
        context.update(new_data)
        return True

    def call_service(self, context: dict[str, Any], **kwargs: Any) -> Any:
        raise SandboxError("service tasks are not supported")


def _exception_for_spiff(error: SandboxError) -> Exception:
    """What WorkflowTaskException gets as `exception` (a NameError gives 'did you mean')."""
    if isinstance(error, SandboxScriptError) and error.error_type == "NameError":
        return NameError(error.detail)
    return error


class SandboxedScriptEngine(PythonScriptEngine):
    """PythonScriptEngine whose scripts, conditions and timer expressions run sandboxed.

    Failures raise `WorkflowTaskException` carrying the task, so the engine reports the
    failing element.
    """

    def __init__(
        self, helpers: HelperTable | None = None, executor: SandboxExecutor | None = None
    ) -> None:
        self.helpers = helpers if helpers is not None else HelperTable.empty()
        self.executor = executor if executor is not None else default_executor()
        super().__init__(environment=SandboxEnvironment(self.executor, self.helpers))

    @classmethod
    def from_helpers(
        cls, helpers: Mapping[str, Callable[..., Any]], executor: SandboxExecutor | None = None
    ) -> SandboxedScriptEngine:
        """For the runtime: the bound helpers it passes today, tabulated."""
        return cls(HelperTable.from_helpers(helpers), executor)

    def validate(self, expression: str) -> None:
        check_source(expression, "eval", self.helpers.names)

    def evaluate(
        self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None
    ) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SandboxError as error:
            raise WorkflowTaskException(
                f"Error evaluating expression '{expression}': {error}",
                task=task,
                exception=_exception_for_spiff(error),
            ) from error

    def execute(
        self, task: Any, script: str, external_context: Mapping[str, Any] | None = None
    ) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context))
        except SandboxError as error:
            line = getattr(error, "line_number", None)
            error_line = None
            if line:
                lines = script.splitlines()
                error_line = lines[line - 1] if 0 < line <= len(lines) else None
            raise WorkflowTaskException(
                str(error),
                task=task,
                exception=_exception_for_spiff(error),
                line_number=line,
                error_line=error_line,
            ) from error
