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

from engine.workflow.sandbox.checks import SAFE_BUILTINS, check_source, eval_source
from engine.workflow.sandbox.executor import SandboxExecutor, default_executor
from engine.workflow.sandbox.helpers import HelperTable, build_helpers
from engine.workflow.sandbox.limits import (
    DEFAULT_MEMORY_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    SandboxError,
    SandboxScriptError,
    SandboxTimeout,
    SandboxViolation,
)
from engine.workflow.sandbox.spiff import SandboxedScriptEngine, SandboxEnvironment

__all__ = [
    "DEFAULT_MEMORY_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "SAFE_BUILTINS",
    "HelperTable",
    "SandboxEnvironment",
    "SandboxError",
    "SandboxExecutor",
    "SandboxScriptError",
    "SandboxTimeout",
    "SandboxViolation",
    "SandboxedScriptEngine",
    "build_helpers",
    "check_source",
    "default_executor",
    "eval_source",
]
